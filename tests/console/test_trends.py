"""The Trends page in Chromium, for events of its own: purchases and contacts sent through the gateway as
any client sends them (ingest scores the contacts' text), in a tenant made for this module so that no other
test's kept answers see them, under names no other test uses. For known events it shows the counts per day,
the unique persons (once each over the whole range), the sum and the average of revenue in one currency (a
day without any shows "—", not 0), a breakdown by channel, periods in a time zone, formulas over the series'
letters (a division by zero without a value), the previous range beside the range (its values by position and
the change, dashed lines), the sentiment preset's shares and mean score, the stickiness of an event (its
persons by how many of the days they performed it on, per channel too) and its activity lifecycle (per day its
persons new, returning, resurrecting and dormant, the active ones and the quick ratio, each count listing its
persons, each a link to their Customer page; with an admin key, a series' dormant persons saved as a segment
of rolling windows, read back over gRPC, and no such action for a read key); the form puts every choice in the
address, and that address shows the same view again; a period still running is marked; a request QueryTrends
refuses shows its error and the fields it names, a formula's beside its input."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from statistics import fmean
from urllib.parse import urlencode

import grpc
import pytest
from playwright.sync_api import Locator, Page, Route, expect

from tests.conftest import API_KEY
from tests.console.analytics_support import submit_and_wait
from tests.console.browser import Console, read_table
from tests.console.calls import JOURNEYS, Rpc
from tests.console.loading import make_tenant
from wayline.client import Client, money
from wayline.common.json_messages import message_from_json, message_to_json
from wayline.common.server import Server
from wayline.common.timestamps import to_timestamp
from wayline.event.v1 import event_pb2
from wayline.journeys.v1 import condition_pb2
from wayline.journeys.v1 import journeys_service_pb2 as journeys_pb

_STORE_SECONDS = 60.0
_WEB, _EMAIL = event_pb2.CHANNEL_WEB, event_pb2.CHANNEL_EMAIL
_CHAT, _CALL = event_pb2.CHANNEL_CHATBOT, event_pb2.CHANNEL_CALL_CENTER
# Texts whose VADER scores lie far from the neutral band (|score| < 0.05), or at 0: their bands are known.
_POSITIVE = ("I love it, great service, thank you!", "Wonderful help, I am very happy.")
_NEUTRAL = "The parcel arrived on Tuesday."
_NEGATIVE = "This is terrible. I hate it, awful service."
EMPTY = "—"
MINUS = "\N{MINUS SIGN}"  # a change's sign when it falls


@dataclass(frozen=True)
class TrendData:
    """The module's tenant (its read key) and events: `purchase`, `contact` and `habit` are their names,
    `first` the first of their three UTC days (ten days ago); `scores` the sentiment score ingest gave each
    contact's text; `ann` and `bo` the person ids identity gave the two persons."""

    read_key: str
    admin_key: str
    purchase: str
    contact: str
    habit: str
    first: date
    scores: dict[str, float]
    ann: str
    bo: str

    def day(self, offset: int) -> str:
        return (self.first + timedelta(days=offset)).isoformat()

    def midnight(self, offset: int, hours: int = 0) -> str:
        """RFC 3339 of midnight UTC of day `offset`, `hours` later (a period's start as the RPC prints it)."""
        moment = datetime.combine(self.first, datetime.min.time(), UTC) + timedelta(days=offset, hours=hours)
        return moment.isoformat().replace("+00:00", "Z")


def _event(
    name: str,
    day: date,
    email: str,
    channel: event_pb2.Channel.ValueType,
    *,
    revenue: tuple[str, str] | None = None,
    text: str = "",
) -> event_pb2.Event:
    """An event at 20:00 UTC of `day` (already the next day in Tokyo)."""
    at = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=20)
    event = event_pb2.Event(
        event_id=str(uuid.uuid4()),
        type=event_pb2.EVENT_TYPE_TRACK,
        name=name,
        channel=channel,
        timestamp=to_timestamp(at),
        identifiers=[event_pb2.Identifier(type="email", value=email)],
        text=text,
    )
    if revenue:
        event.revenue.CopyFrom(money(*revenue))
    return event


def _exported(reader: Rpc, first: date) -> list[event_pb2.Event]:
    """The tenant's events of the module's four days, as journeys holds them."""
    start = datetime.combine(first, datetime.min.time(), UTC)
    end = start + timedelta(days=4)
    time_range = {"start": start.isoformat(), "end": end.isoformat()}
    events: list[event_pb2.Event] = []
    for chunk in reader.stream(JOURNEYS, "ExportEvents", {"timeRange": time_range}):
        assert isinstance(chunk, journeys_pb.ExportEventsResponse)
        events.extend(chunk.events)
    return events


@pytest.fixture(scope="module")
def trend_data(
    console_channel: grpc.Channel, console_gateway: Server, rpc: Callable[[str], Rpc]
) -> TrendData:
    """Purchases (name `Trend Bought <hex>`), on the first day two by ann (10 and 20 EUR, web) and one by bo
    (30 EUR, email), on the second one by ann in USD (7, web), on the third one by bo (5 EUR, web); contacts
    (`Trend Talked <hex>`) on the second day: ann's three by chat (positive, neutral, negative) and bo's two
    by phone (positive, and one without text, so without a score); returns (`Trend Returned <hex>`), for
    stickiness: ann's on the first day (web) and two on the second (web and email), bo's on the third
    (email)."""
    tenant = make_tenant(console_channel, API_KEY, "trends")
    suffix = uuid.uuid4().hex[:6]
    purchase, contact = f"Trend Bought {suffix}", f"Trend Talked {suffix}"
    habit = f"Trend Returned {suffix}"
    ann, bo = f"ann-{suffix}@example.com", f"bo-{suffix}@example.com"
    first = (datetime.now(UTC) - timedelta(days=10)).date()
    second, third = first + timedelta(days=1), first + timedelta(days=2)
    events = [
        _event(purchase, first, ann, _WEB, revenue=("10.00", "EUR")),
        _event(purchase, first, ann, _WEB, revenue=("20.00", "EUR")),
        _event(purchase, first, bo, _EMAIL, revenue=("30.00", "EUR")),
        _event(purchase, second, ann, _WEB, revenue=("7.00", "USD")),
        _event(purchase, third, bo, _WEB, revenue=("5.00", "EUR")),
        _event(contact, second, ann, _CHAT, text=_POSITIVE[0]),
        _event(contact, second, ann, _CHAT, text=_NEUTRAL),
        _event(contact, second, ann, _CHAT, text=_NEGATIVE),
        _event(contact, second, bo, _CALL, text=_POSITIVE[1]),
        _event(contact, second, bo, _CALL),
        _event(habit, first, ann, _WEB),
        _event(habit, second, ann, _WEB),
        _event(habit, second, ann, _EMAIL),
        _event(habit, third, bo, _EMAIL),
    ]
    with Client(console_gateway.address, tenant.keys["write"], secure=False) as client:
        rejected = client.send(events, backfill=True).rejections
    assert not rejected, rejected
    reader = rpc(tenant.keys["read"])
    deadline = time.monotonic() + _STORE_SECONDS
    while len(stored := _exported(reader, first)) < len(events):
        assert time.monotonic() < deadline, f"{len(stored)} of {len(events)} events stored"
        time.sleep(0.2)
    scored = [e for e in stored if e.name == contact and e.HasField("sentiment_score")]
    scores = {e.text: e.sentiment_score for e in scored}
    persons = (
        {e.person_id for e in stored if any(i.value == ann for i in e.identifiers)},
        {e.person_id for e in stored if any(i.value == bo for i in e.identifiers)},
    )
    assert [len(ids) for ids in persons] == [1, 1], persons
    (ann_id,), (bo_id,) = persons
    assert ann_id != bo_id
    return TrendData(
        tenant.keys["read"], tenant.keys["admin"], purchase, contact, habit, first, scores, ann_id, bo_id
    )


