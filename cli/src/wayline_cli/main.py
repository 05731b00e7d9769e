"""`wayline up` runs the suite until Ctrl-C or SIGTERM; `wayline demo` shows it working end to end."""

from __future__ import annotations

import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import grpc
import typer
from google.rpc import error_details_pb2
from rich.table import Table

from wayline.common.errors import status_details
from wayline.common.signals import TerminationSignals
from wayline.common.timestamps import to_datetime
from wayline.event.v1 import event_pb2
from wayline.identity.v1 import identity_service_pb2 as identity_pb
from wayline.identity.v1 import identity_service_pb2_grpc as identity_grpc
from wayline.ingest.v1 import ingest_service_pb2 as ingest_pb
from wayline.ingest.v1 import ingest_service_pb2_grpc as ingest_grpc
from wayline.journeys.v1 import journeys_service_pb2 as journeys_pb
from wayline.journeys.v1 import journeys_service_pb2_grpc as journeys_grpc
from wayline_cli import (
    demo,
    demo_clv,
    demo_decide,
    demo_flows,
    demo_gateway,
    demo_http,
    demo_identity,
    demo_ingest,
    demo_journeys,
    demo_ml,
    demo_operations,
    demo_report,
    terminal,
)
from wayline_cli.actions import actions_app
from wayline_cli.channels import channel_name
from wayline_cli.connectors import connectors_app
from wayline_cli.contacts import contacts_app
from wayline_cli.decisions import decisions_app
from wayline_cli.flow_stats import register as register_flow_stats
from wayline_cli.flows import flows_app
from wayline_cli.importing.command import import_command
from wayline_cli.keys import keys_app
from wayline_cli.ml import ml_app
from wayline_cli.model_traffic import models_app
from wayline_cli.profile import profile_command
from wayline_cli.report.command import report_command
from wayline_cli.segments import segments_app
from wayline_cli.store.command import store_app
from wayline_cli.suite import SERVICES, Suite, SuiteError
from wayline_cli.timeline import timeline_command
from wayline_cli.trends import trends_command
from wayline_cli.value import value_command
from wayline_gateway.data_plane.process import nginx_unavailable

DEMO_REPORT = "wayline-demo-report.html"
app = typer.Typer(help="Wayline: the open-source customer journey platform.", no_args_is_help=True)
console = terminal.console()


def _endpoints(suite: Suite) -> Table:
    table = Table(title="Wayline is up", title_style="bold green")
    table.add_column("service")
    table.add_column("gRPC")
    table.add_column("metrics")
    table.add_column("log")
    for spec in SERVICES:
        metrics = suite.metrics_ports[spec.name]
        table.add_row(
            spec.name,
            suite.address(spec.name),
            f"http://{suite.host}:{metrics}/metrics" if metrics else "-",
            str(suite.log_dir / f"{spec.name}.log"),
        )
    return table


def _choose_data_plane() -> None:
    """The gateway's public port through its nginx data plane wherever nginx and its Lua module are
    installed, as the Kubernetes overlays deploy it (ADR 107); a `WAYLINE_GATEWAY_DATA_PLANE` set by the
    caller wins. The services inherit the environment."""
    if nginx_unavailable() is None:
        os.environ.setdefault("WAYLINE_GATEWAY_DATA_PLANE", "nginx")


def _data_plane_line(suite: Suite) -> str:
    if os.environ.get("WAYLINE_GATEWAY_DATA_PLANE") == "nginx":
        return (
            f"the gateway's public port {suite.address('gateway')} is nginx's (the nginx data plane, "
            f"ADR 105); the gateway answers what nginx hands it on 127.0.0.1:{suite.gateway_control_port}"
        )
    reason = nginx_unavailable() or "WAYLINE_GATEWAY_DATA_PLANE says python"
    return f"the gateway serves its public port itself (no nginx data plane: {reason})"


def _start(suite: Suite) -> None:
    with console.status("starting the suite…"):
        suite.start()
        try:
            suite.wait_ready()
        except SuiteError as error:
            suite.stop()
            console.print(f"[red]the suite did not start:[/red] {error}")
            raise typer.Exit(1) from error


