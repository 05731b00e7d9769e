"""The Flows page in Chromium against the loaded suite: a small flow created and published through the
gateway in a tenant of its own (its events must not change A's and B's, which other tests count), persons
entering it by events sent through ingest, a one-email-a-day cap that suppresses the second email of some
of them. The page lists the flow with the counts GetFlowStats returns,
draws its graph with the counts per step and per path, its suppressions by reason (overall and per step)
and its experiment's variants, shows a step's detail from the keyboard path, and picks up a new entry by
itself (the page refreshes its counts while open). Tenants A and B see none of it."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from playwright.sync_api import Page, expect

from tests.conftest import API_KEY
from tests.console.browser import Console, read_table
from tests.console.calls import INGEST, ORCHESTRATOR, Rpc
from tests.console.loading import ConsoleData, Tenant, make_tenant
from tests.orchestrator.flow_calls import flow as flow_message
from tests.orchestrator.helpers import EMAIL, cap, days
from tests.orchestrator.running import trial_flow
from wayline.common.timestamps import to_timestamp
from wayline.event.v1 import event_pb2
from wayline.ingest.v1 import ingest_service_pb2 as ingest_pb
from wayline.orchestrator.v1 import contact_policy_pb2 as policy_pb
from wayline.orchestrator.v1 import orchestrator_service_pb2 as pb

FLOW = "console-trial"
SIGNED_UP = "Console Trial Signed Up"
FREE, PRO, BUYERS = 3, 6, 2


def _cells(page: Page, testid: str) -> dict[str, dict[str, str]]:
    """The table `testid` by row key: column key → raw value (numeric cells) or shown text."""
    table = read_table(page.get_by_test_id(testid))
    return dict(zip(table.row_keys, table.rows, strict=True))


def _event(email: str, name: str, **properties: Any) -> event_pb2.Event:
    event = event_pb2.Event(
        event_id=str(uuid.uuid4()),
        type=event_pb2.EVENT_TYPE_TRACK,
        name=name,
        channel=event_pb2.CHANNEL_WEB,
        timestamp=to_timestamp(datetime.now(UTC)),
        identifiers=[event_pb2.Identifier(type="email", value=email)],
    )
    event.properties.update(properties)
    return event


def _track(writer: Rpc, *events: event_pb2.Event) -> None:
    response = writer.call(INGEST, "TrackBatch", ingest_pb.TrackBatchRequest(events=list(events)))
    assert isinstance(response, ingest_pb.TrackBatchResponse)
    assert not response.rejections


def _eventually(what: str, check: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"{what} did not happen in time"
        time.sleep(0.2)


def _stats(reader: Rpc) -> dict[str, Any]:
    stats: dict[str, Any] = reader.json(ORCHESTRATOR, "GetFlowStats", {"name": f"flows/{FLOW}"})["stats"]
    return stats


@pytest.fixture(scope="module")
def flows_tenant(console_data: ConsoleData, console_channel: grpc.Channel) -> Tenant:
    """The tenant of this module's flow (made once the suite is loaded, through the same gateway)."""
    return make_tenant(console_channel, API_KEY, "flows")


