"""ApplyPersonOverrides with `erased` markers (identity's erasures, as the ingest forwarder may push them),
over the real journeys server on chDB: the person is erased as DeletePersonEvents erases; nothing is
recorded."""

from __future__ import annotations

from tests.journeys.conftest import Journeys, ids, new_person, override, received_now, stored_event
from wayline.identity.v1 import person_override_pb2


def erased(person_id: str, version: int) -> person_override_pb2.PersonOverride:
    return person_override_pb2.PersonOverride(
        person_id=person_id, override_person_id=person_id, version=version, erased=True
    )


def test_apply_person_overrides_erased_erases_the_persons_events(journeys: Journeys) -> None:
    person, merged, bystander = new_person(), new_person(), new_person()
    journeys.write(
        stored_event(person, ("user_id", "p")), stored_event(merged, ("anonymous_id", "m"), minute=1)
    )
    kept = journeys.write(stored_event(bystander, ("user_id", "b"), minute=2))
    journeys.apply(override(merged, person, 1))
    assert len(journeys.timeline(person)) == 2

    response = journeys.apply(erased(person, 2))

    assert response.applied_count == 1
    assert journeys.timeline(person) == []
    assert journeys.timeline(merged) == []  # erased through the merge, not handed back
    assert ids(journeys.timeline(bystander)) == ids(kept)
    # As DeletePersonEvents: the override pointing to the person is forgotten, so the tenant holds none.
    assert response.max_version == 0
    assert journeys.apply(erased(person, 2)).applied_count == 0  # nothing left to erase


def test_apply_person_overrides_does_not_record_an_erased_marker(journeys: Journeys) -> None:
    person, other = new_person(), new_person()
    journeys.apply(erased(person, 5))

    # Recorded, the marker (a cancelled person-wide override at version 5) would outrank version 3.
    assert journeys.apply(override(person, other, 3)).applied_count == 1
    events = journeys.write(received_now(stored_event(person, ("user_id", "later"))))
    assert ids(journeys.timeline(other)) == ids(events)


def test_apply_person_overrides_erases_in_version_order_whatever_the_request_order(
    journeys: Journeys,
) -> None:
    person, merged = new_person(), new_person()
    journeys.write(
        stored_event(person, ("user_id", "p")), stored_event(merged, ("anonymous_id", "m"), minute=1)
    )

    # The merge (version 1) comes after the erasure (version 2) in the request, and is applied before it.
    journeys.apply(erased(person, 2), override(merged, person, 1))

    assert journeys.timeline(person) == []
    assert journeys.timeline(merged) == []