def _hash(params: list[tuple[str, str]]) -> str:
    return "#/trends?" + urlencode(params)


def _series(event: str, math: str, of: str = "", currency: str = "") -> list[tuple[str, str]]:
    return [("event", event), ("math", math), ("of", of), ("currency", currency)]


def _days(data: TrendData, first: int = 0, last: int = 2) -> list[tuple[str, str]]:
    return [("period", "day"), ("from", data.day(first)), ("to", data.day(last))]


def _shown(page: Page, testid: str) -> dict[str, dict[str, str]]:
    """A table's rows by their key (a period's start, or `total`), each as column key → raw value or text."""
    table = page.get_by_test_id(testid)
    expect(table).to_be_visible()
    read = read_table(table)
    return dict(zip(read.row_keys, read.rows, strict=True))


def _column(rows: dict[str, dict[str, str]], column: str) -> dict[str, float | str]:
    """One column by row key: numbers as floats, "—" (no value) as it is."""
    return {key: row[column] if row[column] == EMPTY else float(row[column]) for key, row in rows.items()}


def _by_day(data: TrendData, *values: float | str, total: float | str) -> dict[str, float | str]:
    expected: dict[str, float | str] = {data.midnight(i): v for i, v in enumerate(values)}
    return expected | {"total": total}


def _address(page: Page) -> str:
    return page.url.split("#", 1)[1]


def test_counts_persons_and_revenue_per_day(console: Console, trend_data: TrendData) -> None:
    data = trend_data
    name = data.purchase
    page = console.open(
        _hash(
            _series(name, "total")
            + _series(name, "persons")
            + _series(name, "sum", "revenue", "EUR")
            + _series(name, "average", "revenue", "EUR")
            + _days(data)
            + [("tz", "UTC")]
        ),
        key=data.read_key,
    )
    expect(page.get_by_test_id("error")).to_have_count(0)
    expect(page.locator("main h1")).to_have_text("Trends")

    # Events per day (the USD purchase counts: no currency here), the whole range last.
    total = _shown(page, "trends-table-0")
    assert _column(total, "value") == _by_day(data, 3, 1, 1, total=5)
    assert [row["period"] for row in total.values()] == [data.day(0), data.day(1), data.day(2), "Whole range"]
    expect(page.get_by_test_id("trends-chart-0").locator("svg")).to_be_visible()
    # Persons per day; over the whole range each once: ann and bo.
    assert _column(_shown(page, "trends-table-1"), "value") == _by_day(data, 2, 1, 1, total=2)
    # Revenue in EUR only: the USD purchase matches neither the sum (0 that day) nor the average (no value).
    revenue = _shown(page, "trends-table-2")
    assert _column(revenue, "value") == _by_day(data, 60, 0, 5, total=65)
    assert _column(revenue, "events") == _by_day(data, 3, 0, 1, total=4)
    average = _shown(page, "trends-table-3")
    assert _column(average, "value") == _by_day(data, 20, EMPTY, 5, total=16.25)
    expect(page.get_by_test_id("trends-series-3").get_by_role("heading")).to_have_text(
        f"{name}: Average of revenue (EUR)"
    )
    console.shot("per-day")


def test_the_form_puts_every_choice_in_the_address_which_shows_the_view_again(
    console: Console, trend_data: TrendData
) -> None:
    data = trend_data
    page = console.open("#/trends", key=data.read_key)
    # The default: every event per week over the last 8 weeks in UTC, the current week still running.
    weeks = read_table(page.get_by_test_id("trends-table-0"))
    labels = weeks.column("period")
    assert len(labels) in (9, 10)  # 56 days touch 8 or 9 weeks; the whole range last
    assert labels[-1] == "Whole range"
    assert labels[-2].endswith(" *")
    assert not any(label.endswith("*") for label in labels[:-2])
    assert weeks.rows[-1]["value"] == "14"  # every event of the tenant
    expect(page.get_by_test_id("trends-tz")).to_have_value("UTC")

    page.get_by_test_id("trends-event-0").fill(data.purchase)
    page.get_by_test_id("trends-math-0").select_option("sum")
    expect(page.get_by_test_id("trends-currency-0")).to_be_hidden()
    page.get_by_test_id("trends-of-0").fill("revenue")
    page.get_by_test_id("trends-currency-0").fill("eur")
    page.get_by_test_id("trends-period").select_option("day")
    page.get_by_test_id("trends-range-from").fill(data.day(0))
    page.get_by_test_id("trends-range-to").fill(data.day(2))
    page.get_by_test_id("trends-breakdown").select_option("channel")
    submit_and_wait(console, page.get_by_test_id("trends-apply"), "trends")

    assert _address(page) == _hash(
        [
            *_series(data.purchase, "sum", "revenue", "EUR"),
            *_days(data),
            ("tz", "UTC"),
            ("breakdown", "channel"),
        ]
    ).removeprefix("#")
    shown = _shown(page, "trends-table-0")
    # By events: web first (three in EUR), then email.
    assert read_table(page.get_by_test_id("trends-table-0")).columns == [
        "Day",
        "web",
        "web: events",
        "email",
        "email: events",
    ]
    assert _column(shown, "value:web") == _by_day(data, 30, 0, 5, total=35)
    assert _column(shown, "events:web") == _by_day(data, 2, 0, 1, total=3)
    assert _column(shown, "value:email") == _by_day(data, 30, 0, 0, total=30)
    console.shot("by-channel")

    # The address alone brings the same view back, its form filled as it was.
    page.reload()
    console.wait_ready("trends")
    assert _shown(page, "trends-table-0") == shown
    expect(page.get_by_test_id("trends-event-0")).to_have_value(data.purchase)
    expect(page.get_by_test_id("trends-math-0")).to_have_value("sum")
    expect(page.get_by_test_id("trends-currency-0")).to_have_value("EUR")
    expect(page.get_by_test_id("trends-period")).to_have_value("day")
    expect(page.get_by_test_id("trends-breakdown")).to_have_value("channel")


def test_periods_begin_at_midnight_in_the_time_zone(console: Console, trend_data: TrendData) -> None:
    data = trend_data
    # 20:00 UTC is 05:00 the next day in Tokyo (UTC+9): each purchase falls a day later there.
    page = console.open(
        _hash([("event", data.purchase), *_days(data, 1, 3), ("tz", "Asia/Tokyo")]), key=data.read_key
    )
    shown = _shown(page, "trends-table-0")
    assert _column(shown, "value") == {
        data.midnight(0, 15): 3,
        data.midnight(1, 15): 1,
        data.midnight(2, 15): 1,
        "total": 5,
    }
    assert [row["period"] for row in shown.values()][:3] == [data.day(1), data.day(2), data.day(3)]


