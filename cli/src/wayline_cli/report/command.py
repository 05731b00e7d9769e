"""`wayline report --api-key KEY --from 2026-11-01 --to 2026-12-01 --output report.html`: the typer front end
of collect.py and document.py. An RPC error is printed with its code and ends the command with status 1; so
does a `--flow` the tenant does not have, or a console bundle missing from the gateway package."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import grpc
import typer
from rich.markup import escape

from wayline_cli.flows import ApiKeyOption
from wayline_cli.gateway import GATEWAY, TlsOption, bearer, err, failure, open_channel, out
from wayline_cli.report.collect import Section, UnknownFlowError, collect
from wayline_cli.report.document import ReportAssets, ReportHeader, render
from wayline_cli.report.requests import ReportQuery

__all__ = ["report_command", "write_report"]

AddressOption = Annotated[
    str, typer.Option("--gateway", "--address", help="host:port of the Wayline gateway.")
]


def _moment(text: str, option: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter("a date or an ISO 8601 time, e.g. 2026-11-01", param_hint=option) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _steps(funnel: str) -> tuple[str, ...]:
    steps = tuple(step.strip() for step in funnel.split(",") if step.strip())
    if funnel and not 2 <= len(steps) <= 20:
        raise typer.BadParameter("2 to 20 event names, separated by commas", param_hint="--funnel")
    return steps


def write_report(
    channel: grpc.Channel, api_key: str, query: ReportQuery, output: Path, *, tenant: str = ""
) -> list[Section]:
    """Collect the report's answers over `channel` with `api_key` and write the file; its sections."""
    assets = ReportAssets.from_package()  # first: a missing bundle should fail before any call
    sections = collect(channel, bearer(api_key), query)
    header = ReportHeader(tenant, query.start, query.end, datetime.now(UTC))
    output.write_text(render(header, sections, assets), encoding="utf-8")
    return sections


def report_command(
    *,
    api_key: ApiKeyOption,
    start: Annotated[str, typer.Option("--from", help="The range's start (a date or ISO 8601 time, UTC).")],
    end: Annotated[str, typer.Option("--to", help="...and its end, exclusive.")],
    output: Annotated[Path, typer.Option(help="The HTML file to write.")] = Path("report.html"),
    funnel: Annotated[
        str, typer.Option(help='The funnel\'s steps, event names separated by commas: "A,B,C".')
    ] = "",
    paths_start: Annotated[str, typer.Option(help="Paths start at this event (default: any).")] = "",
    currency: Annotated[
        str,
        typer.Option(
            help="The currency of the customer value and of the buyers (ISO 4217: three upper-case letters)."
        ),
    ] = "EUR",
    flow: Annotated[
        list[str] | None,
        typer.Option(help="Only this flow (id or flows/{id}); repeat for more. Default: all."),
    ] = None,
    tenant: Annotated[
        str, typer.Option(help="The tenant's name for the title (the key decides whose data it holds).")
    ] = "",
    gateway: AddressOption = GATEWAY,
    tls: TlsOption = False,
) -> None:
    """Write a tenant's paths, funnel, retention, lifecycle, customer value, activity and sentiment by
    channel, buyers by activity, segments, flows and models over a time range as one self-contained HTML file
    (it makes no network call when opened)."""
    try:
        query = ReportQuery(
            _moment(start, "--from"),
            _moment(end, "--to"),
            funnel_steps=_steps(funnel),
            paths_start=paths_start,
            flows=tuple(flow or ()),
            currency=currency,
        )
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--from/--to") from None
    with open_channel(gateway, tls) as channel:
        try:
            sections = write_report(channel, api_key, query, output, tenant=tenant)
        except grpc.RpcError as error:
            raise failure(error) from None
        except (UnknownFlowError, FileNotFoundError) as error:
            err.print(f"[red]{escape(str(error))}[/red]")
            raise typer.Exit(1) from None
    out.print(f"wrote {output} ({output.stat().st_size:,} bytes): {len(sections)} sections")
    for section in sections:
        out.print(f"  {section.title}: {section.empty or section.note or 'drawn'}")
