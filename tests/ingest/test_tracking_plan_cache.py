"""The hot path's promises: compile once per revision, never query the store, converge across replicas,
and count violations for Prometheus."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, NumberDataPoint

from tests.ingest.test_tracking_plans import order_plan, track
from tests.postgres import create_schema
from wayline.common.errors import FailedPrecondition, Unavailable
from wayline.common.sql import open_database
from wayline.event.v1 import event_pb2
from wayline_ingest.plans import PlanSpec, PlanStore, TrackingPlans
from wayline_ingest.plans.metrics import VIOLATIONS_METRIC


@pytest.fixture
def sqlite_plans(tmp_path: Path) -> Iterator[TrackingPlans]:
    db = open_database(None, tmp_path / "plans.db")
    plans = TrackingPlans(PlanStore(db))
    plans.start()
    yield plans
    plans.stop()
    db.close()


def test_a_plan_revision_is_compiled_once_for_all_its_events(sqlite_plans: TrackingPlans) -> None:
    sqlite_plans.create("acme", order_plan(channels=("web",)), "web")
    sqlite_plans.create("acme", order_plan(channels=("email",)), "email")
    assert sqlite_plans.compilations == 2
    for _ in range(200):
        assert sqlite_plans.check("acme", track(price=-1)) is not None
    sqlite_plans.refresh()  # nothing changed: nothing to compile
    assert sqlite_plans.compilations == 2
    sqlite_plans.update("acme", "web", PlanSpec(mode="flag"), {"mode"})
    assert sqlite_plans.compilations == 3  # the new revision only; "email" keeps its compiled form


def test_checking_events_never_queries_the_store(tmp_path: Path) -> None:
    db = open_database(None, tmp_path / "plans.db")
    plans = TrackingPlans(PlanStore(db), refresh_interval=3600)
    plans.start()
    plans.create("acme", order_plan(), "shop")
    db.close()  # any query from here on would fail
    try:
        assert plans.check("acme", track(price=-1)) is not None
        assert plans.check("acme", track(price=1)) is None
        assert plans.check("tenant-without-plans", track(price=-1)) is None
    finally:
        plans.stop()


def test_another_replica_sees_a_write_within_about_a_second(postgres_url: str) -> None:
    url = create_schema(postgres_url)
    databases = [open_database(url, Path("unused")), open_database(url, Path("unused"))]
    writer, reader = (TrackingPlans(PlanStore(db)) for db in databases)
    writer.start()
    reader.start()
    try:
        writer.create("acme", order_plan(), "shop")
        assert _seconds_until(lambda: reader.check("acme", track(price=-1)) is not None) < 2.5
        writer.update("acme", "shop", PlanSpec(mode="flag"), {"mode"})
        assert _mode(writer) == "flag"  # at once through the replica that wrote
        assert _seconds_until(lambda: _mode(reader) == "flag") < 2.5
        writer.update("acme", "shop", PlanSpec(enabled=False), {"enabled"})
        assert _seconds_until(lambda: reader.check("acme", track(price=-1)) is None) < 2.5
    finally:
        for plans in (writer, reader):
            plans.stop()
        for db in databases:
            db.close()


def _mode(plans: TrackingPlans) -> str | None:
    verdict = plans.check("acme", track(price=-1))
    return verdict.mode if verdict else None


def _seconds_until(condition: Callable[[], bool], limit: float = 5.0) -> float:
    """How long `condition()` took to become true, polling; `limit` + 1 when it never did."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        if condition():
            return time.monotonic() - started
        time.sleep(0.02)
    return limit + 1


def test_violations_are_counted_by_plan_event_name_and_mode(tmp_path: Path) -> None:
    reader = InMemoryMetricReader()
    db = open_database(None, tmp_path / "plans.db")
    plans = TrackingPlans(PlanStore(db), meter=MeterProvider(metric_readers=[reader]).get_meter("test"))
    plans.start()
    try:
        plans.create("acme", order_plan(), "shop")
        plans.check("acme", track(price=-1, sku=3))  # two violations
        plans.check("acme", track(price=-1))
        plans.check("acme", track(price=1))  # conforming: not counted
        plans.check("acme", track("Mystery Event", channel=event_pb2.CHANNEL_WEB))
        plans.check("acme", track("Another Mystery"))
    finally:
        plans.stop()
        db.close()
    counts = _counted(reader)
    assert counts == {
        ("acme", "trackingPlans/shop", "Order Completed", "reject"): 3,
        ("acme", "trackingPlans/shop", "(unplanned)", "reject"): 2,  # unplanned names share one series
    }


def _counted(reader: InMemoryMetricReader) -> dict[tuple[str, ...], float]:
    """The violation counter's value by (tenant, plan, event_name, mode)."""
    data = reader.get_metrics_data()
    assert data is not None
    counts: dict[tuple[str, ...], float] = {}
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name != VIOLATIONS_METRIC:
                    continue
                for point in metric.data.data_points:
                    assert isinstance(point, NumberDataPoint)
                    labels = dict(point.attributes or {})
                    key = tuple(str(labels[k]) for k in ("tenant", "plan", "event_name", "mode"))
                    counts[key] = point.value
    return counts


def test_replicas_racing_to_enable_overlapping_plans_cannot_both_win(postgres_url: str) -> None:
    url = create_schema(postgres_url)
    databases = [open_database(url, Path("unused")) for _ in range(2)]
    replicas = [TrackingPlans(PlanStore(db), refresh_interval=3600) for db in databases]
    for replica in replicas:
        replica.start()
    try:
        for round_ in range(15):
            assert _race(replicas, f"tenant-{round_}") == ["created", "overlap"], f"round {round_}"
    finally:
        for replica in replicas:
            replica.stop()
        for db in databases:
            db.close()


def _race(replicas: list[TrackingPlans], tenant: str) -> list[str]:
    """Each replica creates an enabled all-channel plan for `tenant` at the same instant; the outcomes."""
    barrier = threading.Barrier(len(replicas))
    outcomes: list[str] = []

    def enable(replica: TrackingPlans, plan_id: str) -> None:
        barrier.wait()
        try:
            replica.create(tenant, order_plan(channels=()), plan_id)
            outcomes.append("created")
        except FailedPrecondition:
            outcomes.append("overlap")

    threads = [threading.Thread(target=enable, args=(r, f"plan-{i}")) for i, r in enumerate(replicas)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(outcomes)


def test_start_is_unavailable_while_the_store_is_down(tmp_path: Path) -> None:
    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    db = open_database(f"postgresql://postgres@127.0.0.1:{port}/none", tmp_path / "unused.db")
    plans = TrackingPlans(PlanStore(db))
    with pytest.raises(Unavailable) as down:
        plans.start()
    assert down.value.code == grpc.StatusCode.UNAVAILABLE
    assert down.value.retry_after is not None
    db.close()
