"""`wayline report` against a real gateway, journeys, identity, orchestrator and decision, with two tenants:
the file is written and self-contained (nothing to load, a policy that runs exactly its inline script and
style), it holds exactly what the RPCs answer tenant A's read key for the report's requests, with A's own
numbers, and nothing of tenant B; data cannot close its script element; refusals exit with status 1 or 2."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import grpc
import pytest
from google.protobuf.message import Message
from typer.testing import CliRunner

from tests.conftest import API_KEY, INTERNAL_TOKEN, TENANT, gateway_settings, start_server
from tests.journeys.segments_support import count
from tests.orchestrator.conftest import start_orchestrator
from tests.orchestrator.runtime_calls import SECOND, track
from wayline.api.v1 import annotations_pb2
from wayline.common.json_messages import message_from_json, message_to_json
from wayline.common.server import Server
from wayline.decision.v1 import decision_service_pb2 as decision_pb
from wayline.decision.v1 import decision_service_pb2_grpc as decision_grpc
from wayline.event.v1 import event_pb2
from wayline.gateway.v1 import api_key_pb2
from wayline.gateway.v1 import gateway_service_pb2 as admin_pb
from wayline.gateway.v1 import gateway_service_pb2_grpc as admin_grpc
from wayline.journeys.v1 import journeys_service_pb2 as journeys_pb
from wayline.journeys.v1 import journeys_service_pb2_grpc as journeys_grpc
from wayline.journeys.v1 import segment_pb2, trends_pb2
from wayline.orchestrator.v1 import orchestrator_service_pb2 as orchestrator_pb
from wayline.orchestrator.v1 import orchestrator_service_pb2_grpc as orchestrator_grpc
from wayline_cli.main import app
from wayline_cli.report import collect, requests
from wayline_cli.report.requests import ReportQuery
from wayline_gateway.service import gateway_service

T0 = 1_772_445_600 * SECOND  # 2026-03-02T10:00Z
MINUTE = 60 * SECOND
RANGE = ["--from", "2026-03-01", "--to", "2026-04-01"]
FUNNEL = ("Product Viewed", "Product Added", "Order Completed")
# A flow's display name that would end the data's script element and run code if it were not escaped.
HOSTILE = "</script><script>alert('pwned')</script><!--"
B_EVENT = "Bee Only Secret Event"
B_EMAIL = "b-only-report@example.com"
# Texts of A's (the score ingest's enrichment gives such a text; journeys is written to directly here).
POSITIVE, POSITIVE_SCORE = "I love it, great service, thank you!", 0.9
NEGATIVE, NEGATIVE_SCORE = "This is terrible. I hate it, awful service.", -0.9


@dataclass(frozen=True)
class Tenant:
    id: str
    read_key: str
    admin_key: str


@pytest.fixture(scope="module")
def gateway(
    tmp_path_factory: pytest.TempPathFactory,
    journeys_server: Server,
    identity_server: Server,
    decision_server: Server,
) -> Iterator[Server]:
    orchestrator = start_orchestrator(
        tmp_path_factory.mktemp("orchestrator"), journeys_address=journeys_server.address
    )
    settings = gateway_settings(
        tmp_path_factory.mktemp("gateway"),
        {
            "journeys": journeys_server.address,
            "identity": identity_server.address,
            "decision": decision_server.address,
            "orchestrator": orchestrator.address,
        },
        API_KEY,
        TENANT,
    )
    server = start_server(gateway_service(settings), settings)
    yield server
    server.stop(0)
    orchestrator.stop(0)


def _tenant(gateway: Server, prefix: str) -> Tenant:
    tenant_id = f"{prefix}-{uuid.uuid4().hex[:6]}"
    operator = (("authorization", f"Bearer {API_KEY}"),)
    with grpc.insecure_channel(gateway.address) as channel:
        admin = admin_grpc.AdminServiceStub(channel)
        made = admin.CreateTenant(admin_pb.CreateTenantRequest(tenant_id=tenant_id), metadata=operator).tenant

        def key(*scopes: annotations_pb2.Scope.ValueType) -> str:
            request = admin_pb.CreateApiKeyRequest(
                parent=made.name, api_key=api_key_pb2.ApiKey(scopes=scopes)
            )
            return admin.CreateApiKey(request, metadata=operator).secret

        return Tenant(
            tenant_id,
            key(annotations_pb2.SCOPE_READ),
            key(annotations_pb2.SCOPE_ADMIN, annotations_pb2.SCOPE_READ),
        )


def _write(journeys_server: Server, tenant: Tenant, *events: Any) -> None:
    metadata = (("x-wayline-internal-token", INTERNAL_TOKEN), ("x-wayline-tenant", tenant.id))
    with grpc.insecure_channel(journeys_server.address) as channel:
        journeys_grpc.JourneyServiceStub(channel).WriteEvents(
            journeys_pb.WriteEventsRequest(events=list(events)), metadata=metadata, timeout=30
        )


def _bearer(key: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {key}"),)


@pytest.fixture(scope="module")
def tenants(
    gateway: Server, journeys_server: Server, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Tenant, Tenant]]:
    """A: four persons view a product, three add it, one orders, five minutes apart (all on the web but the
    order, in the app); the first adder wrote a negative text, the order carries a positive one; a segment of
    the viewers; a published flow with a hostile display name. B: its own persons, event (a call with a
    scored text) and e-mail, and a view that must not count in A's numbers."""
    a, b = _tenant(gateway, "rep-a"), _tenant(gateway, "rep-b")
    events = []
    for number in range(4):
        person, at = f"a-person-{number}", T0 + number * MINUTE
        events.append(track(person, "Product Viewed", at))
        if number < 3:
            added = track(person, "Product Added", at + 5 * MINUTE)
            if number == 1:
                added.text, added.sentiment_score = NEGATIVE, NEGATIVE_SCORE
            events.append(added)
        if number < 1:
            order = track(person, "Order Completed", at + 10 * MINUTE)
            order.revenue.CopyFrom(event_pb2.Money(currency_code="EUR", units=59, nanos=900_000_000))
            order.channel = event_pb2.CHANNEL_MOBILE_APP
            order.text, order.sentiment_score = POSITIVE, POSITIVE_SCORE
            events.append(order)
    _write(journeys_server, a, *events)
    b_order = track("b-secret-person", "Order Completed", T0 + 2 * MINUTE, email=B_EMAIL)
    b_order.revenue.CopyFrom(event_pb2.Money(currency_code="EUR", units=1000))
    b_call = track("b-secret-person", B_EVENT, T0, email=B_EMAIL)
    b_call.channel, b_call.text, b_call.sentiment_score = event_pb2.CHANNEL_CALL_CENTER, NEGATIVE, -0.5
    _write(
        journeys_server,
        b,
        b_call,
        track("b-secret-person", "Product Viewed", T0 + MINUTE, email=B_EMAIL),
        b_order,
    )
    with grpc.insecure_channel(gateway.address) as channel:
        journeys = journeys_grpc.JourneyServiceStub(channel)
        segment = segment_pb2.Segment(display_name="Viewers", condition=count("Product Viewed"))
        journeys.CreateSegment(
            journeys_pb.CreateSegmentRequest(segment=segment, segment_id="viewers"),
            metadata=_bearer(a.admin_key),
            timeout=10,
        )
        flows = tmp_path_factory.mktemp("flows") / "flows.yaml"
        flows.write_text(
            "name: flows/welcome\n"
            f"display_name: {json.dumps(HOSTILE)}\n"
            "definition:\n"
            "  trigger: {event: {event: {event_name: Product Viewed}}}\n"
            "  entry_step_id: hello\n"
            "  steps:\n"
            "    - id: hello\n"
            "      action: {channel: CHANNEL_EMAIL, action_id: hello}\n"
        )
        applied = CliRunner().invoke(
            app,
            [
                "flows",
                "apply",
                str(flows),
                "--publish",
                "--gateway",
                gateway.address,
                "--api-key",
                a.admin_key,
            ],
        )
        assert applied.exit_code == 0, applied.output
        yield a, b
        journeys.DeleteSegment(
            journeys_pb.DeleteSegmentRequest(name="segments/viewers"),
            metadata=_bearer(a.admin_key),
            timeout=10,
        )


