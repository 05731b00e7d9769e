"""`wayline timeline SUBJECT`: one customer's cross-channel timeline, via the gateway (GetTimeline).

The subject is a person id or any identifier as `type:value` (`email:ann@example.com`, `anonymous_id:…`); an
identifier gives the timeline of the person holding it now, as GetTimeline says. The events print as a table
(time, channel, event, the identifiers they carried, their properties), or with `--json` as JSON Lines (one
compact protobuf JSON Event per line, for jq or a file). Filters are GetTimeline's: channels, event names and
a time range; the newest events come first unless `--oldest-first`. Pages are read until `--limit` events.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated

import grpc
import typer
from google.protobuf import json_format
from rich.table import Table
from rich.text import Text

from wayline.event.v1 import event_pb2
from wayline.journeys.v1 import journeys_service_pb2 as pb
from wayline.journeys.v1 import journeys_service_pb2_grpc as pb_grpc
from wayline_cli.channels import channel_name, channel_value
from wayline_cli.decisions import parse_time
from wayline_cli.gateway import (
    GATEWAY,
    GatewayOption,
    ReadKeyOption,
    TlsOption,
    bearer,
    err,
    failure,
    open_channel,
    out,
)
from wayline_cli.subjects import person_ref
from wayline_cli.times import utc_text

__all__ = ["subject_request", "timeline_command"]

_PAGE_SIZE = 1000  # GetTimeline's cap by default; fewer when --limit asks for fewer
_PROPERTIES_SHOWN = 80  # characters of the properties' JSON in a table cell
# The channels a filter may name, in the contract's order.
_CHANNELS = tuple(
    v.name for v in event_pb2.Channel.DESCRIPTOR.values if v.number != event_pb2.CHANNEL_UNSPECIFIED
)


def subject_request(subject: str) -> pb.GetTimelineRequest:
    """The request naming `subject` (subjects.py)."""
    ref = person_ref(subject)
    if ref.HasField("identifier"):
        return pb.GetTimelineRequest(identifier=ref.identifier)
    return pb.GetTimelineRequest(person_id=ref.person_id)


def _properties(event: event_pb2.Event) -> str:
    text = json.dumps(json_format.MessageToDict(event.properties), separators=(",", ":"), ensure_ascii=False)
    shown = "" if text == "{}" else text
    return shown if len(shown) <= _PROPERTIES_SHOWN else f"{shown[: _PROPERTIES_SHOWN - 1]}…"


def _table(events: list[event_pb2.Event]) -> Table:
    """The events as a table. Every cell is a Text: what a sender wrote (a name, an identifier, a property)
    prints as it is, never read as rich markup (`[bold]`) or an emoji code (`:cookie:`)."""
    table = Table()
    for column in ("time (UTC)", "channel", "event", "identifiers", "properties"):
        table.add_column(column)
    for event in events:
        cells = (
            utc_text(event.timestamp),
            channel_name(event.channel),
            event.name or event_pb2.EventType.Name(event.type).removeprefix("EVENT_TYPE_").lower(),
            ", ".join(f"{i.type}:{i.value}" for i in event.identifiers),
            _properties(event),
        )
        table.add_row(*(Text(cell) for cell in cells))
    return table


def timeline_command(
    subject: Annotated[str, typer.Argument(help="A person id, or an identifier as type:value.")],
    *,
    channel: Annotated[
        list[str] | None, typer.Option(help="Only events on this channel (web, email, …); repeat for more.")
    ] = None,
    event: Annotated[
        list[str] | None, typer.Option(help="Only events of this name; repeat for more.")
    ] = None,
    since: Annotated[
        str, typer.Option(help="Events from this time on: RFC 3339, or a duration like 7d.")
    ] = "",
    until: Annotated[str, typer.Option(help="Events before this time: RFC 3339, or a duration.")] = "",
    oldest_first: Annotated[bool, typer.Option(help="Oldest events first (default: newest first).")] = False,
    limit: Annotated[int, typer.Option(min=1, help="At most this many events.")] = 50,
    as_json: Annotated[
        bool, typer.Option("--json", help="JSON Lines on standard output, one event per line.")
    ] = False,
    api_key: ReadKeyOption,
    gateway: GatewayOption = GATEWAY,
    tls: TlsOption = False,
) -> None:
    """Print a customer's timeline across channels: a person id's, or that of the person holding an
    identifier."""
    request = subject_request(subject)
    request.channels.extend(channel_value(name) for name in channel or [])
    request.event_names.extend(name.strip() for name in event or [] if name.strip())
    if since:
        request.time_range.start.FromDatetime(parse_time(since))
    if until:
        request.time_range.end.FromDatetime(parse_time(until))
    request.order = pb.TIMELINE_ORDER_OLDEST_FIRST if oldest_first else pb.TIMELINE_ORDER_NEWEST_FIRST
    events: list[event_pb2.Event] = []
    person = ""
    more = False
    with open_channel(gateway, tls) as grpc_channel:
        stub = pb_grpc.JourneyServiceStub(grpc_channel)
        while len(events) < limit:
            request.page_size = min(_PAGE_SIZE, limit - len(events))
            try:
                page = stub.GetTimeline(request, metadata=bearer(api_key), timeout=30)
            except grpc.RpcError as error:
                raise failure(error, subject) from None
            events.extend(page.events)
            person = person or page.person_id
            more = bool(page.next_page_token)
            if not more:
                break
            request.page_token = page.next_page_token
    if as_json:
        for found in events:
            sys.stdout.write(
                json_format.MessageToJson(found, preserving_proto_field_name=True, indent=None) + "\n"
            )
    else:
        out.print(_table(events))
    who = f"person {person}" if person else subject
    order = "oldest" if oldest_first else "newest"
    err.print(f"{who}: {len(events)} events, {order} first{'; more with a higher --limit' if more else ''}")
