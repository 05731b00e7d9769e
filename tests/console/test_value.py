"""The Customer value page in Chromium: for the currency, days and purchase events in its address, it shows
what GetCustomerValueSummary returns (the totals, every RFM segment's persons, value, purchases and recency,
every cell of the RFM grid, the value quantiles) and the top customers of GetCustomerValue's bulk mode, each
opening the Customer page; the filter form (currency, range, purchase events, a segment as the population)
puts its filters in the address and shows the RPCs' new answers; a currency nobody paid in shows the empty
state. The generated journeys pay in EUR (`Order Completed` events carry the revenue)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import pytest
from playwright.sync_api import Page, expect

from tests.console.analytics_support import built_segment, data_days, submit_and_wait
from tests.console.browser import Console, read_table
from tests.console.calls import JOURNEYS, Rpc
from tests.console.loading import ConsoleData

CURRENCY = "EUR"
TOP_CUSTOMERS = 20
# The page's names of the RfmSegment values (as the Customer page names them).
SEGMENT_LABELS = {
    "RFM_SEGMENT_CHAMPIONS": "Champions",
    "RFM_SEGMENT_LOYAL_CUSTOMERS": "Loyal customers",
    "RFM_SEGMENT_POTENTIAL_LOYALISTS": "Potential loyalists",
    "RFM_SEGMENT_NEW_CUSTOMERS": "New customers",
    "RFM_SEGMENT_PROMISING": "Promising",
    "RFM_SEGMENT_NEED_ATTENTION": "Need attention",
    "RFM_SEGMENT_ABOUT_TO_SLEEP": "About to sleep",
    "RFM_SEGMENT_AT_RISK": "At risk",
    "RFM_SEGMENT_CANNOT_LOSE": "Cannot lose",
    "RFM_SEGMENT_HIBERNATING": "Hibernating",
    "RFM_SEGMENT_LOST": "Lost",
    "RFM_SEGMENT_NO_PURCHASE": "No purchase",
}
LEVELS = {
    0.1: "10th percentile",
    0.25: "25th percentile",
    0.5: "Median",
    0.75: "75th percentile",
    0.9: "90th percentile",
    0.99: "99th percentile",
    1.0: "Maximum",
}


def _request(
    days: dict[str, str],
    currency: str = CURRENCY,
    events: tuple[str, ...] = (),
    segments: tuple[str, ...] = (),
) -> dict[str, Any]:
    """The GetCustomerValueSummary request the page sends for these filters (inclusive days, so the range
    ends at the midnight after the last)."""
    end = (date.fromisoformat(days["to"]) + timedelta(days=1)).isoformat()
    request: dict[str, Any] = {
        "currencyCode": currency,
        "timeRange": {"start": f"{days['from']}T00:00:00Z", "end": f"{end}T00:00:00Z"},
    }
    if events:
        request["purchaseEventNames"] = list(events)
    if segments:
        request["population"] = {"segments": list(segments)}
    return request


def _answers(reader: Rpc, request: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The RPCs' own answers to the page's two calls: the summary, and the first page of the top customers."""
    summary = reader.json(JOURNEYS, "GetCustomerValueSummary", request)
    top = reader.json(JOURNEYS, "GetCustomerValue", request | {"pageSize": TOP_CUSTOMERS})
    return summary, top


def _amount(money: dict[str, Any]) -> Decimal:
    """Money's exact amount: units and nanos."""
    return Decimal(int(money["units"])) + Decimal(int(money["nanos"])).scaleb(-9)


def _money_text(money: dict[str, Any]) -> str:
    """Money's proto3 JSON as the page prints it: `1,042.50 EUR`."""
    units, nanos = int(money["units"]), int(money["nanos"])
    cents = round(abs(nanos) / 10**7)
    sign = "-" if units < 0 or nanos < 0 else ""
    return f"{sign}{abs(units) + cents // 100:,}.{cents % 100:02d} {money['currencyCode']}"


def _figure(page: Page, testid: str) -> tuple[str, str]:
    """A headline figure's raw value (its data-value) and the text shown."""
    value = page.get_by_test_id(testid).locator("dd [data-value]")
    return str(value.get_attribute("data-value")), value.inner_text()


def _share(part: Decimal | int, whole: Decimal | int) -> float | None:
    return float(part) / float(whole) if whole > 0 else None


def _rows(page: Page, testid: str) -> list[tuple[str, dict[str, str]]]:
    table = page.get_by_test_id(testid)
    expect(table).to_be_visible()
    read = read_table(table)
    return list(zip(read.row_keys, read.rows, strict=True))


