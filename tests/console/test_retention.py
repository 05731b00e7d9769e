"""The Retention page in Chromium: its heatmap's table shows what QueryRetention returns for the page's
filters (every cohort's size and every period's retained persons, and the weighted average), and changing the
period, the number of periods, the time range or the breakdown (by channel, or by chosen segments: their
members compared, and those in none of them) shows the RPC's new answer."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.console.analytics_support import built_segment, data_days, submit_and_wait
from tests.console.browser import Console, read_table
from tests.console.calls import JOURNEYS, Rpc
from tests.console.loading import ConsoleData

AVERAGE_ROW = "All cohorts (weighted)"


def _request(days: dict[str, str], period: str, periods: int, breakdown: bool = False) -> dict[str, Any]:
    """The QueryRetention request the page sends for these filters (inclusive days → [start, end))."""
    end = (date.fromisoformat(days["to"]) + timedelta(days=1)).isoformat()
    request: dict[str, Any] = {
        "period": f"RETENTION_PERIOD_{period.upper()}",
        "periodCount": periods,
        "type": "RETENTION_TYPE_BOUNDED",
        "timeRange": {"start": f"{days['from']}T00:00:00Z", "end": f"{end}T00:00:00Z"},
    }
    if breakdown:
        request["breakdown"] = {"dimension": "BREAKDOWN_DIMENSION_CHANNEL", "limit": 5}
    return request


def _expected_rows(series: dict[str, Any]) -> dict[str, dict[str, int]]:
    """Row key → {"size": cohort size, "p<n>": persons retained in period n} of one series, average last."""
    rows: dict[str, dict[str, int]] = {}
    for cohort in series["cohorts"]:
        row = {"size": int(cohort["cohortSize"])}
        row.update({f"p{v['periodIndex']}": int(v["retainedCount"]) for v in cohort["values"]})
        rows[cohort["periodStart"][:10]] = row
    average = {"size": sum(int(c["cohortSize"]) for c in series["cohorts"])}
    average.update({f"p{v['periodIndex']}": int(v["retainedCount"]) for v in series["average"]})
    rows[AVERAGE_ROW] = average
    return rows


def _assert_page_shows(console: Console, answer: dict[str, Any]) -> None:
    page = console.page
    series = answer["series"]
    assert series, "the loaded data should fill at least one series"
    expect(page.locator("[data-testid^='retention-series-']")).to_have_count(len(series))
    for index, expected in enumerate(series):
        if not expected["cohorts"]:
            continue
        expect(page.get_by_test_id(f"retention-chart-{index}").locator("svg")).to_be_visible()
        table = read_table(page.get_by_test_id(f"retention-table-{index}"))
        shown = {
            key: {
                column: int(value)
                for column, value in row.items()
                # Periods not started yet show "—" and carry no value, as the RPC omits them.
                if (column == "size" or column[1:].isdigit()) and value != "—"
            }
            for key, row in zip(table.row_keys, table.rows, strict=True)
        }
        assert shown == _expected_rows(expected), f"series {index}"


def test_the_heatmap_table_shows_query_retention(
    console: Console, console_data: ConsoleData, rpc: Callable[[str], Rpc]
) -> None:
    days = data_days(console_data)
    query = urlencode({**days, "period": "week", "periods": 4})
    console.open(f"#/retention?{query}")
    answer = rpc(console_data.read_key_a).json(JOURNEYS, "QueryRetention", _request(days, "week", 4))

    _assert_page_shows(console, answer)
    assert sum(int(c["cohortSize"]) for c in answer["series"][0]["cohorts"]) > 0
    console.shot("weekly")

    # Refresh computes the grid again (no kept answer): the line says so and the numbers stay the RPC's.
    page = console.page
    page.get_by_test_id("freshness").evaluate("line => line.setAttribute('data-e2e-old', '')")
    page.get_by_test_id("refresh").click()
    expect(page.locator("[data-testid='freshness']:not([data-e2e-old])")).to_have_attribute("data-age", "0")
    _assert_page_shows(console, answer)


def test_changing_the_filters_shows_the_new_answer(
    console: Console, console_data: ConsoleData, rpc: Callable[[str], Rpc]
) -> None:
    days = data_days(console_data)
    console.open(f"#/retention?{urlencode({**days, 'period': 'week', 'periods': 4})}")
    page = console.page
    read_a = rpc(console_data.read_key_a)

    narrower = data_days(console_data, days=10)
    page.get_by_test_id("retention-range-from").fill(narrower["from"])
    page.get_by_test_id("retention-period").select_option("day")
    page.get_by_test_id("retention-periods").fill("6")
    submit_and_wait(console, page.get_by_test_id("retention-apply"), "retention")

    assert "period=day" in page.url
    assert f"from={narrower['from']}" in page.url
    _assert_page_shows(console, read_a.json(JOURNEYS, "QueryRetention", _request(narrower, "day", 6)))
    console.shot("daily")

    page.get_by_test_id("retention-breakdown").select_option("channel")
    submit_and_wait(console, page.get_by_test_id("retention-apply"), "retention")

    by_channel = read_a.json(JOURNEYS, "QueryRetention", _request(narrower, "day", 6, breakdown=True))
    assert len(by_channel["series"]) > 1
    _assert_page_shows(console, by_channel)
    console.shot("daily-by-channel")


@pytest.fixture(scope="module")
def buyers(console_data: ConsoleData, rpc: Callable[[str], Rpc]) -> Iterator[dict[str, Any]]:
    """A's segment of the persons who completed an order, built; deleted afterwards."""
    with built_segment(rpc(console_data.admin_key_a), "Retention buyers", "Order Completed") as segment:
        yield segment