def _sentiment(page: Page, section: str) -> dict[str, dict[str, str]]:
    table = page.locator(f"{section} table[data-testid^='trends-sentiment-table-']")
    expect(table).to_be_visible()
    read = read_table(table)
    return dict(zip(read.row_keys, read.rows, strict=True))


def test_sentiment_shows_the_shares_of_each_band(console: Console, trend_data: TrendData) -> None:
    data = trend_data
    assert len(data.scores) == 4  # the contact without text has no score
    page = console.open(
        _hash([("mode", "sentiment"), ("event", data.contact), *_days(data), ("tz", "UTC")]),
        key=data.read_key,
    )
    expect(page.get_by_test_id("error")).to_have_count(0)
    rows = _sentiment(page, "[data-testid='trends-sentiment-0']")
    scored = rows[data.midnight(1)]
    assert scored["scored"] == "4"
    assert float(scored["mean"]) == pytest.approx(fmean(data.scores.values()))
    shares = {band: float(scored[band]) for band in ("negative", "neutral", "positive", "net")}
    assert shares == {"negative": 0.25, "neutral": 0.25, "positive": 0.5, "net": 0.25}
    table = read_table(page.get_by_test_id("trends-sentiment-table-0"))
    assert table.texts[1][3:] == ["25.0%", "25.0%", "50.0%", "+25.0%"]
    assert rows["total"] == scored | {"period": "Whole range"}
    # A day without a scored event has no shares and no mean.
    quiet = rows[data.midnight(0)]
    assert quiet["scored"] == "0"
    assert [quiet[key] for key in ("mean", "negative", "neutral", "positive", "net")] == [EMPTY] * 5
    expect(page.get_by_test_id("trends-sentiment-chart-0").locator("svg")).to_be_visible()
    console.shot("sentiment")

    # By channel: the chat's three, one in each band; the phone's one scored (the other has no text).
    page.get_by_test_id("trends-breakdown").select_option("channel")
    submit_and_wait(console, page.get_by_test_id("trends-apply"), "trends")
    assert _address(page) == _hash(
        [
            ("mode", "sentiment"),
            ("event", data.contact),
            *_days(data),
            ("tz", "UTC"),
            ("breakdown", "channel"),
        ]
    ).removeprefix("#")
    chat = _sentiment(page, "section[data-key='chatbot']")["total"]
    assert (chat["scored"], chat["net"]) == ("3", "0")
    assert [float(chat[band]) for band in ("negative", "neutral", "positive")] == pytest.approx([1 / 3] * 3)
    call = _sentiment(page, "section[data-key='call_center']")["total"]
    assert (call["scored"], call["positive"], call["net"]) == ("1", "1", "1")
    assert float(call["mean"]) == pytest.approx(data.scores[_POSITIVE[1]])


def test_a_refused_request_shows_the_fields_it_names(console: Console, trend_data: TrendData) -> None:
    data = trend_data
    page = console.open(
        _hash(_series(data.purchase, "sum") + _days(data) + [("tz", "Mars/Olympus")]), key=data.read_key
    )
    error = page.get_by_test_id("error")
    expect(error).to_have_attribute("data-code", "invalid_argument")
    violations = page.get_by_test_id("trends-violations").locator("li")
    fields = {str(item.get_attribute("data-field")) for item in violations.all()}
    assert fields == {"series[0].property", "time_zone"}
    expect(violations.filter(has_text="Series 1, property")).to_have_count(1)
    expect(violations.filter(has_text="Mars/Olympus")).to_have_count(1)
    # The form keeps what was asked, the property to fill shown and required.
    expect(page.get_by_test_id("trends-of-0")).to_be_visible()
    expect(page.get_by_test_id("trends-tz")).to_have_value("Mars/Olympus")
    console.shot("refused")


def test_a_population_keeps_the_events_of_a_segments_members(
    console: Console, trend_data: TrendData, rpc: Callable[[str], Rpc]
) -> None:
    """`in=segments/...`: only the events of the persons in the segment (bo, the one who phoned) count."""
    data = trend_data
    admin = rpc(data.admin_key)
    condition = {
        "eventCount": {"event": {"eventName": data.contact, "channels": ["CHANNEL_CALL_CENTER"]}, "count": 1}
    }
    admin.call(JOURNEYS, "CreateSegment", {"segmentId": "trend-callers", "segment": {"condition": condition}})
    deadline = time.monotonic() + _STORE_SECONDS
    while True:  # memberships are built in the background
        segment = admin.json(JOURNEYS, "GetSegment", {"name": "segments/trend-callers"})["segment"]
        if segment["status"]["state"] == "SEGMENT_STATE_READY":
            break
        assert time.monotonic() < deadline, segment
        time.sleep(0.2)
    page = console.open(
        _hash(
            _series(data.purchase, "total") + _days(data) + [("tz", "UTC"), ("in", "segments/trend-callers")]
        ),
        key=data.read_key,
    )
    expect(page.get_by_test_id("error")).to_have_count(0)
    # bo's purchases: 30 EUR on the first day, 5 EUR on the third (ann's three are not counted).
    assert _column(_shown(page, "trends-table-0"), "value") == _by_day(data, 1, 0, 1, total=2)
    expect(page.get_by_test_id("trends-population-trend-callers")).to_be_checked()