def report(gateway: Server, key: str, output: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        app,
        ["report", "--address", gateway.address, "--api-key", key, "--output", str(output), *args],
        env={"COLUMNS": "200"},
    )
    return result.exit_code, result.stdout, result.stderr


class _Document(HTMLParser):
    """The elements of a page with their attributes, and each script element's text."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self.styles: list[str] = []
        self._open: tuple[str, dict[str, str | None]] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))
        if tag in ("script", "style"):
            self._open = (tag, dict(attrs))

    def handle_data(self, data: str) -> None:
        if self._open and self._open[0] == "script":
            self.scripts.append((self._open[1], data))
        elif self._open:
            self.styles.append(data)

    def handle_endtag(self, tag: str) -> None:
        self._open = None


def _parse(text: str) -> _Document:
    document = _Document()
    document.feed(text)
    return document


def _sha256(text: str) -> str:
    return base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


def _data(document: _Document) -> dict[str, Any]:
    (block,) = [text for attrs, text in document.scripts if attrs.get("id") == "wayline-report-data"]
    loaded: dict[str, Any] = json.loads(block)
    return loaded


def _as_of_now(stats: dict[str, Any]) -> dict[str, Any]:
    return {**stats, "dataAsOf": "now"}


def _sections(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {section["id"]: section for section in data["sections"]}


@pytest.fixture(scope="module")
def written(gateway: Server, tenants: tuple[Tenant, Tenant], tmp_path_factory: pytest.TempPathFactory) -> str:
    a, _ = tenants
    output = tmp_path_factory.mktemp("report") / "report.html"
    segment_ready(gateway, a)
    code, stdout, stderr = report(
        gateway, a.read_key, output, *RANGE, "--funnel", ",".join(FUNNEL), "--tenant", "Rep A"
    )
    assert code == 0, stdout + stderr
    assert f"wrote {output}" in stdout
    return output.read_text(encoding="utf-8")


def segment_ready(gateway: Server, tenant: Tenant) -> None:
    """Wait until the segment evaluator has counted A's four viewers (fast in the session's journeys)."""
    deadline = time.monotonic() + 30
    with grpc.insecure_channel(gateway.address) as channel:
        journeys = journeys_grpc.JourneyServiceStub(channel)
        while True:
            found = journeys.GetSegment(
                journeys_pb.GetSegmentRequest(name="segments/viewers"),
                metadata=_bearer(tenant.read_key),
                timeout=10,
            ).segment
            if found.status.member_count == 4:
                return
            assert time.monotonic() < deadline, found
            time.sleep(0.1)


def test_the_report_is_self_contained_and_runs_only_its_own_script(written: str) -> None:
    document = _parse(written)
    for tag, attrs in document.elements:
        assert tag not in ("link", "iframe", "object", "embed", "base", "img", "form"), tag
        for name in ("src", "href", "action", "srcset"):
            value = attrs.get(name)
            assert value is None or value.startswith(("#", "data:")), (tag, name, value)
    (policy,) = [
        attrs["content"]
        for tag, attrs in document.elements
        if tag == "meta" and attrs.get("http-equiv") == "Content-Security-Policy"
    ]
    assert policy is not None
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    (code,) = [text for attrs, text in document.scripts if "type" not in attrs]
    (style,) = document.styles
    assert directives["default-src"] == "'none'"  # no connection, no other script, image or font
    assert directives["script-src"] == f"'sha256-{_sha256(code)}'"
    assert directives["style-src"] == f"'sha256-{_sha256(style)}'"
    assert "connect-src" not in directives
    assert "</" not in code  # neither can close its element early
    assert "<!--" not in code
    assert "</" not in style
    data = _data(document)
    assert data["title"] == "Wayline journey report, Rep A: 2026-03-01 to 2026-04-01"
    assert (data["startTime"], data["endTime"]) == ("2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z")


def test_the_report_holds_what_the_rpcs_answer_a_for_its_requests(
    gateway: Server, tenants: tuple[Tenant, Tenant], written: str
) -> None:
    a, _ = tenants
    sections = _sections(_data(_parse(written)))
    assert list(sections) == [
        *("paths", "funnel", "retention", "lifecycle", "value", "activity", "sentiment", "buyers"),
        *("segments", "flow-1", "models"),
    ]
    assert [(sections[s]["kind"], sections[s]["title"]) for s in ("activity", "sentiment", "buyers")] == [
        ("trends", "Activity by channel"),
        ("sentiment", "Sentiment by channel"),
        ("activity-lifecycle", "Buyers in EUR by activity"),
    ]
    time_range = {"start": "2026-03-01T00:00:00Z", "end": "2026-04-01T00:00:00Z"}
    for kind in ("paths", "funnel", "retention", "value", "activity", "sentiment", "buyers"):
        assert sections[kind]["request"]["timeRange"] == time_range
    assert [s["event"]["eventName"] for s in sections["funnel"]["request"]["steps"]] == list(FUNNEL)
    auth = _bearer(a.read_key)
    with grpc.insecure_channel(gateway.address) as channel:
        journeys = journeys_grpc.JourneyServiceStub(channel)
        orchestrator = orchestrator_grpc.OrchestratorServiceStub(channel)
        decision = decision_grpc.DecisionServiceStub(channel)

        def answer(section: str, rpc: Callable[..., Message], request: Message) -> dict[str, Any]:
            message_from_json(sections[section]["request"], request)
            return message_to_json(rpc(request, metadata=auth, timeout=30))

        assert sections["paths"]["response"] == answer(
            "paths", journeys.QueryPaths, journeys_pb.QueryPathsRequest()
        )
        assert sections["funnel"]["response"] == answer(
            "funnel", journeys.QueryFunnel, journeys_pb.QueryFunnelRequest()
        )
        assert sections["retention"]["response"] == answer(
            "retention", journeys.QueryRetention, journeys_pb.QueryRetentionRequest()
        )
        assert sections["lifecycle"]["response"] == answer(
            "lifecycle", journeys.GetLifecycleStages, journeys_pb.GetLifecycleStagesRequest()
        )
        assert sections["value"]["response"] == answer(
            "value", journeys.GetCustomerValueSummary, journeys_pb.GetCustomerValueSummaryRequest()
        )
        for trend in ("activity", "sentiment"):
            recorded = sections[trend]["response"]
            asked = answer(trend, journeys.QueryTrends, journeys_pb.QueryTrendsRequest())
            assert recorded == asked, trend
        assert sections["buyers"]["response"] == answer(
            "buyers", journeys.QueryActivityLifecycle, journeys_pb.QueryActivityLifecycleRequest()
        )
        segments = journeys.ListSegments(journeys_pb.ListSegmentsRequest(), metadata=auth, timeout=30)
        assert [
            (s["name"], s["status"]["memberCount"]) for s in sections["segments"]["response"]["segments"]
        ] == [(s.name, str(s.status.member_count)) for s in segments.segments]
        flow = sections["flow-1"]["response"]
        stats_request = orchestrator_pb.GetFlowStatsRequest()
        message_from_json(sections["flow-1"]["request"], stats_request)
        stats = message_to_json(orchestrator.GetFlowStats(stats_request, metadata=auth, timeout=30).stats)
        assert _as_of_now(flow["stats"]) == _as_of_now(stats)  # the counts, not the moment they were read
        published = orchestrator.GetFlow(
            orchestrator_pb.GetFlowRequest(name="flows/welcome", version=1), metadata=auth, timeout=30
        ).flow
        assert flow["flow"] == message_to_json(published)
        assert sections["models"]["response"] == message_to_json(
            decision.ListModels(decision_pb.ListModelsRequest(page_size=1000), metadata=auth, timeout=30)
        )
    # ...and they are A's own numbers: four viewers, three adders, one order; B's viewer is not among them
    funnel = sections["funnel"]["response"]["series"]
    assert [[step["count"] for step in series["steps"]] for series in funnel] == [["4", "3", "1"]]
    # Its conversion over time: a month of days (the RPC's answer, checked whole above).
    assert sections["funnel"]["request"]["trend"]["period"] == "RETENTION_PERIOD_DAY"
    points = funnel[0]["trend"]
    assert len(points) == 31
    assert points[0]["periodStart"] == "2026-03-01T00:00:00Z"
    assert sum(int(p["stepCounts"][0]) for p in points) >= 4  # each viewer, once per day they started
    assert sum(int(p["stepCounts"][-1]) for p in points) >= 1
    assert [s["pathCount"] for s in sections["paths"]["response"]["series"]] == ["4"]
    assert sections["lifecycle"]["response"]["populationSize"] == "4"
    value = sections["value"]["response"]  # A's one order in EUR; B's is not in it
    assert (value["purchasers"], value["historicValue"]) == (
        "1",
        {"currencyCode": "EUR", "units": "59", "nanos": 900000000},
    )
    assert sections["value"]["title"] == "Customer value in EUR"
    _assert_trends(sections["activity"], sections["sentiment"])
    _assert_buyers(sections["buyers"])
    assert [
        (s["name"], s["status"]["memberCount"]) for s in sections["segments"]["response"]["segments"]
    ] == [("segments/viewers", "4")]
    assert sections["models"]["empty"] == "The tenant has no models."
    assert sections["flow-1"]["note"] == "Nobody entered this flow in this range."
    drawn = (
        *("paths", "funnel", "retention", "lifecycle", "value", "activity", "sentiment", "buyers"),
        "segments",
    )
    assert all(not sections[kind]["empty"] for kind in drawn)


def _by_result(response: dict[str, Any]) -> dict[tuple[int, str], dict[str, Any]]:
    """A trend's results by (series index, breakdown value)."""
    return {(r["seriesIndex"], r["breakdownValue"]["value"]): r for r in response["results"]}


