"""The demo's operations step, what a platform team sees of the run:
- each service's Prometheus endpoint scraped live: the domain counters of what the demo just did (events
  accepted and refused, merges, decisions by model version, contacts the policy suppressed, spool lag);
- a rolling restart's step on journeys while events keep arriving: SIGTERM, drain, exit 0; the event sent
  while it was down is acknowledged by ingest's spool and reaches journeys once it is back;
- once the suite has stopped, the journey store exported as `wayline store export` does (the first step of a
  move from the embedded engine to a ClickHouse cluster, docs/runbooks/move-to-a-clickhouse-cluster.md).
"""

from __future__ import annotations

import time
import urllib.request
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import grpc
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console
from rich.table import Table

from wayline.common.timestamps import to_timestamp
from wayline.event.v1 import event_pb2
from wayline.ingest.v1 import ingest_service_pb2 as ingest_pb
from wayline.ingest.v1 import ingest_service_pb2_grpc as ingest_grpc
from wayline.journeys.v1 import journeys_service_pb2 as journeys_pb
from wayline.journeys.v1 import journeys_service_pb2_grpc as journeys_grpc
from wayline_cli.store.dump import export_store
from wayline_cli.store.location import StoreLocation
from wayline_cli.suite import Suite

__all__ = ["export_journey_store", "show_operations"]

Auth = tuple[tuple[str, str], ...]
Series = dict[tuple[tuple[str, str], ...], float]


class Samples(dict[str, Series]):
    """A scrape: per metric family, each sample's labels and value; `gauges` names the families that are
    gauges (their zeros mean something, a counter's zero series do not)."""

    def __init__(self) -> None:
        super().__init__()
        self.gauges: set[str] = set()

    def __missing__(self, family: str) -> Series:
        return self.setdefault(family, {})


PROBE_USER = "u-ops-probe"
# What each service's row shows: (metric family as the exporter names it, the label it is broken down by).
HIGHLIGHTS: dict[str, list[tuple[str, str]]] = {
    # The calls the gateway served itself, then those its nginx data plane passed or answered (ADR 105).
    "gateway": [
        ("rpc_server_requests", "rpc_grpc_status_code"),
        ("wayline_gateway_data_plane_requests", "rpc_grpc_status_code"),
    ],
    "ingest": [
        ("ingest_events_accepted", ""),
        ("ingest_events_rejected", "reason"),
        ("ingest_spool_lag_seconds", "sink"),
    ],
    "identity": [("identity_merges", "kind")],
    "decision": [("decision_decisions", "version")],
    "orchestrator": [("orchestrator_contacts_suppressed", "reason")],
}


def scrape(port: int) -> Samples:
    """One service's metrics endpoint: per family, each sample's labels and value (counters by their family
    name, without `_total`, as the parser gives them)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    samples = Samples()
    for family in text_string_to_metric_families(text):
        if family.type == "gauge":
            samples.gauges.add(family.name)
        for sample in family.samples:
            if sample.name in (family.name, f"{family.name}_total"):
                samples[family.name][tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def _breakdown(series: Series, label: str, gauge: bool) -> str:
    totals: dict[str, float] = defaultdict(float)
    for labels, value in series.items():
        totals[dict(labels).get(label, "") if label else ""] += value
    # A counter's zero series (started at zero so that rates see the first increment) say nothing here; a
    # gauge's zero does (a sink caught up).
    shown = [(key, value) for key, value in sorted(totals.items()) if value or gauge]
    if not label:
        return f"{sum(totals.values()):,.0f}"
    return ", ".join(f"{key} {value:,.3g}" for key, value in shown) or "0"


def show_metrics(suite: Suite, console: Console) -> None:
    table = Table(title="live metrics, scraped from each service's Prometheus endpoint")
    for column in ("service", "metric", "value"):
        table.add_column(column)
    for service, highlights in HIGHLIGHTS.items():
        samples = scrape(suite.metrics_ports[service])
        for family, label in highlights:
            name = family + (f" by {label}" if label else "")
            table.add_row(service, name, _breakdown(samples[family], label, family in samples.gauges))
    console.print(table)


def _probe_event() -> event_pb2.Event:
    return event_pb2.Event(
        event_id=str(uuid.uuid4()),
        type=event_pb2.EVENT_TYPE_TRACK,
        name="Restart Probe",
        channel=event_pb2.CHANNEL_WEB,
        timestamp=to_timestamp(datetime.now(UTC)),
        identifiers=[event_pb2.Identifier(type="user_id", value=PROBE_USER)],
    )


def _probe_stored(journeys: journeys_grpc.JourneyServiceStub, auth: Auth) -> bool:
    probe = event_pb2.Identifier(type="user_id", value=PROBE_USER)
    request = journeys_pb.GetTimelineRequest(identifier=probe)
    try:
        events = journeys.GetTimeline(request, metadata=auth, timeout=10).events
    except grpc.RpcError as error:
        if error.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.UNAVAILABLE):
            return False
        raise
    return any(e.name == "Restart Probe" for e in events)


def show_rolling_restart(suite: Suite, channel: grpc.Channel, auth: Auth, console: Console) -> None:
    """Journeys stopped as Kubernetes stops a pod, an event sent meanwhile, journeys started again."""
    began = time.monotonic()
    code = suite.stop_service("journeys")
    stopped = time.monotonic() - began
    accepted = ingest_grpc.IngestServiceStub(channel).Track(
        ingest_pb.TrackRequest(event=_probe_event()), metadata=auth, timeout=10
    )
    suite.start_service("journeys")
    suite.wait_serving("journeys")
    serving = time.monotonic() - began
    journeys = journeys_grpc.JourneyServiceStub(channel)
    deadline = time.monotonic() + 60
    while not _probe_stored(journeys, auth):
        if time.monotonic() > deadline:
            raise RuntimeError("the event sent while journeys was down never reached it")
        time.sleep(0.2)
    console.print(
        f"rolling restart of journeys: SIGTERM, drained, exit code {code} after {stopped:.1f}s; serving "
        f"again after {serving:.1f}s. A Track sent while it was down was acknowledged by ingest (event "
        f"{accepted.event_id}) and reached journeys {time.monotonic() - began:.1f}s after the SIGTERM."
    )


def show_operations(suite: Suite, channel: grpc.Channel, auth: Auth, console: Console) -> None:
    show_metrics(suite, console)
    show_rolling_restart(suite, channel, auth, console)


def export_journey_store(data_dir: Path, directory: Path, console: Console) -> None:
    """The stopped suite's journey store, exported as `wayline store export --data-dir` does."""
    manifest = export_store(StoreLocation.of(data_dir=data_dir, database="wayline"), directory)
    rows = sum(entry.rows for entry in manifest.tables)
    console.print(
        f"journey store exported (wayline store export): {len(manifest.tables)} tables, {rows:,} rows, "
        f"schema version {manifest.schema_version}, to {directory}"
    )
