"""An erased person's events still in flight (ingest resolved them just before the erasure) are left out of
the online features, also after the service restarts from a snapshot (ADR 94). The round trip through the
decision server and identity's feed is in test_online_merges.py."""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Iterator
from typing import Any, cast

import pytest

from wayline.common.timestamps import from_micros, to_timestamp
from wayline.event.v1 import event_pb2
from wayline.identity.v1 import person_override_pb2
from wayline.journeys.v1 import feature_pb2
from wayline_decision.features.service import OnlineFeatures
from wayline_decision.features.state import InProcessFeatureState

TENANT = "t"


def _logged(message: Any) -> str:
    """As the change log keeps a message: its wire bytes in base64."""
    return base64.b64encode(message.SerializeToString()).decode("ascii")


def _features() -> OnlineFeatures:
    return OnlineFeatures(
        lambda tenant: InProcessFeatureState(settle_after_us=1_000_000),
        cast(Any, None),  # journeys: not asked
        settle_after_us=1_000_000,
    )


def _viewed(person: str) -> event_pb2.Event:
    now_us = int(time.time() * 1_000_000)
    return event_pb2.Event(
        event_id=str(uuid.uuid4()),
        type=event_pb2.EVENT_TYPE_TRACK,
        name="Product Viewed",
        channel=event_pb2.CHANNEL_WEB,
        person_id=person,
        timestamp=to_timestamp(from_micros(now_us - 1_000)),
        received_at=to_timestamp(from_micros(now_us - 1_000)),
    )


def _holds(features: OnlineFeatures, person: str) -> bool:
    [(_, tenant)] = features.tenants()
    return bool(cast(InProcessFeatureState, tenant.state).holds(person))


@pytest.fixture
def erased() -> Iterator[OnlineFeatures]:
    """A tenant with a spec counting views, and person `gone` erased through the override feed."""
    features = _features()
    spec = feature_pb2.FeatureSpec(name="s", version="1")
    views = spec.features.add(name="views", aggregation=feature_pb2.FEATURE_AGGREGATION_COUNT)
    views.events.event_name = "Product Viewed"
    erasure = person_override_pb2.PersonOverride(
        person_id="gone", override_person_id="gone", version=1, erased=True
    )
    changes = [
        (1, TENANT, "spec", {"spec": _logged(spec), "since_us": 0}),
        (2, TENANT, "overrides", [_logged(erasure)]),
    ]
    assert features.restore({}, lambda state, document: None, changes) == 2
    yield features
    features.close()


def test_the_events_of_an_erased_person_are_left_out(erased: OnlineFeatures) -> None:
    assert erased.observe(TENANT, [_viewed("gone"), _viewed("kept")]) == 2  # both taken into account

    assert not _holds(erased, "gone")
    assert _holds(erased, "kept")


def test_a_restart_from_a_snapshot_still_leaves_them_out(erased: OnlineFeatures) -> None:
    documents = erased.export(lambda state: None)
    restarted = _features()
    try:
        restarted.restore(documents, lambda state, document: None, [])
        restarted.observe(TENANT, [_viewed("gone"), _viewed("kept")])

        assert not _holds(restarted, "gone")
        assert _holds(restarted, "kept")
    finally:
        restarted.close()