def _assert_trends(activity: dict[str, Any], sentiment: dict[str, Any]) -> None:
    """A's own numbers, by day as the funnel's trend (a month), in UTC, by channel: seven events of four
    persons on the web and one order in the app, all on 2 March; the two texts, one in each channel. B's
    call centre is not among the channels."""
    for section in (activity, sentiment):
        request = section["request"]
        assert (request["period"], request["timeZone"]) == ("RETENTION_PERIOD_DAY", "UTC")
        assert request["breakdown"]["dimension"] == "BREAKDOWN_DIMENSION_CHANNEL"
        assert request["breakdown"]["limit"] == 5
    assert [(s["label"], s["math"]) for s in activity["request"]["series"]] == [
        ("Events", "TREND_MATH_TOTAL"),
        ("Persons", "TREND_MATH_UNIQUE_PERSONS"),
    ]
    assert [s["label"] for s in sentiment["request"]["series"]] == [
        *("mean sentiment", "scored", "negative", "neutral", "positive")
    ]
    results = _by_result(activity["response"])
    assert {key: (r["total"], r["eventCount"]) for key, r in results.items()} == {
        (0, "web"): (7, "7"),
        (0, "mobile_app"): (1, "1"),
        (1, "web"): (4, "7"),
        (1, "mobile_app"): (1, "1"),
    }
    for result in results.values():
        points = result["points"]
        assert len(points) == 31
        assert points[1]["periodStart"] == "2026-03-02T00:00:00Z"
        assert [p.get("value", 0) for k, p in enumerate(points) if k != 1] == [0] * 30
        assert points[1]["value"] == result["total"]
    scored = {key: (r.get("total"), r["eventCount"]) for key, r in _by_result(sentiment["response"]).items()}
    assert scored == {
        (0, "web"): (NEGATIVE_SCORE, "7"),  # the mean score (of the events that carry one)
        (0, "mobile_app"): (POSITIVE_SCORE, "1"),
        (1, "web"): (1, "1"),  # scored
        (1, "mobile_app"): (1, "1"),
        (2, "web"): (1, "1"),  # negative
        (4, "mobile_app"): (1, "1"),  # positive
    }


