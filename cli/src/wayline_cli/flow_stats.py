"""`wayline flows stats NAME` and `wayline flows simulate FILE|NAME --from --to`: a flow's live counts, and
what a definition would have done over stored history, through the gateway, printed the same way: the
totals, one row per step (arrivals, persons waiting there, sends, suppressions, failed deliveries,
conversions, and the paths taken out of it), and one row per split variant against its control.

`simulate` takes a YAML file as `apply` does (each flow's definition is simulated as written, without
saving it) or a flow's id (its draft).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import grpc
import typer
from rich.table import Table

from wayline.orchestrator.v1 import flow_stats_pb2
from wayline.orchestrator.v1 import orchestrator_service_pb2 as pb
from wayline.orchestrator.v1 import orchestrator_service_pb2_grpc as pb_grpc
from wayline_cli.apply import read_or_exit
from wayline_cli.flows import ApiKeyOption, FlowFileError, read_flows
from wayline_cli.gateway import (
    GATEWAY,
    INT32_MAX,
    GatewayOption,
    TlsOption,
    bearer,
    call,
    failure,
    open_channel,
    out,
)

__all__ = ["register"]


def _name(flow: str) -> str:
    return flow if flow.startswith("flows/") else f"flows/{flow}"


def _print(stats: flow_stats_pb2.FlowStats) -> None:
    out.print(
        f"entered {stats.entered_count}, active {stats.active_count}, converted {stats.converted_count}, "
        f"exited {stats.exited_count} (exit conditions {stats.exit_condition_count}), "
        f"suppressed {stats.suppressed_count}"
    )
    steps = Table("step", "entered", "active", "sent", "suppressed", "errors", "converted", "paths")
    for step in stats.steps:
        paths = ", ".join(f"{b.label} → {b.next_step_id or 'exit'}: {b.count}" for b in step.branches)
        steps.add_row(
            step.step_id,
            *(
                str(n)
                for n in (
                    step.entered_count,
                    step.active_count,
                    step.sent_count,
                    step.suppressed_count,
                    step.error_count,
                    step.converted_count,
                )
            ),
            paths,
        )
    out.print(steps)
    if not stats.variants:
        return
    variants = Table(
        "split", "variant", "entered", "converted", "rate", "lift", "p-value", "95% CI", "significant"
    )
    for v in stats.variants:
        control = v.control
        variants.add_row(
            v.step_id,
            f"{v.label} (control)" if control else v.label,
            str(v.entered_count),
            str(v.converted_count),
            f"{v.conversion_rate:.1%}",
            "-" if control else f"{v.lift_over_control:+.1%}",
            "-" if control else f"{v.p_value:.4f}",
            "-" if control else f"[{v.difference_low:+.1%}, {v.difference_high:+.1%}]",
            "-" if control else ("yes" if v.significant else "no"),
        )
    out.print(variants)


def stats(
    flow: Annotated[str, typer.Argument(help="The flow's id (or flows/{id}).")],
    *,
    version: Annotated[
        int, typer.Option(min=0, max=INT32_MAX, help="A published version; 0 counts every version.")
    ] = 0,
    api_key: ApiKeyOption,
    gateway: GatewayOption = GATEWAY,
    tls: TlsOption = False,
) -> None:
    """Print a flow's live counts: totals, steps with their paths, and split variants."""
    request = pb.GetFlowStatsRequest(name=_name(flow), version=version)
    found = call(
        pb_grpc.OrchestratorServiceStub,
        lambda stub, auth: stub.GetFlowStats(request, metadata=auth, timeout=30),
        what=request.name,
        gateway=gateway,
        tls=tls,
        api_key=api_key,
    )
    _print(found.stats)


def _moment(text: str, option: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter("an ISO 8601 time, e.g. 2026-03-01T00:00", param_hint=option) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def simulate(
    target: Annotated[str, typer.Argument(help="A YAML file of flows (as `apply` takes), or a flow's id.")],
    *,
    start: Annotated[str, typer.Option("--from", help="Replay events from this time (ISO 8601, UTC).")],
    end: Annotated[str, typer.Option("--to", help="...up to this time (exclusive).")],
    max_persons: Annotated[int, typer.Option(help="At most this many persons; 0 means 10,000.")] = 0,
    ignore_contact_policy: Annotated[bool, typer.Option(help="Suppress nothing.")] = False,
    engagement_rate: Annotated[
        float, typer.Option(help="The share of simulated sends engagement branches count as engaged.")
    ] = 0.0,
    api_key: ApiKeyOption,
    gateway: GatewayOption = GATEWAY,
    tls: TlsOption = False,
) -> None:
    """Run a definition (or a flow's draft) over stored events and print what it would have done."""
    template = pb.SimulateFlowRequest(
        max_persons=max_persons,
        ignore_contact_policy=ignore_contact_policy,
        assumed_engagement_rate=engagement_rate,
    )
    template.time_range.start.FromDatetime(_moment(start, "--from"))
    template.time_range.end.FromDatetime(_moment(end, "--to"))
    requests: list[tuple[str, pb.SimulateFlowRequest]] = []
    if Path(target).is_file():
        for flow in read_or_exit(read_flows, Path(target), FlowFileError):
            request = pb.SimulateFlowRequest()
            request.CopyFrom(template)
            request.definition.CopyFrom(flow.definition)
            requests.append((flow.name, request))
    else:
        template.name = _name(target)
        requests.append((template.name, template))
    with open_channel(gateway, tls) as channel:
        stub = pb_grpc.OrchestratorServiceStub(channel)
        for name, request in requests:
            try:
                found = stub.SimulateFlow(request, metadata=bearer(api_key), timeout=600)
            except grpc.RpcError as error:
                raise failure(error, name) from None
            out.print(f"{name}: {found.evaluated_person_count} persons evaluated")
            _print(found.stats)


def register(app: typer.Typer) -> None:
    """Add `stats` and `simulate` to `wayline flows`."""
    app.command("stats")(stats)
    app.command("simulate")(simulate)
