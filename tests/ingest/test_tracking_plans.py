"""Tracking plans end to end below the RPCs: the store and the per-event check, on SQLite and PostgreSQL.

Every test runs on both engines: an embedded SQLite file and a database of its own on the session's real
PostgreSQL server.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from wayline.common.errors import AlreadyExists, FailedPrecondition, NotFound
from wayline.common.sql import Database, open_database
from wayline.event.v1 import event_pb2
from wayline_ingest.plans import EventSchema, PlanSpec, PlanStore, TrackingPlans
from wayline_ingest.plans.errors import EtagMismatch

ORDER_SCHEMA = json.dumps(
    {
        "type": "object",
        "properties": {"price": {"type": "number", "minimum": 0}, "sku": {"type": "string"}},
        "required": ["price"],
    }
)


def order_plan(**changes: Any) -> PlanSpec:
    """An enabled plan with one schema, for `Order Completed`: a price is required and not negative."""
    fields: dict[str, Any] = {
        "display_name": "Shop",
        "mode": "reject",
        "enabled": True,
        "event_schemas": (EventSchema("track", "Order Completed", ORDER_SCHEMA, "A paid order."),),
    }
    fields.update(changes)
    return PlanSpec(**fields)


def track(
    name: str = "Order Completed",
    channel: int = event_pb2.CHANNEL_WEB,
    kind: int = event_pb2.EVENT_TYPE_TRACK,
    **properties: Any,
) -> event_pb2.Event:
    event = event_pb2.Event(type=kind, name=name, channel=channel)  # type: ignore[arg-type]
    event.properties.update(properties)
    return event


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """An empty database: a SQLite file, or a fresh database on the session's PostgreSQL."""
    url = request.getfixturevalue("fresh_postgres_url") if request.param == "postgresql" else None
    db = open_database(url, tmp_path / "plans.db")
    yield db
    db.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def plans(database: Database, clock: Clock) -> Iterator[TrackingPlans]:
    registry = TrackingPlans(PlanStore(database), clock=clock)
    registry.start()
    yield registry
    registry.stop()


def test_create_then_get_returns_every_field_as_stored(plans: TrackingPlans, clock: Clock) -> None:
    spec = order_plan(description="Owned by web.", channels=("web", "email"), allow_unplanned_events=True)
    created = plans.create("acme", spec, "shop-events")
    fetched = plans.get("acme", "shop-events")
    assert fetched == created
    assert (fetched.spec, fetched.revision, fetched.name) == (spec, 1, "trackingPlans/shop-events")
    assert fetched.create_time == fetched.update_time == clock.now
    assert fetched.etag == created.etag


def test_create_generates_an_id_when_none_is_given(plans: TrackingPlans) -> None:
    created = plans.create("acme", order_plan())
    assert plans.get("acme", created.plan_id) == created


def test_plans_belong_to_their_tenant(plans: TrackingPlans) -> None:
    plans.create("acme", order_plan(), "shop")
    with pytest.raises(NotFound) as missing:
        plans.get("globex", "shop")
    assert missing.value.reason == "TRACKING_PLAN_NOT_FOUND"
    assert plans.list("globex", 50).total_size == 0
    assert plans.check("globex", track(price=-1)) is None
    assert plans.check("acme", track(price=-1)) is not None
    plans.create("globex", order_plan(), "shop")  # the same id in another tenant is another plan


def test_create_refuses_an_id_already_taken(plans: TrackingPlans) -> None:
    plans.create("acme", order_plan(enabled=False), "shop")
    with pytest.raises(AlreadyExists):
        plans.create("acme", order_plan(enabled=False), "shop")


def test_update_replaces_the_named_fields_as_a_new_revision(plans: TrackingPlans, clock: Clock) -> None:
    created = plans.create("acme", order_plan(), "shop")
    clock.now += timedelta(minutes=5)
    updated = plans.update("acme", "shop", PlanSpec(mode="flag", display_name="ignored"), {"mode"})
    assert updated.spec == order_plan(mode="flag")
    assert (updated.revision, updated.create_time, updated.update_time) == (2, created.create_time, clock.now)
    assert updated.etag != created.etag
    assert plans.get("acme", "shop") == updated


def test_update_with_a_stale_etag_is_aborted_and_changes_nothing(plans: TrackingPlans) -> None:
    created = plans.create("acme", order_plan(), "shop")
    current = plans.update("acme", "shop", PlanSpec(display_name="v2"), {"display_name"}, etag=created.etag)
    with pytest.raises(EtagMismatch) as stale:
        plans.update("acme", "shop", PlanSpec(display_name="v3"), {"display_name"}, etag=created.etag)
    assert stale.value.reason == "ETAG_MISMATCH"
    assert plans.get("acme", "shop") == current


def test_update_of_a_missing_plan_is_not_found(plans: TrackingPlans) -> None:
    with pytest.raises(NotFound):
        plans.update("acme", "nothing-here", PlanSpec(), {"mode"})


def test_enabled_plans_never_share_a_channel(plans: TrackingPlans) -> None:
    plans.create("acme", order_plan(channels=("web",)), "web-plan")
    with pytest.raises(FailedPrecondition) as overlap:
        plans.create("acme", order_plan(channels=("email", "web")), "mixed")
    assert overlap.value.reason == "TRACKING_PLAN_OVERLAP"
    assert overlap.value.metadata["conflicting_plan"] == "trackingPlans/web-plan"
    with pytest.raises(FailedPrecondition):
        plans.create("acme", order_plan(channels=()), "everywhere")  # no channels: every channel
    plans.create("acme", order_plan(channels=("email",)), "email-plan")
    plans.create("acme", order_plan(channels=(), enabled=False), "draft")  # disabled: no overlap
    with pytest.raises(FailedPrecondition):
        plans.update("acme", "draft", PlanSpec(enabled=True), {"enabled"})
    plans.create("globex", order_plan(channels=()), "everywhere")  # other tenants are not in the way