@pytest.fixture(scope="module")
def trial(flows_tenant: Tenant, rpc: Callable[[str], Rpc]) -> dict[str, Any]:
    """The trial flow of the orchestrator's tests, triggered by an event of its own, published under a
    one-email-a-day cap; FREE persons get the welcome email and have the offer suppressed, PRO persons go
    through the split; BUYERS of them convert. Ready once every person has reached the goal step."""
    keys = flows_tenant.keys
    admin, writer, reader = rpc(keys["admin"]), rpc(keys["write"]), rpc(keys["read"])
    capped = policy_pb.ContactPolicy(frequency_caps=[cap(1, days(1), EMAIL)])
    admin.call(
        ORCHESTRATOR,
        "UpdateContactPolicy",
        pb.UpdateContactPolicyRequest(contact_policy=capped, update_mask=FieldMask(paths=["frequency_caps"])),
    )
    definition = trial_flow()
    definition["trigger"] = {"event": {"event": {"event_name": SIGNED_UP}}}
    admin.call(
        ORCHESTRATOR,
        "CreateFlow",
        pb.CreateFlowRequest(flow_id=FLOW, flow=flow_message(definition, display_name="Console trial")),
    )
    admin.call(ORCHESTRATOR, "PublishFlow", {"name": f"flows/{FLOW}"})
    run = uuid.uuid4().hex[:8]
    free = [f"free-{i}-{run}@example.com" for i in range(FREE)]
    pro = [f"pro-{i}-{run}@example.com" for i in range(PRO)]
    _track(
        writer,
        *(_event(e, SIGNED_UP, plan="free") for e in free),
        *(_event(e, SIGNED_UP, plan="pro") for e in pro),
    )

    def at_the_goal() -> bool:
        stats = _stats(reader)
        bought = next(s for s in stats["steps"] if s["stepId"] == "bought")
        return int(stats["enteredCount"]) == FREE + PRO and int(bought["enteredCount"]) == FREE + PRO

    _eventually("every person reaching the goal step", at_the_goal)
    _track(writer, *(_event(e, "Order Completed") for e in pro[:BUYERS]))
    _eventually("the buyers converting", lambda: int(_stats(reader)["convertedCount"]) == BUYERS)
    return {"free": free, "pro": pro, "run": run}


def _numbers(cells: dict[str, str], *keys: str) -> tuple[int, ...]:
    return tuple(int(float(cells[key])) for key in keys)


def test_the_flows_page_shows_the_counts_suppressions_and_variants_get_flow_stats_returns(
    console: Console, flows_tenant: Tenant, rpc: Callable[[str], Rpc], trial: dict[str, Any]
) -> None:
    reader = rpc(flows_tenant.keys["read"])
    stats = _stats(reader)
    page = console.open(f"#/flows?flow={FLOW}", key=flows_tenant.keys["read"])

    listed = _cells(page, "flows-table")[FLOW]
    assert _numbers(listed, "enteredCount", "activeCount", "convertedCount", "suppressedCount") == (
        int(stats["enteredCount"]),
        int(stats["activeCount"]),
        int(stats["convertedCount"]),
        int(stats["suppressedCount"]),
    )
    assert listed["state"] == "Published"
    expect(page.get_by_test_id("flow-graph").locator("svg")).to_have_count(1)

    steps = _cells(page, "flow-steps-table")
    counted = ("enteredCount", "activeCount", "sentCount", "suppressedCount", "errorCount", "convertedCount")
    assert (
        list(steps)
        == [s["stepId"] for s in stats["steps"]]
        == ["route", "welcome", "offer", "split", "bought"]
    )
    for step in stats["steps"]:
        assert _numbers(steps[step["stepId"]], *counted) == tuple(int(step[key]) for key in counted)
    assert _numbers(steps["offer"], "suppressedCount") == (FREE,)  # the cap: one email a day

    paths = _cells(page, "flow-paths-table")
    for step in stats["steps"]:
        for branch in step["branches"]:
            key = f"{step['stepId']}/{branch['label']}/{branch['nextStepId']}"
            assert int(paths[key]["count"]) == int(branch["count"]), key
    assert paths["offer/suppressed/bought"]["designed"] == "No"  # taken past a suppression, not drawn

    reasons = {row: int(cells["count"]) for row, cells in _cells(page, "flow-suppressions-table").items()}
    assert reasons == {s["reason"]: int(s["count"]) for s in stats["suppressions"]}
    assert reasons == {"CONTACT_BLOCK_REASON_FREQUENCY_CAP": FREE}
    per_step = {
        row: int(cells["count"]) for row, cells in _cells(page, "flow-step-suppressions-table").items()
    }
    assert per_step == {
        f"{s['stepId']}/{c['reason']}": int(c["count"]) for s in stats["steps"] for c in s["suppressions"]
    }

    variants = _cells(page, "flow-variants-table")
    assert set(variants) == {f"split/{v['label']}" for v in stats["variants"]} == {"split/a", "split/control"}
    for variant in stats["variants"]:
        cells = variants[f"split/{variant['label']}"]
        assert _numbers(cells, "enteredCount", "convertedCount") == (
            int(variant["enteredCount"]),
            int(variant["convertedCount"]),
        )
        assert float(cells["conversionRate"]) == pytest.approx(variant["conversionRate"])
        assert float(cells["pValue"]) == pytest.approx(variant["pValue"])
    console.shot("flow")


