"""`wayline report` in headless Chromium: tenant A's report over the harness's loaded suite, written by the
command with A's read key, opened from disk. It draws every section with no JavaScript error and no CSP
violation, asks for nothing over the network, its tables show the numbers the RPCs answer for the report's
requests, the contents are keyboard links to the sections, and nothing of tenant B is in it."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, Request, expect
from typer.testing import CliRunner

from tests.console.browser import Console, read_table
from tests.console.calls import DECISION, JOURNEYS, ORCHESTRATOR, Rpc
from tests.console.loading import ConsoleData
from wayline.common.server import Server
from wayline_cli.main import app

# What each section's RPC is, by the section's kind (a flow's section records GetFlowStats' request).
_RPCS = {
    "paths": (JOURNEYS, "QueryPaths"),
    "funnel": (JOURNEYS, "QueryFunnel"),
    "retention": (JOURNEYS, "QueryRetention"),
    "lifecycle": (JOURNEYS, "GetLifecycleStages"),
    "value": (JOURNEYS, "GetCustomerValueSummary"),
    "trends": (JOURNEYS, "QueryTrends"),
    "sentiment": (JOURNEYS, "QueryTrends"),
    "activity-lifecycle": (JOURNEYS, "QueryActivityLifecycle"),
    "segments": (JOURNEYS, "ListSegments"),
    "models": (DECISION, "ListModels"),
}

EMPTY = "—"  # a quick ratio without dormant buyers
_STATUSES = ("newPersons", "returningPersons", "resurrectingPersons", "dormantPersons")

FLOW = "flows/report-welcome"
WELCOME = {
    "displayName": "Report welcome",
    "definition": {
        "trigger": {"event": {"event": {"eventName": "Signed Up"}}},
        "entryStepId": "hello",
        "steps": [{"id": "hello", "action": {"channel": "CHANNEL_EMAIL", "actionId": "hello"}}],
    },
}


@dataclass(frozen=True)
class Written:
    path: Path
    html: str
    data: dict[str, Any]
    answers: dict[str, dict[str, Any]]  # per section id, what the RPC answered right after the report

    def section(self, section_id: str) -> dict[str, Any]:
        found: list[dict[str, Any]] = [s for s in self.data["sections"] if s["id"] == section_id]
        return found[0]


def _data(html: str) -> dict[str, Any]:
    block = html.split('<script type="application/json" id="wayline-report-data">', 1)[1]
    loaded: dict[str, Any] = json.loads(block.split("</script>", 1)[0])
    return loaded


def _without_now(value: Any) -> Any:
    """An answer without the moments it was read at (a segment's or a flow's `dataAsOf`, and a windowed
    segment's `windowsAsOf`, which its window checks advance every half second in the suite)."""
    if isinstance(value, dict):
        return {k: _without_now(v) for k, v in value.items() if k not in ("dataAsOf", "windowsAsOf")}
    if isinstance(value, list):
        return [_without_now(v) for v in value]
    return value


def _rounded(value: Any) -> Any:
    """An answer with its doubles to 12 decimals: a mean (QueryTrends' sentiment) is of a sum ClickHouse adds
    up in no fixed order, so two answers may differ in the last bits of a double."""
    if isinstance(value, float):
        return round(value, 12)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def _answers(rpc: Rpc, data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    answers = {}
    for section in data["sections"]:
        if section["request"] is None:
            continue
        if section["kind"] == "flow":
            answers[section["id"]] = {
                "stats": rpc.json(ORCHESTRATOR, "GetFlowStats", section["request"])["stats"]
            }
        else:
            answers[section["id"]] = rpc.json(*_RPCS[section["kind"]], section["request"])
    return answers


@pytest.fixture(scope="module")
def written(
    console_data: ConsoleData,
    console_gateway: Server,
    rpc: Callable[[str], Rpc],
    tmp_path_factory: pytest.TempPathFactory,
) -> Written:
    """A's report over the data's range (its funnel: A's most frequent events; a flow of its own among A's
    flows); and the RPCs' answers to the report's requests, asked right after it (no other test runs in
    between)."""
    admin = rpc(console_data.admin_key_a)
    listed = admin.json(ORCHESTRATOR, "ListFlows", {"pageSize": 1000})["flows"]
    if FLOW not in [flow["name"] for flow in listed]:
        admin.call(ORCHESTRATOR, "CreateFlow", {"flowId": FLOW.removeprefix("flows/"), "flow": WELCOME})
        admin.call(ORCHESTRATOR, "PublishFlow", {"name": FLOW})
    output = tmp_path_factory.mktemp("report") / "report.html"
    result = CliRunner().invoke(
        app,
        [
            "report",
            *("--address", console_gateway.address, "--api-key", console_data.read_key_a),
            *("--from", console_data.start.isoformat(), "--to", console_data.end.isoformat()),
            *("--tenant", console_data.tenant_a, "--output", str(output)),
        ],
    )
    assert result.exit_code == 0, result.output
    html = output.read_text(encoding="utf-8")
    data = _data(html)
    return Written(output, html, data, _answers(rpc(console_data.read_key_a), data))


def _open(console: Console, written: Written) -> list[str]:
    """Open the report from disk; the URLs the page asked for (itself, and nothing else)."""
    asked: list[str] = []

    def record(request: Request) -> None:
        asked.append(request.url)

    console.page.on("request", record)
    console.page.goto(written.path.as_uri())
    expect(console.page.get_by_test_id("report-contents")).to_be_visible()
    return asked


def _numbers(section: Locator) -> list[str]:
    """Every number the section's tables hold (the raw values of numeric cells), as integers' text."""
    values = section.locator("table [data-value]").evaluate_all("cells => cells.map(c => c.dataset.value)")
    return [str(int(float(v))) if _integer(v) else v for v in values]


def _integer(text: str) -> bool:
    try:
        return float(text).is_integer()
    except ValueError:
        return False


def test_the_report_holds_what_the_rpcs_answer(written: Written) -> None:
    for section_id, answer in written.answers.items():
        recorded = written.section(section_id)["response"]
        if section_id.startswith("flow-"):
            recorded = {"stats": recorded["stats"]}
        assert _rounded(_without_now(recorded)) == _rounded(_without_now(answer)), section_id


def test_the_report_draws_every_section_with_the_rpcs_numbers(console: Console, written: Written) -> None:
    asked = _open(console, written)
    page = console.page
    expect(page).to_have_title(written.data["title"])
    sections = written.data["sections"]
    links = page.get_by_test_id("report-contents").get_by_role("link")
    expect(links).to_have_text([s["title"] for s in sections])
    for section in sections:
        shown = page.get_by_test_id(f"report-section-{section['id']}")
        expect(shown.get_by_role("heading", level=2)).to_have_text(section["title"])
        if section["empty"]:
            expect(page.get_by_test_id(f"report-empty-{section['id']}")).to_have_text(section["empty"])
        else:
            expect(shown.locator("table").first).to_be_attached()  # drawn, its numbers in a table
        expect(shown.get_by_role("alert")).to_have_count(0)  # no section failed to draw
    paths = written.answers["paths"]["series"][0]
    assert {edge["count"] for edge in paths["edges"]} <= set(
        _numbers(page.get_by_test_id("report-section-paths"))
    )
    funnel = written.answers["funnel"]["series"][0]["steps"]
    assert int(funnel[0]["count"]) > 0
    assert {step["count"] for step in funnel} <= set(_numbers(page.get_by_test_id("report-section-funnel")))
    # ...and its conversion over time, drawn from the same answer: each period's first-step count in a table.
    trend = written.answers["funnel"]["series"][0]["trend"]
    assert trend
    section = page.get_by_test_id("report-section-funnel")
    expect(section.get_by_test_id("funnel-trend-chart").locator("svg")).to_be_visible()
    assert {point["stepCounts"][0] for point in trend} <= set(_numbers(section))
    retention = _numbers(page.get_by_test_id("report-section-retention"))
    cohorts = written.answers["retention"]["series"][0]["cohorts"]
    assert cohorts
    assert {cohort["cohortSize"] for cohort in cohorts} <= set(retention)
    (flow,) = [s for s in sections if s["kind"] == "flow" and s["response"]["flow"]["name"] == FLOW]
    expect(page.get_by_test_id(f"report-section-{flow['id']}").locator("svg").first).to_be_visible()
    lifecycle = _numbers(page.get_by_test_id("report-section-lifecycle"))
    assert {d["populationSize"] for d in written.answers["lifecycle"]["distributions"]} <= set(lifecycle)
    # Customer value: every segment's and every cell's persons, in the section's tables; no customer named.
    value = written.answers["value"]
    assert int(value["purchasers"]) > 0
    value_numbers = set(_numbers(page.get_by_test_id("report-section-value")))
    assert {s["persons"] for s in value["segments"]} | {c["persons"] for c in value["cells"]} <= value_numbers
    expect(page.get_by_test_id("report-section-value").get_by_test_id("value-person-link")).to_have_count(0)
    _assert_trends(page, written)
    # The outline a screen reader gives: one h1, then each section's h2 with its parts below it, never a
    # level skipped and never a part's heading at its section's level.
    levels = page.eval_on_selector_all("h1, h2, h3, h4, h5, h6", "hs => hs.map(h => Number(h.tagName[1]))")
    assert levels[0] == 1
    assert all(later - earlier <= 1 for earlier, later in itertools.pairwise(levels)), levels
    for section in sections:
        inside = page.get_by_test_id(f"report-section-{section['id']}").locator("h1, h2, h3, h4, h5, h6")
        parts = inside.evaluate_all("hs => hs.slice(1).map(h => Number(h.tagName[1]))")
        assert all(level > 2 for level in parts), (section["id"], parts)
    console.shot("report")
    page.emulate_media(media="print")
    console.shot("report-print")
    assert all(url == written.path.as_uri() for url in asked), asked  # nothing fetched but the file itself


def _assert_trends(page: Page, written: Written) -> None:
    """Activity: per series (events, persons) a chart and a table holding each channel's count per period and
    over the range. Sentiment: per channel with scored events a chart and a table of its scored events."""
    activity = written.answers["activity"]
    assert {r["seriesIndex"] for r in activity["results"]} == {0, 1}
    section = page.get_by_test_id("report-section-activity")
    for index in (0, 1):
        results = [r for r in activity["results"] if r["seriesIndex"] == index]
        assert any(r["total"] for r in results), index
        expect(section.get_by_test_id(f"trends-chart-{index}").locator("svg")).to_be_visible()
        shown = set(_numbers(section.get_by_test_id(f"trends-series-{index}")))
        counts = {_count(r["total"]) for r in results}
        counts |= {_count(p["value"]) for r in results for p in r["points"]}
        assert counts <= shown, (index, counts - shown)
    sentiment = written.answers["sentiment"]
    scored = [r for r in sentiment["results"] if r["seriesIndex"] == 1 and int(r["eventCount"])]
    section = page.get_by_test_id("report-section-sentiment")
    if written.section("sentiment")["empty"]:
        assert not scored
        return
    assert scored
    expect(section.locator("[data-testid^='trends-sentiment-chart-'] svg")).to_have_count(len(scored))
    shown = set(_numbers(section))
    counts = {_count(r["total"]) for r in scored} | {_count(p["value"]) for r in scored for p in r["points"]}
    assert counts <= shown, counts - shown


def _count(value: float) -> str:
    """A count as _numbers reads it from a table."""
    return str(int(value))


def test_the_report_draws_the_buyers_by_activity(
    console: Console, written: Written, rpc: Callable[[str], Rpc], console_data: ConsoleData
) -> None:
    """Buyers in EUR by activity, after the sentiment: the recorded QueryActivityLifecycle answer drawn by the
    Trends page's lifecycle mode (its heading, chart and table), by week in UTC over the data's 31 days. A's
    buyers are the persons with an event carrying revenue in EUR, and nothing of A's is before the data's
    start, so: the first week has no returning, resurrecting or dormant buyer; each buyer is new once, so the
    new ones add up to the range's distinct buyers; each week's new, returning and resurrecting buyers are
    its active ones (QueryTrends' unique persons of the same events); and a week's returning and dormant
    buyers are the week before's active ones."""
    ids = [section["id"] for section in written.data["sections"]]
    assert ids[ids.index("sentiment") + 1 : ids.index("sentiment") + 3] == ["buyers", "segments"]
    buyers = written.section("buyers")
    assert (buyers["kind"], buyers["title"], buyers["empty"]) == (
        "activity-lifecycle",
        "Buyers in EUR by activity",
        "",
    )
    request = buyers["request"]
    assert request["timeRange"] == console_data.time_range()
    assert (request["period"], request["timeZone"]) == ("RETENTION_PERIOD_WEEK", "UTC")
    assert [(s["label"], s["currencyCode"], s["math"]) for s in request["series"]] == [
        ("Buyers", "EUR", "TREND_MATH_UNSPECIFIED")
    ]
    (result,) = buyers["response"]["results"]
    points = result["points"]
    weeks = [tuple(int(point[status]) for status in _STATUSES) for point in points]
    active = [new + returning + resurrecting for new, returning, resurrecting, _ in weeks]
    persons = rpc(console_data.read_key_a).json(
        JOURNEYS,
        "QueryTrends",
        {
            "series": [{"label": "Buyers", "math": "TREND_MATH_UNIQUE_PERSONS", "currencyCode": "EUR"}],
            **{key: request[key] for key in ("timeRange", "period", "timeZone")},
        },
    )["results"][0]
    assert [point["periodStart"] for point in persons["points"]] == [point["periodStart"] for point in points]
    assert active == [int(point.get("value", 0)) for point in persons["points"]]
    assert sum(new for new, *_ in weeks) == int(persons["total"]) > 0
    assert weeks[0][1:] == (0, 0, 0)
    for before, (_, returning, _, dormant) in zip(active, weeks[1:], strict=False):
        assert returning + dormant == before, weeks
    # ...drawn as the Trends page draws a lifecycle: one series, its chart, its table of each week's numbers.
    _open(console, written)
    section = console.page.get_by_test_id("report-section-buyers")
    expect(section.get_by_test_id("trends-range-line")).to_contain_text("quick ratio")
    expect(section.get_by_test_id("trends-lifecycle-0").get_by_role("heading", level=3)).to_have_text(
        "Buyers: new, returning, resurrecting and dormant persons"
    )
    expect(section.get_by_test_id("trends-lifecycle-chart-0").locator("svg")).to_be_visible()
    table = read_table(section.get_by_test_id("trends-lifecycle-table-0"))
    assert table.columns == [
        *("Week of", "New", "Returning", "Resurrecting", "Dormant", "Active", "Quick ratio")
    ]
    assert table.row_keys == [point["periodStart"] for point in points]
    keys = ("new", "returning", "resurrecting", "dormant", "active")
    shown = [tuple(row[key] for key in keys) for row in table.rows]
    assert shown == [
        (str(new), str(returning), str(resurrecting), str(-dormant), str(now))
        for (new, returning, resurrecting, dormant), now in zip(weeks, active, strict=True)
    ]
    # The quick ratio, (new + resurrecting) ÷ dormant; none without dormant buyers.
    ratios = [(new + back) / dormant if dormant else None for new, _, back, dormant in weeks]
    assert [None if row["quick-ratio"] == EMPTY else float(row["quick-ratio"]) for row in table.rows] == [
        pytest.approx(ratio) if ratio is not None else None for ratio in ratios
    ]
    # No count asks for its persons: a report makes no call, and names no customer.
    expect(section.get_by_test_id("trends-lifecycle-count")).to_have_count(0)
    console.shot("report-buyers")


def test_the_contents_reach_each_section_by_keyboard(console: Console, written: Written) -> None:
    _open(console, written)
    page = console.page
    retention = page.get_by_test_id("report-contents").get_by_role("link", name="Weekly retention")
    retention.focus()
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{written.path.as_uri()}#retention")
    expect(page.get_by_test_id("report-section-retention")).to_be_in_viewport()


def test_nothing_of_tenant_b_is_in_the_report(
    console: Console, written: Written, console_data: ConsoleData
) -> None:
    _open(console, written)
    text = console.page.locator("body").inner_text()
    for secret in (*console_data.b_event_names, console_data.b_only.email, console_data.tenant_b):
        assert secret not in written.html
        assert secret not in text