def _assert_buyers(buyers: dict[str, Any]) -> None:
    """Every event with revenue in EUR, by week in UTC (weeks from Monday: the range's first, cut by its start
    on Sunday 1 March, begins on 23 February), no breakdown. A's one buyer (a-person-0, ordering on Monday 2
    March) is new that week and dormant the next; B's order in EUR the same day is not counted."""
    request = buyers["request"]
    assert (request["period"], request["timeZone"]) == ("RETENTION_PERIOD_WEEK", "UTC")
    assert "breakdown" not in request  # QueryActivityLifecycle has none
    (series,) = request["series"]
    assert (series["label"], series["currencyCode"], series["math"], series["property"]) == (
        "Buyers",
        "EUR",
        "TREND_MATH_UNSPECIFIED",
        "",
    )
    assert "event" not in series  # every event: those with revenue in EUR
    (result,) = buyers["response"]["results"]
    assert (result["seriesIndex"], result["label"]) == (0, "Buyers")
    statuses = ("newPersons", "returningPersons", "resurrectingPersons", "dormantPersons")
    weeks = {p["periodStart"][:10]: tuple(int(p[s]) for s in statuses) for p in result["points"]}
    assert weeks == {
        "2026-02-23": (0, 0, 0, 0),
        "2026-03-02": (1, 0, 0, 0),  # new: the first order ever
        "2026-03-09": (0, 0, 0, 1),  # dormant: ordered the week before, not this one
        "2026-03-16": (0, 0, 0, 0),
        "2026-03-23": (0, 0, 0, 0),
        "2026-03-30": (0, 0, 0, 0),
    }
    assert all(p["complete"] for p in result["points"])  # the range ended in the past


