"""The Grafana dashboard and the Prometheus alert rules (the `monitoring` component) read only metrics the
services truly export, under the names the OpenTelemetry Prometheus exporter gives them: the whole suite
runs in a process of its own with the kit's Prometheus endpoint on (tests/observability/metrics_host.py),
is driven until every fact has happened once, and its `/metrics` page is scraped like Prometheus would.
The same scrape shows the domain metrics count what happened, and that docs/observability.md lists every
metric. The assets' structure is checked too: panels with queries on the `datasource` variable, a row per
service with its RED panels, alert rules with expr, for, severity and a summary, and the component renders
them as the PrometheusRule and the ConfigMaps Prometheus and Grafana read."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.deploy.kustomize import Combination, render_combination
from tests.deploy.promql import balanced, metric_names
from wayline.common.registry import SERVICES
from wayline.common.telemetry import RPC_DURATION_BUCKETS_MS
from wayline_cli.suite import free_port

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "deploy" / "kustomize" / "components" / "monitoring"
DASHBOARD = MONITORING / "wayline-dashboard.json"
ALERTS = MONITORING / "alerts.yaml"
METRICS_DOC = ROOT / "docs" / "observability.md"
# Made by Prometheus itself for every target, not by the services.
PROMETHEUS_MADE = {"up"}
# Made by prometheus_client and the SDK for any process; not Wayline's to document.
PROCESS_METRICS = ("process_", "python_", "target_info")
# What the driven suite must have recorded before the scrape is complete (delivery is asynchronous).
DRIVEN = {
    "ingest_sink_dead_letters_total",
    "identity_merges_total",
    "decision_decisions_total",
    "ingest_sink_delivered_total",
    "process_gc_pause_milliseconds_count",
}

Samples = list[tuple[str, dict[str, str], float]]


def scrape(port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return [
        (sample.name, dict(sample.labels), sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    ]


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Samples]:
    root, port = tmp_path_factory.mktemp("metered"), free_port()
    with (root / "host.log").open("wb") as log:
        host = subprocess.Popen(
            [sys.executable, "-m", "tests.observability.metrics_host", str(port), str(root)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 240
            while not (root / "ready").exists():
                assert host.poll() is None, (root / "host.log").read_text()[-3000:]
                assert time.monotonic() < deadline, "the metered suite did not get ready in 240 s"
                time.sleep(0.2)
            found = scrape(port)
            while not {name for name, _, _ in found} >= DRIVEN and time.monotonic() < deadline:
                time.sleep(0.2)
                found = scrape(port)
            yield found
        finally:
            assert host.stdin is not None
            host.stdin.close()  # the host stops its servers and exits
            try:
                host.wait(60)
            except subprocess.TimeoutExpired:
                host.kill()
                host.wait(10)


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of `name`'s samples whose labels include `labels`."""
    return sum(v for n, lbls, v in samples if n == name and labels.items() <= lbls.items())


def dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def alert_rules() -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = []
    for group in yaml.safe_load(ALERTS.read_text())["groups"]:
        rules.extend(group["rules"])
    return rules


def test_the_tokenizer_finds_the_metrics_of_an_expression_and_nothing_else() -> None:
    expr = (
        "histogram_quantile(0.99, sum by (le, rpc_method) (rate(rpc_server_duration_milliseconds_bucket"
        '{rpc_service="decision", rpc_method=~"x|y"}[$__rate_interval]))) > 1e2 and on (sink) '
        "max_over_time(ingest_spool_lag_seconds[1h:5m]) or absent(up == 1) unless bool 2 offset 5m"
    )
    assert metric_names(expr) == {"rpc_server_duration_milliseconds_bucket", "ingest_spool_lag_seconds", "up"}
    assert balanced(expr)
    assert not balanced("sum(rate(x[5m])")
    assert not balanced('x{a="b}')


def test_every_metric_the_dashboard_and_the_alerts_read_is_exported(samples: Samples) -> None:
    exported = {name for name, _, _ in samples} | PROMETHEUS_MADE
    named = {
        (source, name)
        for source, exprs in (
            ("dashboard", dashboard_queries()),
            ("alerts", [r["expr"] for r in alert_rules()]),
        )
        for expr in exprs
        for name in metric_names(expr)
    }
    assert {name for _, name in named} >= {"rpc_server_requests_total", "ingest_spool_lag_seconds"}
    missing = sorted((source, name) for source, name in named if name not in exported)
    assert not missing, f"named but not exported: {missing}; exported: {sorted(exported)}"