@app.command()
def up(
    data_dir: Annotated[Path, typer.Option(help="Where every service keeps its state.")] = Path(".wayline"),
    host: Annotated[str, typer.Option(help="Address the services bind to.")] = "127.0.0.1",
    tenant: Annotated[str, typer.Option(help="Tenant of the bootstrap API key.")] = "default",
    free_ports: Annotated[bool, typer.Option(help="Pick free ports instead of the defaults.")] = False,
) -> None:
    """Start every service, wait until each is SERVING, print the endpoints; stop all on Ctrl-C/SIGTERM."""
    if free_ports:
        suite = Suite.on_free_ports(data_dir.resolve(), host=host, tenant=tenant)
    else:
        suite = Suite(data_dir=data_dir.resolve(), host=host, tenant=tenant)
    signals = TerminationSignals()
    _choose_data_plane()
    _start(suite)
    console.print(_endpoints(suite))
    console.print(_data_plane_line(suite))
    console.print(f"gateway API key for tenant [bold]{tenant}[/bold]: [bold]{suite.api_key}[/bold]")
    console.print(
        f"journey console: [bold]http://{suite.host}:{suite.http_port}/console/[/bold] (sign in with a key)"
    )
    console.print("Ctrl-C stops the suite.")
    exited = None
    while not signals.wait(0.5):
        exited = suite.first_exited()
        if exited:
            console.print(f"[red]{exited} stopped unexpectedly:[/red]\n{suite.log_tail(exited)}")
            break
    with console.status("stopping…"):
        codes = suite.stop()
    console.print("stopped: " + ", ".join(f"{name} ({code})" for name, code in codes.items()))
    if exited:
        raise typer.Exit(1)


@app.command("demo")
def demo_command(
    events: Annotated[int, typer.Option(help="How many events to send.")] = 300,
    data_dir: Annotated[
        Path | None, typer.Option(help="State folder; default: a fresh temporary one.")
    ] = None,
) -> None:
    """Start the suite, send touchpoints from many channels and devices through the gateway, and print the
    customers' timelines and the journeys analytics on them, read back through the gateway; then the
    abandoned-cart flow sends through webhook connectors to the demo's own receiver; last, the demo tenant's
    journey report is written: into the data folder, or as wayline-demo-report.html in the system's
    temporary folder when the data folder is a temporary one (removed at the end)."""
    for name, value in demo_decide.DEMO_BUDGETS.items():
        os.environ.setdefault(name, value)  # the services inherit it
    _choose_data_plane()
    with tempfile.TemporaryDirectory(prefix="wayline-demo-") as scratch:
        suite = Suite.on_free_ports((data_dir or Path(scratch)).resolve(), metrics=True)
        report = suite.data_dir / "report.html" if data_dir else Path(tempfile.gettempdir(), DEMO_REPORT)
        _start(suite)
        try:
            _run_demo(suite, events, report)
        finally:
            with console.status("stopping the suite…"):
                suite.stop()
        demo_operations.export_journey_store(suite.data_dir, Path(scratch) / "journeys-export", console)
    console.print("[green]demo finished: every service stopped cleanly.[/green]")


def _run_demo(suite: Suite, count: int, report: Path) -> None:
    console.print(_endpoints(suite))
    console.print(_data_plane_line(suite))
    auth = (("authorization", f"Bearer {suite.api_key}"),)
    with grpc.insecure_channel(suite.address("gateway")) as channel:
        ingest = ingest_grpc.IngestServiceStub(channel)
        journeys = journeys_grpc.JourneyServiceStub(channel)
        sent = demo.demo_events(count, datetime.now(UTC))
        accepted = 0
        for single in sent[:10]:  # a few one at a time, the rest in batches
            ingest.Track(ingest_pb.TrackRequest(event=single), metadata=auth, timeout=10)
            accepted += 1
        half = 10 + (len(sent) - 10) // 2
        for batch in demo.batches(sent[10:half], 50):
            accepted += ingest.TrackBatch(batch, metadata=auth, timeout=30).accepted_count
        accepted += demo_ingest.stream(ingest, sent[half:], auth, console)
        console.print(f"sent {len(sent)} events through the gateway; {accepted} accepted")
        _show_rejections(ingest, auth)
        demo_ingest.show_retry_without_ids(ingest, auth, console)
        demo_ingest.show_tracking_plan(ingest, auth, console)
        _wait_until_stored(journeys, auth, accepted)
        for customer in demo.CUSTOMERS:
            _show_timeline(journeys, customer, auth)
        demo_identity.show_identity(channel, auth, console)
        demo_journeys.show_journeys(channel, auth, console)
        _show_http_collector(channel, suite, auth)
        demo_gateway.show_gateway(channel, auth, console)
        demo_clv.show_clv(channel, suite.address("gateway"), suite.api_key, console)
        version_2 = demo_ml.show_ml(
            channel, suite.address("gateway"), suite.api_key, suite.data_dir / "models", console
        )
        demo_decide.show_decide(channel, auth, "next-best-action", version_2, console)
        demo_flows.show_flows(channel, auth, console)
        demo_operations.show_operations(suite, channel, auth, console)
        demo_report.show_report(suite, channel, report, console)


