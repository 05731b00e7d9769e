"""A flow's property filters are checked as the contract states them (analytics.proto's PropertyFilter and
FilterOperator), as journeys and decision check the same message, over real sockets on SQLite and PostgreSQL:
CreateFlow, UpdateFlow and SimulateFlow answer INVALID_ARGUMENT naming the field, PublishFlow
FAILED_PRECONDITION (`FLOW_INVALID`). A filter without the values its operator needs is incomplete (a draft
may be; publication and simulation refuse it). A version published before these checks runs on unchanged.

Before: MATCHES_REGEX with two patterns was accepted and only the first used; an ordering operator's bound
`"soon"` (or February 30) was accepted and held for no event; IS_SET with values, EQUALS with none and a
property path the contract does not define (`plan`) were accepted and published."""

from __future__ import annotations

import uuid
from typing import Any

import grpc
import pytest
from google.protobuf import json_format

from tests.orchestrator.flow_calls import create, flow, get, refused, simulate_request, update
from tests.orchestrator.flow_samples import small_flow
from tests.orchestrator.helpers import Auth, Stub
from tests.orchestrator.running import Running, publish_behind_the_checks, trial_flow
from tests.orchestrator.runtime_calls import SECOND, State, publish, send, track
from tests.rpc_errors import reason, violations
from wayline.common.server import Server
from wayline.orchestrator.v1 import flow_pb2
from wayline.orchestrator.v1 import orchestrator_service_pb2 as pb
from wayline_orchestrator.flows import (
    draft_violations,
    publish_violations,
)

P = "flow.definition"
TRIGGER = f"{P}.trigger.event.event.property_filters[0]"


@pytest.fixture(scope="module")
def orchestrator(running: Running) -> Server:
    return running.server


def _filter(operator: str, *values: Any, prop: str = "properties.plan") -> dict[str, Any]:
    found: dict[str, Any] = {"property": prop, "operator": f"FILTER_OPERATOR_{operator}"}
    if values:
        found["values"] = list(values)
    return found


def _triggered_by(*filters: dict[str, Any]) -> dict[str, Any]:
    """The small flow, entered by `Signed Up` events that pass `filters`."""
    definition = small_flow()
    definition["trigger"] = {
        "event": {"event": {"event_name": "Signed Up", "property_filters": list(filters)}}
    }
    return definition


