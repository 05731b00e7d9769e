"""The Segments page in Chromium, over a segment the test creates through the gateway with A's admin key:
the table shows each segment's state, members and freshness as ListSegments returns them; opening the
segment (the row's button: the keyboard's way to what a click on its bar does) lists its members as
ListSegmentMembers does, each linking to the customer page, and its entries and exits per day as
CountSegmentMembershipChanges counts them; B's read key sees none of A's segments."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.console.analytics_support import submit_and_wait
from tests.console.browser import Console, Table, read_table
from tests.console.calls import JOURNEYS, Rpc
from tests.console.loading import ConsoleData

_READY_TIMEOUT_SECONDS = 30.0
_BAR_COLOUR = "#0072B2"  # charts.js PALETTE[0], the colour of the one series of members


@pytest.fixture(scope="module")
def viewers(console_data: ConsoleData, rpc: Callable[[str], Rpc]) -> Iterator[dict[str, Any]]:
    """A's segment of the persons who viewed a product, created with A's admin key and built (once for the
    module's tests, which only read it); deleted afterwards."""
    admin = rpc(console_data.admin_key_a)
    segment_id = f"viewers-{uuid.uuid4().hex[:8]}"
    created = admin.json(
        JOURNEYS,
        "CreateSegment",
        {
            "segmentId": segment_id,
            "segment": {
                "displayName": "Product viewers",
                "description": "Viewed at least one product.",
                "condition": {"eventCount": {"event": {"eventName": "Product Viewed"}, "count": "1"}},
            },
        },
    )["segment"]
    deadline = time.monotonic() + _READY_TIMEOUT_SECONDS
    while True:
        segment = admin.json(JOURNEYS, "GetSegment", {"name": created["name"]})["segment"]
        if segment["status"]["state"] == "SEGMENT_STATE_READY":
            break
        assert time.monotonic() < deadline, f"{created['name']} was not built in {_READY_TIMEOUT_SECONDS} s"
        time.sleep(0.2)
    yield segment
    admin.json(JOURNEYS, "DeleteSegment", {"name": created["name"]})


def _by_key(table: Table) -> dict[str, dict[str, str]]:
    """A table's rows by their `data-row` key."""
    return dict(zip(table.row_keys, table.rows, strict=True))


def _second(rfc3339: str) -> str:
    """A timestamp as the page prints it (dom.js formatTime): "2026-12-01 16:11:44 UTC"."""
    return rfc3339[:19].replace("T", " ") + " UTC"


def _change_range(now: datetime) -> dict[str, str]:
    """The page's range of entries and exits: the 30 days up to the next midnight UTC."""
    end = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), UTC)
    return {
        "start": (end - timedelta(days=30)).isoformat().replace("+00:00", "Z"),
        "end": end.isoformat().replace("+00:00", "Z"),
    }