def _assert_page_shows(console: Console, summary: dict[str, Any], top: dict[str, Any]) -> None:
    page = console.page
    expect(page.get_by_test_id("error")).to_have_count(0)
    expect(page.get_by_test_id("empty")).to_have_count(0)
    purchasers, total = int(summary["purchasers"]), _amount(summary["historicValue"])

    # Totals, and the end the values are measured to.
    assert _figure(page, "value-purchasers") == (summary["purchasers"], f"{purchasers:,}")
    raw, shown = _figure(page, "value-historic-value")
    assert (Decimal(raw), shown) == (total, _money_text(summary["historicValue"]))
    assert _figure(page, "value-purchases")[0] == summary["purchaseCount"]
    assert _figure(page, "value-end-time")[0] == summary["endTime"]

    # Every RFM segment, in the RPC's order, with every field (and the shares the page works out).
    expect(page.get_by_test_id("value-segments-chart").locator("svg")).to_be_visible()
    rows = _rows(page, "value-segments-table")
    assert [key for key, _ in rows] == [s["segment"] for s in summary["segments"]]
    for (_, row), expected in zip(rows, summary["segments"], strict=True):
        value = _amount(expected["historicValue"])
        assert row["segment"] == SEGMENT_LABELS[expected["segment"]]
        assert row["persons"] == expected["persons"]
        assert float(row["personShare"]) == pytest.approx(_share(int(expected["persons"]), purchasers))
        assert Decimal(row["historicValue"]) == value
        assert float(row["valueShare"]) == pytest.approx(_share(value, total))
        assert row["purchaseCount"] == expected["purchaseCount"]
        assert float(row["averageRecencyDays"]) == pytest.approx(expected["averageRecencyDays"])
    assert sum(int(s["persons"]) for s in summary["segments"]) == purchasers

    # Every cell of the grid the RPC returned, by recency score then FM score.
    expect(page.get_by_test_id("value-grid-chart").locator("svg")).to_be_visible()
    rows = _rows(page, "value-grid-table")
    assert [key for key, _ in rows] == [f"r{c['recencyScore']}-fm{c['fmScore']}" for c in summary["cells"]]
    for (_, row), expected in zip(rows, summary["cells"], strict=True):
        scores = (int(row["recencyScore"]), int(row["fmScore"]))
        assert scores == (expected["recencyScore"], expected["fmScore"])
        assert row["segment"] == SEGMENT_LABELS[expected["segment"]]
        assert row["persons"] == expected["persons"]
        assert Decimal(row["historicValue"]) == _amount(expected["historicValue"])

    # The quantiles of the historic value, level by level.
    rows = _rows(page, "value-quantiles-table")
    assert [float(row["quantile"]) for _, row in rows] == [q["quantile"] for q in summary["valueQuantiles"]]
    assert len(rows) == len(LEVELS)
    for (_, row), expected in zip(rows, summary["valueQuantiles"], strict=True):
        assert row["level"] == LEVELS[expected["quantile"]]
        assert Decimal(row["value"]) == _amount(expected["value"])

    # The top customers, by decreasing value, each linking to the Customer page.
    rows = _rows(page, "value-top-table")
    assert [key for key, _ in rows] == [v["personId"] for v in top["values"]]
    for (_, row), expected in zip(rows, top["values"], strict=True):
        assert row["personId"] == expected["personId"]
        assert Decimal(row["historicValue"]) == _amount(expected["historicValue"])
        assert row["purchaseCount"] == expected["purchaseCount"]
        assert row["rfmSegment"] == SEGMENT_LABELS[expected["rfmSegment"]]
        assert int(row["recencyDays"]) == expected["recencyDays"]
    links = page.get_by_test_id("value-person-link")
    assert [links.nth(i).get_attribute("href") for i in range(links.count())] == [
        f"#/customer?{urlencode({'person': v['personId']})}" for v in top["values"]
    ]


def test_the_page_shows_the_summary_and_the_top_customers(
    console: Console, console_data: ConsoleData, rpc: Callable[[str], Rpc]
) -> None:
    days = data_days(console_data)
    events = ("Order Completed",)
    console.open(f"#/value?{urlencode({'currency': CURRENCY, **days, 'event': events[0]})}")
    summary, top = _answers(rpc(console_data.read_key_a), _request(days, events=events))

    assert int(summary["purchasers"]) > TOP_CUSTOMERS  # the generated journeys buy: a full first page
    assert len(summary["segments"]) > 1
    assert len(summary["cells"]) > 1
    _assert_page_shows(console, summary, top)
    assert len(top["values"]) == TOP_CUSTOMERS
    assert top["totalSize"] == int(summary["purchasers"])
    page = console.page
    expect(page.locator("main h1")).to_have_text("Customer value")
    expect(page.locator("main h1")).to_be_focused()
    console.shot("summary")

    # Refresh computes both again: the line says so and the numbers stay the RPCs'.
    page.get_by_test_id("freshness").evaluate("line => line.setAttribute('data-e2e-old', '')")
    page.get_by_test_id("refresh").click()
    expect(page.locator("[data-testid='freshness']:not([data-e2e-old])")).to_have_attribute("data-age", "0")
    _assert_page_shows(console, summary, top)

    # The best customer opens on the Customer page.
    best = top["values"][0]["personId"]
    submit_and_wait(console, page.get_by_test_id("value-person-link").first, "customer")
    expect(page.get_by_test_id("customer-person-id")).to_have_text(best)