def _show_http_collector(channel: grpc.Channel, suite: Suite, auth: tuple[tuple[str, str], ...]) -> None:
    """A Segment SDK's batch through the gateway's HTTP port, then read back from the journey store."""
    user_id = "u-segment-sdk"
    accepted = demo_http.post_segment_batch(suite.http_port, suite.api_key, user_id, console)
    identity = identity_grpc.IdentityServiceStub(channel)
    journeys = journeys_grpc.JourneyServiceStub(channel)
    ref = event_pb2.PersonRef(identifier=event_pb2.Identifier(type="user_id", value=user_id))
    deadline = time.monotonic() + 30
    names: list[str] = []
    while time.monotonic() < deadline:
        try:
            person = identity.GetProfile(identity_pb.GetProfileRequest(person=ref), metadata=auth, timeout=10)
            timeline = journeys.GetTimeline(
                journeys_pb.GetTimelineRequest(person_id=person.profile.person_id), metadata=auth, timeout=10
            )
            names = [e.name or event_pb2.EventType.Name(e.type) for e in timeline.events]
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.NOT_FOUND:
                raise
        if len(names) >= accepted:
            break
        time.sleep(0.2)
    console.print(
        f"{user_id}: {len(names)} events in the journey store from HTTP: {', '.join(sorted(names))}"
    )


def _wait_until_stored(
    journeys: journeys_grpc.JourneyServiceStub, auth: tuple[tuple[str, str], ...], accepted: int
) -> None:
    """Acknowledged means durable in ingest's spool; the journey store has them a moment later."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        stored = sum(
            len(journeys.GetTimeline(demo.timeline_request(c, 1000, ""), metadata=auth, timeout=10).events)
            for c in demo.CUSTOMERS
        )
        if stored >= accepted:
            return
        time.sleep(0.2)


def _show_rejections(ingest: ingest_grpc.IngestServiceStub, auth: tuple[tuple[str, str], ...]) -> None:
    try:
        ingest.Track(ingest_pb.TrackRequest(event=demo.invalid_event()), metadata=auth, timeout=10)
    except grpc.RpcError as error:
        console.print(f"an invalid event is refused: [yellow]{error.code().name}[/yellow] {error.details()}")
        for detail in status_details(error):
            if isinstance(detail, error_details_pb2.BadRequest):
                for violation in detail.field_violations:
                    console.print(f"  • {violation.field}: {violation.description} ({violation.reason})")
    try:
        ingest.Track(ingest_pb.TrackRequest(), metadata=(("authorization", "Bearer wrong"),), timeout=10)
    except grpc.RpcError as error:
        console.print(
            f"an unknown API key is refused: [yellow]{error.code().name}[/yellow] {error.details()}"
        )


def _show_timeline(
    journeys: journeys_grpc.JourneyServiceStub, customer: demo.Customer, auth: tuple[tuple[str, str], ...]
) -> None:
    rows: list[event_pb2.Event] = []
    token = ""
    while True:  # page through the whole timeline, 25 at a time
        page = journeys.GetTimeline(demo.timeline_request(customer, 25, token), metadata=auth, timeout=10)
        rows.extend(page.events)
        token = page.next_page_token
        if not token:
            break
    channels = sorted({channel_name(e.channel) for e in rows})
    table = Table(
        title=f"{customer.user_id}: {len(rows)} events on {len(channels)} channels ({', '.join(channels)})",
        title_justify="left",
    )
    for column in ("when (UTC)", "channel", "event", "seen as"):
        table.add_column(column)
    shown = rows if len(rows) <= 12 else [*rows[:6], None, *rows[-5:]]
    for event in shown:
        if event is None:
            table.add_row("…", "…", f"{len(rows) - 11} more", "…")
            continue
        # The identifier beside user_id says which device, browser or address the touchpoint came from.
        device = next((i.value for i in event.identifiers if i.type != "user_id"), "")
        table.add_row(
            to_datetime(event.timestamp).strftime("%Y-%m-%d %H:%M"),
            channel_name(event.channel),
            event.name,
            device,
        )
    console.print(table)


app.command("import")(import_command)
app.command("report")(report_command)
app.command("timeline")(timeline_command)
app.command("profile")(profile_command)
app.command("value")(value_command)
app.command("trends")(trends_command)
app.add_typer(actions_app, name="actions")
app.add_typer(connectors_app, name="connectors")
app.add_typer(contacts_app, name="contacts")
register_flow_stats(flows_app)
app.add_typer(flows_app, name="flows")
app.add_typer(decisions_app, name="decisions")
app.add_typer(keys_app, name="keys")
app.add_typer(ml_app, name="ml")
app.add_typer(models_app, name="models")
app.add_typer(segments_app, name="segments")
app.add_typer(store_app, name="store")


if __name__ == "__main__":
    app()
