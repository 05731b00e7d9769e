"""A flow's MATCHES_REGEX property filters are RE2 (analytics.proto; ADR 72), over real sockets on SQLite and
PostgreSQL: CreateFlow, UpdateFlow and SimulateFlow refuse a pattern RE2 refuses (INVALID_ARGUMENT naming the
filter's value; PublishFlow FAILED_PRECONDITION, as for any draft it cannot publish); a version published
before that check runs on, its filter holding for no event (ObserveEvents answers, the batch is not refused);
and the runtime matches in RE2, in time linear in the value. From the audit of 2026-12: `(unclosed` was
published and then failed every ObserveEvents batch with an event of its name; `^(a+)+$` took exponential
time on Python's `re`."""

from __future__ import annotations

import time
import uuid
from typing import Any

import grpc
import pytest

from tests.orchestrator.flow_calls import create, flow, get, refused, simulate_request, update
from tests.orchestrator.flow_samples import small_flow
from tests.orchestrator.helpers import Auth, Stub
from tests.orchestrator.running import Running, publish_behind_the_checks, trial_flow
from tests.orchestrator.runtime_calls import SECOND, State, publish, send, track
from tests.rpc_errors import reason, violations
from wayline.common.server import Server
from wayline.orchestrator.v1 import orchestrator_service_pb2 as pb
from wayline_orchestrator.flows import (
    draft_violations,
    publish_violations,
)
from wayline_orchestrator.flows.runtime.matching import Occurrence, filter_holds

P = "flow.definition"
TRIGGER_VALUE = f"{P}.trigger.event.event.property_filters[0].values[0]"


@pytest.fixture(scope="module")
def orchestrator(running: Running) -> Server:
    return running.server


def _regex(pattern: Any, prop: str = "properties.plan") -> dict[str, Any]:
    return {"property": prop, "operator": "FILTER_OPERATOR_MATCHES_REGEX", "values": [pattern]}


def _triggered_by(pattern: str) -> dict[str, Any]:
    """The small flow, entered by `Signed Up` events whose plan matches `pattern`."""
    definition = small_flow()
    definition["trigger"] = {
        "event": {"event": {"event_name": "Signed Up", "property_filters": [_regex(pattern)]}}
    }
    return definition


# --- the RPCs ----------------------------------------------------------------------------------------------


def test_create_flow_refuses_a_pattern_that_does_not_compile(stub: Stub, auth: Auth) -> None:
    error = refused(lambda: create(stub, auth, "bad-regex", flow(_triggered_by("(unclosed"))))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    found = violations(error)
    assert set(found) == {TRIGGER_VALUE}
    assert "missing )" in found[TRIGGER_VALUE]


@pytest.mark.parametrize(
    "pattern",
    [r"(pro)\1", "(?=pro)", "(?<!free)pro", "(?>a+)b"],
    ids=["backreference", "lookahead", "lookbehind", "atomic group"],
)
def test_create_flow_refuses_what_python_accepts_and_re2_does_not(
    stub: Stub, auth: Auth, pattern: str
) -> None:
    error = refused(lambda: create(stub, auth, f"re-{uuid.uuid4().hex[:8]}", flow(_triggered_by(pattern))))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert set(violations(error)) == {TRIGGER_VALUE}
    assert "not an RE2 pattern" in violations(error)[TRIGGER_VALUE]


def test_update_flow_refuses_a_pattern_deep_in_a_step(stub: Stub, auth: Auth) -> None:
    create(stub, auth, "trial", flow(trial_flow()))
    definition = trial_flow()
    definition["steps"][4]["goal"]["event"]["property_filters"] = [_regex("^gold"), _regex(r"(a)\1")]
    message = flow(definition)
    message.name = "flows/trial"
    error = refused(lambda: update(stub, auth, message, "definition"))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert set(violations(error)) == {f"{P}.steps[4].goal.event.property_filters[1].values[0]"}
    assert get(stub, auth, "trial").definition == flow(trial_flow()).definition  # nothing written


def test_simulate_flow_refuses_a_pattern_under_definition(stub: Stub, auth: Auth) -> None:
    definition = trial_flow()
    definition["steps"][0]["branch"]["branches"][0]["condition"] = {"trigger_property": _regex("(?i)pro(")}
    request = simulate_request(definition, SECOND, 2 * SECOND)
    error = refused(lambda: stub.SimulateFlow(request, metadata=auth, timeout=10))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert set(violations(error)) == {
        "definition.steps[0].branch.branches[0].condition.trigger_property.values[0]"
    }


