"""`wayline decisions get ID` and `wayline decisions export --since ...`: decision traces, via the gateway.

`get` prints one decision's trace (every candidate and what removed or ranked it, the priority factors, the
model version, the chosen action's probability, the feedback) as indented protobuf JSON. `export` streams the
tenant's traces in decision-time order as JSON Lines (one compact protobuf JSON Decision per line) to
standard output, for offline policy evaluation: `wayline decisions export --since 7d > decisions.jsonl`.
"""

from __future__ import annotations

import datetime
import re
import sys
from typing import Annotated

import grpc
import typer
from google.protobuf import json_format

from wayline.decision.v1 import decision_service_pb2 as pb
from wayline.decision.v1 import decision_service_pb2_grpc as pb_grpc
from wayline.event.v1 import event_pb2
from wayline_cli.gateway import (
    GATEWAY,
    GatewayOption,
    ReadKeyOption,
    TlsOption,
    bearer,
    err,
    failure,
    open_channel,
)

__all__ = ["decisions_app", "parse_time"]

_AGO = re.compile(r"([0-9]+)([smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}

decisions_app = typer.Typer(help="Read decision traces: one, or all of a period.", no_args_is_help=True)


def parse_time(text: str, now: datetime.datetime | None = None) -> datetime.datetime:
    """An RFC 3339 time (a date alone is its midnight, UTC), or a duration before now: `90s`, `15m`, `24h`,
    `7d`."""
    now = now or datetime.datetime.now(datetime.UTC)
    ago = _AGO.fullmatch(text.strip())
    if ago:
        try:
            return now - datetime.timedelta(**{_UNITS[ago.group(2)]: int(ago.group(1))})
        except (OverflowError, ValueError):  # before year 1, or past int()'s 4,300 digits
            raise typer.BadParameter(f"{text!r} reaches back before the year 1") from None
    try:
        parsed = datetime.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is neither an RFC 3339 time nor a duration like 7d or 24h"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.UTC)


@decisions_app.command()
def get(
    decision_id: Annotated[str, typer.Argument(help="The decision id Decide returned.")],
    *,
    api_key: ReadKeyOption,
    gateway: GatewayOption = GATEWAY,
    tls: TlsOption = False,
) -> None:
    """Print one decision's trace, with the feedback received, as JSON."""
    auth = bearer(api_key)
    with open_channel(gateway, tls) as channel:
        stub = pb_grpc.DecisionServiceStub(channel)
        try:
            found = stub.GetDecision(
                pb.GetDecisionRequest(decision_id=decision_id), metadata=auth, timeout=30
            )
        except grpc.RpcError as error:
            raise failure(error, decision_id) from None
    sys.stdout.write(json_format.MessageToJson(found.decision, preserving_proto_field_name=True) + "\n")


@decisions_app.command()
def export(
    *,
    since: Annotated[str, typer.Option(help="Decisions from this time on: RFC 3339, or a duration like 7d.")],
    until: Annotated[
        str, typer.Option(help="Decisions before this time (RFC 3339 or a duration); default now.")
    ] = "",
    model: Annotated[str, typer.Option(help="Only this model's decisions, e.g. next-best-offer.")] = "",
    batch_size: Annotated[int, typer.Option(help="Decisions per streamed message, 1 to 1,000.")] = 500,
    api_key: ReadKeyOption,
    gateway: GatewayOption = GATEWAY,
    tls: TlsOption = False,
) -> None:
    """Write the period's decision traces, with their feedback, as JSON Lines in decision-time order."""
    time_range = event_pb2.TimeRange()
    time_range.start.FromDatetime(parse_time(since))
    if until:
        time_range.end.FromDatetime(parse_time(until))
    request = pb.ExportDecisionsRequest(
        time_range=time_range,
        model=f"models/{model.removeprefix('models/')}" if model else "",
        batch_size=batch_size,
    )
    auth = bearer(api_key)
    written = 0
    with open_channel(gateway, tls) as channel:
        stub = pb_grpc.DecisionServiceStub(channel)
        try:
            for response in stub.ExportDecisions(request, metadata=auth, timeout=3600):
                for decision in response.decisions:
                    sys.stdout.write(
                        json_format.MessageToJson(decision, preserving_proto_field_name=True, indent=None)
                        + "\n"
                    )
                written += len(response.decisions)
        except grpc.RpcError as error:
            err.print(f"{written} decisions written before the error")
            raise failure(error, "export") from None
    err.print(f"{written} decisions")
