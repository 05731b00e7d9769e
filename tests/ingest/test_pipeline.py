"""The pipeline on a real spool: malformed events never reach it, retries are acknowledged from the window,
and every accepted event satisfies the rules."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.breadth import examples
from tests.events import make_event
from wayline.common.timestamps import to_datetime, to_timestamp
from wayline.event.v1 import event_pb2
from wayline_ingest.dedup import DedupWindow
from wayline_ingest.pipeline import Pipeline
from wayline_ingest.spool import Spool
from wayline_ingest.validation import EventLimits, is_acceptable, violations_of
from wayline_journeys.converters import STORED_UUID

LIMITS = EventLimits(
    max_event_bytes=4096,
    max_future_skew=timedelta(hours=1),
    min_timestamp=datetime(2000, 1, 1, tzinfo=UTC),
    backfill_min_timestamp=datetime(1900, 1, 1, tzinfo=UTC),
)


def pipeline(path: Path) -> Pipeline:
    spool = Spool(path, ["journeys"], segment_bytes=1 << 20, max_bytes=1 << 30)
    return Pipeline(LIMITS, spool, DedupWindow(1000))


def spooled(p: Pipeline) -> list[event_pb2.Event]:
    found: list[event_pb2.Event] = []
    for batch in p.spool.batches():
        found.extend(event_pb2.Event.FromString(raw) for raw in batch.events)
    return found


mutations = st.lists(
    st.sampled_from(
        [
            "no_type",
            "no_channel",
            "no_identifiers",
            "empty_value",
            "bad_type",
            "bad_uuid",
            "person_id",
            "old",
            "future",
            "huge",
            "bad_currency",
            "no_name",
            "sentiment",
            "nan_property",
            "infinite_trait",
            "unknown_type",
            "unknown_channel",
            "negative_nanos",
            "sent_decades_ahead",
            "nul_in_value",
            "fine",
        ]
    ),
    max_size=3,
)


def mutate(event: event_pb2.Event, kinds: list[str]) -> None:
    now = datetime.now(UTC)
    for kind in kinds:
        if kind == "no_type":
            event.type = event_pb2.EVENT_TYPE_UNSPECIFIED
        elif kind == "no_channel":
            event.channel = event_pb2.CHANNEL_UNSPECIFIED
        elif kind == "no_identifiers":
            del event.identifiers[:]
        elif kind == "empty_value" and event.identifiers:
            event.identifiers[0].value = "  "
        elif kind == "bad_type" and event.identifiers:
            event.identifiers[0].type = "User ID"
        elif kind == "bad_uuid":
            event.event_id = "12345"
        elif kind == "person_id":
            event.person_id = "p-1"
        elif kind == "old":
            event.timestamp.CopyFrom(to_timestamp(datetime(1999, 12, 31, tzinfo=UTC)))
        elif kind == "future":
            event.timestamp.CopyFrom(to_timestamp(now + timedelta(days=2)))
        elif kind == "huge":
            event.text = "z" * 5000
        elif kind == "bad_currency":
            event.revenue.CopyFrom(event_pb2.Money(currency_code="eur", units=1))
        elif kind == "no_name":
            event.name = ""
        elif kind == "sentiment":
            event.sentiment_score = 0.5
        elif kind == "nan_property":  # deep in a list in a struct: every JSON-like field is walked
            event.properties.update({"scores": [1, {"x": float("nan")}]})
        elif kind == "infinite_trait":
            event.context.traits.update({"ltv": float("-inf")})
        elif kind == "unknown_type":  # a value from a newer contract, or garbage: no sink could store it
            event.type = 77  # type: ignore[assignment]
        elif kind == "unknown_channel":
            event.channel = -3  # type: ignore[assignment]
        elif kind == "negative_nanos":
            event.timestamp.nanos = -1
        elif kind == "nul_in_value" and event.identifiers:  # identity could not store it
            event.identifiers[0].value = "ann\x00"
        elif kind == "sent_decades_ahead":  # the clock-skew correction would date the event before 1900
            event.sent_at.CopyFrom(to_timestamp(now + timedelta(days=365 * 200)))


@settings(
    max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batch=st.lists(mutations, min_size=1, max_size=8))
def test_nothing_invalid_is_spooled_and_every_rejection_names_its_event(
    tmp_path_factory: object, batch: list[list[str]]
) -> None:
    p = pipeline(Path(str(tmp_path_factory.mktemp("spool"))))  # type: ignore[attr-defined]
    events = []
    for kinds in batch:
        event = make_event("u1")
        mutate(event, kinds)
        events.append(event)
    outcome = p.accept("acme", events, lambda i: f"events[{i}]")
    rejected = {r.index for r in outcome.rejections}
    for rejection in outcome.rejections:
        assert rejection.violations
        assert all(v.field.startswith(f"events[{rejection.index}]") for v in rejection.violations)
    for index, kinds in enumerate(batch):
        if set(kinds) <= {"fine"}:
            assert index not in rejected
    stored = spooled(p)
    assert len(stored) == len(batch) - len(rejected)
    now = datetime.now(UTC)
    for event in stored:
        uuid.UUID(event.event_id)
        assert event.type
        assert event.channel
        assert event.identifiers
        assert event.name
        assert all(i.value.strip() for i in event.identifiers)
        assert not event.person_id
        assert not event.HasField("sentiment_score")
        assert datetime(2000, 1, 1, tzinfo=UTC) <= to_datetime(event.timestamp) <= now + timedelta(hours=1)
        assert event.ByteSize() <= LIMITS.max_event_bytes + 64  # stamps add a few bytes
    p.spool.close()


def test_a_retry_is_acknowledged_from_the_window_with_its_first_stamps(tmp_path: Path) -> None:
    p = pipeline(tmp_path)
    event = make_event("u1", at=datetime.now(UTC) - timedelta(minutes=5))
    event.sent_at.CopyFrom(to_timestamp(datetime.now(UTC) - timedelta(minutes=4)))
    retry = event_pb2.Event()
    retry.CopyFrom(event)
    first = p.accept("acme", [event], lambda i: "event")
    second = p.accept("acme", [retry], lambda i: "event")
    assert second.accepted_ids == first.accepted_ids
    assert second.received_at == first.received_at
    assert len(spooled(p)) == 1
    other_tenant = p.accept("globex", [retry], lambda i: "event")
    assert len(spooled(p)) == 2
    assert other_tenant.accepted_ids == first.accepted_ids


@pytest.mark.parametrize(
    "spelling",
    [
        lambda u: "{" + str(u) + "}",
        lambda u: "urn:uuid:" + str(u),
        lambda u: u.hex.upper(),
        lambda u: str(u).replace("-", "", 2),  # hyphens partly left out
    ],
)
def test_an_event_id_in_another_uuid_form_is_spooled_in_the_canonical_one(
    tmp_path: Path, spelling: Callable[[uuid.UUID], str]
) -> None:
    # The journey store's UUID column refuses braces, `urn:uuid:` and some hyphens (it parked such events
    # after ingest had acknowledged them), and every other sink keys on the text.
    p = pipeline(tmp_path)
    event_id = uuid.uuid4()
    event = make_event("u1")
    event.event_id = spelling(event_id)
    first = p.accept("acme", [event], lambda i: "event")
    assert first.accepted_ids == [str(event_id)]
    assert [e.event_id for e in spooled(p)] == [str(event_id)]
    assert STORED_UUID.fullmatch(str(event_id))
    again = event_pb2.Event()
    again.CopyFrom(event)
    again.event_id = str(event_id)  # the same event, sent again in the canonical form
    assert p.accept("acme", [again], lambda i: "event").accepted_ids == [str(event_id)]
    assert len(spooled(p)) == 1


def test_the_window_is_rebuilt_from_the_spool_after_a_restart(tmp_path: Path) -> None:
    p = pipeline(tmp_path)
    events = [make_event("u1") for _ in range(3)]
    p.accept("acme", events, lambda i: f"events[{i}]")
    p.spool.close()
    restarted = pipeline(tmp_path)
    assert restarted.remember_spooled() == 3
    again = [event_pb2.Event() for _ in events]
    for copy, event in zip(again, events, strict=True):
        copy.CopyFrom(event)
    restarted.accept("acme", again, lambda i: f"events[{i}]")
    assert len(spooled(restarted)) == 3


def test_a_retry_across_midnight_keeps_the_first_days_timestamp(tmp_path: Path) -> None:
    """Before the window, a retry re-stamped `timestamp` from its own received_at: the same event_id
    retried across midnight landed on two days, which the journey store keeps as two rows."""
    clock = iter(
        [datetime(2026, 11, 30, 23, 59, 59, 900_000, tzinfo=UTC), datetime(2026, 12, 1, 0, 0, 1, tzinfo=UTC)]
    )
    spool = Spool(tmp_path, ["journeys"], segment_bytes=1 << 20, max_bytes=1 << 30)
    p = Pipeline(LIMITS, spool, DedupWindow(1000), clock=lambda: next(clock))
    event = make_event("u1", at=datetime(2026, 11, 30, 23, 59, 50, tzinfo=UTC))
    event.sent_at.CopyFrom(to_timestamp(datetime(2026, 11, 30, 23, 59, 55, tzinfo=UTC)))
    retry = event_pb2.Event()
    retry.CopyFrom(event)
    first = p.accept("acme", [event], lambda i: "event")
    second = p.accept("acme", [retry], lambda i: "event")
    assert second.received_at == first.received_at
    (stored,) = spooled(p)
    assert to_datetime(stored.timestamp).date() == datetime(2026, 11, 30, tzinfo=UTC).date()


@settings(max_examples=examples(200), deadline=None)
@given(kinds=mutations, backfill=st.booleans())
def test_the_fast_path_agrees_with_the_detailed_check(kinds: list[str], backfill: bool) -> None:
    """The fast path may only say yes when the detailed check finds nothing, and says no otherwise (events
    with revenue always take the detailed path)."""
    event = make_event("u1")
    mutate(event, kinds)
    detailed = violations_of(event, "event", LIMITS, backfill=backfill)
    if event.HasField("revenue"):
        assert not is_acceptable(event, LIMITS, backfill)
    else:
        assert is_acceptable(event, LIMITS, backfill) == (detailed == [])