def test_the_report_holds_nothing_of_another_tenant(tenants: tuple[Tenant, Tenant], written: str) -> None:
    _, b = tenants
    for secret in (B_EVENT, B_EMAIL, "b-secret-person", b.id):
        assert secret not in written


def test_data_cannot_close_its_script_element(written: str) -> None:
    assert HOSTILE not in written
    assert "<script>alert(" not in written
    document = _parse(written)
    assert len(document.scripts) == 2  # the data and the bundle: the hostile name opened no element
    flow = _sections(_data(document))["flow-1"]
    assert flow["response"]["flow"]["displayName"] == HOSTILE  # escaped, not altered
    assert flow["title"] == f"Flow: {HOSTILE} (version 1)"


def test_sections_without_data_say_so(
    gateway: Server, tenants: tuple[Tenant, Tenant], tmp_path: Path
) -> None:
    a, _ = tenants
    output = tmp_path / "empty.html"
    code, stdout, stderr = report(gateway, a.read_key, output, "--from", "2025-01-01", "--to", "2025-02-01")
    assert code == 0, stdout + stderr
    sections = _sections(_data(_parse(output.read_text(encoding="utf-8"))))
    assert sections["paths"]["empty"] == "No path started in this range."
    assert sections["funnel"] == {
        "id": "funnel",
        "kind": "funnel",
        "title": "Funnel",
        "request": None,
        "response": None,
        "empty": "No funnel: fewer than two event names in this range (--funnel chooses the steps).",
        "note": "",
    }
    assert sections["retention"]["empty"] == "Nobody was first seen in this range."
    assert sections["lifecycle"]["empty"] == "Nobody had an event before the range's end."
    assert sections["value"]["empty"] == "Nobody purchased in EUR in this range."
    assert sections["activity"]["empty"] == "No event in this range."
    assert sections["sentiment"]["empty"] == "No event with a sentiment score in this range."
    assert sections["buyers"]["empty"] == "Nobody purchased in EUR in this range."
    assert sections["buyers"]["request"]["period"] == "RETENTION_PERIOD_WEEK"  # asked, and answered
    points = sections["buyers"]["response"]["results"][0]["points"]
    assert len(points) == 5  # the weeks from 30 December 2024 to 27 January 2025, nobody in any
    assert sections["activity"]["request"]["period"] == "RETENTION_PERIOD_DAY"  # asked, and answered
    assert sections["activity"]["response"]["results"] == []
    assert re.search(r"Paths: No path started in this range\.", stdout)


