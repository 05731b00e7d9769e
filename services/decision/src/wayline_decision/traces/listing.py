"""ListDecisions: one person's decision traces, the newest first, read from the journey store.

A decision is its person's `Decision Logged` event (events.py), so a person's decisions are their timeline
filtered to that event name, newest first: journeys maps the events through the person overrides, so the
decisions of profiles merged into the person come along and an unmerged identifier takes its own with it.
Journeys' keyset token is wrapped in ours, bound to the person as the request named them, so that a token is
never replayed against another person's timeline. An event of that name the service did not write (a client
may track anything) carries no trace and is skipped rather than failing the page.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from wayline.common.errors import FieldViolation, InvalidArgument
from wayline.common.paging import decode_page_token, encode_page_token, invalid_page_token, page_size
from wayline.decision.v1 import decision_pb2
from wayline.event.v1 import event_pb2
from wayline.journeys.v1 import journeys_service_pb2 as journeys_pb
from wayline_decision.traces.clients import JourneysDecisions
from wayline_decision.traces.events import DECISION_LOGGED, trace_event_id, trace_of

__all__ = ["DecisionPage", "ListSelection", "PersonDecisions", "list_selection"]

RPC = "ListDecisions"
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


@dataclass(frozen=True)
class ListSelection:
    person: event_pb2.PersonRef
    page_size: int
    timeline_token: str  # journeys' token for the next page; empty for the first page


@dataclass(frozen=True)
class DecisionPage:
    decisions: list[decision_pb2.Decision]
    next_page_token: str
    person_id: str  # empty when no stored event carries the identifier named


def _subject(person: event_pb2.PersonRef) -> str:
    """The person as the request named them, for binding a page token to them."""
    if person.WhichOneof("ref") == "person_id":
        return f"person_id:{person.person_id}"
    return f"identifier:{person.identifier.type}:{person.identifier.value}"


def list_selection(person: event_pb2.PersonRef | None, requested_size: int, token: str) -> ListSelection:
    """The checked selection of a ListDecisions request; InvalidArgument naming the bad field."""
    which = person.WhichOneof("ref") if person is not None else None
    if (
        person is None
        or which is None
        or (which == "person_id" and not person.person_id)
        or (which == "identifier" and not (person.identifier.type and person.identifier.value))
    ):
        raise InvalidArgument(
            "person is required: a person id or an identifier with its type and value",
            [FieldViolation("person", "set person_id, or identifier.type and identifier.value", "REQUIRED")],
        )
    size = page_size(requested_size, default=DEFAULT_PAGE_SIZE, maximum=MAX_PAGE_SIZE)
    timeline_token = ""
    if token:
        fields = decode_page_token(token, RPC)
        if fields.get("s") != _subject(person) or not isinstance(fields.get("t"), str) or not fields["t"]:
            raise invalid_page_token(RPC)
        timeline_token = fields["t"]
    return ListSelection(person, size, timeline_token)


def _trace(event: event_pb2.Event) -> decision_pb2.Decision | None:
    """The trace an event of the service carries; None for a look-alike event (no parseable trace, or an
    event id other than the one the service derives from the trace's decision id)."""
    trace = trace_of(event)
    if trace is None or not trace.decision_id or event.event_id != trace_event_id(trace.decision_id):
        return None
    return trace


class PersonDecisions:
    def __init__(self, journeys: JourneysDecisions) -> None:
        self._journeys = journeys

    def page(self, tenant: str, selection: ListSelection) -> DecisionPage:
        request = journeys_pb.GetTimelineRequest(
            event_names=[DECISION_LOGGED],
            order=journeys_pb.TIMELINE_ORDER_NEWEST_FIRST,
            page_size=selection.page_size,
            page_token=selection.timeline_token,
        )
        if selection.person.WhichOneof("ref") == "person_id":
            request.person_id = selection.person.person_id
        else:
            request.identifier.CopyFrom(selection.person.identifier)
        try:
            response = self._journeys.timeline(tenant, request)
        except grpc.RpcError as error:  # journeys refused the inner token: it was not one we issued
            raise invalid_page_token(RPC) from error
        if response is None:
            return DecisionPage([], "", "")
        decisions = [trace for trace in map(_trace, response.events) if trace is not None]
        next_token = (
            encode_page_token({"s": _subject(selection.person), "t": response.next_page_token})
            if response.next_page_token
            else ""
        )
        return DecisionPage(decisions, next_token, response.person_id)
