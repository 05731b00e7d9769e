"""The four tracking-plan RPCs, called as the servicer will call them: inside a bound call context.

They assert what the contract promises callers: codes (through the kit's error types), reasons and field
paths. The gRPC plumbing itself is covered once the servicer delegates to these methods.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2

from tests.pages import every_page
from wayline.common.context import CallContext, bind_call
from wayline.common.errors import (
    FieldViolation,
    InvalidArgument,
    Unauthenticated,
    WaylineError,
    to_status,
)
from wayline.common.sql import open_database
from wayline.event.v1 import event_pb2
from wayline.ingest.v1 import ingest_service_pb2 as pb
from wayline.ingest.v1 import tracking_plan_pb2 as tp
from wayline_ingest.plans import PlanStore, TrackingPlanRpcs, TrackingPlans
from wayline_ingest.plans.model import PlanSpec, TrackingPlan
from wayline_ingest.plans.paging import page_size

CONTEXT: Any = None  # the RPCs never touch grpc.ServicerContext; errors are raised, not set on it
ORDER_SCHEMA = json.dumps({"type": "object", "properties": {"price": {"type": "number"}}})


@pytest.fixture
def rpcs(tmp_path: Path) -> Iterator[TrackingPlanRpcs]:
    db = open_database(None, tmp_path / "plans.db")
    plans = TrackingPlans(PlanStore(db))
    plans.start()
    with bind_call(CallContext(request_id="r-1", method="/wayline.ingest.v1.IngestService/X", tenant="acme")):
        yield TrackingPlanRpcs(plans)
    plans.stop()
    db.close()


def wire_plan(**fields: Any) -> tp.TrackingPlan:
    defaults: dict[str, Any] = {
        "display_name": "Shop",
        "mode": tp.TRACKING_PLAN_MODE_REJECT,
        "enabled": True,
        "event_schemas": [
            tp.EventSchema(
                event_type=event_pb2.EVENT_TYPE_TRACK,
                event_name="Order Completed",
                properties_json_schema=ORDER_SCHEMA,
            )
        ],
    }
    defaults.update(fields)
    return tp.TrackingPlan(**defaults)


def create(rpcs: TrackingPlanRpcs, plan_id: str = "shop", **fields: Any) -> tp.TrackingPlan:
    request = pb.CreateTrackingPlanRequest(tracking_plan=wire_plan(**fields), tracking_plan_id=plan_id)
    return rpcs.CreateTrackingPlan(request, CONTEXT).tracking_plan


def violations(error: pytest.ExceptionInfo[InvalidArgument]) -> list[tuple[str, str]]:
    return [(v.field, v.reason) for v in error.value.violations]


def test_create_tracking_plan_returns_the_plan_as_stored(rpcs: TrackingPlanRpcs) -> None:
    created = create(rpcs, mode=tp.TRACKING_PLAN_MODE_UNSPECIFIED, channels=[event_pb2.CHANNEL_WEB])
    assert (created.name, created.revision, created.mode) == (
        "trackingPlans/shop",
        1,
        tp.TRACKING_PLAN_MODE_FLAG,
    )
    assert list(created.channels) == [event_pb2.CHANNEL_WEB]
    assert created.etag
    assert created.create_time == created.update_time
    assert created.create_time.seconds > 0
    fetched = rpcs.GetTrackingPlan(pb.GetTrackingPlanRequest(name="trackingPlans/shop"), CONTEXT)
    assert fetched.tracking_plan == created


def test_create_tracking_plan_ignores_output_only_fields(rpcs: TrackingPlanRpcs) -> None:
    created = create(rpcs, name="trackingPlans/other", revision=7, etag="x")
    assert (created.name, created.revision) == ("trackingPlans/shop", 1)


def test_create_tracking_plan_names_every_invalid_field(rpcs: TrackingPlanRpcs) -> None:
    track = event_pb2.EVENT_TYPE_TRACK
    schemas = [
        tp.EventSchema(event_type=track, event_name="A", properties_json_schema="{not json"),
        tp.EventSchema(event_type=track, event_name="B", properties_json_schema='{"type": "nope"}'),
        tp.EventSchema(event_type=track, event_name="B"),
        tp.EventSchema(event_name="C"),
        tp.EventSchema(event_type=event_pb2.EVENT_TYPE_IDENTIFY, event_name="D"),
        tp.EventSchema(event_type=track),
        tp.EventSchema(event_type=track, event_name="E", properties_json_schema='{"$ref": "https://x/y"}'),
    ]
    with pytest.raises(InvalidArgument) as invalid:
        create(
            rpcs,
            "Bad_Id",
            display_name="x" * 201,
            channels=[event_pb2.CHANNEL_UNSPECIFIED, 99],
            event_schemas=schemas,
        )
    assert violations(invalid) == [
        ("tracking_plan_id", "INVALID"),
        ("tracking_plan.display_name", "TOO_LONG"),
        ("tracking_plan.channels[0]", "INVALID"),
        ("tracking_plan.channels[1]", "INVALID"),
        ("tracking_plan.event_schemas[0].properties_json_schema", "INVALID_JSON_SCHEMA"),
        ("tracking_plan.event_schemas[1].properties_json_schema", "INVALID_JSON_SCHEMA"),
        ("tracking_plan.event_schemas[2].event_name", "DUPLICATE"),
        ("tracking_plan.event_schemas[3].event_type", "REQUIRED"),
        ("tracking_plan.event_schemas[4].event_name", "NOT_ALLOWED"),
        ("tracking_plan.event_schemas[5].event_name", "REQUIRED"),
        ("tracking_plan.event_schemas[6].properties_json_schema", "INVALID_JSON_SCHEMA"),
    ]
    assert invalid.value.code == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize("plan_id", ["ab", "a" * 64, "1abc", "abc-", "ab_c", "Abc", "abc\n"])
def test_create_tracking_plan_refuses_ids_that_are_not_lower_kebab_case(
    rpcs: TrackingPlanRpcs, plan_id: str
) -> None:
    with pytest.raises(InvalidArgument) as invalid:
        create(rpcs, plan_id)
    assert violations(invalid) == [("tracking_plan_id", "INVALID")]


def test_a_plan_created_with_a_final_newline_before_ids_were_matched_whole_stays_reachable(
    tmp_path: Path,
) -> None:
    """Until 2026-12 ids were matched with `match`, whose `$` also matches before a final newline (ADR 78):
    such a plan, stored as it was then, is read by its name and listed across pages."""
    db = open_database(None, tmp_path / "legacy.db")
    store = PlanStore(db)
    plans = TrackingPlans(store)
    plans.start()
    now = datetime.now(UTC)
    store.insert(TrackingPlan("acme", "legacy\n", PlanSpec(enabled=False), 1, now, now))
    try:
        with bind_call(
            CallContext(request_id="r-2", method="/wayline.ingest.v1.IngestService/X", tenant="acme")
        ):
            rpcs = TrackingPlanRpcs(plans)
            create(rpcs, "after", enabled=False)
            name = "trackingPlans/legacy\n"
            assert (
                rpcs.GetTrackingPlan(pb.GetTrackingPlanRequest(name=name), CONTEXT).tracking_plan.name == name
            )
            first = rpcs.ListTrackingPlans(pb.ListTrackingPlansRequest(page_size=1), CONTEXT)
            rest = rpcs.ListTrackingPlans(
                pb.ListTrackingPlansRequest(page_size=1, page_token=first.next_page_token), CONTEXT
            )
            assert [p.name for p in [*first.tracking_plans, *rest.tracking_plans]] == [
                "trackingPlans/after",
                name,
            ]
    finally:
        plans.stop()
        db.close()


def test_create_tracking_plan_accepts_ids_of_3_to_63_characters(rpcs: TrackingPlanRpcs) -> None:
    assert create(rpcs, "abc", enabled=False).name == "trackingPlans/abc"
    assert create(rpcs, "a" + "-b" * 31, enabled=False).name == "trackingPlans/a" + "-b" * 31


def test_create_tracking_plan_with_a_taken_id_already_exists(rpcs: TrackingPlanRpcs) -> None:
    create(rpcs, enabled=False)
    with pytest.raises(WaylineError) as taken:
        create(rpcs, enabled=False)
    assert taken.value.code == grpc.StatusCode.ALREADY_EXISTS


def test_create_tracking_plan_overlapping_an_enabled_plan_fails_its_precondition(
    rpcs: TrackingPlanRpcs,
) -> None:
    create(rpcs, "web-plan", channels=[event_pb2.CHANNEL_WEB])
    with pytest.raises(WaylineError) as overlap:
        create(rpcs, "all-channels")
    assert (overlap.value.code, overlap.value.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "TRACKING_PLAN_OVERLAP",
    )


def test_get_tracking_plan_of_a_missing_plan_is_not_found(rpcs: TrackingPlanRpcs) -> None:
    with pytest.raises(WaylineError) as missing:
        rpcs.GetTrackingPlan(pb.GetTrackingPlanRequest(name="trackingPlans/nope"), CONTEXT)
    assert (missing.value.code, missing.value.reason) == (
        grpc.StatusCode.NOT_FOUND,
        "TRACKING_PLAN_NOT_FOUND",
    )


@pytest.mark.parametrize("name", ["", "shop", "trackingPlans/", "trackingPlans/Shop", "plans/shop"])
def test_get_tracking_plan_refuses_a_malformed_name(rpcs: TrackingPlanRpcs, name: str) -> None:
    with pytest.raises(InvalidArgument) as invalid:
        rpcs.GetTrackingPlan(pb.GetTrackingPlanRequest(name=name), CONTEXT)
    assert violations(invalid) == [("name", "INVALID")]


def test_list_tracking_plans_pages_through_every_plan_by_name(rpcs: TrackingPlanRpcs) -> None:
    for index in range(53):
        create(rpcs, f"plan-{index:02d}", enabled=False)
    first = rpcs.ListTrackingPlans(pb.ListTrackingPlansRequest(), CONTEXT)
    assert (len(first.tracking_plans), first.total_size) == (50, 53)  # page_size 0 means 50
    rest = rpcs.ListTrackingPlans(pb.ListTrackingPlansRequest(page_token=first.next_page_token), CONTEXT)
    assert (len(rest.tracking_plans), rest.next_page_token, rest.total_size) == (3, "", 53)
    names = [p.name for p in [*first.tracking_plans, *rest.tracking_plans]]
    assert names == [f"trackingPlans/plan-{i:02d}" for i in range(53)]
    small = rpcs.ListTrackingPlans(pb.ListTrackingPlansRequest(page_size=5), CONTEXT)
    assert [p.name for p in small.tracking_plans] == names[:5]


def test_page_sizes_default_to_50_and_are_coerced_to_1000() -> None:
    assert (page_size(0), page_size(7), page_size(1000), page_size(5000)) == (50, 7, 1000, 1000)


@pytest.mark.parametrize("token", ["garbage!", "e30", "eyJ2IjoidHAxIiwiYWZ0ZXIiOiIuLi8ifQ"])
def test_list_tracking_plans_refuses_a_page_token_it_did_not_issue(
    rpcs: TrackingPlanRpcs, token: str
) -> None:
    # "e30" is `{}`; the last one is a well-formed token wrapping the id "../".
    with pytest.raises(InvalidArgument) as invalid:
        rpcs.ListTrackingPlans(pb.ListTrackingPlansRequest(page_token=token), CONTEXT)
    assert invalid.value.reason == "INVALID_PAGE_TOKEN"
    assert violations(invalid) == [("page_token", "INVALID")]


def test_list_tracking_plans_refuses_a_negative_page_size(rpcs: TrackingPlanRpcs) -> None:
    with pytest.raises(InvalidArgument) as invalid:
        rpcs.ListTrackingPlans(pb.ListTrackingPlansRequest(page_size=-1), CONTEXT)
    assert violations(invalid) == [("page_size", "OUT_OF_RANGE")]


def update(rpcs: TrackingPlanRpcs, plan: tp.TrackingPlan, *paths: str) -> tp.TrackingPlan:
    request = pb.UpdateTrackingPlanRequest(
        tracking_plan=plan, update_mask=field_mask_pb2.FieldMask(paths=list(paths))
    )
    return rpcs.UpdateTrackingPlan(request, CONTEXT).tracking_plan


def test_update_tracking_plan_changes_only_the_masked_fields(rpcs: TrackingPlanRpcs) -> None:
    created = create(rpcs)
    change = tp.TrackingPlan(name=created.name, mode=tp.TRACKING_PLAN_MODE_FLAG, display_name="not this")
    updated = update(rpcs, change, "mode")
    assert (updated.mode, updated.display_name, updated.revision) == (tp.TRACKING_PLAN_MODE_FLAG, "Shop", 2)
    assert list(updated.event_schemas) == list(created.event_schemas)
    assert updated.etag != created.etag


def test_update_tracking_plan_with_an_empty_mask_replaces_every_writable_field(
    rpcs: TrackingPlanRpcs,
) -> None:
    create(rpcs)
    updated = update(rpcs, tp.TrackingPlan(name="trackingPlans/shop", display_name="Bare"))
    assert (updated.display_name, updated.enabled, len(updated.event_schemas)) == ("Bare", False, 0)


def test_update_tracking_plan_refuses_output_only_and_unknown_mask_paths(rpcs: TrackingPlanRpcs) -> None:
    created = create(rpcs)
    with pytest.raises(InvalidArgument) as invalid:
        update(rpcs, created, "mode", "revision", "etag", "event_schemas.event_name", "colour")
    assert violations(invalid) == [
        ("update_mask.paths[1]", "OUTPUT_ONLY"),
        ("update_mask.paths[2]", "OUTPUT_ONLY"),
        ("update_mask.paths[3]", "UNKNOWN_FIELD"),
        ("update_mask.paths[4]", "UNKNOWN_FIELD"),
    ]


def test_update_tracking_plan_validates_the_new_values(rpcs: TrackingPlanRpcs) -> None:
    created = create(rpcs)
    del created.event_schemas[:]
    created.event_schemas.add(
        event_type=event_pb2.EVENT_TYPE_TRACK, event_name="A", properties_json_schema="[]"
    )
    with pytest.raises(InvalidArgument) as invalid:
        update(rpcs, created, "event_schemas")
    assert violations(invalid) == [
        ("tracking_plan.event_schemas[0].properties_json_schema", "INVALID_JSON_SCHEMA")
    ]


def test_update_tracking_plan_with_a_stale_etag_is_aborted(rpcs: TrackingPlanRpcs) -> None:
    created = create(rpcs)
    update(rpcs, tp.TrackingPlan(name=created.name, display_name="v2", etag=created.etag), "display_name")
    with pytest.raises(WaylineError) as stale:
        update(rpcs, tp.TrackingPlan(name=created.name, display_name="v3", etag=created.etag), "display_name")
    assert (stale.value.code, stale.value.reason) == (grpc.StatusCode.ABORTED, "ETAG_MISMATCH")
    current = rpcs.GetTrackingPlan(pb.GetTrackingPlanRequest(name=created.name), CONTEXT).tracking_plan
    assert (current.display_name, current.revision) == ("v2", 2)
    assert to_status(stale.value, "ingest").code == grpc.StatusCode.ABORTED


def test_update_tracking_plan_of_a_missing_plan_is_not_found(rpcs: TrackingPlanRpcs) -> None:
    with pytest.raises(WaylineError) as missing:
        update(rpcs, tp.TrackingPlan(name="trackingPlans/nope"), "mode")
    assert (missing.value.code, missing.value.reason) == (
        grpc.StatusCode.NOT_FOUND,
        "TRACKING_PLAN_NOT_FOUND",
    )


def test_update_tracking_plan_refuses_a_malformed_name(rpcs: TrackingPlanRpcs) -> None:
    with pytest.raises(InvalidArgument) as invalid:
        update(rpcs, tp.TrackingPlan(name="shop"), "mode")
    assert violations(invalid) == [("tracking_plan.name", "INVALID")]


def test_update_tracking_plan_enabling_an_overlap_fails_its_precondition(rpcs: TrackingPlanRpcs) -> None:
    create(rpcs, "live")
    draft = create(rpcs, "draft", enabled=False)
    draft.enabled = True
    with pytest.raises(WaylineError) as overlap:
        update(rpcs, draft, "enabled")
    assert (overlap.value.code, overlap.value.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "TRACKING_PLAN_OVERLAP",
    )


def test_tracking_plan_rpcs_need_a_tenant(rpcs: TrackingPlanRpcs) -> None:
    with (
        bind_call(
            CallContext(request_id="r-2", method="/x"),
        ),
        pytest.raises(Unauthenticated),
    ):
        rpcs.ListTrackingPlans(pb.ListTrackingPlansRequest(), CONTEXT)


def test_plans_of_one_tenant_are_invisible_to_another(rpcs: TrackingPlanRpcs) -> None:
    create(rpcs)
    with bind_call(CallContext(request_id="r-3", method="/x", tenant="globex")):
        listed = rpcs.ListTrackingPlans(pb.ListTrackingPlansRequest(), CONTEXT)
        assert (list(listed.tracking_plans), listed.total_size) == ([], 0)
        with pytest.raises(WaylineError) as missing:
            rpcs.GetTrackingPlan(pb.GetTrackingPlanRequest(name="trackingPlans/shop"), CONTEXT)
    assert missing.value.code == grpc.StatusCode.NOT_FOUND


def test_field_violations_carry_a_description(rpcs: TrackingPlanRpcs) -> None:
    with pytest.raises(InvalidArgument) as invalid:
        create(
            rpcs,
            event_schemas=[
                tp.EventSchema(
                    event_type=event_pb2.EVENT_TYPE_TRACK,
                    event_name="A",
                    properties_json_schema='{"minimum": "zero"}',
                )
            ],
        )
    (violation,) = invalid.value.violations
    assert isinstance(violation, FieldViolation)
    assert "minimum" in violation.description or "zero" in violation.description


def test_list_tracking_plans_ends_a_page_before_it_passes_what_a_client_receives(
    rpcs: TrackingPlanRpcs,
) -> None:
    """Ten plans of five documented schemas (about 500 KB each) were one 5 MB answer, which a gRPC client
    refuses by default. The page ends at about 3 MB; the token goes on, and every plan is listed once."""
    documented = json.dumps({"type": "object", "description": "x" * 100_000})
    schemas = [
        tp.EventSchema(
            event_type=event_pb2.EVENT_TYPE_TRACK, event_name=f"Event {i}", properties_json_schema=documented
        )
        for i in range(5)
    ]
    for index in range(10):
        create(rpcs, f"big-{index}", enabled=False, event_schemas=schemas)
    pages = every_page(
        lambda token: rpcs.ListTrackingPlans(
            pb.ListTrackingPlansRequest(page_size=1000, page_token=token), CONTEXT
        )
    )
    names = [p.name for page in pages for p in page.tracking_plans]
    assert names == [f"trackingPlans/big-{index}" for index in range(10)]
    assert len(pages) == 2