def test_list_pages_by_id_and_counts_the_tenants_plans(plans: TrackingPlans) -> None:
    for plan_id in ("plan-c", "plan-a", "plan-e", "plan-b", "plan-d"):
        plans.create("acme", order_plan(enabled=False), plan_id)
    plans.create("globex", order_plan(enabled=False), "plan-z")
    first = plans.list("acme", 2)
    second = plans.list("acme", 2, first.next_after)
    last = plans.list("acme", 2, second.next_after)
    pages = [[p.plan_id for p in page.plans] for page in (first, second, last)]
    assert pages == [["plan-a", "plan-b"], ["plan-c", "plan-d"], ["plan-e"]]
    assert (first.next_after, last.next_after) == ("plan-b", None)
    assert {first.total_size, second.total_size, last.total_size} == {5}


def test_tables_are_created_once_and_plans_survive_a_restart(database: Database) -> None:
    first = TrackingPlans(PlanStore(database))
    first.start()
    first.create("acme", order_plan(), "shop")
    first.stop()
    restarted = TrackingPlans(PlanStore(database))
    restarted.start()  # CREATE ... IF NOT EXISTS again, then load what is there
    try:
        assert restarted.check("acme", track(price=-1)) is not None
    finally:
        restarted.stop()


def test_check_rejects_schema_violations_with_paths_from_the_event(plans: TrackingPlans) -> None:
    plans.create("acme", order_plan(), "shop")
    verdict = plans.check("acme", track(price=-3, sku=12))
    assert verdict is not None
    assert (verdict.plan, verdict.mode) == ("trackingPlans/shop", "reject")
    assert sorted((v.field, v.reason) for v in verdict.violations) == [
        ("properties.price", "SCHEMA_VIOLATION"),
        ("properties.sku", "SCHEMA_VIOLATION"),
    ]
    missing = plans.check("acme", track(sku="A-1"))
    assert missing is not None
    assert [v.field for v in missing.violations] == ["properties.price"]


def test_conforming_events_get_no_verdict(plans: TrackingPlans) -> None:
    plans.create("acme", order_plan(), "shop")
    assert plans.check("acme", track(price=9.5, sku="A-1")) is None


def test_flag_mode_returns_the_violations_to_flag(plans: TrackingPlans) -> None:
    plans.create("acme", order_plan(mode="flag"), "shop")
    verdict = plans.check("acme", track(price="free"))
    assert verdict is not None
    assert verdict.mode == "flag"
    assert [v.field for v in verdict.violations] == ["properties.price"]


def test_unplanned_events_violate_unless_the_plan_allows_them(plans: TrackingPlans) -> None:
    plans.create("acme", order_plan(channels=("web",)), "strict")
    plans.create("acme", order_plan(channels=("email",), allow_unplanned_events=True), "lenient")
    verdict = plans.check("acme", track("Cart Viewed"))
    assert verdict is not None
    assert [(v.field, v.reason) for v in verdict.violations] == [("name", "UNPLANNED_EVENT")]
    identify = plans.check("acme", track("", kind=event_pb2.EVENT_TYPE_IDENTIFY))
    assert identify is not None
    assert [(v.field, v.reason) for v in identify.violations] == [("type", "UNPLANNED_EVENT")]
    assert plans.check("acme", track("Cart Viewed", channel=event_pb2.CHANNEL_EMAIL)) is None


def test_a_plan_checks_only_the_channels_it_covers(plans: TrackingPlans) -> None:
    plans.create("acme", order_plan(channels=("mobile_app",)), "app")
    assert plans.check("acme", track(price=-1, channel=event_pb2.CHANNEL_WEB)) is None
    assert plans.check("acme", track(price=-1, channel=event_pb2.CHANNEL_MOBILE_APP)) is not None


def test_a_disabled_plan_checks_nothing(plans: TrackingPlans) -> None:
    plans.create("acme", order_plan(enabled=False), "draft")
    assert plans.check("acme", track(price=-1)) is None


def test_a_write_applies_to_the_next_event(plans: TrackingPlans) -> None:
    plans.create("acme", order_plan(), "shop")
    plans.update("acme", "shop", PlanSpec(mode="flag"), {"mode"})
    flagged = plans.check("acme", track(price=-1))
    assert flagged is not None
    assert flagged.mode == "flag"
    plans.update("acme", "shop", PlanSpec(enabled=False), {"enabled"})
    assert plans.check("acme", track(price=-1)) is None


def test_page_and_identify_schemas_pick_events_by_type(plans: TrackingPlans) -> None:
    positive = json.dumps({"properties": {"n": {"type": "integer", "minimum": 0}}})
    schemas = (
        EventSchema("page", "", positive),  # every page...
        EventSchema("page", "Home", ""),  # ...but Home, which may carry anything
        EventSchema("identify", "", json.dumps({"required": ["email"]})),
    )
    plans.create("acme", PlanSpec(enabled=True, event_schemas=schemas), "site")
    page = event_pb2.EVENT_TYPE_PAGE
    assert plans.check("acme", track("Pricing", kind=page, n=-1)) is not None
    assert plans.check("acme", track("", kind=page, n=-1)) is not None
    assert plans.check("acme", track("Home", kind=page, n=-1)) is None
    assert plans.check("acme", track("Pricing", kind=page, n=2)) is None
    identify = plans.check("acme", track("", kind=event_pb2.EVENT_TYPE_IDENTIFY, plan="pro"))
    assert identify is not None
    assert [v.field for v in identify.violations] == ["properties.email"]