def test_without_funnel_steps_the_funnel_is_of_the_most_frequent_events(
    gateway: Server, tenants: tuple[Tenant, Tenant], tmp_path: Path
) -> None:
    a, _ = tenants
    output = tmp_path / "default.html"
    code, stdout, stderr = report(gateway, a.read_key, output, *RANGE)
    assert code == 0, stdout + stderr
    funnel = _sections(_data(_parse(output.read_text(encoding="utf-8"))))["funnel"]
    assert funnel["title"] == "Funnel: " + " → ".join(FUNNEL)  # A's names by frequency: 4, 3 and 1 events
    assert [step["event"]["eventName"] for step in funnel["request"]["steps"]] == list(FUNNEL)
    assert [step["count"] for step in funnel["response"]["series"][0]["steps"]] == ["4", "3", "1"]
    assert funnel["note"] == (
        "No --funnel given: the steps are the tenant's 3 most frequent events in the range, the most "
        "frequent first."
    )


def test_refusals(gateway: Server, tenants: tuple[Tenant, Tenant], tmp_path: Path) -> None:
    a, _ = tenants
    output = tmp_path / "refused.html"
    code, _, stderr = report(gateway, a.read_key, output, *RANGE, "--flow", "nope")
    assert (code, "the tenant has no flow named flows/nope") == (1, " ".join(stderr.split()))
    code, _, stderr = report(gateway, "wl_wrong", output, *RANGE)
    assert code == 1
    assert "UNAUTHENTICATED" in stderr
    code, _, stderr = report(gateway, a.read_key, output, "--from", "2026-04-01", "--to", "2026-03-01")
    assert code == 2
    assert "end after it starts" in stderr
    code, _, stderr = report(gateway, a.read_key, output, *RANGE, "--funnel", "Only One")
    assert code == 2
    assert not output.exists()


