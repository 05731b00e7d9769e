"""`wayline value`: what a tenant's customers are worth, via the gateway (GetCustomerValueSummary and
GetCustomerValue's bulk mode).

Printed for one currency and range: the purchasers, their historic value and purchases; per RFM segment the
persons, their share, value, share of value, purchases and mean days since the last purchase; the R by FM
grid of persons; the value quantiles; and the most valuable customers (`--top`), only those of chosen RFM
segments with `--rfm` (the customers at risk, to act on). `--segment` narrows the population to the members
of segments (scores stay those the tenant ranks them by). With `--json`, the summary as the API returns it.
"""

from __future__ import annotations

import sys
from decimal import Decimal
from typing import Annotated

import grpc
import typer
from google.protobuf import json_format
from rich.table import Table

from wayline.event.v1 import event_pb2
from wayline.journeys.v1 import customer_value_pb2 as value_pb
from wayline.journeys.v1 import journeys_service_pb2 as pb
from wayline.journeys.v1 import journeys_service_pb2_grpc as pb_grpc
from wayline_cli.decisions import parse_time
from wayline_cli.gateway import (
    GATEWAY,
    GatewayOption,
    ReadKeyOption,
    TlsOption,
    bearer,
    failure,
    open_channel,
    out,
)
from wayline_cli.times import utc_text

__all__ = ["amount", "money", "rfm_segment", "segment_name", "value_command"]

_SCORES = range(1, 6)
_LEVELS = {0.1: "10 %", 0.25: "25 %", 0.5: "median", 0.75: "75 %", 0.9: "90 %", 0.99: "99 %", 1.0: "largest"}


def amount(value: event_pb2.Money) -> Decimal:
    return Decimal(value.units) + Decimal(value.nanos).scaleb(-9)


def money(value: event_pb2.Money) -> str:
    return f"{amount(value):,.2f} {value.currency_code}"


def segment_name(segment: value_pb.RfmSegment.ValueType) -> str:
    """`RFM_SEGMENT_AT_RISK` as "at risk"."""
    return value_pb.RfmSegment.Name(segment).removeprefix("RFM_SEGMENT_").lower().replace("_", " ")


def rfm_segment(name: str) -> value_pb.RfmSegment.ValueType:
    """ "at risk", "at_risk" or "RFM_SEGMENT_AT_RISK" as the contract's value."""
    key = name.strip().upper().replace(" ", "_").replace("-", "_").removeprefix("RFM_SEGMENT_")
    try:
        value = value_pb.RfmSegment.Value(f"RFM_SEGMENT_{key}")
    except ValueError:
        value = value_pb.RFM_SEGMENT_UNSPECIFIED
    if value == value_pb.RFM_SEGMENT_UNSPECIFIED:
        known = ", ".join(segment_name(v) for v in value_pb.RfmSegment.values() if v)
        raise typer.BadParameter(f"{name!r} is no RFM segment; one of: {known}", param_hint="--rfm")
    return value


def _share(part: Decimal | int, whole: Decimal | int) -> str:
    return f"{Decimal(part) / Decimal(whole):.0%}" if whole else "—"


def _segments(summary: pb.GetCustomerValueSummaryResponse) -> Table:
    table = Table(title="RFM segments", title_justify="left")
    for column in (
        "segment",
        "persons",
        "of purchasers",
        "historic value",
        "of value",
        "purchases",
        "days since",
    ):
        table.add_column(column, justify="left" if column == "segment" else "right")
    total = amount(summary.historic_value)
    for segment in summary.segments:
        table.add_row(
            segment_name(segment.segment),
            f"{segment.persons:,}",
            _share(segment.persons, summary.purchasers),
            money(segment.historic_value),
            _share(amount(segment.historic_value), total),
            f"{segment.purchase_count:,}",
            f"{segment.average_recency_days:,.1f}",
        )
    return table


def _grid(summary: pb.GetCustomerValueSummaryResponse) -> Table:
    """Recency score down (5, the most recent, first), FM score across: persons per cell."""
    persons = {(c.recency_score, c.fm_score): c.persons for c in summary.cells}
    table = Table(title="Persons by recency (R) and frequency-monetary (FM) score", title_justify="left")
    table.add_column("R \\ FM")
    for fm in _SCORES:
        table.add_column(str(fm), justify="right")
    for r in reversed(_SCORES):
        table.add_row(str(r), *(f"{persons.get((r, fm), 0):,}" for fm in _SCORES))
    return table


