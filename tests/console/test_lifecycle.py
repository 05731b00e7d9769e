"""The Lifecycle page in Chromium: its table shows GetLifecycleStages' distributions at the page's times (the
population and every stage's persons at each), the stacked chart is drawn, the model in force is named, and
changing the interval or the time range shows the RPC's answer for the new times."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from playwright.sync_api import expect

from tests.console.analytics_support import data_days, submit_and_wait
from tests.console.browser import Console, read_table
from tests.console.calls import JOURNEYS, Rpc
from tests.console.loading import ConsoleData

STAGES = ("AWARENESS", "ACQUISITION", "ONBOARDING", "ENGAGEMENT", "RETENTION", "ADVOCACY")


def _times(days: dict[str, str], step: timedelta) -> list[str]:
    """The instants the page reads the distribution at: the first day's start, every `step` after it before
    the end, and the end (the midnight after the last day)."""
    start = datetime.combine(date.fromisoformat(days["from"]), datetime.min.time(), UTC)
    end = datetime.combine(date.fromisoformat(days["to"]), datetime.min.time(), UTC) + timedelta(days=1)
    times = []
    while start < end:
        times.append(start)
        start += step
    times.append(end)
    return [t.isoformat().replace("+00:00", "Z") for t in times]


def _expected_rows(answer: dict[str, Any]) -> dict[str, dict[str, int]]:
    rows = {}
    for distribution in answer["distributions"]:
        counts = {c["stage"]: int(c["count"]) for c in distribution["stageCounts"]}
        row = {"populationSize": int(distribution["populationSize"])}
        row.update({f"LIFECYCLE_STAGE_{s}": counts.get(f"LIFECYCLE_STAGE_{s}", 0) for s in STAGES})
        rows[distribution["time"]] = row
    return rows


def _assert_page_shows(console: Console, answer: dict[str, Any]) -> None:
    table = read_table(console.page.get_by_test_id("lifecycle-table"))
    shown = {
        key: {column: int(value) for column, value in row.items() if column != "time"}
        for key, row in zip(table.row_keys, table.rows, strict=True)
    }
    assert shown == _expected_rows(answer)
    expect(console.page.get_by_test_id("lifecycle-chart").locator("svg")).to_be_visible()


def test_the_table_shows_the_distributions_over_time(
    console: Console, console_data: ConsoleData, rpc: Callable[[str], Rpc]
) -> None:
    days = data_days(console_data)
    console.open(f"#/lifecycle?{urlencode({**days, 'interval': 'week'})}")
    times = _times(days, timedelta(days=7))
    answer = rpc(console_data.read_key_a).json(JOURNEYS, "GetLifecycleStages", {"distributionTimes": times})

    _assert_page_shows(console, answer)
    final = answer["distributions"][-1]
    assert int(final["populationSize"]) > 0
    # Persons move up the stages over the data's weeks: the generated journeys acquire and engage.
    assert sum(int(c["count"]) for c in final["stageCounts"] if c["stage"] != "LIFECYCLE_STAGE_AWARENESS") > 0
    expect(console.page.get_by_test_id("lifecycle-model")).to_contain_text("built-in default")
    console.shot("weekly")


def test_changing_the_interval_and_range_shows_the_new_times(
    console: Console, console_data: ConsoleData, rpc: Callable[[str], Rpc]
) -> None:
    days = data_days(console_data)
    console.open(f"#/lifecycle?{urlencode({**days, 'interval': 'week'})}")
    page = console.page

    narrower = data_days(console_data, days=12)
    page.get_by_test_id("lifecycle-range-from").fill(narrower["from"])
    page.get_by_test_id("lifecycle-interval").select_option("day")
    page.get_by_test_id("lifecycle-show").select_option("shares")
    submit_and_wait(console, page.get_by_test_id("lifecycle-apply"), "lifecycle")

    times = _times(narrower, timedelta(days=1))
    assert len(times) == 13
    answer = rpc(console_data.read_key_a).json(JOURNEYS, "GetLifecycleStages", {"distributionTimes": times})
    _assert_page_shows(console, answer)
    assert "interval=day" in page.url
    assert "show=shares" in page.url
    console.shot("daily-shares")