def test_formulas_compute_lines_from_the_series_letters(console: Console, trend_data: TrendData) -> None:
    """Purchases (A), their persons (B) and their revenue in EUR (C): `B / A` is the persons per purchase,
    `a / c` the purchases per euro, without a value on the second day (no revenue in EUR: a division by
    zero); over the whole range each is applied to the series' totals."""
    data = trend_data
    name = data.purchase
    series = _series(name, "total") + _series(name, "persons") + _series(name, "sum", "revenue", "EUR")
    page = console.open(_hash(series + _days(data) + [("tz", "UTC")]), key=data.read_key)
    for index, letter in enumerate("ABC"):
        expect(page.get_by_test_id(f"trends-letter-{index}")).to_have_text(letter)
    expect(page.get_by_test_id("trends-formula-results")).to_have_count(0)

    page.get_by_test_id("trends-add-formula").click()
    expect(page.get_by_test_id("trends-formula-0")).to_be_focused()
    page.get_by_test_id("trends-formula-0").fill("B / A")
    page.get_by_test_id("trends-add-formula").click()
    page.get_by_test_id("trends-formula-1").fill("a / c")
    # An empty formula is dropped.
    page.get_by_test_id("trends-add-formula").click()
    # Sentiment mode measures the preset's series, not these: the formulas hide, and come back with them.
    page.get_by_test_id("trends-mode").select_option("sentiment")
    expect(page.get_by_test_id("trends-formula-editor")).to_be_hidden()
    page.get_by_test_id("trends-mode").select_option("series")
    expect(page.get_by_test_id("trends-formula-1")).to_have_value("a / c")
    submit_and_wait(console, page.get_by_test_id("trends-apply"), "trends")

    assert _address(page) == _hash(
        [*series, ("formula", "B / A"), ("formula", "a / c"), *_days(data), ("tz", "UTC")]
    ).removeprefix("#")
    expect(page.get_by_test_id("error")).to_have_count(0)
    table = read_table(page.get_by_test_id("trends-formula-table"))
    assert table.columns == ["Day", "= B / A", "= a / c"]
    shown = _shown(page, "trends-formula-table")
    # Purchases 3, 1, 1 (5); persons 2, 1, 1 (2 over the range); EUR 60, 0, 5 (65).
    assert _column(shown, "formula:0") == pytest.approx(_by_day(data, 2 / 3, 1, 1, total=2 / 5))
    per_euro = _column(shown, "formula:1")
    assert per_euro[data.midnight(1)] == EMPTY
    assert {k: v for k, v in per_euro.items() if v != EMPTY} == pytest.approx(
        {data.midnight(0): 3 / 60, data.midnight(2): 1 / 5, "total": 5 / 65}
    )
    # Shown with up to 2 decimals.
    assert table.texts[0][1:] == ["0.67", "0.05"]
    assert table.texts[-1] == ["Whole range", "0.4", "0.08"]
    chart = page.get_by_test_id("trends-formula-chart")
    expect(chart.locator("svg")).to_be_visible()
    expect(chart.locator("svg text", has_text="= a / c")).to_have_count(1)
    # The series are still shown, each with its own chart and table.
    assert _column(_shown(page, "trends-table-0"), "value") == _by_day(data, 3, 1, 1, total=5)
    console.shot("formulas")

    page.reload()
    console.wait_ready("trends")
    expect(page.get_by_test_id("trends-formula-0")).to_have_value("B / A")
    expect(page.get_by_test_id("trends-formula-1")).to_have_value("a / c")
    expect(page.get_by_test_id("trends-formula-2")).to_have_count(0)
    assert _shown(page, "trends-formula-table") == shown


def test_a_refused_formula_is_named_beside_its_input(console: Console, trend_data: TrendData) -> None:
    data = trend_data
    series = _series(data.purchase, "total") + _series(data.purchase, "persons")
    page = console.open(
        _hash([*series, ("formula", "B / A"), ("formula", "A + Z"), *_days(data), ("tz", "UTC")]),
        key=data.read_key,
    )
    expect(page.get_by_test_id("error")).to_have_attribute("data-code", "invalid_argument")
    violations = page.get_by_test_id("trends-violations").locator("li")
    expect(violations).to_have_count(1)
    expect(violations).to_have_attribute("data-field", "formulas[1].expression")
    expect(violations).to_contain_text(
        "Formula 2, expression: Z names no series (A to B here) at character 5"
    )
    # Beside the formula, which keeps what was typed; the other formula has nothing to say.
    expect(page.get_by_test_id("trends-formula-error-1")).to_contain_text("Z names no series (A to B here)")
    expect(page.get_by_test_id("trends-formula-1")).to_have_value("A + Z")
    expect(page.get_by_test_id("trends-formula-1")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_test_id("trends-formula-error-0")).to_be_hidden()
    console.shot("refused-formula")


def test_compare_with_the_previous_period(console: Console, trend_data: TrendData) -> None:
    """Days 1 and 2 against the two days before (day -1, without events, and day 0): purchases 1, 1 against
    0, 3; revenue in EUR 0, 5 against 0, 60; their ratio `B / A` 0, 5 against none (0 / 0) and 20. A change
    from 0 or from nothing is "—". By channel, the whole range per value: web 2 against 2 (email, only
    before, is not shown)."""
    data = trend_data
    name = data.purchase
    series = _series(name, "total") + _series(name, "sum", "revenue", "EUR") + [("formula", "B / A")]
    asked = [*series, *_days(data, 1, 2), ("tz", "UTC")]
    page = console.open(_hash(asked), key=data.read_key)
    expect(page.get_by_test_id("trends-compare")).not_to_be_checked()
    expect(page.get_by_test_id("trends-compare-line")).to_have_count(0)

    page.get_by_label("Compare with the previous period").check()
    submit_and_wait(console, page.get_by_test_id("trends-apply"), "trends")
    assert _address(page) == _hash([*asked, ("compare", "1")]).removeprefix("#")
    expect(page.get_by_test_id("error")).to_have_count(0)
    expect(page.get_by_test_id("trends-compare-line")).to_contain_text(
        f"Compared with {data.day(-1)} 00:00 to {data.day(1)} 00:00 (UTC)"
    )

    # Purchases: each day beside the day at the same position before, the totals last.
    table = read_table(page.get_by_test_id("trends-table-0"))
    assert table.columns == ["Day", "Total events", "Previous", "Change"]
    shown = _shown(page, "trends-table-0")
    days = {data.midnight(1): 1, data.midnight(2): 1, "total": 2}
    assert _column(shown, "value") == days
    assert _column(shown, "previous") == {data.midnight(1): 0, data.midnight(2): 3, "total": 3}
    assert [row[1:] for row in table.texts] == [
        ["1", "0", EMPTY],
        ["1", "3", f"{MINUS}66.7%"],
        ["2", "3", f"{MINUS}33.3%"],
    ]
    assert float(shown["total"]["change"]) == pytest.approx(-1 / 3)
    # Revenue in EUR: nothing on day -1 either.
    revenue = _shown(page, "trends-table-1")
    assert _column(revenue, "previous") == {data.midnight(1): 0, data.midnight(2): 60, "total": 60}
    assert _column(revenue, "value") == {data.midnight(1): 0, data.midnight(2): 5, "total": 5}
    # The formula over the previous range's series: no value on day -1 (0 / 0).
    formulas = read_table(page.get_by_test_id("trends-formula-table"))
    assert formulas.columns == ["Day", "= B / A", "= B / A: previous", "= B / A: change"]
    assert [row[1:] for row in formulas.texts] == [
        ["0", EMPTY, EMPTY],
        ["5", "20", f"{MINUS}75.0%"],
        ["2.5", "20", f"{MINUS}87.5%"],
    ]

    # Each line has its previous one, named after it and dashed.
    chart = page.get_by_test_id("trends-chart-0")
    expect(chart.locator("svg text", has_text="Total events (previous)")).to_have_count(1)
    expect(chart.locator("svg path[stroke-dasharray]").first).to_be_attached()
    expect(
        page.get_by_test_id("trends-formula-chart").locator("svg text", has_text="= B / A (previous)")
    ).to_have_count(1)
    console.shot("compared")

    # By channel: the whole range per value in a table of its own, the periods' table as without comparison.
    page.get_by_test_id("trends-breakdown").select_option("channel")
    submit_and_wait(console, page.get_by_test_id("trends-apply"), "trends")
    assert _address(page) == _hash([*asked, ("compare", "1"), ("breakdown", "channel")]).removeprefix("#")
    assert read_table(page.get_by_test_id("trends-table-0")).columns == ["Day", "web"]
    compared = read_table(page.get_by_test_id("trends-compare-table-0"))
    assert compared.columns == ["Breakdown value", "This range", "Previous range", "Change"]
    assert compared.row_keys == ["0:web"]
    assert compared.texts == [["web", "2", "2", "0.0%"]]
    # EUR on the web: 5 against ann's 30 (bo's 30 came by email).
    assert read_table(page.get_by_test_id("trends-compare-table-1")).texts == [
        ["web", "5", "30", f"{MINUS}83.3%"]
    ]
    expect(
        page.get_by_test_id("trends-chart-0").locator("svg text", has_text="web (previous)")
    ).to_have_count(1)

    # The address alone brings the comparison back; sentiment mode has none to offer.
    page.reload()
    console.wait_ready("trends")
    expect(page.get_by_test_id("trends-compare")).to_be_checked()
    expect(page.get_by_test_id("trends-compare-table-0")).to_be_visible()
    page.get_by_test_id("trends-mode").select_option("sentiment")
    expect(page.get_by_test_id("trends-compare")).to_be_hidden()