def _top(values: list[value_pb.CustomerValue], segments: list[value_pb.RfmSegment.ValueType]) -> Table:
    of = f" of {', '.join(segment_name(s) for s in segments)}" if segments else ""
    table = Table(title=f"The {len(values)} most valuable customers{of}", title_justify="left")
    for column in ("person", "historic value", "purchases", "days since", "R F M", "segment"):
        table.add_column(column, justify="left" if column in ("person", "segment") else "right")
    for one in values:
        table.add_row(
            one.person_id,
            money(one.historic_value),
            f"{one.purchase_count:,}",
            str(one.recency_days),
            f"{one.recency_score} {one.frequency_score} {one.monetary_score}",
            segment_name(one.rfm_segment),
        )
    return table


def value_command(
    *,
    currency: Annotated[
        str, typer.Option(help="The ISO 4217 currency to count (revenue in others is ignored).")
    ] = "EUR",
    since: Annotated[
        str, typer.Option(help="Purchases from this time on: RFC 3339, or a duration like 90d.")
    ] = "",
    until: Annotated[
        str,
        typer.Option(help="Purchases before this time (recency is measured to it): RFC 3339 or a duration."),
    ] = "",
    event: Annotated[
        list[str] | None, typer.Option(help="Only events of this name count as purchases; repeat for more.")
    ] = None,
    segment: Annotated[
        list[str] | None, typer.Option(help="Only current members of this segment (its id); repeat for more.")
    ] = None,
    top: Annotated[int, typer.Option(min=0, max=1000, help="List this many most valuable customers.")] = 10,
    rfm: Annotated[
        list[str] | None,
        typer.Option(
            help="List only the customers of this RFM segment (at_risk, champions, …); repeat for more."
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="The summary as the API returns it (JSON).")
    ] = False,
    api_key: ReadKeyOption,
    gateway: GatewayOption = GATEWAY,
    tls: TlsOption = False,
) -> None:
    """Print what the customers are worth: totals, RFM segments and grid, value quantiles, top customers."""
    summary_request = pb.GetCustomerValueSummaryRequest(
        currency_code=currency, purchase_event_names=[n.strip() for n in event or [] if n.strip()]
    )
    if since:
        summary_request.time_range.start.FromDatetime(parse_time(since))
    if until:
        summary_request.time_range.end.FromDatetime(parse_time(until))
    for segment_id in segment or []:
        summary_request.population.segments.append(
            segment_id if segment_id.startswith("segments/") else f"segments/{segment_id}"
        )
    chosen = [rfm_segment(name) for name in rfm or []]
    with open_channel(gateway, tls) as channel:
        stub = pb_grpc.JourneyServiceStub(channel)
        try:
            summary = stub.GetCustomerValueSummary(summary_request, metadata=bearer(api_key), timeout=60)
            if not summary_request.time_range.HasField("end"):  # the top list measured to the same instant
                summary_request.time_range.end.CopyFrom(summary.end_time)
            listed = (
                stub.GetCustomerValue(
                    pb.GetCustomerValueRequest(
                        currency_code=summary_request.currency_code,
                        time_range=summary_request.time_range,
                        purchase_event_names=summary_request.purchase_event_names,
                        population=summary_request.population,
                        page_size=top,
                        rfm_segments=chosen,
                    ),
                    metadata=bearer(api_key),
                    timeout=60,
                ).values
                if top and summary.purchasers and not as_json
                else []
            )
        except grpc.RpcError as error:
            raise failure(error) from None
    if as_json:
        sys.stdout.write(json_format.MessageToJson(summary, preserving_proto_field_name=True) + "\n")
        return
    end = utc_text(summary.end_time)
    who = f"{summary.purchasers:,} purchaser{'' if summary.purchasers == 1 else 's'}"
    out.print(
        f"{who} in {currency}, historic value {money(summary.historic_value)}, "
        f"{summary.purchase_count:,} purchases; recency measured to {end} UTC"
    )
    if not summary.purchasers:
        return
    out.print(_segments(summary))
    out.print(_grid(summary))
    quantiles = ", ".join(
        f"{_LEVELS.get(q.quantile, q.quantile)} {money(q.value)}" for q in summary.value_quantiles
    )
    out.print(f"Historic value per purchaser: {quantiles}", soft_wrap=True)
    if listed:
        out.print(_top(list(listed), chosen))