def test_the_domain_metrics_count_what_the_suite_did(samples: Samples) -> None:
    # RED: errors are countable by code, per service and method.
    track = "/wayline.ingest.v1.IngestService/Track"
    assert value(samples, "rpc_server_requests_total", rpc_service="ingest", rpc_method=track) == 5
    refused = {"rpc_service": "ingest", "rpc_method": track, "rpc_grpc_status_code": "INVALID_ARGUMENT"}
    assert value(samples, "rpc_server_requests_total", **refused) == 1
    assert value(samples, "rpc_server_duration_milliseconds_count", **refused) == 1
    # Durations in buckets fine enough for millisecond targets, on both sides of a hop.
    for histogram in ("rpc_server_duration_milliseconds_bucket", "rpc_client_duration_milliseconds_bucket"):
        bounds = {float(lbls["le"]) for name, lbls, _ in samples if name == histogram}
        assert bounds == {*map(float, RPC_DURATION_BUCKETS_MS), float("inf")}, histogram
    # The caller's side of a hop: ingest's delivery resolved persons with identity.
    resolve = "/wayline.identity.v1.IdentityService/ResolveIdentities"
    assert (
        value(
            samples, "rpc_client_duration_milliseconds_count", rpc_method=resolve, rpc_grpc_status_code="OK"
        )
        >= 1
    )
    # Ingest: three events spooled, one retry acknowledged again, one refused for a missing name; the
    # orchestrator sink (an address without OrchestratorService) parks what it gets.
    assert value(samples, "ingest_events_accepted_total") == 3
    assert value(samples, "ingest_events_duplicates_total") == 1
    assert value(samples, "ingest_events_rejected_total", reason="REQUIRED") == 1
    assert value(samples, "ingest_sink_dead_letters_total", sink="orchestrator", code="UNIMPLEMENTED") >= 1
    assert value(samples, "ingest_sink_dead_letters_total", sink="journeys") == 0
    sinks = {lbls["sink"] for name, lbls, _ in samples if name == "ingest_spool_lag_seconds"}
    assert sinks == {"journeys", "decision", "orchestrator"}
    assert 0 <= value(samples, "ingest_spool_usage") < 0.01
    # Identity: the identify event joined the anonymous and the known profile.
    assert value(samples, "identity_merges_total", kind="automatic") == 1
    assert value(samples, "identity_merges_total", kind="manual") == 0
    # Decision: one decision by version 1; version 2's damaged package failed to load.
    assert value(samples, "decision_decisions_total", model="metered", version="1", arm="stable") == 1
    assert value(samples, "decision_model_loads_total", model="metered", outcome="loaded") >= 1
    assert value(samples, "decision_model_loads_total", model="metered", outcome="failed") >= 1
    # Orchestrator: the check fell in quiet hours; every other reason and source is there at zero.
    suppressed = {
        (lbls["reason"], lbls["source"]): v
        for name, lbls, v in samples
        if name == "orchestrator_contacts_suppressed_total"
    }
    assert suppressed[("QUIET_HOURS", "check")] == 1
    assert sum(suppressed.values()) == 1
    assert len(suppressed) == 12


def test_the_dashboard_has_a_row_per_service_with_its_red_panels_on_the_datasource_variable() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    rows: dict[str, list[dict[str, Any]]] = {}
    current = ""
    for panel in panels:
        if panel["type"] == "row":
            current = panel["title"]
            rows[current] = []
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip(), (panel["title"], target)
            assert balanced(target["expr"]), (panel["title"], target)
            assert target["datasource"]["uid"] == "${datasource}"
        rows[current].append(panel)
    services = [info.name for info in SERVICES]
    assert sorted(name for name in rows if name in services) == sorted(services)
    for service in services:
        exprs = " ".join(t["expr"] for p in rows[service] for t in p["targets"])
        selector = f'rpc_service="{service}"'
        for red in (
            "rpc_server_requests_total{" + selector,
            'rpc_grpc_status_code!="OK"',
            "rpc_server_duration_milliseconds_bucket{" + selector,
        ):
            assert red in exprs, (service, red)


def test_the_alert_rules_cover_errors_latency_spool_dead_letters_models_and_targets() -> None:
    rules = alert_rules()
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names))
    for rule in rules:
        assert balanced(rule["expr"]), rule["alert"]
        assert metric_names(rule["expr"]), rule["alert"]
        assert isinstance(rule["for"], str), rule["alert"]
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert rule["annotations"]["summary"].strip(), rule["alert"]
        runbook = rule["annotations"].get("runbook_url")
        assert runbook is None or (ROOT / runbook).is_file(), (rule["alert"], runbook)
    exprs = {rule["alert"]: rule["expr"] for rule in rules}
    assert "rpc_server_requests_total" in exprs["WaylineHighErrorRate"]
    for alert, method in (
        ("WaylineDecideSlow", "DecisionService/Decide"),
        ("WaylineCheckContactSlow", "OrchestratorService/CheckContact"),
        ("WaylineTrackSlow", "IngestService/Track"),
    ):
        assert "histogram_quantile(0.99" in exprs[alert], alert
        assert method in exprs[alert], alert
    assert "ingest_spool_lag_seconds" in exprs["WaylineSpoolLagging"]
    assert "ingest_sink_dead_letters_total" in exprs["WaylineDeadLettersIncreasing"]
    assert 'outcome="failed"' in exprs["WaylineModelLoadFailures"]
    assert "identity_erasures_oldest_pending_age_seconds" in exprs["WaylineErasureOverdue"]
    assert "absent(up" in exprs["WaylineNoTargetsUp"]


def test_docs_list_every_metric_the_services_export(samples: Samples) -> None:
    doc = METRICS_DOC.read_text()
    families = {
        name.removesuffix("_total").removesuffix("_bucket").removesuffix("_count").removesuffix("_sum")
        for name, _, _ in samples
        if not name.startswith(PROCESS_METRICS)
    }
    undocumented = sorted(f for f in families if f"`{f}" not in doc)
    assert not undocumented, f"add to docs/observability.md: {undocumented}"


def test_the_component_renders_the_same_rules_and_dashboard_for_the_operator_and_for_plain_files() -> None:
    documents = {
        (d["kind"], d["metadata"]["name"]): d
        for d in render_combination(Combination("base", ("monitoring",)))
    }
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    assert documents[("PrometheusRule", "wayline")]["spec"]["groups"] == groups
    rules = documents[("ConfigMap", "wayline-prometheus-rules")]["data"]["wayline-rules.yaml"]
    assert yaml.safe_load(rules)["groups"] == groups
    dashboard = documents[("ConfigMap", "wayline-grafana-dashboard")]
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(dashboard["data"]["wayline-dashboard.json"]) == json.loads(DASHBOARD.read_text())
