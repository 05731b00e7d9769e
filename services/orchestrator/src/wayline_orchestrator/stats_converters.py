"""GetFlowStats and SimulateFlow: requests checked into plain values (every bad field reported at once, with
its path from the request's root), and FlowStats back into its message."""

from __future__ import annotations

import math
from typing import Literal

from google.protobuf import json_format

from wayline.common.errors import FieldViolation
from wayline.common.timestamps import timestamp_violation
from wayline.event.v1 import event_pb2
from wayline.orchestrator.v1 import contact_pb2, flow_stats_pb2
from wayline.orchestrator.v1 import orchestrator_service_pb2 as pb
from wayline_orchestrator.converters import micros, timestamp
from wayline_orchestrator.errors import FlowInvalid
from wayline_orchestrator.field_checks import invalid_values
from wayline_orchestrator.flow_converters import flow_id_of
from wayline_orchestrator.flows.simulations import DEFAULT_MAX_PERSONS, MAX_PERSONS, SimulationAsk
from wayline_orchestrator.flows.stats import FlowStats, SuppressionCount

__all__ = ["flow_stats_message", "flow_stats_request", "simulation_ask"]


def _bound(
    window: event_pb2.TimeRange, name: Literal["start", "end"], required: bool, problems: list[FieldViolation]
) -> int | None:
    """The range's bound `name` in microseconds; None (with its problem) when unset or out of Timestamp's
    range, where the microseconds would no longer fit the stores' 64-bit columns."""
    if not window.HasField(name):
        if required:
            problems.append(FieldViolation(f"time_range.{name}", f"set the range's {name}", "REQUIRED"))
        return None
    ts = getattr(window, name)
    problem = timestamp_violation(ts, f"time_range.{name}")
    if problem is not None:
        problems.append(problem)
        return None
    return micros(ts)


def _range(
    window: event_pb2.TimeRange, required: bool, problems: list[FieldViolation]
) -> tuple[int | None, int | None]:
    start = _bound(window, "start", required, problems)
    end = _bound(window, "end", required, problems)
    if start is not None and end is not None and start >= end:
        problems.append(FieldViolation("time_range", "start must be before end", "INVALID_RANGE"))
    return start, end


def _flow_id(name: str, problems: list[FieldViolation]) -> str:
    try:
        return flow_id_of(name)
    except FlowInvalid as invalid:
        problems += invalid.violations
        return ""


def flow_stats_request(request: pb.GetFlowStatsRequest) -> tuple[str, int, int | None, int | None]:
    """(the flow id, the version or 0, the entries' range start and end, each None when open)."""
    problems: list[FieldViolation] = []
    flow_id = _flow_id(request.name, problems)
    if request.version < 0:
        problems.append(FieldViolation("version", "must not be negative", "OUT_OF_RANGE"))
    start, end = _range(request.time_range, False, problems)
    if problems:
        raise FlowInvalid(problems)
    return flow_id, request.version, start, end


def simulation_ask(request: pb.SimulateFlowRequest) -> SimulationAsk:
    problems: list[FieldViolation] = []
    flow_id = ""
    definition = None
    given = request.HasField("definition")
    if request.name and given:
        problems.append(FieldViolation("definition", "set name or definition, not both", "ONE_OF"))
    elif not request.name and not given:
        problems.append(FieldViolation("name", "set name (a flow's draft) or definition", "REQUIRED"))
    elif request.name:
        flow_id = _flow_id(request.name, problems)
    else:
        invalid = list(invalid_values(request.definition, "definition"))
        problems += invalid
        if not invalid:  # what is invalid there cannot be converted (refused below)
            definition = json_format.MessageToDict(request.definition, preserving_proto_field_name=True)
    start, end = _range(request.time_range, True, problems)
    if not 0 <= request.max_persons <= MAX_PERSONS:
        problems.append(FieldViolation("max_persons", f"must be 0 to {MAX_PERSONS:,}", "OUT_OF_RANGE"))
    rate = request.assumed_engagement_rate
    if math.isnan(rate) or not 0.0 <= rate <= 1.0:
        problems.append(FieldViolation("assumed_engagement_rate", "must be 0 to 1", "OUT_OF_RANGE"))
    if problems:
        raise FlowInvalid(problems)
    assert start is not None  # required: a violation above otherwise
    assert end is not None
    return SimulationAsk(
        flow_id=flow_id,
        definition=definition,
        start=start,
        end=end,
        max_persons=request.max_persons or DEFAULT_MAX_PERSONS,
        ignore_contact_policy=request.ignore_contact_policy,
        engagement_rate=rate,
    )


def _suppressions(counts: tuple[SuppressionCount, ...]) -> list[flow_stats_pb2.SuppressionCount]:
    return [
        flow_stats_pb2.SuppressionCount(
            reason=contact_pb2.ContactBlockReason.Value(f"CONTACT_BLOCK_REASON_{c.reason or 'UNSPECIFIED'}"),
            count=c.count,
        )
        for c in counts
    ]


def flow_stats_message(stats: FlowStats) -> flow_stats_pb2.FlowStats:
    return flow_stats_pb2.FlowStats(
        flow=stats.flow,
        version=stats.version,
        entered_count=stats.entered,
        active_count=stats.active,
        converted_count=stats.converted,
        exited_count=stats.exited,
        exit_condition_count=stats.exit_condition,
        suppressed_count=stats.suppressed,
        steps=[
            flow_stats_pb2.StepStats(
                step_id=s.step_id,
                entered_count=s.entered,
                active_count=s.active,
                sent_count=s.sent,
                suppressed_count=s.suppressed,
                error_count=s.error,
                converted_count=s.converted,
                branches=[
                    flow_stats_pb2.BranchCount(label=b.label, next_step_id=b.next_step_id, count=b.count)
                    for b in s.branches
                ],
                suppressions=_suppressions(s.suppressions),
            )
            for s in stats.steps
        ],
        variants=[
            flow_stats_pb2.VariantStats(
                step_id=v.step_id,
                label=v.label,
                control=v.control,
                entered_count=v.entered,
                converted_count=v.converted,
                conversion_rate=v.conversion_rate,
                lift_over_control=v.lift_over_control,
                p_value=v.p_value,
                significant=v.significant,
                difference_low=v.difference_low,
                difference_high=v.difference_high,
            )
            for v in stats.variants
        ],
        data_as_of=timestamp(stats.data_as_of),
        suppressions=_suppressions(stats.suppressions),
    )
