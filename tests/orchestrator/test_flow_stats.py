"""GetFlowStats over real sockets, on SQLite and PostgreSQL: the counts of a flow's entries, steps, paths,
sends, suppressions (by the rules that forbade them), conversions and split variants (with the significance
the statistics module computes), per version and per entry time range; NOT_FOUND for an unknown flow or
version."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from tests.orchestrator.flow_calls import flow as flow_message
from tests.orchestrator.helpers import EMAIL, MARKETING, Auth, Stub, cap, days, record, set_policy
from tests.orchestrator.running import Running, cap_emails, choose_persons, trial_flow
from tests.orchestrator.runtime_calls import SECOND, publish, send, track
from tests.rpc_errors import reason, violations
from wayline.common.server import Server
from wayline.orchestrator.v1 import contact_pb2, flow_stats_pb2
from wayline.orchestrator.v1 import contact_policy_pb2 as policy_pb
from wayline.orchestrator.v1 import orchestrator_service_pb2 as pb
from wayline_orchestrator.flows.significance import compare

FLOW = "trial"


@pytest.fixture(scope="module")
def orchestrator(running: Running) -> Server:
    """The orchestrator `stub` calls: the one on the fake clock."""
    return running.server


def _stats(stub: Stub, auth: Auth, version: int = 0, **window: int) -> flow_stats_pb2.FlowStats:
    request = pb.GetFlowStatsRequest(name=f"flows/{FLOW}", version=version)
    for bound, us in window.items():
        getattr(request.time_range, bound).FromMicroseconds(us)
    return stub.GetFlowStats(request, metadata=auth, timeout=10).stats


def _steps(stats: flow_stats_pb2.FlowStats) -> dict[str, tuple[int, ...]]:
    """step → (entered, active, sent, suppressed, error, converted)."""
    return {
        s.step_id: (
            s.entered_count,
            s.active_count,
            s.sent_count,
            s.suppressed_count,
            s.error_count,
            s.converted_count,
        )
        for s in stats.steps
    }


def _branches(stats: flow_stats_pb2.FlowStats) -> dict[str, set[tuple[str, str, int]]]:
    return {s.step_id: {(b.label, b.next_step_id, b.count) for b in s.branches} for s in stats.steps}


def _reasons(counts: Iterable[flow_stats_pb2.SuppressionCount]) -> list[tuple[str, int]]:
    """(reason without its prefix, count), in the order given."""
    return [
        (contact_pb2.ContactBlockReason.Name(c.reason).removeprefix("CONTACT_BLOCK_REASON_"), c.count)
        for c in counts
    ]


def _run_the_trial(running: Running, stub: Stub, auth: Auth) -> None:
    """Two free persons (one converts), three pro persons in `a` (two convert), three in the control (one
    converts); the others wait at the goal step."""
    cap_emails(stub, auth)
    publish(stub, auth, FLOW, trial_flow())
    free = [f"p-{uuid.uuid4().hex[:10]}" for _ in range(2)]
    in_a, in_control = choose_persons(FLOW, 3, 3)
    now = running.clock()
    for person in free:
        send(stub, auth, track(person, "Signed Up", now, plan="free"))
    for person in in_a + in_control:
        send(stub, auth, track(person, "Signed Up", now, plan="pro"))
    running.clock.advance(60)
    for person in [free[0], *in_a[:2], in_control[0]]:
        send(stub, auth, track(person, "Order Completed", running.clock()))


def test_get_flow_stats_counts_steps_paths_suppressions_and_conversions(
    running: Running, stub: Stub, auth: Auth
) -> None:
    _run_the_trial(running, stub, auth)
    stats = _stats(stub, auth)
    assert stats.flow == f"flows/{FLOW}"
    assert (stats.entered_count, stats.active_count, stats.converted_count, stats.exited_count) == (
        8,
        4,
        4,
        4,
    )
    assert (stats.suppressed_count, stats.exit_condition_count) == (2, 0)
    assert [s.step_id for s in stats.steps] == ["route", "welcome", "offer", "split", "bought"]
    assert _steps(stats) == {
        "route": (8, 0, 0, 0, 0, 0),
        "welcome": (2, 0, 2, 0, 0, 0),
        "offer": (5, 0, 3, 2, 0, 0),
        "split": (6, 0, 0, 0, 0, 0),
        "bought": (8, 4, 0, 0, 0, 4),
    }
    assert _branches(stats) == {
        "route": {("default", "welcome", 2), ("pro", "split", 6)},
        "welcome": {("next", "offer", 2)},
        "offer": {("next", "bought", 3), ("suppressed", "bought", 2)},
        "split": {("a", "offer", 3), ("control", "bought", 3)},
        "bought": {("next", "", 4)},
    }
    assert stats.data_as_of.ToMicroseconds() == running.clock()
    assert _reasons(stats.suppressions) == [("FREQUENCY_CAP", 2)]
    assert {s.step_id: _reasons(s.suppressions) for s in stats.steps if s.suppressions} == {
        "offer": [("FREQUENCY_CAP", 2)]
    }


def test_get_flow_stats_counts_suppressions_by_the_rules_that_forbade_them(
    running: Running, stub: Stub, auth: Auth
) -> None:
    """One email a day, and email needs consent: `granted` gets the welcome and is capped at the offer;
    `silent` (no consent) is refused both; `capped` (no consent, and emailed outside the flow an hour ago) is
    refused both by two rules at once, counted under each."""
    opt_in = policy_pb.ConsentRule(channel=EMAIL, purpose=MARKETING, mode=policy_pb.CONSENT_MODE_OPT_IN)
    policy = policy_pb.ContactPolicy(frequency_caps=[cap(1, days(1), EMAIL)], consent_rules=[opt_in])
    set_policy(stub, auth, policy, "frequency_caps", "consent_rules")
    publish(stub, auth, FLOW, trial_flow())
    granted, silent, capped = (f"p-{uuid.uuid4().hex[:10]}" for _ in range(3))
    now = running.clock()
    an_hour_ago = Timestamp()
    an_hour_ago.FromMicroseconds(now - 3600 * SECOND)
    record(stub, auth, capped, an_hour_ago)
    consent = track(
        granted, "Consent Updated", now - SECOND, channel="email", purpose="marketing", granted=True
    )
    send(stub, auth, consent)
    for person in (granted, silent, capped):
        send(stub, auth, track(person, "Signed Up", now, plan="free"))
    stats = _stats(stub, auth)
    assert _steps(stats)["welcome"][2:4] == (1, 2)  # sent, suppressed
    assert _steps(stats)["offer"][2:4] == (0, 3)
    by_step = {s.step_id: _reasons(s.suppressions) for s in stats.steps}
    assert by_step["welcome"] == [("NO_CONSENT", 2), ("FREQUENCY_CAP", 1)]
    assert by_step["offer"] == [("FREQUENCY_CAP", 2), ("NO_CONSENT", 2)]  # a tie: by reason
    assert by_step["route"] == by_step["split"] == by_step["bought"] == []
    assert stats.suppressed_count == 5
    assert _reasons(stats.suppressions) == [("NO_CONSENT", 4), ("FREQUENCY_CAP", 3)]


def test_get_flow_stats_compares_the_variants_with_the_control(
    running: Running, stub: Stub, auth: Auth
) -> None:
    _run_the_trial(running, stub, auth)
    a, control = _stats(stub, auth).variants
    assert (a.step_id, a.label, a.control, a.entered_count, a.converted_count) == ("split", "a", False, 3, 2)
    assert (control.label, control.control, control.entered_count, control.converted_count) == (
        "control",
        True,
        3,
        1,
    )
    expected = compare(2, 3, 1, 3)
    assert a.conversion_rate == pytest.approx(2 / 3)
    assert a.lift_over_control == pytest.approx(1.0)
    assert a.p_value == pytest.approx(expected.p_value, abs=1e-9)
    assert 0.0 < a.p_value < 1.0
    assert not a.significant  # too few persons for the test
    assert (a.difference_low, a.difference_high) == pytest.approx(
        (expected.difference_low, expected.difference_high), abs=1e-9
    )
    assert (control.lift_over_control, control.p_value, control.difference_low) == (0.0, 1.0, 0.0)


def test_get_flow_stats_counts_one_version_or_a_range_of_entries(
    running: Running, stub: Stub, auth: Auth
) -> None:
    _run_the_trial(running, stub, auth)
    changed = trial_flow()
    changed["steps"][1]["action"]["channel"] = "CHANNEL_SMS"  # welcome by SMS: no longer capped with offer
    running.clock.advance(3600)
    later = running.clock()
    assert publish(stub, auth, FLOW, changed) == 2
    send(stub, auth, track(f"p-{uuid.uuid4().hex[:10]}", "Signed Up", later, plan="free"))
    second = _stats(stub, auth, version=2)
    assert (second.version, second.entered_count, second.suppressed_count) == (2, 1, 0)
    assert _steps(second)["offer"] == (1, 0, 1, 0, 0, 0)
    assert _stats(stub, auth, version=1).entered_count == 8
    assert _stats(stub, auth).entered_count == 9
    assert _stats(stub, auth, start=later).entered_count == 1
    assert _stats(stub, auth, end=later).entered_count == 8
    assert _stats(stub, auth, start=later - SECOND, end=later + SECOND).entered_count == 1


def test_get_flow_stats_counts_deliveries_the_outbox_gave_up_on(
    running: Running, stub: Stub, auth: Auth
) -> None:
    _run_the_trial(running, stub, auth)
    tenant = dict(auth)["x-wayline-tenant"]
    with running.store.transaction() as tx:  # the dispatcher's verdict, as it settles a dead message
        tx.execute(
            "UPDATE flow_outbox SET state = 'DEAD' WHERE tenant_id = ? AND idempotency_key LIKE ?",
            (tenant, "%/welcome"),
        )
    assert _steps(_stats(stub, auth))["welcome"] == (2, 0, 2, 0, 2, 0)


def test_get_flow_stats_of_an_unknown_flow_or_version_is_not_found(stub: Stub, auth: Auth) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        stub.GetFlowStats(pb.GetFlowStatsRequest(name="flows/nope"), metadata=auth, timeout=10)
    assert (caught.value.code(), reason(caught.value)) == (grpc.StatusCode.NOT_FOUND, "FLOW_NOT_FOUND")
    stub.CreateFlow(
        pb.CreateFlowRequest(flow_id=FLOW, flow=flow_message(trial_flow())), metadata=auth, timeout=10
    )
    with pytest.raises(grpc.RpcError) as caught:
        stub.GetFlowStats(pb.GetFlowStatsRequest(name=f"flows/{FLOW}", version=3), metadata=auth, timeout=10)
    assert (caught.value.code(), reason(caught.value)) == (
        grpc.StatusCode.NOT_FOUND,
        "FLOW_VERSION_NOT_FOUND",
    )
    empty = _stats(stub, auth)  # a draft never published: laid out along the draft, all zero
    assert [s.step_id for s in empty.steps] == ["route", "welcome", "offer", "split", "bought"]
    assert empty.entered_count == 0


def test_get_flow_stats_refuses_a_malformed_request(stub: Stub, auth: Auth) -> None:
    request = pb.GetFlowStatsRequest(name="trial", version=-1)
    request.time_range.start.FromMicroseconds(2 * SECOND)
    request.time_range.end.FromMicroseconds(SECOND)
    with pytest.raises(grpc.RpcError) as caught:
        stub.GetFlowStats(request, metadata=auth, timeout=10)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert set(violations(caught.value)) == {"name", "version", "time_range"}