def test_a_step_opens_from_the_keyboard_and_new_entries_show_without_reloading(
    console: Console, flows_tenant: Tenant, rpc: Callable[[str], Rpc], trial: dict[str, Any]
) -> None:
    reader, writer = rpc(flows_tenant.keys["read"]), rpc(flows_tenant.keys["write"])
    page = console.open(f"#/flows?flow={FLOW}", key=flows_tenant.keys["read"])
    opener = page.get_by_test_id("flow-step-open-offer")
    opener.focus()
    page.keyboard.press("Enter")
    detail = page.get_by_test_id("flow-step-detail")
    expect(detail.get_by_test_id("flow-step-title")).to_have_text("Step offer")
    offer = next(s for s in _stats(reader)["steps"] if s["stepId"] == "offer")
    reasons = _cells(page, "flow-step-reasons-table")
    assert {row: int(cells["count"]) for row, cells in reasons.items()} == {
        c["reason"]: int(c["count"]) for c in offer["suppressions"]
    }
    expect(page.get_by_test_id("flow-step-open-offer")).to_be_focused()  # focus kept across the redraw
    # The pointer's way to the same detail: a click on a node of the graph.
    page.get_by_test_id("flow-graph").locator("text", has_text="Split").first.click()
    expect(detail.get_by_test_id("flow-step-title")).to_have_text("Step split")
    page.get_by_test_id("flow-step-open-offer").click()
    expect(detail.get_by_test_id("flow-step-title")).to_have_text("Step offer")
    console.shot("step")

    entered = int(_stats(reader)["enteredCount"])
    _track(writer, _event(f"late-{trial['run']}@example.com", SIGNED_UP, plan="free"))
    _eventually("the late person entering", lambda: int(_stats(reader)["enteredCount"]) == entered + 1)
    # No reload and no click: the page's own refresh brings the new count, and keeps the step shown.
    expect(page.get_by_test_id("flow-entered").locator("dd")).to_have_text(f"{entered + 1:,}")
    expect(detail.get_by_test_id("flow-step-title")).to_have_text("Step offer")
    listed = page.get_by_test_id("flows-table").locator(f'tr[data-row="{FLOW}"] [data-key="enteredCount"]')
    expect(listed).to_have_attribute("data-value", str(entered + 1))
    page.get_by_test_id("flow-refresh").click()
    expect(page.get_by_test_id("flow-as-of")).to_contain_text("Counts as of")
    console.shot("refreshed")


@pytest.mark.parametrize("tenant", ["a", "b"])
def test_another_tenants_read_key_sees_no_flow(
    console: Console, console_data: ConsoleData, trial: dict[str, Any], tenant: str
) -> None:
    key = {"a": console_data.read_key_a, "b": console_data.read_key_b}[tenant]
    page = console.open("#/flows", key=key)
    expect(page.locator(f'[data-testid="flows-table"] tr[data-row="{FLOW}"]')).to_have_count(0)
    console.go(f"#/flows?flow={FLOW}")  # asked for by name: the flow does not exist for this tenant
    expect(page.get_by_test_id("error")).to_have_attribute("data-code", "not_found")
    expect(page.get_by_test_id("flow-detail")).to_have_count(0)
    console.shot(f"tenant-{tenant}")
