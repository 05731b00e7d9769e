"""The format of the decision service's events in the journey store, both ways.

A decision is one `Decision Logged` track event of its person; each feedback one `Decision Feedback` event.
Their properties keep the format `wayline ml export` trains from (`decision_id`, `action`: the chosen
action, `propensity`: the probability the policy chose it; both absent when nothing was chosen, a holdout or
an all-filtered decision), the fields journeys indexes (`model`, `model_version`, `arm`, `outcome`), and the
whole trace (`trace_proto`: the serialized `wayline.decision.v1.Decision`, without its feedback, in standard
base64). Event ids derive from the decision id (and the feedback id), so a retried write is one event in the
store (ingest and journeys deduplicate by event id).

The events are on CHANNEL_OTHER: they are the service's bookkeeping, not a touchpoint of the person on the
decision's channel, which analytics of that channel must not count. A `Decision Logged` event says
`integrations: {"All": false}`, so ingest hands it to the journey store only (ADR 109): neither this
service's online features nor the flows read it, and sending it back to both cost ingest, the orchestrator
and this service 0.09 to 0.15 ms of CPU per decision. Feedback events go to every sink (a flow may wait for
a click, a feature may count impressions).

The trace is this service's own record, read back only by `decision_of`, so it is kept in the form cheapest
to write and read: as proto JSON (the `trace` object of events written before) it cost 0.79 ms of the
writer's CPU per trace against 0.02 ms (60 features, 8 candidates), about a third of the service's CPU per
decision, and every service the event flows through then parsed a hundred nested properties. Events with a
`trace` object still read.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import MutableMapping, Sequence
from typing import Any

from google.protobuf import json_format, struct_pb2, timestamp_pb2
from google.protobuf.message import DecodeError

from wayline.decision.v1 import decision_pb2
from wayline.event.v1 import event_pb2

__all__ = [
    "DECISION_FEEDBACK",
    "DECISION_LOGGED",
    "EVENT_NAMESPACE",
    "TRACE_PROPERTY",
    "decision_of",
    "feedback_event",
    "feedback_event_id",
    "feedback_of",
    "trace_event",
    "trace_event_id",
    "trace_of",
]

DECISION_LOGGED = "Decision Logged"
TRACE_PROPERTY = "trace_proto"
_JSON_TRACE_PROPERTY = "trace"  # events written before TRACE_PROPERTY: the trace as proto JSON
DECISION_FEEDBACK = "Decision Feedback"
# uuid5(NAMESPACE_URL, "https://wayline.dev/ns/decision-events"). Fixed forever: changing it would give a
# retried write another event id, stored twice.
EVENT_NAMESPACE = uuid.UUID("c833a16e-e3a5-5e44-ba81-0a04d30f00a0")


def trace_event_id(decision_id: str) -> str:
    return str(uuid.uuid5(EVENT_NAMESPACE, f"decision/{decision_id}"))


def feedback_event_id(decision_id: str, feedback_id: str) -> str:
    return str(uuid.uuid5(EVENT_NAMESPACE, f"decision/{decision_id}/feedback/{feedback_id}"))


_ARM_NAMES = {number: name for name, number in decision_pb2.ModelArm.items()}


def _arm(trace: decision_pb2.Decision) -> str:
    return _ARM_NAMES.get(trace.arm) or decision_pb2.ModelArm.Name(trace.arm)


def _set_common(fields: MutableMapping[str, struct_pb2.Value], trace: decision_pb2.Decision) -> None:
    """The properties every event of a decision carries: what journeys indexes and the judge groups by. Set
    in place: Struct.update goes through Python per key."""
    fields["decision_id"].string_value = trace.decision_id
    fields["model"].string_value = trace.model
    fields["model_version"].string_value = trace.model_version
    fields["arm"].string_value = _arm(trace)


def _event(
    name: str, event_id: str, time: timestamp_pb2.Timestamp, identifier: event_pb2.Identifier
) -> event_pb2.Event:
    event = event_pb2.Event(
        event_id=event_id,
        type=event_pb2.EVENT_TYPE_TRACK,
        name=name,
        channel=event_pb2.CHANNEL_OTHER,
        identifiers=[identifier],
    )
    event.timestamp.CopyFrom(time)
    return event


def trace_event(
    trace: decision_pb2.Decision, identifier: event_pb2.Identifier, max_bytes: int
) -> event_pb2.Event:
    """The `Decision Logged` event of `trace`, carrying `identifier` (the person's, for identity to resolve).
    Over `max_bytes` (ingest's event limit), the trace's feature values are left out (`features_omitted`):
    the decision stays traceable, its inputs can be recomputed point in time from the store."""
    stored = trace
    if trace.feedback:  # a trace from Decide has none yet: it is written as it is, without a copy
        stored = decision_pb2.Decision()
        stored.CopyFrom(trace)
        stored.ClearField("feedback")
    event = _event(DECISION_LOGGED, trace_event_id(trace.decision_id), trace.decide_time, identifier)
    event.integrations.fields["All"].bool_value = False  # the journey store keeps it; no other sink gets it
    fields = event.properties.fields
    _set_common(fields, trace)
    fields["placement"].string_value = trace.placement
    fields["holdout"].bool_value = trace.holdout
    if trace.chosen_action_id:  # a holdout or all-filtered decision has neither: the ML export skips it
        fields["action"].string_value = trace.chosen_action_id
        fields["propensity"].number_value = trace.chosen_probability
    _set_trace(event, stored)
    if event.ByteSize() > max_bytes and stored.features:
        if stored is trace:
            stored = decision_pb2.Decision()
            stored.CopyFrom(trace)
        stored.ClearField("features")
        fields["features_omitted"].bool_value = True
        _set_trace(event, stored)
    return event


def _set_trace(event: event_pb2.Event, trace: decision_pb2.Decision) -> None:
    event.properties[TRACE_PROPERTY] = base64.b64encode(trace.SerializeToString()).decode("ascii")


def feedback_event(
    trace: decision_pb2.Decision, feedback: decision_pb2.FeedbackRecord, identifier: event_pb2.Identifier
) -> event_pb2.Event:
    """The `Decision Feedback` event of `feedback` on `trace`: the outcome with the decision's logged
    propensity, model version and arm. A conversion's value is also the event's `revenue`, which the ML
    export's label sums (`DecisionLog(outcome_event="Decision Feedback")`, attributed by `decision_id`)."""
    event = _event(
        DECISION_FEEDBACK,
        feedback_event_id(trace.decision_id, feedback.feedback_id),
        feedback.time,
        identifier,
    )
    _set_common(event.properties.fields, trace)
    properties: dict[str, Any] = {
        "feedback_id": feedback.feedback_id,
        "action": feedback.action_id,
        "outcome": decision_pb2.FeedbackOutcome.Name(feedback.outcome),
        "chosen_action": trace.chosen_action_id,
        "propensity": trace.chosen_probability,
    }
    event.properties.update(properties)
    if feedback.HasField("value"):
        event.properties["value"] = json_format.MessageToDict(
            feedback.value, preserving_proto_field_name=True
        )
        if feedback.outcome == decision_pb2.FEEDBACK_OUTCOME_CONVERSION:
            event.revenue.CopyFrom(feedback.value)
    if feedback.HasField("properties"):
        event.properties["details"] = json_format.MessageToDict(feedback.properties)
    return event


def feedback_of(event: event_pb2.Event) -> decision_pb2.FeedbackRecord:
    fields = event.properties.fields
    record = decision_pb2.FeedbackRecord(
        feedback_id=fields["feedback_id"].string_value,
        action_id=fields["action"].string_value,
        outcome=decision_pb2.FeedbackOutcome.Value(fields["outcome"].string_value),
    )
    record.time.CopyFrom(event.timestamp)
    if "value" in fields:
        json_format.ParseDict(json_format.MessageToDict(fields["value"]), record.value)
    if "details" in fields:
        record.properties.CopyFrom(fields["details"].struct_value)
    return record


def decision_of(events: Sequence[event_pb2.Event]) -> decision_pb2.Decision | None:
    """The trace stored in a decision's events (its `Decision Logged` event), with the feedback events as
    its feedback, oldest first; None when the log event is not among them or carries no trace."""
    logged = [e for e in events if e.name == DECISION_LOGGED]
    trace = trace_of(logged[0]) if logged else None
    if trace is None:
        return None
    trace.feedback.extend(feedback_of(e) for e in events if e.name == DECISION_FEEDBACK)
    return trace


def trace_of(event: event_pb2.Event) -> decision_pb2.Decision | None:
    """The trace a `Decision Logged` event carries, in either format this service has written; None when it
    carries none that decodes to a decision (an event of that name that this service did not write)."""
    fields = event.properties.fields
    trace = decision_pb2.Decision()
    try:
        if TRACE_PROPERTY in fields:
            trace.ParseFromString(base64.b64decode(fields[TRACE_PROPERTY].string_value, validate=True))
        elif (stored := fields.get(_JSON_TRACE_PROPERTY)) is not None and stored.HasField("struct_value"):
            json_format.ParseDict(json_format.MessageToDict(stored), trace, ignore_unknown_fields=True)
    except (binascii.Error, DecodeError, json_format.ParseError, ValueError, TypeError):
        return None
    return trace if trace.decision_id else None
