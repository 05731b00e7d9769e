"""The `Decision Logged` event's format both ways, in process: a trace written reads back whole, a trace too
large for ingest's event limit reads back without its feature values, events written as proto JSON before
still read, and an event whose trace does not decode is no decision."""

from __future__ import annotations

import base64

import pytest
from google.protobuf import json_format

from tests.decision.traces.conftest import candidate, make_trace
from wayline.decision.v1 import decision_pb2
from wayline.event.v1 import event_pb2
from wayline_decision.traces.events import TRACE_PROPERTY, decision_of, trace_event, trace_of

IDENTIFIER = event_pb2.Identifier(type="user_id", value="u-1")


def _large_trace(feedback: bool = True) -> decision_pb2.Decision:
    """A trace of the size Decide makes for a 60-feature, 8-action model, with feedback (not stored) unless
    told otherwise (a trace from Decide has none yet)."""
    trace = make_trace("p-1")
    for i in range(60):
        trace.features[f"feature_{i:02d}"].number_value = i * 1.25
    del trace.candidates[:]
    for a in range(8):
        trace.candidates.append(
            candidate(f"action-{a}", decision_pb2.CANDIDATE_OUTCOME_RETURNED, a + 1, a / 10)
        )
    if feedback:
        trace.feedback.add(feedback_id="f-1", action_id="action-0")
    return trace


def _without_feedback(trace: decision_pb2.Decision) -> decision_pb2.Decision:
    copy = decision_pb2.Decision()
    copy.CopyFrom(trace)
    copy.ClearField("feedback")
    return copy


@pytest.mark.parametrize("feedback", [True, False])
def test_a_written_trace_reads_back_whole_without_its_feedback(feedback: bool) -> None:
    trace = _large_trace(feedback)
    given = trace.SerializeToString(deterministic=True)
    event = trace_event(trace, IDENTIFIER, 32 * 1024)
    assert decision_of([event]) == _without_feedback(trace)
    assert trace.SerializeToString(deterministic=True) == given  # the caller's trace is left as it was
    fields = event.properties.fields
    assert fields["decision_id"].string_value == trace.decision_id  # what the ML export and journeys read
    assert fields["action"].string_value == trace.chosen_action_id
    assert "features_omitted" not in fields
    # For the journey store alone: ingest's other sinks (online features, flows) do not read it (ADR 109).
    assert dict(event.integrations) == {"All": False}


@pytest.mark.parametrize("feedback", [True, False])
def test_a_trace_over_the_event_limit_reads_back_without_its_feature_values(feedback: bool) -> None:
    trace = _large_trace(feedback)
    given = trace.SerializeToString(deterministic=True)
    full = trace_event(trace, IDENTIFIER, 32 * 1024).ByteSize()
    event = trace_event(trace, IDENTIFIER, full - 1)
    assert event.properties.fields["features_omitted"].bool_value
    assert trace.SerializeToString(deterministic=True) == given
    expected = _without_feedback(trace)
    expected.ClearField("features")
    assert decision_of([event]) == expected
    assert event.ByteSize() < full


def test_an_event_written_with_the_trace_as_proto_json_still_reads() -> None:
    trace = _large_trace()
    event = trace_event(trace, IDENTIFIER, 32 * 1024)
    del event.properties.fields[TRACE_PROPERTY]
    event.properties["trace"] = json_format.MessageToDict(
        _without_feedback(trace), preserving_proto_field_name=True
    )
    assert decision_of([event]) == _without_feedback(trace)


def test_an_event_whose_trace_does_not_decode_carries_no_decision() -> None:
    """A client may track `Decision Logged` with anything in it: such an event is no decision (ListDecisions
    skips it, GetDecision looks among the recent traces), and reading it changes nothing in it."""
    event = trace_event(_large_trace(), IDENTIFIER, 32 * 1024)
    for garbage in ("not base64!", base64.b64encode(b"\xff\xff\xff").decode(), ""):
        event.properties[TRACE_PROPERTY] = garbage
        keys = set(event.properties.fields)
        assert trace_of(event) is None
        assert decision_of([event]) is None
        assert set(event.properties.fields) == keys
    del event.properties.fields[TRACE_PROPERTY]
    event.properties["trace"] = "a string, not a trace"
    assert trace_of(event) is None