def test_a_segment_lists_its_own_top_customers(
    console: Console, console_data: ConsoleData, rpc: Callable[[str], Rpc]
) -> None:
    days = data_days(console_data)
    console.open(f"#/value?{urlencode({'currency': CURRENCY, **days})}")
    page = console.page
    reader = rpc(console_data.read_key_a)
    summary, everyone = _answers(reader, _request(days))
    # The segment with the most purchasers after the first, so that its list differs from everyone's.
    chosen = sorted(summary["segments"], key=lambda s: -int(s["persons"]))[1]["segment"]
    label = SEGMENT_LABELS[chosen]

    submit_and_wait(console, page.get_by_role("link", name=f"Top customers: {label}", exact=True), "value")

    assert page.url.split("#", 1)[1] == "/value?" + urlencode(
        [("currency", CURRENCY), ("from", days["from"]), ("to", days["to"]), ("rfm", chosen)]
    )
    top = reader.json(
        JOURNEYS, "GetCustomerValue", _request(days) | {"pageSize": TOP_CUSTOMERS, "rfmSegments": [chosen]}
    )
    assert top["values"]
    assert {v["rfmSegment"] for v in top["values"]} == {chosen}
    assert [v["personId"] for v in top["values"]] != [v["personId"] for v in everyone["values"]][
        : len(top["values"])
    ]
    _assert_page_shows(console, summary, top)  # the summary is the population's still
    expect(page.get_by_test_id("value-top-section").get_by_role("heading")).to_have_text(
        f"Top customers: {label}"
    )

    submit_and_wait(console, page.get_by_test_id("value-all-segments"), "value")
    _assert_page_shows(console, summary, everyone)


@pytest.fixture(scope="module")
def adders(console_data: ConsoleData, rpc: Callable[[str], Rpc]) -> Iterator[dict[str, Any]]:
    """A's segment of the persons who added a product, built; deleted afterwards."""
    with built_segment(rpc(console_data.admin_key_a), "Value adders", "Product Added") as segment:
        yield segment


def test_the_form_puts_the_filters_in_the_address_and_shows_the_new_answer(
    console: Console, console_data: ConsoleData, rpc: Callable[[str], Rpc], adders: dict[str, Any]
) -> None:
    days = data_days(console_data)
    console.open(f"#/value?{urlencode({'currency': CURRENCY, **days})}")
    page = console.page
    reader = rpc(console_data.read_key_a)
    _assert_page_shows(console, *_answers(reader, _request(days)))

    narrower = data_days(console_data, days=14)
    page.get_by_test_id("value-currency").fill("eur")
    page.get_by_test_id("value-range-from").fill(narrower["from"])
    page.get_by_test_id("value-events").fill("Order Completed, Gift Card Redeemed")
    page.get_by_test_id(f"value-segment-{adders['name'].removeprefix('segments/')}").check()
    submit_and_wait(console, page.get_by_test_id("value-apply"), "value")

    events = ("Order Completed", "Gift Card Redeemed")
    assert page.url.split("#", 1)[1] == "/value?" + urlencode(
        [("currency", CURRENCY), ("from", narrower["from"]), ("to", narrower["to"])]
        + [("event", event) for event in events]
        + [("segment", adders["name"])]
    )
    summary, top = _answers(reader, _request(narrower, events=events, segments=(adders["name"],)))
    everyone = reader.json(JOURNEYS, "GetCustomerValueSummary", _request(days))
    assert 0 < int(summary["purchasers"]) < int(everyone["purchasers"])
    _assert_page_shows(console, summary, top)
    expect(page.get_by_test_id("value-events")).to_have_value(", ".join(events))
    expect(page.get_by_test_id("value-currency")).to_have_value(CURRENCY)
    console.shot("narrower-population")


def test_a_currency_nobody_paid_in_shows_the_empty_state(
    console: Console, console_data: ConsoleData, rpc: Callable[[str], Rpc]
) -> None:
    days = data_days(console_data)
    page = console.open(f"#/value?{urlencode({'currency': 'USD', **days})}")
    summary = rpc(console_data.read_key_a).json(JOURNEYS, "GetCustomerValueSummary", _request(days, "USD"))
    assert summary["purchasers"] == "0"
    expect(page.get_by_test_id("empty")).to_have_text("No purchase in USD in this range.")
    expect(page.get_by_test_id("error")).to_have_count(0)
    expect(page.get_by_test_id("value-segments-table")).to_have_count(0)
    console.shot("empty")