MALFORMED = {
    "MATCHES_REGEX with two patterns": (_filter("MATCHES_REGEX", "^pro", "^gold"), ".values"),
    "GREATER_THAN a word": (_filter("GREATER_THAN", "soon", prop="properties.total"), ".values[0]"),
    "LESS_THAN February 30": (
        _filter("LESS_THAN", "2026-02-30T00:00:00Z", prop="properties.at"),
        ".values[0]",
    ),
    "GREATER_THAN a boolean": (_filter("GREATER_THAN", True, prop="properties.total"), ".values[0]"),
    "GREATER_THAN two bounds": (_filter("GREATER_THAN", 1, 2, prop="properties.total"), ".values"),
    "IS_SET with a value": (_filter("IS_SET", "x"), ".values"),
    "EQUALS a list": (_filter("EQUALS", ["pro", "gold"]), ".values[0]"),
    "a path the contract does not define": (_filter("EQUALS", "pro", prop="plan"), ".property"),
    "a path into nothing": (_filter("EQUALS", "pro", prop="properties."), ".property"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_create_flow_refuses_a_malformed_filter_naming_its_field(stub: Stub, auth: Auth, case: str) -> None:
    bad, field = MALFORMED[case]
    error = refused(lambda: create(stub, auth, f"f-{uuid.uuid4().hex[:8]}", flow(_triggered_by(bad))))
    assert (error.code(), reason(error)) == (grpc.StatusCode.INVALID_ARGUMENT, "FLOW_INVALID")
    assert set(violations(error)) == {f"{TRIGGER}{field}"}, violations(error)


def test_create_flow_accepts_what_the_contract_allows(stub: Stub, auth: Auth) -> None:
    definition = _triggered_by(
        _filter("GREATER_THAN", 5, prop="properties.total"),
        _filter("LESS_THAN_OR_EQUAL", "2026-01-31T23:59:59.5+01:00", prop="properties.renewal"),
        _filter("IS_NOT_SET", prop="context.campaign.source"),
        _filter("EQUALS", "web", "email", prop="channel"),
        _filter("GREATER_THAN_OR_EQUAL", 10, prop="revenue"),
        _filter("NOT_CONTAINS", "test", prop="person.email"),
        _filter("MATCHES_REGEX", "^(pro|gold)$"),
    )
    flow_id = f"ok-{uuid.uuid4().hex[:8]}"
    create(stub, auth, flow_id, flow(definition))
    stub.PublishFlow(pb.PublishFlowRequest(name=f"flows/{flow_id}"), metadata=auth, timeout=10)


def test_update_flow_refuses_a_malformed_filter_deep_in_a_step(stub: Stub, auth: Auth) -> None:
    flow_id = f"trial-{uuid.uuid4().hex[:8]}"
    create(stub, auth, flow_id, flow(trial_flow()))
    definition = trial_flow()
    definition["steps"][4]["goal"]["event"]["property_filters"] = [
        _filter("EQUALS", "gold"),
        _filter("IS_NOT_SET", None),
    ]
    definition["steps"][0]["branch"]["branches"][0]["condition"] = {
        "trigger_property": _filter("GREATER_THAN", "high", prop="properties.score")
    }
    message = flow(definition)
    message.name = f"flows/{flow_id}"
    error = refused(lambda: update(stub, auth, message, "definition"))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert set(violations(error)) == {
        f"{P}.steps[4].goal.event.property_filters[1].values",
        f"{P}.steps[0].branch.branches[0].condition.trigger_property.values[0]",
    }
    assert get(stub, auth, flow_id).definition == flow(trial_flow()).definition  # nothing written


def test_a_person_condition_reads_person_paths_only(stub: Stub, auth: Auth) -> None:
    definition = small_flow()
    definition["entry_rules"] = {"audience": {"person_property": _filter("EQUALS", "pro")}}
    error = refused(lambda: create(stub, auth, f"f-{uuid.uuid4().hex[:8]}", flow(definition)))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert set(violations(error)) == {f"{P}.entry_rules.audience.person_property.property"}


def test_a_filter_without_its_values_is_an_incomplete_draft(stub: Stub, auth: Auth) -> None:
    flow_id = f"draft-{uuid.uuid4().hex[:8]}"
    create(stub, auth, flow_id, flow(_triggered_by(_filter("EQUALS"))))  # a draft may be incomplete
    error = refused(
        lambda: stub.PublishFlow(pb.PublishFlowRequest(name=f"flows/{flow_id}"), metadata=auth, timeout=10)
    )
    assert (error.code(), reason(error)) == (grpc.StatusCode.FAILED_PRECONDITION, "FLOW_INVALID")
    assert set(violations(error)) == {f"{TRIGGER}.values"}

    request = pb.SimulateFlowRequest(
        definition=json_format.ParseDict(_triggered_by(_filter("LESS_THAN")), flow_pb2.FlowDefinition())
    )
    request.time_range.start.FromMicroseconds(SECOND)
    request.time_range.end.FromMicroseconds(2 * SECOND)
    error = refused(lambda: stub.SimulateFlow(request, metadata=auth, timeout=10))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert set(violations(error)) == {"definition.trigger.event.event.property_filters[0].values"}


def test_simulate_flow_refuses_a_malformed_filter(stub: Stub, auth: Auth) -> None:
    definition = trial_flow()
    definition["steps"][0]["branch"]["branches"][0]["condition"] = {
        "trigger_property": _filter("MATCHES_REGEX", "^pro", "^gold")
    }
    request = simulate_request(definition, SECOND, 2 * SECOND)
    error = refused(lambda: stub.SimulateFlow(request, metadata=auth, timeout=10))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert set(violations(error)) == {
        "definition.steps[0].branch.branches[0].condition.trigger_property.values"
    }


def test_a_version_published_before_the_check_runs_on_and_cannot_be_published_again(
    running: Running, stub: Stub, auth: Auth, state: State
) -> None:
    flow_id = f"old-{uuid.uuid4().hex[:8]}"
    publish(stub, auth, flow_id, _triggered_by(_filter("MATCHES_REGEX", "^pro")))
    # As stored before: two patterns (the runtime reads the first) and a filter on an undefined path.
    publish_behind_the_checks(
        running,
        auth,
        flow_id,
        _triggered_by(_filter("MATCHES_REGEX", "^pro", "^gold"), _filter("IS_NOT_SET", prop="plan")),
    )
    now = running.clock()
    send(
        stub,
        auth,
        track("pro", "Signed Up", now, plan="pro"),
        track("gold", "Signed Up", now, plan="gold"),
    )
    assert [e.person_id for e in state.entries(flow_id)] == ["pro"]  # as before: nothing fails at runtime

    error = refused(
        lambda: stub.PublishFlow(pb.PublishFlowRequest(name=f"flows/{flow_id}"), metadata=auth, timeout=10)
    )
    assert (error.code(), reason(error)) == (grpc.StatusCode.FAILED_PRECONDITION, "FLOW_INVALID")
    assert set(violations(error)) == {
        f"{TRIGGER}.values",
        f"{P}.trigger.event.event.property_filters[1].property",
    }


# --- the rules, without a server ---------------------------------------------------------------------------


def _with_filter_at(where: str, found: dict[str, Any]) -> dict[str, Any]:
    definition = trial_flow()
    if where == "exit":
        definition["exit_conditions"] = [{"group": {"conditions": [{"trigger_property": found}]}}]
    elif where == "goal":
        definition["goal"] = {
            "event": {"event_name": "Order Completed", "property_filters": [found]},
            "window": "60s",
        }
    elif where == "since entry":
        definition["exit_conditions"] = [{"event_since_entry": {"event": {"property_filters": [found]}}}]
        definition["exit_conditions"][0]["event_since_entry"]["event"]["event_name"] = "Opened"
    elif where == "person condition":
        definition["exit_conditions"] = [
            {"person": {"event_count": {"event": {"event_name": "Opened", "property_filters": [found]}}}}
        ]
    return definition


@pytest.mark.parametrize(
    ("where", "path"),
    [
        ("exit", f"{P}.exit_conditions[0].group.conditions[0].trigger_property"),
        ("goal", f"{P}.goal.event.property_filters[0]"),
        ("since entry", f"{P}.exit_conditions[0].event_since_entry.event.property_filters[0]"),
        ("person condition", f"{P}.exit_conditions[0].person.event_count.event.property_filters[0]"),
    ],
)
def test_every_filter_of_a_definition_is_checked(where: str, path: str) -> None:
    assert publish_violations(_with_filter_at(where, _filter("GREATER_THAN", 3))) == []
    bad = _filter("IS_SET", 3)
    assert {(v.field, v.reason) for v in publish_violations(_with_filter_at(where, bad))} == {
        (f"{path}.values", "INVALID")
    }
    assert {v.field for v in draft_violations(_with_filter_at(where, bad))} == {f"{path}.values"}


def test_no_operator_and_no_property_are_incomplete() -> None:
    definition = _triggered_by({"values": ["x"]})
    assert {(v.field, v.reason) for v in publish_violations(definition)} == {
        (f"{TRIGGER}.property", "REQUIRED"),
        (f"{TRIGGER}.operator", "REQUIRED"),
    }
    assert draft_violations(definition) == []


def test_a_struct_is_not_searched_for_filters() -> None:
    definition = small_flow()
    definition["steps"][1]["action"]["payload"] = {"property_filters": [{"property": "plan"}]}
    assert publish_violations(definition) == []