def test_stickiness_counts_persons_by_the_days_they_performed_the_event(
    console: Console, trend_data: TrendData
) -> None:
    """Returns over three days: ann on two of them (twice on the second, which counts once), bo on one; so
    one person each in the rows 1 and 2 (half of the two), none in 3. By channel: email holds ann (day 2)
    and bo (day 3), each on one day; the web ann alone, on two days."""
    data = trend_data
    # From a series view with a math, a formula and a comparison: stickiness keeps the event alone.
    asked = [*_series(data.habit, "sum", "revenue", "EUR"), ("formula", "A * 2"), *_days(data), ("tz", "UTC")]
    page = console.open(_hash([*asked, ("compare", "1")]), key=data.read_key)
    page.get_by_test_id("trends-mode").select_option("stickiness")
    for hidden in (
        "trends-math-0",
        "trends-of-0",
        "trends-currency-0",
        "trends-formula-editor",
        "trends-compare",
    ):
        expect(page.get_by_test_id(hidden)).to_be_hidden()
    expect(page.get_by_test_id("trends-letter-0")).to_have_count(0)
    expect(page.get_by_test_id("trends-event-0")).to_have_value(data.habit)
    submit_and_wait(console, page.get_by_test_id("trends-apply"), "trends")

    stickiness = [("mode", "stickiness"), ("event", data.habit), *_days(data), ("tz", "UTC")]
    assert _address(page) == _hash(stickiness).removeprefix("#")
    expect(page.get_by_test_id("error")).to_have_count(0)
    section = page.get_by_test_id("trends-stickiness-0")
    expect(section.get_by_role("heading")).to_have_text(
        f"{data.habit}: persons by the days they performed it"
    )
    table = read_table(page.get_by_test_id("trends-stickiness-table-0"))
    assert table.columns == ["Days", "Persons"]
    assert table.row_keys == ["1", "2", "3", "persons"]
    assert table.texts == [["1", "1 (50.0%)"], ["2", "1 (50.0%)"], ["3", "0 (0.0%)"], ["Persons", "2"]]
    assert table.column("persons") == ["1", "1", "0", "2"]
    chart = page.get_by_test_id("trends-stickiness-chart-0")
    expect(chart.locator("svg")).to_be_visible()
    expect(chart.locator("svg text", has_text="3 days")).to_have_count(1)
    expect(page.get_by_test_id("trends-range-line")).to_contain_text("3 days")
    console.shot("stickiness")

    # The address alone brings the same view back, the form in stickiness mode.
    page.reload()
    console.wait_ready("trends")
    assert read_table(page.get_by_test_id("trends-stickiness-table-0")).texts == table.texts
    expect(page.get_by_test_id("trends-mode")).to_have_value("stickiness")
    expect(page.get_by_test_id("trends-event-0")).to_have_value(data.habit)
    expect(page.get_by_test_id("trends-math-0")).to_be_hidden()

    # By channel: a column per value, each share of that value's persons; email (two persons) first.
    page.get_by_test_id("trends-breakdown").select_option("channel")
    submit_and_wait(console, page.get_by_test_id("trends-apply"), "trends")
    assert _address(page) == _hash([*stickiness, ("breakdown", "channel")]).removeprefix("#")
    by_channel = read_table(page.get_by_test_id("trends-stickiness-table-0"))
    assert by_channel.columns == ["Days", "email", "web"]
    assert by_channel.texts == [
        ["1", "2 (100.0%)", "0 (0.0%)"],
        ["2", "0 (0.0%)", "1 (100.0%)"],
        ["3", "0 (0.0%)", "0 (0.0%)"],
        ["Persons", "2", "1"],
    ]
    expect(
        page.get_by_test_id("trends-stickiness-chart-0").locator("svg text", has_text="web")
    ).to_have_count(1)

    # A request QueryStickiness refuses shows its error and the fields it names, as the other modes do.
    console.go(_hash([*stickiness[:-1], ("tz", "Mars/Olympus")]))
    expect(page.get_by_test_id("error")).to_have_attribute("data-code", "invalid_argument")
    violations = page.get_by_test_id("trends-violations").locator("li")
    expect(violations).to_have_count(1)
    expect(violations).to_have_attribute("data-field", "time_zone")
    expect(violations).to_contain_text("Mars/Olympus")