def test_sizes_freshness_members_and_changes(
    console: Console, console_data: ConsoleData, rpc: Callable[[str], Rpc], viewers: dict[str, Any]
) -> None:
    read_a = rpc(console_data.read_key_a)
    page = console.open("#/segments")
    listed = read_a.json(JOURNEYS, "ListSegments", {"pageSize": 1000})

    table = _by_key(read_table(page.get_by_test_id("segments-table")))
    after = read_a.json(JOURNEYS, "GetSegment", {"name": viewers["name"]})["segment"]["status"]
    assert set(table) == {s["name"] for s in listed["segments"]}
    for segment in listed["segments"]:
        assert table[segment["name"]]["members"] == segment["status"]["memberCount"]
    row = table[viewers["name"]]
    assert row["state"] == "Ready"
    # Freshness moves on with every pass of the evaluator: what the page shows lies between the two reads.
    assert _second(viewers["status"]["dataAsOf"]) <= row["dataAsOf"] <= _second(after["dataAsOf"])
    assert row["staleness"].endswith(" ago")
    assert _second(viewers["status"]["lastFullEvaluationTime"]) <= row["lastFull"]
    assert row["lastFull"] <= _second(after["lastFullEvaluationTime"])
    members = int(row["members"])
    assert members > 1
    expect(page.get_by_test_id("segments-chart").locator("svg")).to_be_visible()
    console.shot("list")

    opener = page.get_by_test_id("segments-table").locator(f"tr[data-row='{viewers['name']}']")
    section = submit_and_wait(console, opener.get_by_test_id("segment-open"), "segments")
    expect(section.get_by_test_id("segment-detail-title")).to_be_focused()
    assert f"segment={viewers['name'].replace('/', '%2F')}" in page.url
    expect(section.get_by_test_id("segment-detail-title")).to_have_text("Product viewers")
    first_page = read_a.json(JOURNEYS, "ListSegmentMembers", {"segment": viewers["name"], "pageSize": 50})
    shown = read_table(page.get_by_test_id("segment-members-table"))
    assert shown.row_keys == [m["personId"] for m in first_page["members"]]
    assert shown.column("personId") == shown.row_keys
    expect(page.get_by_test_id("segment-members-total")).to_have_text(f"{members:,} members")
    changes = read_a.json(
        JOURNEYS,
        "CountSegmentMembershipChanges",
        {
            "segment": viewers["name"],
            "period": "RETENTION_PERIOD_DAY",
            "timeRange": _change_range(datetime.now(UTC)),
        },
    )
    toggle = page.get_by_test_id("segment-changes-table-toggle")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    toggle.focus()
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("segment-changes-table")).to_be_visible()
    per_day = _by_key(read_table(page.get_by_test_id("segment-changes-table")))
    assert {day: (c["enteredCount"], c["exitedCount"]) for day, c in per_day.items()} == {
        c["periodStart"][:10]: (c["enteredCount"], c["exitedCount"]) for c in changes["counts"]
    }
    # The first build entered every member today.
    assert sum(int(c["enteredCount"]) for c in changes["counts"]) == members
    console.shot("opened")

    # The next page of members, as the RPC pages them.
    submit_and_wait(console, page.get_by_test_id("segment-members-next"), "segments")
    second_page = read_a.json(
        JOURNEYS,
        "ListSegmentMembers",
        {"segment": viewers["name"], "pageSize": 50, "pageToken": first_page["nextPageToken"]},
    )
    assert read_table(page.get_by_test_id("segment-members-table")).row_keys == [
        m["personId"] for m in second_page["members"]
    ]

    link = page.get_by_test_id("segment-member-link").first
    person = second_page["members"][0]["personId"]
    expect(link).to_have_attribute("href", f"#/customer?person={person}")
    link.click()
    console.wait_ready("customer")
    assert page.url.endswith(f"#/customer?person={person}")


def test_a_read_key_of_b_sees_none_of_a_segments(
    console: Console, console_data: ConsoleData, rpc: Callable[[str], Rpc], viewers: dict[str, Any]
) -> None:
    page = console.open("#/segments", key=console_data.read_key_b)
    listed_b = rpc(console_data.read_key_b).json(JOURNEYS, "ListSegments", {"pageSize": 1000})
    assert viewers["name"] not in {s["name"] for s in listed_b["segments"]}
    expect(page.get_by_test_id("segments-total")).to_contain_text(f"{listed_b['totalSize']} segment")
    expect(page.locator(f"tr[data-row='{viewers['name']}']")).to_have_count(0)
    console.go(f"#/segments?segment={viewers['name']}")
    expect(page.get_by_test_id("error")).to_have_attribute("data-code", "not_found")
    console.shot("tenant-b")


def test_a_click_on_a_segment_bar_opens_it(
    console: Console, console_data: ConsoleData, viewers: dict[str, Any]
) -> None:
    page = console.open("#/segments")
    bars = page.get_by_test_id("segments-chart").locator(f"path[fill='{_BAR_COLOUR}']")
    listed = read_table(page.get_by_test_id("segments-table")).row_keys
    expect(bars).to_have_count(len(listed))
    row = listed.index(viewers["name"])
    # The pointer over a bar brings up the tooltip's shadow band, drawn above the bars, and restyles the bar:
    # whether that happened by the time Playwright checks what receives the click is a race (CI failed on
    # it). ECharts handles a click on its own container, hit-testing its shapes (the band is not one of
    # them): a person's click at the bar's place opens it whatever is drawn on top (checked with the band
    # shown), so the test clicks the same way.
    submit_and_wait(console, bars.nth(row), "segments", by_pointer=True)
    expect(page.get_by_test_id("segment-detail-title")).to_have_text("Product viewers")
    expect(page.get_by_test_id("segment-members-table")).to_be_visible()
