"""Identity's domain metrics count what committed: merges by kind (automatic from resolution, manual,
unmerge, split) and identifiers left out by reason; a `validate_only` change counts nothing."""

from __future__ import annotations

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from tests.identity.conftest import Events
from wayline.common.sql import Database
from wayline_identity.identity import Identity
from wayline_identity.metrics import IdentityMetrics

A, B = ("anonymous_id", "a"), ("anonymous_id", "b")
U1, U2 = ("user_id", "u1"), ("user_id", "u2")


def counts(reader: InMemoryMetricReader, name: str, label: str) -> dict[str, float]:
    data = reader.get_metrics_data()
    assert data is not None
    return {
        str(point.attributes[label]): point.value  # type: ignore[index, union-attr]
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == name
        for point in metric.data.data_points
    }


def test_merges_and_ignored_identifiers_are_counted_once_committed(
    database: Database, events: Events
) -> None:
    reader = InMemoryMetricReader()
    identity = Identity(database, metrics=IdentityMetrics(MeterProvider([reader]).get_meter("test")))
    identity.migrate()
    assert counts(reader, "identity.merges", "kind") == {
        "automatic": 0,
        "manual": 0,
        "unmerge": 0,
        "split": 0,
    }

    first = identity.resolve("t", [events(U1)]).resolutions[0].person_id
    anonymous = identity.resolve("t", [events(A)]).resolutions[0].person_id
    identity.resolve("t", [events(U1, A, event_type="identify")])  # joins the two: automatic
    identity.resolve("t", [events(U2, A, event_type="identify")])  # a second user_id: the rules refuse it
    second = identity.resolve("t", [events(B)]).resolutions[0].person_id
    identity.merge("t", [first, second], actor="", reason="check", validate_only=True)  # rolled back
    identity.merge("t", [first, second], actor="admin", reason="support ticket")
    identity.unmerge("t", first, B, actor="", reason="shared laptop")

    merges = counts(reader, "identity.merges", "kind")
    assert merges == {"automatic": 1, "manual": 1, "unmerge": 1, "split": 0}, (anonymous, merges)
    ignored = counts(reader, "identity.identifiers.ignored", "reason")
    assert ignored == {
        "blocked_value": 0,
        "invalid_value": 0,
        "unknown_type": 0,
        "limit_reached": 0,
        "merge_blocked": 1,
        "non_linking_event": 0,
    }