def test_lifecycle_sorts_each_days_persons_by_how_their_activity_changed(
    console: Console, trend_data: TrendData
) -> None:
    """Purchases on days 0 to 3: ann on days 0 and 1, bo on days 0 and 2. Day 0: both new (their first
    purchase ever). Day 1: ann returning (active the day before), bo dormant. Day 2: bo resurrecting (not
    active on day 1, but on day 0), ann dormant. Day 3: nobody active, bo dormant. The quick ratio, (new +
    resurrecting) ÷ dormant: — on day 0 (no one dormant), 0 on days 1 and 3, 1 on day 2. Returns (the second
    series): ann on days 0 and 1, bo on day 2: new, returning, then bo new and ann dormant, then bo dormant.
    From day 1 on, the day before the range (day 0) is read too: ann returns on day 1, bo is dormant."""
    data = trend_data
    # From a series view with a math, a formula, a comparison and a breakdown: the lifecycle keeps the events
    # alone, without a breakdown.
    asked = [
        *_series(data.purchase, "sum", "revenue", "EUR"),
        *_series(data.habit, "persons"),
        ("formula", "A * 2"),
        *_days(data, 0, 3),
        ("tz", "UTC"),
    ]
    page = console.open(_hash([*asked, ("compare", "1"), ("breakdown", "channel")]), key=data.read_key)
    page.get_by_test_id("trends-mode").select_option("lifecycle")
    for hidden in (
        "trends-math-0",
        "trends-of-0",
        "trends-currency-0",
        "trends-math-1",
        "trends-formula-editor",
        "trends-compare",
        "trends-breakdown",
    ):
        expect(page.get_by_test_id(hidden)).to_be_hidden()
    expect(page.get_by_test_id("trends-letter-0")).to_have_count(0)
    expect(page.get_by_test_id("trends-event-0")).to_have_value(data.purchase)
    expect(page.get_by_test_id("trends-event-1")).to_have_value(data.habit)
    submit_and_wait(console, page.get_by_test_id("trends-apply"), "trends")

    lifecycle = [
        ("mode", "lifecycle"),
        ("event", data.purchase),
        ("event", data.habit),
        *_days(data, 0, 3),
        ("tz", "UTC"),
    ]
    assert _address(page) == _hash(lifecycle).removeprefix("#")
    expect(page.get_by_test_id("error")).to_have_count(0)
    expect(page.get_by_test_id("trends-lifecycle-0").get_by_role("heading")).to_have_text(
        f"{data.purchase}: new, returning, resurrecting and dormant persons"
    )
    table = read_table(page.get_by_test_id("trends-lifecycle-table-0"))
    assert table.columns == ["Day", "New", "Returning", "Resurrecting", "Dormant", "Active", "Quick ratio"]
    assert table.row_keys == [data.midnight(i) for i in range(4)]
    # Period, new, returning, resurrecting, dormant (below zero), active, quick ratio.
    assert table.texts == [
        [data.day(0), "2", "0", "0", "0", "2", EMPTY],
        [data.day(1), "0", "1", "0", f"{MINUS}1", "1", "0.00"],
        [data.day(2), "0", "0", "1", f"{MINUS}1", "1", "1.00"],
        [data.day(3), "0", "0", "0", f"{MINUS}1", "0", "0.00"],
    ]
    assert table.column("dormant") == ["0", "-1", "-1", "-1"]
    assert read_table(page.get_by_test_id("trends-lifecycle-table-1")).texts == [
        [data.day(0), "1", "0", "0", "0", "1", EMPTY],
        [data.day(1), "0", "1", "0", "0", "1", EMPTY],
        [data.day(2), "1", "0", "0", f"{MINUS}1", "1", "1.00"],
        [data.day(3), "0", "0", "0", f"{MINUS}1", "0", "0.00"],
    ]
    chart = page.get_by_test_id("trends-lifecycle-chart-0")
    expect(chart.locator("svg")).to_be_visible()
    expect(chart).to_have_attribute("role", "img")
    for status in ("New", "Returning", "Resurrecting", "Dormant"):
        expect(chart.locator("svg text", has_text=status)).to_have_count(1)
    expect(page.get_by_test_id("trends-range-line")).to_contain_text("quick ratio")
    console.shot("lifecycle")

    # The address alone brings the same view back, the form in lifecycle mode.
    page.reload()
    console.wait_ready("trends")
    assert read_table(page.get_by_test_id("trends-lifecycle-table-0")).texts == table.texts
    expect(page.get_by_test_id("trends-mode")).to_have_value("lifecycle")
    expect(page.get_by_test_id("trends-event-1")).to_have_value(data.habit)
    expect(page.get_by_test_id("trends-breakdown")).to_be_hidden()

    # From day 1, the day before the range is read: ann, active on day 0, returns; bo is dormant.
    console.go(_hash([*lifecycle[:2], *_days(data, 1, 2), ("tz", "UTC")]))
    assert read_table(page.get_by_test_id("trends-lifecycle-table-0")).texts == [
        [data.day(1), "0", "1", "0", f"{MINUS}1", "1", "0.00"],
        [data.day(2), "0", "0", "1", f"{MINUS}1", "1", "1.00"],
    ]

    # A period still running is marked, as in the other modes: the current week of the default range.
    console.go(_hash([("mode", "lifecycle"), ("event", data.habit)]))
    labels = read_table(page.get_by_test_id("trends-lifecycle-table-0")).column("period")
    assert labels[-1].endswith(" *")
    assert not any(label.endswith("*") for label in labels[:-1])
    console.shot("lifecycle-running")

    # A request QueryActivityLifecycle refuses shows its error and the fields it names, as the other modes do.
    console.go(_hash([*lifecycle[:-1], ("tz", "Mars/Olympus")]))
    expect(page.get_by_test_id("error")).to_have_attribute("data-code", "invalid_argument")
    violations = page.get_by_test_id("trends-violations").locator("li")
    expect(violations).to_have_count(1)
    expect(violations).to_have_attribute("data-field", "time_zone")
    expect(violations).to_contain_text("Mars/Olympus")


# The centre, in the page, of the largest shape of a chart's SVG filled with a colour (a bar, not its legend's
# icon).
_LARGEST_SHAPE = """(chart, colour) => {
    const boxes = [...chart.querySelectorAll("svg path")]
        .filter((path) => (path.getAttribute("fill") || "").toLowerCase() === colour)
        .map((path) => path.getBoundingClientRect())
        .sort((a, b) => b.width * b.height - a.width * a.height);
    const box = boxes[0];
    return { x: box.x + box.width / 2, y: box.y + box.height / 2 };
}"""


def _listed(panel: Locator) -> list[str]:
    """The person ids a persons panel lists, in order."""
    ids: list[str] = panel.get_by_test_id("person-link").evaluate_all(
        "links => links.map(link => link.dataset.personId)"
    )
    return ids


