"""A draft saved before the definition checks of 2026-12 may hold a property filter they refuse (a pattern RE2
refuses, a path the contract does not define). Over real sockets on SQLite and PostgreSQL: UpdateFlow refuses
what the update writes or brings about, not what it leaves as it was stored (the caller did not send it);
PublishFlow and SimulateFlow of the draft still refuse it, naming the filter (ADR 78).

Before: every UpdateFlow of such a draft was INVALID_ARGUMENT naming the stored filter, whatever its mask,
so a flow could not even be renamed until its trigger was rewritten."""

from __future__ import annotations

import copy
import dataclasses
import uuid
from typing import Any

import grpc
import pytest

from tests.orchestrator.flow_calls import create, flow, get, refused, update
from tests.orchestrator.flow_samples import small_flow
from tests.orchestrator.helpers import Auth, Stub
from tests.orchestrator.running import Running
from tests.rpc_errors import reason, violations
from wayline.common.server import Server
from wayline.orchestrator.v1 import orchestrator_service_pb2 as pb
from wayline_orchestrator.flows import FlowStore

P = "flow.definition"
TRIGGER = f"{P}.trigger.event.event.property_filters"
# As the checks find them in the stored trigger: a lookahead (RE2 has none) and a path the contract does
# not define (`plan`, not `properties.plan`).
STORED_PROBLEMS = {f"{TRIGGER}[0].values[0]", f"{TRIGGER}[1].property"}


@pytest.fixture(scope="module")
def orchestrator(running: Running) -> Server:
    return running.server


def _old_trigger() -> dict[str, Any]:
    filters = [
        {"property": "properties.plan", "operator": "FILTER_OPERATOR_MATCHES_REGEX", "values": ["^(?!free)"]},
        {"property": "plan", "operator": "FILTER_OPERATOR_IS_SET"},
    ]
    return {"event": {"event": {"event_name": "Signed Up", "property_filters": filters}}}


def _draft_saved_before_the_checks(running: Running, stub: Stub, auth: Auth) -> str:
    """A flow whose draft holds the old trigger, written straight to the flows' store as CreateFlow and
    UpdateFlow saved it before filters were checked."""
    flow_id = f"old-{uuid.uuid4().hex[:8]}"
    create(stub, auth, flow_id, flow(small_flow()))
    tenant = dict(auth)["x-wayline-tenant"]
    flows = FlowStore(running.db)
    stored = flows.get(tenant, flow_id)
    assert stored is not None
    definition = {**small_flow(), "trigger": _old_trigger()}
    changed = dataclasses.replace(stored, definition=definition, revision=stored.revision + 1)
    assert flows.replace(tenant, changed, stored.revision)
    return flow_id


def _named(flow_id: str, definition: dict[str, Any] | None = None, display_name: str = "A flow") -> Any:
    message = flow(definition, display_name)
    message.name = f"flows/{flow_id}"
    return message


def test_update_flow_leaving_a_stored_filter_as_it_is_goes_through(
    running: Running, stub: Stub, auth: Auth
) -> None:
    flow_id = _draft_saved_before_the_checks(running, stub, auth)
    stored = get(stub, auth, flow_id).definition

    renamed = update(stub, auth, _named(flow_id, display_name="Welcome, renamed"), "display_name")
    assert renamed.display_name == "Welcome, renamed"
    assert renamed.definition == stored

    steps = small_flow()
    steps["steps"][0]["wait"]["duration"] = "3600s"
    changed = update(stub, auth, _named(flow_id, steps), "definition.steps")
    assert changed.definition.steps[0].wait.duration.seconds == 3600
    assert changed.definition.trigger == stored.trigger  # left as stored


def test_update_flow_refuses_a_stored_filter_it_writes_again(
    running: Running, stub: Stub, auth: Auth
) -> None:
    flow_id = _draft_saved_before_the_checks(running, stub, auth)
    resent = {**small_flow(), "trigger": _old_trigger()}
    for mask in ("definition.trigger", "definition"):
        error = refused(lambda mask=mask: update(stub, auth, _named(flow_id, resent), mask))  # type: ignore[misc]
        assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert set(violations(error)) == STORED_PROBLEMS
    # An empty mask writes the whole definition too.
    error = refused(lambda: update(stub, auth, _named(flow_id, resent)))
    assert set(violations(error)) == STORED_PROBLEMS


def test_update_flow_refuses_a_problem_it_brings_about_elsewhere(
    running: Running, stub: Stub, auth: Auth
) -> None:
    flow_id = _draft_saved_before_the_checks(running, stub, auth)
    shorter = copy.deepcopy(small_flow())
    shorter["max_duration"] = "3600s"  # the stored goal's window (7 days) is now longer than the flow lasts
    error = refused(lambda: update(stub, auth, _named(flow_id, shorter), "definition.max_duration"))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert set(violations(error)) == {f"{P}.goal.window"}


def test_publish_flow_still_refuses_the_stored_filter_until_it_is_fixed(
    running: Running, stub: Stub, auth: Auth
) -> None:
    flow_id = _draft_saved_before_the_checks(running, stub, auth)
    update(stub, auth, _named(flow_id, display_name="Renamed"), "display_name")

    publish = pb.PublishFlowRequest(name=f"flows/{flow_id}")
    error = refused(lambda: stub.PublishFlow(publish, metadata=auth, timeout=10))
    assert (error.code(), reason(error)) == (grpc.StatusCode.FAILED_PRECONDITION, "FLOW_INVALID")
    assert set(violations(error)) == STORED_PROBLEMS

    simulate = pb.SimulateFlowRequest(name=f"flows/{flow_id}")
    simulate.time_range.start.FromSeconds(1)
    simulate.time_range.end.FromSeconds(2)
    error = refused(lambda: stub.SimulateFlow(simulate, metadata=auth, timeout=10))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert set(violations(error)) == {v.replace("flow.definition", "definition") for v in STORED_PROBLEMS}

    fixed = small_flow()
    fixed["trigger"]["event"]["event"]["property_filters"] = [
        {"property": "properties.plan", "operator": "FILTER_OPERATOR_NOT_EQUALS", "values": ["free"]}
    ]
    update(stub, auth, _named(flow_id, fixed), "definition.trigger")
    published = stub.PublishFlow(publish, metadata=auth, timeout=10).flow
    assert published.published_version == 1
