"""Action messages ⇄ the catalogue's types. Enumerations travel as their value names; a number the contract
does not define is refused here, with the field's path."""

from __future__ import annotations

from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from wayline.common.errors import FieldViolation, InvalidArgument
from wayline.common.paging import decode_page_token, encode_page_token, invalid_page_token, page_size
from wayline.common.response_size import fitting
from wayline.decision.v1 import action_pb2
from wayline.decision.v1 import decision_service_pb2 as pb
from wayline.event.v1 import event_pb2
from wayline.journeys.v1 import lifecycle_stage_pb2
from wayline.orchestrator.v1 import contact_policy_pb2
from wayline_decision.actions import Action, ActionPage, ActionState, Eligibility
from wayline_decision.errors import ActionInvalid

__all__ = [
    "action_id_of",
    "action_message",
    "action_of",
    "list_actions_request",
    "list_actions_response",
]

_STATES = {
    ActionState.ACTIVE: action_pb2.ACTION_STATE_ACTIVE,
    ActionState.ARCHIVED: action_pb2.ACTION_STATE_ARCHIVED,
}
_STATE_OF = {number: state for state, number in _STATES.items()}


def _name(enum: Any, number: int, path: str) -> str:
    try:
        return str(enum.Name(number))
    except ValueError:
        raise ActionInvalid(
            [FieldViolation(path, f"{number} is not a value of {enum.DESCRIPTOR.name}")]
        ) from None


def _channel(number: int, path: str) -> str:
    return _name(event_pb2.Channel, number, path)


def _purpose(number: int, path: str) -> str:
    return _name(contact_policy_pb2.ContactPurpose, number, path)


def _us(timestamp: Timestamp) -> int:
    return timestamp.seconds * 1_000_000 + timestamp.nanos // 1_000


def _timestamp(us: int) -> Timestamp:
    return Timestamp(seconds=us // 1_000_000, nanos=(us % 1_000_000) * 1_000)


def action_of(message: action_pb2.Action, action_id: str, path: str = "action") -> Action:
    """The domain action of a request's message (its name, etag and times are the caller's, not used)."""
    e = message.eligibility
    state = _STATE_OF.get(message.state, ActionState.ACTIVE)
    if message.state not in _STATE_OF and message.state != action_pb2.ACTION_STATE_UNSPECIFIED:
        raise ActionInvalid([FieldViolation(f"{path}.state", f"{message.state} is not an ActionState")])
    return Action(
        action_id=action_id,
        display_name=message.display_name,
        description=message.description,
        channel=_channel(message.channel, f"{path}.channel"),
        placements=tuple(message.placements),
        value=message.value if message.HasField("value") else None,
        value_currency=message.value_currency,
        lever=message.lever if message.HasField("lever") else None,
        start_time=_us(message.start_time) if message.HasField("start_time") else None,
        end_time=_us(message.end_time) if message.HasField("end_time") else None,
        eligibility=Eligibility(
            required_segments=tuple(e.required_segments),
            excluded_segments=tuple(e.excluded_segments),
            lifecycle_stages=tuple(
                _name(lifecycle_stage_pb2.LifecycleStage, n, f"{path}.eligibility.lifecycle_stages[{i}]")
                for i, n in enumerate(e.lifecycle_stages)
            ),
            required_consent=_purpose(e.required_consent, f"{path}.eligibility.required_consent"),
            required_reachable_channel=_channel(
                e.required_reachable_channel, f"{path}.eligibility.required_reachable_channel"
            ),
        ),
        counts_as_contact=message.counts_as_contact,
        purpose=_purpose(message.purpose, f"{path}.purpose"),
        state=state,
    )


def action_message(action: Action) -> action_pb2.Action:
    e = action.eligibility
    message = action_pb2.Action(
        name=f"actions/{action.action_id}",
        display_name=action.display_name,
        description=action.description,
        channel=event_pb2.Channel.Value(action.channel),
        placements=action.placements,
        value_currency=action.value_currency,
        eligibility=action_pb2.ActionEligibility(
            required_segments=e.required_segments,
            excluded_segments=e.excluded_segments,
            lifecycle_stages=[lifecycle_stage_pb2.LifecycleStage.Value(s) for s in e.lifecycle_stages],
            required_consent=contact_policy_pb2.ContactPurpose.Value(e.required_consent),
            required_reachable_channel=event_pb2.Channel.Value(e.required_reachable_channel),
        ),
        counts_as_contact=action.counts_as_contact,
        purpose=contact_policy_pb2.ContactPurpose.Value(action.purpose),
        state=_STATES[action.state],
        etag=action.etag,
        create_time=_timestamp(action.create_time),
        update_time=_timestamp(action.update_time),
    )
    if action.value is not None:
        message.value = action.value
    if action.lever is not None:
        message.lever = action.lever
    if action.start_time is not None:
        message.start_time.CopyFrom(_timestamp(action.start_time))
    if action.end_time is not None:
        message.end_time.CopyFrom(_timestamp(action.end_time))
    return message


def action_id_of(name: str, field: str = "name") -> str:
    """`actions/{action_id}` → the id; INVALID_ARGUMENT for anything else."""
    action_id = name.removeprefix("actions/")
    if not name.startswith("actions/") or not action_id or "/" in action_id:
        raise InvalidArgument(
            "name must be actions/{action_id}",
            [FieldViolation(field, f"{name!r} is not actions/{{action_id}}")],
        )
    return action_id


def list_actions_request(request: pb.ListActionsRequest) -> tuple[str, int, ActionState | None, str]:
    """(the id to list after, the page size, the state filter, the channel filter)."""
    limit = page_size(request.page_size, default=50, maximum=1_000)
    state = _STATE_OF.get(request.state)
    if state is None and request.state != action_pb2.ACTION_STATE_UNSPECIFIED:
        raise InvalidArgument(
            "unknown state", [FieldViolation("state", f"{request.state} is not an ActionState")]
        )
    on = "" if request.channel == event_pb2.CHANNEL_UNSPECIFIED else _channel_filter(request.channel)
    filters = {"state": state.value if state else "", "channel": on}
    if not request.page_token:
        return "", limit, state, on
    token = decode_page_token(request.page_token, "ListActions")
    after = token.get("after")
    if not isinstance(after, str) or token.get("filters") != filters:
        raise invalid_page_token("ListActions")
    return after, limit, state, on


def _channel_filter(number: int) -> str:
    try:
        return str(event_pb2.Channel.Name(number))  # type: ignore[arg-type]
    except ValueError:
        raise InvalidArgument(
            "unknown channel", [FieldViolation("channel", f"{number} is not a Channel")]
        ) from None


def list_actions_response(page: ActionPage, state: ActionState | None, on: str) -> pb.ListActionsResponse:
    """The page, ending early when its actions (their attributes are free-form) pass what a response holds."""
    filters = {"state": state.value if state else "", "channel": on}
    messages = [action_message(a) for a in page.actions]
    kept = fitting(messages)
    more = page.more or kept < len(messages)
    token = (
        encode_page_token({"after": page.actions[kept - 1].action_id, "filters": filters})
        if more and kept
        else ""
    )
    return pb.ListActionsResponse(actions=messages[:kept], next_page_token=token, total_size=page.total)