def test_a_lifecycle_count_lists_its_persons_each_a_link_to_their_customer_page(
    console: Console, trend_data: TrendData
) -> None:
    """The lifecycle of the previous test (purchases on days 0 to 3: ann on days 0 and 1, bo on days 0 and 2;
    returns: ann on days 0 and 1, bo on day 2): each count above zero lists its persons under its series'
    table (ListActivityLifecyclePersons, in ascending order of person id): day 0's two new persons, both;
    day 1's dormant one, bo (by keyboard); day 2's resurrecting one, bo, and its dormant one, ann; in the
    returns, day 2's new one, bo; a bar segment lists its own (day 2's resurrecting). A zero is no button;
    two persons make one page (no "More persons"); Close gives the focus back to the count; a page refused
    shows its error and the field it names; a person's link opens their Customer page."""
    data = trend_data
    lifecycle = [("mode", "lifecycle"), ("event", data.purchase), ("event", data.habit), *_days(data, 0, 3)]
    page = console.open(_hash([*lifecycle, ("tz", "UTC")]), key=data.read_key)
    table = page.get_by_test_id("trends-lifecycle-table-0")
    expect(table).to_be_visible()

    def count(table: Locator, day: int, status: str) -> Locator:
        return table.locator(f'tr[data-row="{data.midnight(day)}"] td[data-key="{status}"]').get_by_role(
            "button"
        )

    # Only the counts above zero are buttons: day 0's new, day 1's returning and dormant, day 2's resurrecting
    # and dormant, day 3's dormant.
    buttons = table.get_by_test_id("trends-lifecycle-count")
    assert buttons.evaluate_all("bs => bs.map(b => [b.dataset.period, b.dataset.status, b.textContent])") == [
        [data.midnight(0), "new", "2"],
        [data.midnight(1), "returning", "1"],
        [data.midnight(1), "dormant", f"{MINUS}1"],
        [data.midnight(2), "resurrecting", "1"],
        [data.midnight(2), "dormant", f"{MINUS}1"],
        [data.midnight(3), "dormant", f"{MINUS}1"],
    ]
    expect(table.locator(f'tr[data-row="{data.midnight(0)}"] td[data-key="dormant"] button')).to_have_count(0)
    # The table reads as before: the buttons show the numbers.
    assert read_table(table).texts[1] == [data.day(1), "0", "1", "0", f"{MINUS}1", "1", "0.00"]
    expect(count(table, 1, "dormant")).to_have_accessible_name(
        f"{MINUS}1: list the dormant persons, day {data.day(1)}"
    )

    # Day 0's new persons: ann and bo, in ascending order of id, each a link to their Customer page.
    panel = page.get_by_test_id("trends-lifecycle-persons")
    expect(panel).to_be_hidden()
    count(table, 0, "new").click()
    section = page.get_by_test_id("trends-lifecycle-0")
    expect(section.get_by_test_id("trends-lifecycle-persons")).to_be_visible()  # under the series' table
    expect(panel.get_by_test_id("persons-title")).to_have_text(
        f"New persons, day {data.day(0)} ({data.purchase})"
    )
    expect(panel.get_by_test_id("persons-title")).to_be_focused()
    expect(panel.get_by_test_id("persons-count")).to_have_text("2 persons.")
    assert _listed(panel) == sorted([data.ann, data.bo])
    hrefs = panel.get_by_test_id("person-link").evaluate_all(
        "links => links.map(link => link.getAttribute('href'))"
    )
    assert hrefs == [f"#/customer?person={person}" for person in sorted([data.ann, data.bo])]
    expect(panel).to_have_attribute("data-status", "ACTIVITY_STATUS_NEW")
    expect(panel).to_have_attribute("data-period", data.midnight(0))
    expect(panel).to_have_attribute("data-series", "0")
    # One page: no "More persons".
    expect(panel.get_by_test_id("persons-more")).to_be_hidden()
    expect(page.get_by_test_id("error")).to_have_count(0)
    console.shot("lifecycle-persons")

    # By keyboard: day 1's dormant person, bo (ann returned).
    count(table, 1, "dormant").focus()
    page.keyboard.press("Enter")
    expect(panel.get_by_test_id("persons-title")).to_have_text(
        f"Dormant persons, day {data.day(1)} ({data.purchase})"
    )
    expect(panel.get_by_test_id("persons-count")).to_have_text("1 person.")
    assert _listed(panel) == [data.bo]
    expect(panel.get_by_test_id("persons-more")).to_be_hidden()

    # Day 2: bo came back, ann went.
    count(table, 2, "resurrecting").click()
    expect(panel).to_have_attribute("data-status", "ACTIVITY_STATUS_RESURRECTING")
    expect(panel.get_by_test_id("persons-count")).to_have_text("1 person.")
    assert _listed(panel) == [data.bo]
    count(table, 2, "dormant").click()
    expect(panel).to_have_attribute("data-status", "ACTIVITY_STATUS_DORMANT")
    expect(panel.get_by_test_id("persons-count")).to_have_text("1 person.")
    assert _listed(panel) == [data.ann]

    # Close: the list goes, the focus returns to the count that opened it.
    panel.get_by_test_id("persons-close").click()
    expect(panel).to_be_hidden()
    expect(count(table, 2, "dormant")).to_be_focused()

    # A bar segment lists its persons too: day 2's resurrecting bar (the chart's one pink bar), bo.
    centre = page.get_by_test_id("trends-lifecycle-chart-0").evaluate(_LARGEST_SHAPE, "#cc79a7")
    page.mouse.click(centre["x"], centre["y"])
    expect(panel).to_have_attribute("data-status", "ACTIVITY_STATUS_RESURRECTING")
    expect(panel).to_have_attribute("data-period", data.midnight(2))
    expect(panel.get_by_test_id("persons-title")).to_have_text(
        f"Resurrecting persons, day {data.day(2)} ({data.purchase})"
    )
    expect(panel.get_by_test_id("persons-count")).to_have_text("1 person.")
    assert _listed(panel) == [data.bo]
    panel.get_by_test_id("persons-close").click()
    expect(count(table, 2, "resurrecting")).to_be_focused()

    # The returns' series lists under its own table: day 2's new person, bo.
    returns = page.get_by_test_id("trends-lifecycle-table-1")
    count(returns, 2, "new").click()
    expect(
        page.get_by_test_id("trends-lifecycle-1").get_by_test_id("trends-lifecycle-persons")
    ).to_be_visible()
    expect(section.get_by_test_id("trends-lifecycle-persons")).to_have_count(0)
    expect(panel.get_by_test_id("persons-title")).to_have_text(
        f"New persons, day {data.day(2)} ({data.habit})"
    )
    expect(panel.get_by_test_id("persons-count")).to_have_text("1 person.")
    assert _listed(panel) == [data.bo]

    # A page the service refuses shows its error and the fields it names, as the page's own refusals do (the
    # request altered on its way out: a negative page size).
    def negative_page_size(route: Route) -> None:
        body = json.loads(route.request.post_data or "{}")
        route.continue_(post_data=json.dumps(body | {"pageSize": -1}))

    page.route("**/ListActivityLifecyclePersons", negative_page_size)
    count(table, 0, "new").click()
    expect(panel.get_by_test_id("error")).to_have_attribute("data-code", "invalid_argument")
    violations = panel.get_by_test_id("trends-violations").locator("li")
    expect(violations).to_have_count(1)
    expect(violations).to_have_attribute("data-field", "page_size")
    expect(panel.get_by_test_id("person-link")).to_have_count(0)
    expect(panel.get_by_test_id("persons-more")).to_be_hidden()
    page.unroute("**/ListActivityLifecyclePersons", negative_page_size)
    count(returns, 2, "new").click()
    expect(panel.get_by_test_id("persons-count")).to_have_text("1 person.")
    expect(panel.get_by_test_id("error")).to_have_count(0)

    # A person's link opens their Customer page.
    submit_and_wait(console, panel.get_by_test_id("person-link"), "customer")
    assert _address(page) == f"/customer?person={data.bo}"


def _delete_segment(admin: Rpc, name: str) -> None:
    try:
        admin.json(JOURNEYS, "DeleteSegment", {"name": name})
    except grpc.RpcError as error:
        if error.code() != grpc.StatusCode.NOT_FOUND:
            raise


def _weekly_lifecycle(data: TrendData) -> str:
    """The lifecycle of purchases and returns by week over days 0 to 3, in UTC."""
    return _hash(
        [
            ("mode", "lifecycle"),
            ("event", data.purchase),
            ("event", data.habit),
            ("period", "week"),
            ("from", data.day(0)),
            ("to", data.day(3)),
            ("tz", "UTC"),
        ]
    )