def test_a_version_published_before_the_check_runs_on_and_cannot_be_published_again(
    running: Running, stub: Stub, auth: Auth, state: State
) -> None:
    publish(stub, auth, "signup", _triggered_by("^pro"))
    send(stub, auth, track("p1", "Signed Up", running.clock(), plan="pro"))  # entered within the call
    assert [e.person_id for e in state.entries("signup")] == ["p1"]
    publish_behind_the_checks(running, auth, "signup", _triggered_by("(unclosed"))

    # The audit's case: ObserveEvents answered INTERNAL for every batch with a `Signed Up` event (and ingest
    # retried the batch). Now the filter holds for no event, and the other events of the batch are taken.
    send(
        stub,
        auth,
        track("p2", "Signed Up", running.clock(), plan="(unclosed"),
        track("p3", "Other", running.clock()),
    )
    assert [e.person_id for e in state.entries("signup")] == ["p1"]

    # A draft publication refuses is FAILED_PRECONDITION (FLOW_INVALID), with the field, as the contract says.
    error = refused(
        lambda: stub.PublishFlow(pb.PublishFlowRequest(name="flows/signup"), metadata=auth, timeout=10)
    )
    assert (error.code(), reason(error)) == (grpc.StatusCode.FAILED_PRECONDITION, "FLOW_INVALID")
    assert set(violations(error)) == {TRIGGER_VALUE}


def test_the_runtime_matches_as_a_search_in_re2(
    running: Running, stub: Stub, auth: Auth, state: State
) -> None:
    publish(stub, auth, "ascii", _triggered_by(r"^\w+ plan$"))
    now = running.clock()
    # RE2's \w is ASCII (as ClickHouse's, where journeys runs the same filter); Python's `re` would match é.
    send(
        stub,
        auth,
        track("ascii", "Signed Up", now, plan="pro plan"),
        track("accent", "Signed Up", now, plan="é plan"),
    )
    assert [e.person_id for e in state.entries("ascii")] == ["ascii"]


# --- the rules and the matcher, without a server -----------------------------------------------------------


def _with_filter_at(where: str, pattern: Any) -> dict[str, Any]:
    definition = trial_flow()
    found = _regex(pattern)
    if where == "exit":
        definition["exit_conditions"] = [{"group": {"conditions": [{"trigger_property": found}]}}]
    elif where == "goal":
        definition["goal"] = {
            "event": {"event_name": "Order Completed", "property_filters": [found]},
            "window": "60s",
        }
    elif where == "wait":
        definition["steps"][1] = {
            "id": "welcome",
            "wait": {
                "event": {"event": {"event_name": "Opened", "property_filters": [found]}, "timeout": "60s"},
                "next_step_id": "offer",
            },
        }
    elif where == "audience":
        definition["entry_rules"] = {"audience": {"person_property": {**found, "property": "person.plan"}}}
    return definition


@pytest.mark.parametrize(
    ("where", "path"),
    [
        ("exit", f"{P}.exit_conditions[0].group.conditions[0].trigger_property.values[0]"),
        ("goal", f"{P}.goal.event.property_filters[0].values[0]"),
        ("wait", f"{P}.steps[1].wait.event.event.property_filters[0].values[0]"),
        ("audience", f"{P}.entry_rules.audience.person_property.values[0]"),
    ],
)
def test_every_filter_of_a_definition_is_checked_in_re2(where: str, path: str) -> None:
    assert publish_violations(_with_filter_at(where, "^gold$")) == []
    found = {(v.field, v.reason) for v in publish_violations(_with_filter_at(where, r"(\d)\1"))}
    assert found == {(path, "INVALID")}
    assert {v.field for v in draft_violations(_with_filter_at(where, r"(\d)\1"))} == {path}


def test_a_pattern_is_a_single_string() -> None:
    definition = _triggered_by("x")
    matcher = definition["trigger"]["event"]["event"]
    matcher["property_filters"] = [_regex(3.0), {**_regex("x"), "values": []}]
    at = f"{P}.trigger.event.event.property_filters"
    assert {(v.field, v.reason) for v in publish_violations(definition)} == {
        (f"{at}[0].values[0]", "INVALID"),
        (f"{at}[1].values", "REQUIRED"),
    }
    assert {v.field for v in draft_violations(definition)} == {f"{at}[0].values[0]"}  # a draft may lack it


def _plan_event(plan: str) -> Occurrence:
    return Occurrence("e", "p", "Signed Up", 0, properties={"plan": plan})


def test_a_backtracking_pattern_takes_linear_time() -> None:
    """`re` takes about 4x longer per 2 more characters here (seconds at 26); RE2 takes microseconds."""
    check = _regex("^(a+)+$")
    assert filter_holds(_plan_event("a" * 30), check)
    started = time.perf_counter()
    for n in (22, 26, 30, 10_000):
        assert not filter_holds(_plan_event("a" * n + "!"), check)
    assert time.perf_counter() - started < 0.05


def test_matches_regex_is_a_search_in_re2() -> None:
    assert filter_holds(_plan_event("the pro plan"), _regex("pro"))  # anywhere in the value
    assert not filter_holds(_plan_event("the pro plan"), _regex("^pro"))
    assert filter_holds(_plan_event("Pro"), _regex("(?i)^pro$"))
    assert not filter_holds(_plan_event("é"), _regex(r"^\w$"))  # ASCII classes, as ClickHouse's RE2


def test_a_stored_pattern_re2_refuses_holds_for_no_event() -> None:
    for pattern in ("(unclosed", r"(a)\1", "(?=a)"):
        assert not filter_holds(_plan_event("aa"), _regex(pattern))
