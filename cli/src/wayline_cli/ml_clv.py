"""`wayline ml clv`: predicted customer value. Reads every purchaser's lifetime summary through the gateway,
fits BG/NBD and Gamma-Gamma (wayline_ml.clv), and writes each person's expected purchases and value over 90
and 365 days, P(alive) and the fit's name back as person traits through ingest, for segments, flow branches
and decisions. Re-running the same fit (same as-of time and inputs) sends the same events again, which the
pipeline deduplicates."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time
from typing import Annotated

import grpc
import numpy as np
import typer
from rich.progress import BarColumn, Progress, TaskID, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from wayline.client import DeliveryError
from wayline.common.registry import REGISTRY
from wayline_cli import terminal
from wayline_cli.gateway import api_key_option, checked_gateway
from wayline_ml.clv.run import ClvJob, ClvReport, run_clv
from wayline_ml.clv.store import SummaryQuery

__all__ = ["clv_command", "register", "summary_table"]

console = terminal.console(stderr=True)
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_PREFIX = re.compile(r"^[a-z][a-z0-9_]{0,30}$")


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _midnight() -> datetime:
    return datetime.combine(datetime.now(UTC).date(), time(), tzinfo=UTC)


def clv_command(  # noqa: PLR0917 - typer passes the command's options positionally
    currency: Annotated[str, typer.Option(help="The ISO 4217 currency of the revenue to count.")] = "EUR",
    as_of: Annotated[
        datetime | None,
        typer.Option(help="The end of the purchases read (UTC), the fit's as-of time; default: today 00:00."),
    ] = None,
    since: Annotated[
        datetime | None, typer.Option(help="The start of the purchases read (UTC); default: all history.")
    ] = None,
    segment: Annotated[
        list[str] | None, typer.Option(help="Only members of this segment (segments/ID); repeatable.")
    ] = None,
    purchase_event: Annotated[
        list[str] | None,
        typer.Option(help="Only events of this name count as purchases; repeatable (default: any revenue)."),
    ] = None,
    prefix: Annotated[str, typer.Option(help="The traits' prefix: <prefix>_expected_value_90d, ...")] = "clv",
    write: Annotated[bool, typer.Option(help="Write the traits (--no-write: fit and show only).")] = True,
    gateway: Annotated[
        str, typer.Option(callback=checked_gateway, help="host:port of the Wayline gateway.")
    ] = (f"localhost:{REGISTRY['gateway'].port}"),
    api_key: Annotated[
        str,
        api_key_option("An API key with the read and write scopes."),
    ] = "",
    tls: Annotated[bool, typer.Option(help="Use TLS to reach the gateway.")] = False,
) -> None:
    """Fit BG/NBD + Gamma-Gamma on the purchasers' lifetime summaries and write the predictions as traits."""
    if not api_key:
        raise typer.BadParameter("needed (or WAYLINE_API_KEY)", param_hint="--api-key")
    if not _CURRENCY.fullmatch(currency):
        raise typer.BadParameter(f"{currency!r} is not an ISO 4217 code like EUR", param_hint="--currency")
    if not _PREFIX.fullmatch(prefix):
        raise typer.BadParameter("lower_snake_case, at most 31 characters", param_hint="--prefix")
    end = _utc(as_of) if as_of else _midnight()
    if end > datetime.now(UTC):
        raise typer.BadParameter("the as-of time cannot be in the future", param_hint="--as-of")
    query = SummaryQuery(
        currency=currency,
        as_of=end,
        since=_utc(since) if since else None,
        segments=tuple(segment or ()),
        purchase_event_names=tuple(purchase_event or ()),
    )
    job = ClvJob(gateway=gateway, api_key=api_key, query=query, tls=tls, prefix=prefix, write=write)
    try:
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            tasks: dict[str, TaskID] = {}

            def step(name: str, done: int, total: int | None) -> None:
                if name not in tasks:
                    tasks[name] = progress.add_task(name, total=total)
                progress.update(tasks[name], completed=done, total=total)

            report = run_clv(job, step)
    except ValueError as error:
        console.print(f"[red]cannot fit:[/red] {error}")
        raise typer.Exit(1) from error
    except grpc.RpcError as error:
        console.print(f"[red]{error.code().name}[/red]: {error.details()}")
        raise typer.Exit(1) from error
    except DeliveryError as error:
        console.print(f"[red]traits not written:[/red] {error}")
        raise typer.Exit(1) from error
    console.print(summary_table(report))
    if report.written and report.written.rejected:
        for line in report.written.rejections:
            console.print(f"  rejected {line}")
        raise typer.Exit(1)


def summary_table(report: ClvReport) -> Table:
    """The fit, the predictions' spread and what was written, as one table."""
    transactions, value = report.model.transactions, report.model.value
    t, v = transactions.params, value.params
    summaries = report.customers.summaries
    currency = report.key.query.currency
    table = Table(
        title=f"predicted customer value, as of {report.key.query.as_of:%Y-%m-%d %H:%M} UTC",
        show_header=False,
    )
    table.add_column("", style="bold")
    table.add_column("", justify="right")
    table.add_row("model · fit", f"{report.model.model} · {report.key.fit_id}")
    table.add_row("customers valued (repeat buyers)", f"{len(summaries):,} ({summaries.repeat_buyers:,})")
    table.add_row(
        "BG/NBD r, alpha (days), a, b",
        f"{t.r:.4g}, {t.alpha:.4g}, {t.a:.4g}, {t.b:.4g}" + ("" if transactions.converged else " (!)"),
    )
    table.add_row("BG/NBD log-likelihood", f"{transactions.log_likelihood:,.1f}")
    table.add_row(
        "Gamma-Gamma p, q, gamma",
        f"{v.p:.4g}, {v.q:.4g}, {v.v:.4g}" + ("" if value.converged else " (!)"),
    )
    table.add_row("mean order value (population)", f"{v.population_mean:,.2f} {currency}")
    table.add_row("frequency-value correlation", f"{report.correlation:+.2f} (Gamma-Gamma assumes 0)")
    predictions = report.predictions
    table.add_row("P(alive) mean", f"{float(np.mean(predictions.probability_alive)):.3f}")
    for horizon, values in predictions.expected_value.items():
        p50, p90, p99 = np.percentile(values, [50, 90, 99])
        purchases = float(np.mean(predictions.expected_purchases[horizon]))
        table.add_row(f"expected purchases {horizon}d, mean", f"{purchases:.3f}")
        table.add_row(
            f"expected value {horizon}d, mean · p50 · p90 · p99",
            f"{float(np.mean(values)):,.2f} · {p50:,.2f} · {p90:,.2f} · {p99:,.2f} {currency}",
        )
    written = report.written
    if written is None:
        table.add_row("traits written", "none (--no-write)")
    else:
        table.add_row(
            "traits written (identify events)",
            f"{written.accepted:,} accepted, {written.rejected:,} rejected, "
            f"{report.without_identifier:,} persons without an identifier",
        )
    steps = report.seconds
    table.add_row(f"took ({' · '.join(steps)})", " · ".join(f"{s:.2f}s" for s in steps.values()))
    return table


def register(ml_app: typer.Typer) -> None:
    """Add `clv` to the `wayline ml` app."""
    ml_app.command("clv")(clv_command)