def test_an_admin_saves_a_series_dormant_persons_as_a_segment(
    console: Console, trend_data: TrendData, rpc: Callable[[str], Rpc]
) -> None:
    """With the admin key, each series of the weekly lifecycle offers "Save dormant as segment…" under its
    table (and nothing for its new persons): the shared panel, prefilled, says that the segment's windows roll
    while the chart counts calendar weeks; Escape closes it. Saved, the segment links to the Segments page and
    holds, read back over gRPC, the rolling dormancy of the series' own events: at least one purchase in the
    last 14 days AND none in the last 7. Built, its members are ann and bo (their purchases 8 to 10 days ago).
    Back on the lifecycle, the same id again is refused beside the id input."""
    data = trend_data
    admin = rpc(data.admin_key)
    page = console.open(_weekly_lifecycle(data), key=data.admin_key)
    expect(page.get_by_test_id("trends-lifecycle-table-1")).to_be_visible()
    buttons = page.get_by_test_id("trends-save-segment")
    expect(buttons).to_have_count(2)
    assert buttons.evaluate_all("bs => bs.map(b => [b.dataset.series, b.dataset.status, b.textContent])") == [
        ["0", "dormant", "Save dormant as segment…"],
        ["1", "dormant", "Save dormant as segment…"],
    ]
    section = page.get_by_test_id("trends-lifecycle-0")
    opener = section.get_by_role("button", name=f"Save dormant as segment: {data.purchase}", exact=True)
    expect(opener).to_be_enabled()
    expect(page.get_by_test_id("trends-save-segment-unavailable")).to_have_count(0)

    # The panel opens under the series' table with the defaults, the id focused; the rolling window told.
    opener.click()
    panel = page.get_by_test_id("trends-save-segment-panel")
    expect(section.get_by_test_id("trends-save-segment-panel")).to_be_visible()
    expect(panel).to_have_attribute("data-series", "0")
    expect(panel.get_by_role("heading")).to_have_text(
        f"Save the dormant persons of {data.purchase} as a segment"
    )
    id_input = panel.get_by_label("Segment id")
    expect(id_input).to_be_focused()
    expect(id_input).to_have_value(f"dormant-{data.purchase.lower().replace(' ', '-')}-weekly")
    display_name = panel.get_by_label("Display name")
    expect(display_name).to_have_value(f"Dormant: {data.purchase} (weekly)")
    description = (
        f"Performed {data.purchase} in the last 14 days but not in the last 7: dormant, kept current as days"
        " pass; the Trends page's lifecycle counts calendar weeks instead."
    )
    expect(panel.get_by_label("Description")).to_have_value(description)
    expect(panel.get_by_test_id("trends-save-segment-note")).to_contain_text(
        "Rolling, not calendar: its windows are the last 14 days and the last 7 days as of each moment,"
        " while this page's lifecycle counts calendar weeks from Monday in UTC"
    )
    expect(panel.get_by_test_id("trends-save-segment-summary")).to_contain_text(
        f"Events counted: events named {data.purchase}."
    )
    console.shot("lifecycle-save-segment")
    page.keyboard.press("Escape")
    expect(panel).to_have_count(0)
    expect(opener).to_be_focused()

    # Saved under an id of the test's: the result links to the segment on the Segments page.
    segment_id = f"dormant-test-{uuid.uuid4().hex[:8]}"
    name = f"segments/{segment_id}"
    try:
        opener.click()
        id_input.fill(segment_id)
        panel.get_by_test_id("trends-save-segment-submit").click()
        result = section.get_by_test_id("trends-save-segment-result")
        expect(result).to_contain_text(f"Saved {name}: its members are being computed")
        expect(panel).to_have_count(0)
        expect(opener).to_be_focused()
        link = result.get_by_test_id("trends-save-segment-link")
        expect(link).to_have_attribute("href", "#/segments?" + urlencode({"segment": name}))

        stored = admin.json(JOURNEYS, "GetSegment", {"name": name})["segment"]
        assert stored["displayName"] == f"Dormant: {data.purchase} (weekly)"
        assert stored["description"] == description
        # At least one purchase in the last 14 days AND none in the last 7 (as the bridge prints it, zero
        # values and all).
        purchases = {"eventName": data.purchase}
        condition = {
            "group": {
                "operator": "LOGICAL_OPERATOR_AND",
                "conditions": [
                    {
                        "eventCount": {
                            "event": purchases,
                            "comparison": "COMPARISON_OPERATOR_GREATER_THAN_OR_EQUAL",
                            "count": "1",
                            "window": f"{14 * 86400}s",
                        }
                    },
                    {
                        "eventCount": {
                            "event": purchases,
                            "comparison": "COMPARISON_OPERATOR_EQUAL",
                            "count": "0",
                            "window": f"{7 * 86400}s",
                        }
                    },
                ],
            }
        }
        printed = message_to_json(message_from_json(condition, condition_pb2.PersonCondition()))
        assert stored["condition"] == printed
        # The page asked whether the key may create segments with a validate-only request: nothing else is
        # stored.
        listed = admin.json(JOURNEYS, "ListSegments", {"pageSize": 1000}).get("segments", [])
        assert not [s for s in listed if s.get("displayName", "").startswith("console: may this key")]

        # Built, it holds the persons dormant now: ann and bo bought 8 to 10 days ago, not since.
        deadline = time.monotonic() + _STORE_SECONDS
        while (state := admin.json(JOURNEYS, "GetSegment", {"name": name})["segment"]["status"]["state"]) != (
            "SEGMENT_STATE_READY"
        ):
            assert time.monotonic() < deadline, state
            time.sleep(0.2)
        members = admin.json(JOURNEYS, "ListSegmentMembers", {"segment": name}).get("members", [])
        assert [member["personId"] for member in members] == sorted([data.ann, data.bo])

        # The link opens the segment on the Segments page.
        submit_and_wait(console, link, "segments")
        expect(page.get_by_test_id("segment-detail-title")).to_have_text(f"Dormant: {data.purchase} (weekly)")

        # Back on the lifecycle, the same id again is taken, said beside the id input.
        console.go(_weekly_lifecycle(data))
        opener.click()
        id_input.fill(segment_id)
        panel.get_by_test_id("trends-save-segment-submit").click()
        error = panel.get_by_test_id("trends-save-segment-error")
        expect(error).to_have_attribute("data-code", "already_exists")
        expect(id_input).to_have_attribute("aria-invalid", "true")
        expect(id_input).to_be_focused()
        panel.get_by_test_id("trends-save-segment-cancel").click()
        expect(opener).to_be_focused()
    finally:
        _delete_segment(admin, name)


def test_a_read_key_is_not_offered_to_save_a_segment(
    console: Console, trend_data: TrendData, rpc: Callable[[str], Rpc]
) -> None:
    """A key without the admin scope (the page asks with a validate-only CreateSegment, which the gateway
    refuses it) sees the lifecycle without any "Save dormant as segment…", and the probe stores nothing."""
    data = trend_data
    page = console.open(_weekly_lifecycle(data), key=data.read_key)
    for index in (0, 1):
        expect(page.get_by_test_id(f"trends-lifecycle-table-{index}")).to_be_visible()
        expect(page.get_by_test_id(f"trends-lifecycle-save-{index}")).to_have_count(0)
    # Drawn with the tables: none to wait for.
    expect(page.get_by_test_id("trends-save-segment")).to_have_count(0)
    expect(page.get_by_test_id("trends-save-segment-unavailable")).to_have_count(0)
    expect(page.get_by_test_id("error")).to_have_count(0)
    listed = rpc(data.admin_key).json(JOURNEYS, "ListSegments", {"pageSize": 1000}).get("segments", [])
    assert not [s for s in listed if s.get("displayName", "").startswith("console: may this key")]
