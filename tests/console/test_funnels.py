"""The Funnels page in Chromium against the loaded suite: its tables show what QueryFunnel returns for the
same request (persons, conversion and drop-off per step, the time-to-convert histogram of the whole funnel
and of a step); editing the funnel (a step's window, an exclusion, a breakdown by channel) redraws them with
the RPC's answer to the new request; a breakdown by segment names the segment's series and those in none;
the conversion over time shows each week's funnel as QueryFunnel's trend answers it; "show persons" lists
ListFunnelPersons' persons, by click and by keyboard, each a link to the Customer page."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import pytest
from playwright.sync_api import Page, expect

from tests.console.analytics_support import built_segment
from tests.console.browser import Console
from tests.console.calls import JOURNEYS, Bridge, Rpc
from tests.console.data_tables import table_rows, wait_until_equal
from tests.console.loading import ConsoleData

STEPS = ("Product Viewed", "Product Added", "Checkout Started", "Order Completed")


def _hash(data: ConsoleData) -> str:
    days = f"from={data.start.date()}&to={(data.end - timedelta(days=1)).date()}"
    return f"#/funnels?{days}&" + "&".join(f"step={quote(step)}" for step in STEPS)


# The expected funnels are asked of the HTTP bridge without `max-stale`: computed now, and kept by the gateway
# (ADR 58) as the answer the page's first view accepts, so page and test see one computation.


def _request(
    data: ConsoleData,
    gaps: dict[int, int] | None = None,
    exclusion: tuple[str, int, int] | None = None,
    by_channel: bool = False,
) -> dict[str, Any]:
    """The QueryFunnel request the page sends (pages/funnels.js, funnelRequest): `gaps` maps a step index to
    its window in minutes; `exclusion` is (event, from step, to step), steps counted from 0."""
    steps: list[dict[str, Any]] = []
    for index, name in enumerate(STEPS):
        step: dict[str, Any] = {"label": name, "event": {"eventName": name}}
        if gaps and index in gaps:
            step["maxGapFromPrevious"] = f"{gaps[index] * 60}s"
        steps.append(step)
    request: dict[str, Any] = {
        "steps": steps,
        "order": "FUNNEL_ORDER_ORDERED",
        "conversionWindow": f"{14 * 86400}s",
        "timeRange": data.time_range(),
        "exclusions": [],
    }
    if exclusion:
        name, first, last = exclusion
        request["exclusions"] = [{"event": {"eventName": name}, "fromStep": first, "toStep": last}]
    if by_channel:
        request["breakdown"] = {"dimension": "BREAKDOWN_DIMENSION_CHANNEL", "limit": 5}
    return request


Row = tuple[str, str, float, float]


def _steps(series: dict[str, Any]) -> list[Row]:
    return [
        (
            step["count"],
            step["dropOffCount"],
            float(step["conversionRate"]),
            float(step["overallConversionRate"]),
        )
        for step in series["steps"]
    ]


def _page_steps(page: Page, index: int = 0) -> list[Row] | None:
    rows = table_rows(page, f"funnel-table-{index}")
    if rows is None:
        return None
    return [
        (row["count"], row["dropOffCount"], float(row["conversionRate"]), float(row["overallConversionRate"]))
        for row in rows
    ]


def _all_series(page: Page, count: int) -> list[list[Row]] | None:
    tables = [_page_steps(page, index) for index in range(count)]
    return None if any(table is None for table in tables) else [table or [] for table in tables]


def _histogram(buckets: list[dict[str, Any]]) -> list[str]:
    return [bucket["count"] for bucket in buckets]


def _page_histogram(page: Page) -> list[str] | None:
    rows = table_rows(page, "funnel-histogram-table-0")
    return None if rows is None else [row["count"] for row in rows]


def test_the_funnel_shows_the_rpc_numbers_and_follows_edits(
    console: Console, console_data: ConsoleData, bridge: Callable[[str], Bridge]
) -> None:
    reader = bridge(console_data.read_key_a)
    expected = reader.call(JOURNEYS, "QueryFunnel", _request(console_data))["series"]
    assert len(expected) == 1
    first = expected[0]
    assert int(first["steps"][0]["count"]) > int(first["steps"][-1]["count"]) > 0, (
        "people convert and drop off"
    )
    page = console.open(_hash(console_data))
    assert wait_until_equal(lambda: _page_steps(page), _steps(first)) == _steps(first)
    assert _page_histogram(page) == _histogram(first["conversionTimeHistogram"])
    expect(page.get_by_test_id("funnel-chart").locator("svg")).to_be_visible()
    console.shot("funnel")

    # Refresh computes the funnel again (no kept answer): the same numbers, just computed.
    page.get_by_test_id("funnel-freshness").get_by_test_id("refresh").click()
    expect(page.get_by_test_id("funnel-freshness")).to_have_attribute("data-age", "0")
    assert wait_until_equal(lambda: _page_steps(page), _steps(first)) == _steps(first)

    # The histogram of one step: its time from the previous step.
    page.get_by_test_id("funnel-histogram-step").select_option("2")
    step_histogram = _histogram(first["steps"][2]["timeToConvertHistogram"])
    assert wait_until_equal(lambda: _page_histogram(page), step_histogram) == step_histogram

    # A one-day window on step 2, an exclusion between steps 3 and 4, then a breakdown by channel.
    edited = _request(console_data, gaps={1: 1440}, exclusion=("Cart Viewed", 2, 3))
    edited_series = reader.call(JOURNEYS, "QueryFunnel", edited)["series"]
    assert _steps(edited_series[0]) != _steps(first)
    page.get_by_test_id("funnel-gap-1").fill("1440")
    page.get_by_test_id("funnel-add-exclusion").click()
    page.get_by_test_id("funnel-exclusion-0").fill("Cart Viewed")
    page.get_by_test_id("funnel-exclusion-from-0").select_option("3")
    page.get_by_test_id("funnel-exclusion-to-0").select_option("4")
    page.get_by_test_id("funnel-apply").click()
    wanted = _steps(edited_series[0])
    assert wait_until_equal(lambda: _page_steps(page), wanted) == wanted

    by_channel = reader.call(
        JOURNEYS, "QueryFunnel", _request(console_data, {1: 1440}, ("Cart Viewed", 2, 3), True)
    )
    channel_series = by_channel["series"]
    assert len(channel_series) > 1
    page.get_by_test_id("funnel-breakdown").select_option("channel")
    page.get_by_test_id("funnel-apply").click()
    wanted_all = [_steps(series) for series in channel_series]
    assert wait_until_equal(lambda: _all_series(page, len(channel_series)), wanted_all) == wanted_all
    expect(page.locator("[data-testid^=funnel-series-] h3").first).to_have_text(
        channel_series[0]["breakdownValue"]["value"]
    )
    assert "breakdown=channel" in page.url
    console.shot("funnel-by-channel")


def _page_trend(page: Page) -> list[list[str]] | None:
    rows = table_rows(page, "funnel-trend-table")
    if rows is None:
        return None
    return [[row["day"], *(row[f"step-{k}"] for k in range(len(STEPS)))] for row in rows]


def test_the_trend_shows_each_weeks_funnel(
    console: Console, console_data: ConsoleData, bridge: Callable[[str], Bridge]
) -> None:
    """Conversion over time, by week: each row is the funnel of the persons who started it that week (the
    browser's zone, UTC here), a week still converting marked with *; the hash keeps the choice."""
    request = _request(console_data) | {"trend": {"period": "RETENTION_PERIOD_WEEK", "timeZone": "UTC"}}
    points = bridge(console_data.read_key_a).call(JOURNEYS, "QueryFunnel", request)["series"][0]["trend"]
    assert len(points) >= 2
    assert sum(int(p["stepCounts"][0]) for p in points) > sum(int(p["stepCounts"][-1]) for p in points) > 0
    wanted = [[p["periodStart"][:10] + ("" if p.get("complete") else " *"), *p["stepCounts"]] for p in points]
    page = console.open(_hash(console_data))
    expect(page.get_by_test_id("funnel-table-0")).to_be_visible()
    expect(page.get_by_test_id("funnel-trend")).to_have_count(0)  # not asked for
    page.get_by_test_id("funnel-trend-period").select_option("week")
    page.get_by_test_id("funnel-apply").click()
    assert wait_until_equal(lambda: _page_trend(page), wanted) == wanted
    expect(page.get_by_test_id("funnel-trend-chart").locator("svg")).to_be_visible()
    assert "trend=week" in page.url
    page.get_by_test_id("funnel-trend-table-toggle").click()
    expect(page.get_by_test_id("funnel-trend-table")).to_be_visible()
    console.shot("funnel-trend")

    # A week's persons: the funnel of that week (within the range) is what ListFunnelPersons lists.
    week = next(i for i, p in enumerate(points) if int(p["stepCounts"][-1]) > 0)
    end = points[week + 1]["periodStart"] if week + 1 < len(points) else request["timeRange"]["end"]
    span = {"start": max(points[week]["periodStart"], request["timeRange"]["start"]), "end": end}
    plain = {key: value for key, value in request.items() if key != "trend"} | {"timeRange": span}
    completed = bridge(console_data.read_key_a).call(
        JOURNEYS,
        "ListFunnelPersons",
        {
            "funnel": plain,
            "stepIndex": len(STEPS) - 1,
            "outcome": "FUNNEL_PERSONS_OUTCOME_CONVERTED",
            "pageSize": 50,
        },
    )["personIds"]
    assert len(completed) == min(int(points[week]["stepCounts"][-1]), 50)
    page.locator(f"[data-testid=funnel-trend-completed][data-point='{week}']").click()
    assert wait_until_equal(lambda: _listed(page), completed) == completed


@pytest.fixture(scope="module")
def checkout_starters(console_data: ConsoleData, rpc: Callable[[str], Rpc]) -> Iterator[dict[str, Any]]:
    """A's segment of the persons who started a checkout, built; deleted afterwards."""
    with built_segment(rpc(console_data.admin_key_a), "Checkout starters", "Checkout Started") as segment:
        yield segment


def test_a_breakdown_by_segment_sets_its_members_beside_everyone_else(
    console: Console,
    console_data: ConsoleData,
    bridge: Callable[[str], Bridge],
    checkout_starters: dict[str, Any],
) -> None:
    name = checkout_starters["name"]
    request = _request(console_data) | {
        "breakdown": {"dimension": "BREAKDOWN_DIMENSION_SEGMENT", "segments": [name]}
    }
    expected = bridge(console_data.read_key_a).call(JOURNEYS, "QueryFunnel", request)["series"]
    assert sorted(bool(s["breakdownValue"].get("missing")) for s in expected) == [False, True]
    page = console.open(_hash(console_data))
    expect(page.get_by_test_id("funnel-table-0")).to_be_visible()
    page.get_by_test_id("funnel-breakdown").select_option("segment")
    box = page.get_by_test_id(f"funnel-segment-{name.removeprefix('segments/')}")
    page.get_by_test_id("funnel-apply").click()  # no segment chosen: the form says so and stays
    assert box.evaluate("box => box.validationMessage") == "Choose at least one segment."
    assert "breakdown=segment" not in page.url
    box.check()
    page.get_by_test_id("funnel-apply").click()
    wanted = [_steps(series) for series in expected]
    assert wait_until_equal(lambda: _all_series(page, len(expected)), wanted) == wanted
    headings = page.locator("[data-testid^=funnel-series-] h3").all_text_contents()
    assert headings == [
        "In none of the chosen segments" if s["breakdownValue"].get("missing") else "Checkout starters"
        for s in expected
    ]
    assert "breakdown=segment" in page.url
    assert f"segment={name.replace('/', '%2F')}" in page.url
    console.shot("funnel-by-segment")


def _listed(page: Page) -> list[str]:
    links = page.get_by_test_id("funnel-persons-panel").get_by_test_id("person-link")
    ids: list[str] = links.evaluate_all("links => links.map(link => link.dataset.personId)")
    return ids


def test_show_persons_per_step_by_click_and_keyboard(
    console: Console, console_data: ConsoleData, bridge: Callable[[str], Bridge]
) -> None:
    reader = bridge(console_data.read_key_a)
    request = _request(console_data)
    page = console.open(_hash(console_data))
    panel = page.get_by_test_id("funnel-persons-panel")

    page.locator('[data-testid=funnel-persons][data-series="0"][data-step="3"]').click()
    expect(panel).to_have_attribute("data-outcome", "FUNNEL_PERSONS_OUTCOME_CONVERTED")
    converted = reader.call(
        JOURNEYS,
        "ListFunnelPersons",
        {"funnel": request, "stepIndex": 3, "outcome": "FUNNEL_PERSONS_OUTCOME_CONVERTED", "pageSize": 50},
    )["personIds"]
    assert converted
    assert wait_until_equal(lambda: _listed(page), converted) == converted
    console.shot("converted-persons")

    dropped_button = page.locator('[data-testid=funnel-dropped][data-series="0"][data-step="1"]')
    dropped_button.focus()
    page.keyboard.press("Enter")
    expect(panel).to_have_attribute("data-outcome", "FUNNEL_PERSONS_OUTCOME_DROPPED")
    dropped = reader.call(
        JOURNEYS,
        "ListFunnelPersons",
        {"funnel": request, "stepIndex": 1, "outcome": "FUNNEL_PERSONS_OUTCOME_DROPPED", "pageSize": 50},
    )["personIds"]
    assert dropped
    assert set(dropped).isdisjoint(converted)
    assert wait_until_equal(lambda: _listed(page), dropped) == dropped

    panel.locator(f'a[data-person-id="{dropped[0]}"]').click()
    expect(page).to_have_url(re.compile(re.escape(f"#/customer?person={dropped[0]}") + "$"))
