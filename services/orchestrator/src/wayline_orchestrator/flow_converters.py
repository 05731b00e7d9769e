"""Flow messages ⇄ the flows' plain values. A definition becomes its proto3 JSON form with the fields' proto
names; what that form cannot carry is refused here, with its field path (`field_checks.invalid_values`): an
enumeration number the contract does not define (the JSON form would carry the bare number), a Timestamp or
Duration out of range or with nanos of the wrong sign, a NaN or Infinity in a Struct (the conversion would
raise)."""

from __future__ import annotations

from google.protobuf import json_format
from google.protobuf.timestamp_pb2 import Timestamp

from wayline.common.errors import FieldViolation
from wayline.common.paging import decode_page_token, encode_page_token, invalid_page_token, page_size
from wayline.common.response_size import fitting
from wayline.orchestrator.v1 import flow_pb2
from wayline.orchestrator.v1 import orchestrator_service_pb2 as pb
from wayline_orchestrator.errors import FlowInvalid
from wayline_orchestrator.field_checks import invalid_values, text_violation
from wayline_orchestrator.flows import Flow, FlowPage, FlowState, PauseMode

__all__ = [
    "flow_id_of",
    "flow_message",
    "flow_of",
    "list_flows_request",
    "list_flows_response",
    "pause_mode_of",
]

_STATES = {
    FlowState.DRAFT: flow_pb2.FLOW_STATE_DRAFT,
    FlowState.PUBLISHED: flow_pb2.FLOW_STATE_PUBLISHED,
    FlowState.PAUSED: flow_pb2.FLOW_STATE_PAUSED,
    FlowState.ARCHIVED: flow_pb2.FLOW_STATE_ARCHIVED,
}
_STATE_OF = {number: state for state, number in _STATES.items()}
_MODES = {
    pb.PAUSE_MODE_UNSPECIFIED: PauseMode.HOLD,
    pb.PAUSE_MODE_HOLD: PauseMode.HOLD,
    pb.PAUSE_MODE_DRAIN: PauseMode.DRAIN,
}


def flow_of(message: flow_pb2.Flow, flow_id: str, path: str = "flow") -> Flow:
    """The flow of a request's message (its output-only fields are ignored)."""
    invalid = list(invalid_values(message.definition, f"{path}.definition"))
    if invalid:
        raise FlowInvalid(invalid)
    definition = json_format.MessageToDict(message.definition, preserving_proto_field_name=True)
    return Flow(
        flow_id=flow_id,
        display_name=message.display_name,
        description=message.description,
        definition=definition,
    )


def _timestamp(us: int) -> Timestamp:
    return Timestamp(seconds=us // 1_000_000, nanos=(us % 1_000_000) * 1_000)


def flow_message(flow: Flow, version: int = 0, publish_time: int | None = None) -> flow_pb2.Flow:
    """The flow as the contract shows it, with its draft (version 0) or the given published version's
    definition (already in `flow.definition`) and that version's publication time."""
    message = flow_pb2.Flow(
        name=flow.name,
        display_name=flow.display_name,
        description=flow.description,
        state=_STATES[flow.state],
        definition=json_format.ParseDict(flow.definition, flow_pb2.FlowDefinition()),
        version=version,
        published_version=flow.published_version,
        has_unpublished_changes=flow.has_unpublished_changes,
        create_time=_timestamp(flow.create_time),
        update_time=_timestamp(flow.update_time),
        etag=flow.etag,
    )
    shown = publish_time if publish_time is not None else flow.publish_time
    if shown is not None:
        message.publish_time.CopyFrom(_timestamp(shown))
    return message


def flow_id_of(name: str, field: str = "name") -> str:
    """`flows/{flow_id}` → the id; INVALID_ARGUMENT for anything else."""
    flow_id = name.removeprefix("flows/")
    if not name.startswith("flows/") or not flow_id or "/" in flow_id:
        raise FlowInvalid([FieldViolation(field, f"{name!r} is not flows/{{flow_id}}")])
    return flow_id


def pause_mode_of(number: int) -> PauseMode:
    mode: PauseMode | None = _MODES.get(number)  # type: ignore[call-overload]
    if mode is None:
        raise FlowInvalid([FieldViolation("mode", f"{number} is not a PauseMode", "UNKNOWN_ENUM_VALUE")])
    return mode


def list_flows_request(request: pb.ListFlowsRequest) -> tuple[str, int, FlowState | None]:
    """(the id to list after, the page size, the state filter)."""
    limit = page_size(request.page_size, default=50, maximum=1_000)
    state = _STATE_OF.get(request.state)
    if state is None and request.state != flow_pb2.FLOW_STATE_UNSPECIFIED:
        raise FlowInvalid(
            [FieldViolation("state", f"{request.state} is not a FlowState", "UNKNOWN_ENUM_VALUE")]
        )
    if not request.page_token:
        return "", limit, state
    token = decode_page_token(request.page_token, "ListFlows")
    after = token.get("after")
    # A NUL cannot be sent to PostgreSQL as text: refused on both engines alike (no service issues one).
    if (
        not isinstance(after, str)
        or text_violation("page_token", after) is not None
        or token.get("filters") != {"state": state.value if state else ""}
    ):
        raise invalid_page_token("ListFlows")
    return after, limit, state


def list_flows_response(page: FlowPage, state: FlowState | None) -> pb.ListFlowsResponse:
    """The page, ending early when its flows pass what a response holds (a flow of 200 steps with their
    messages is tens of KB; 1,000 of them are not one answer)."""
    filters = {"state": state.value if state else ""}
    messages = [flow_message(f) for f in page.flows]
    kept = fitting(messages)
    more = page.more or kept < len(messages)
    token = (
        encode_page_token({"after": page.flows[kept - 1].flow_id, "filters": filters})
        if more and kept
        else ""
    )
    return pb.ListFlowsResponse(flows=messages[:kept], next_page_token=token, total_size=page.total)