@pytest.fixture(scope="module")
def adders(console_data: ConsoleData, rpc: Callable[[str], Rpc]) -> Iterator[dict[str, Any]]:
    """A's segment of the persons who added a product, built; deleted afterwards (it overlaps `buyers`)."""
    with built_segment(rpc(console_data.admin_key_a), "Retention adders", "Product Added") as segment:
        yield segment


def _segment_box(page: Page, segment: dict[str, Any]) -> Locator:
    return page.get_by_test_id(f"retention-segment-{segment['name'].removeprefix('segments/')}")


def test_a_breakdown_by_segments_compares_their_members(
    console: Console,
    console_data: ConsoleData,
    rpc: Callable[[str], Rpc],
    buyers: dict[str, Any],
    adders: dict[str, Any],
) -> None:
    days = data_days(console_data)
    console.open(f"#/retention?{urlencode({**days, 'period': 'week', 'periods': 4})}")
    page = console.page
    property_input = page.get_by_test_id("retention-property")
    expect(property_input).to_be_hidden()  # shown with its breakdown only, and then required
    page.get_by_test_id("retention-breakdown").select_option("property")
    expect(property_input).to_be_visible()
    page.get_by_test_id("retention-apply").click()
    assert property_input.evaluate("input => input.validity.valueMissing")
    assert "breakdown=property" not in page.url
    page.get_by_test_id("retention-breakdown").select_option("segment")
    expect(property_input).to_be_hidden()
    page.get_by_test_id("retention-apply").click()  # no segment chosen: the form says so and stays
    first = page.get_by_test_id("retention-segments").locator("input[type=checkbox]").first
    assert first.evaluate("box => box.validationMessage") == "Choose at least one segment."
    assert "breakdown=segment" not in page.url
    _segment_box(page, buyers).check()
    submit_and_wait(console, page.get_by_test_id("retention-apply"), "retention")

    reader = rpc(console_data.read_key_a)
    request = _request(days, "week", 4) | {
        "breakdown": {"dimension": "BREAKDOWN_DIMENSION_SEGMENT", "segments": [buyers["name"]]}
    }
    answer = reader.json(JOURNEYS, "QueryRetention", request)
    assert sorted(bool(s["breakdownValue"].get("missing")) for s in answer["series"]) == [False, True]
    _assert_page_shows(console, answer)
    headings = page.locator("[data-testid^='retention-series-'] h2").all_text_contents()
    assert headings == [
        "Not in the segment" if s["breakdownValue"].get("missing") else "Retention buyers"
        for s in answer["series"]
    ]
    assert f"segment={buyers['name'].replace('/', '%2F')}" in page.url
    console.shot("weekly-by-segment")

    # Two overlapping segments: a series each (a person in both counts in each), and those in neither.
    _segment_box(page, adders).check()
    submit_and_wait(console, page.get_by_test_id("retention-apply"), "retention")
    request["breakdown"]["segments"] = [buyers["name"], adders["name"]]
    answer = reader.json(JOURNEYS, "QueryRetention", request)
    names = {buyers["name"]: "Retention buyers", adders["name"]: "Retention adders"}
    wanted = [
        "In none of the chosen segments"
        if s["breakdownValue"].get("missing")
        else names[s["breakdownValue"]["value"]]
        for s in answer["series"]
    ]
    assert sorted(wanted) == ["In none of the chosen segments", "Retention adders", "Retention buyers"]
    _assert_page_shows(console, answer)
    assert page.locator("[data-testid^='retention-series-'] h2").all_text_contents() == wanted
    assert page.url.count("segment=segments") == 2
    console.shot("weekly-by-two-segments")