class _NoTrends:
    """A JourneyService stub for a range without a trend period: neither QueryTrends nor
    QueryActivityLifecycle must be asked."""

    def QueryTrends(self, *args: object, **kwargs: object) -> None:
        raise AssertionError("QueryTrends asked for a range it would refuse")

    def QueryActivityLifecycle(self, *args: object, **kwargs: object) -> None:
        raise AssertionError("QueryActivityLifecycle asked for a range it would refuse")


def test_a_range_without_a_trend_period_says_so_without_asking() -> None:
    """Where the funnel gets no trend (here a range before the calendar periods are dated in), the activity
    and sentiment sections ask nothing and say why."""
    query = ReportQuery(datetime(1899, 12, 1, tzinfo=UTC), datetime(1900, 2, 1, tzinfo=UTC))
    assert requests.trend_period(query) is None
    calls = cast(Any, SimpleNamespace(journeys=_NoTrends(), auth=()))
    sections = [
        collect._activity(calls, query),
        collect._sentiment(calls, query),
        collect._buyers(calls, query),
    ]
    assert [(s.id, s.kind, s.request, s.response, s.empty) for s in sections] == [
        ("activity", "trends", None, None, requests.NO_TREND),
        ("sentiment", "sentiment", None, None, requests.NO_TREND),
        ("buyers", "activity-lifecycle", None, None, requests.NO_TREND),
    ]
    assert requests.NO_TREND == (
        "No trend: the range lies outside the years trends are dated in (1900-01-01 to 2299-12-01) or spans "
        "more than 400 months."
    )


class _Unscored:
    """A JourneyService stub answering QueryTrends as for events without a score: the mean series (every
    event) counts them, the scored series has no result."""

    def QueryTrends(self, *args: object, **kwargs: object) -> journeys_pb.QueryTrendsResponse:
        return journeys_pb.QueryTrendsResponse(
            results=[trends_pb2.TrendResult(series_index=0, label="mean sentiment", event_count=3)]
        )


def test_events_without_a_score_leave_the_sentiment_empty() -> None:
    calls = cast(Any, SimpleNamespace(journeys=_Unscored(), auth=()))
    query = ReportQuery(datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC))
    assert collect._sentiment(calls, query).empty == "No event with a sentiment score in this range."
    assert collect._activity(calls, query).empty == ""  # its events counted


@dataclass
class _Lifecycle:
    """A JourneyService stub answering QueryActivityLifecycle with `points` for its one series; it keeps the
    request it was asked."""

    points: list[trends_pb2.ActivityLifecyclePoint]
    asked: list[journeys_pb.QueryActivityLifecycleRequest]

    def QueryActivityLifecycle(
        self, request: journeys_pb.QueryActivityLifecycleRequest, **kwargs: object
    ) -> journeys_pb.QueryActivityLifecycleResponse:
        self.asked.append(request)
        return journeys_pb.QueryActivityLifecycleResponse(
            results=[trends_pb2.ActivityLifecycleResult(series_index=0, label="Buyers", points=self.points)]
        )


def test_the_buyers_are_of_the_reports_currency_and_drawn_while_any_status_holds_one() -> None:
    """--currency chooses the buyers' revenue; a range whose only buyers are dormant ones (they bought in the
    period before it) is drawn; one with nobody in any status says so."""
    query = ReportQuery(datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC), currency="USD")
    week = trends_pb2.ActivityLifecyclePoint
    dormant = _Lifecycle([week(dormant_persons=2), week()], [])
    section = collect._buyers(cast(Any, SimpleNamespace(journeys=dormant, auth=())), query)
    (asked,) = dormant.asked
    assert asked == requests.buyers_lifecycle_request(query)
    (series,) = asked.series
    assert (series.label, series.currency_code, series.HasField("event")) == ("Buyers", "USD", False)
    assert (section.id, section.kind, section.title, section.empty) == (
        "buyers",
        "activity-lifecycle",
        "Buyers in USD by activity",
        "",
    )
    assert section.request == message_to_json(asked)
    quiet = _Lifecycle([week(), week()], [])
    section = collect._buyers(cast(Any, SimpleNamespace(journeys=quiet, auth=())), query)
    assert section.empty == "Nobody purchased in USD in this range."
    assert section.response is not None  # still recorded: what was asked and what came back
