"""The Customer value page's "Save as segment…" in Chromium: with A's admin key, an RFM segment's row opens a
panel prefilled with an id, a display name and a description; Save creates the journeys segment (checked over
gRPC: the RFM segment, currency, purchase events and a window as long as the page's days, ANDed with the
page's population segments) and links to it on the Segments page; the same id again is refused as taken, a
malformed one beside the id input; Escape and Cancel close the panel. A read key sees the action disabled,
with why. The segments the tests save are deleted after each test (other tests count A's segments)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from datetime import date
from typing import Any
from urllib.parse import quote, urlencode

import grpc
import pytest
from playwright.sync_api import Locator, Page, expect

from tests.console.analytics_support import built_segment, data_days, submit_and_wait
from tests.console.browser import Console
from tests.console.calls import JOURNEYS, Bridge, BridgeError, Rpc
from tests.console.loading import ConsoleData

CURRENCY = "EUR"
UNAVAILABLE = "Saving a segment needs a key with the admin scope."


def _label(rfm: str) -> str:
    """An RfmSegment as the page names it: "RFM_SEGMENT_AT_RISK" → "At risk"."""
    text = rfm.removeprefix("RFM_SEGMENT_").replace("_", " ").lower()
    return text[:1].upper() + text[1:]


def _days(days: dict[str, str]) -> int:
    """How many days the page's range holds, both ends included."""
    return (date.fromisoformat(days["to"]) - date.fromisoformat(days["from"])).days + 1


def _biggest_segment(reader: Rpc, days: dict[str, str], **extra: Any) -> str:
    """The RFM segment with the most of the range's purchasers (so that it has a row on the page)."""
    end = date.fromisoformat(days["to"]).toordinal() + 1
    request = {
        "currencyCode": CURRENCY,
        "timeRange": {
            "start": f"{days['from']}T00:00:00Z",
            "end": f"{date.fromordinal(end).isoformat()}T00:00:00Z",
        },
    } | extra
    summary = reader.json(JOURNEYS, "GetCustomerValueSummary", request)
    return str(max(summary["segments"], key=lambda s: int(s["persons"]))["segment"])


def _save_button(page: Page, rfm: str) -> Locator:
    return page.get_by_role("button", name=f"Save as segment: {_label(rfm)}", exact=True)


def _panel(page: Page) -> Locator:
    return page.get_by_test_id("value-save-segment-panel")


@pytest.fixture
def saved(console_data: ConsoleData, rpc: Callable[[str], Rpc]) -> Iterator[list[str]]:
    """The names of the segments a test may save (it appends them before saving); deleted afterwards, those
    it did save."""
    names: list[str] = []
    yield names
    admin = rpc(console_data.admin_key_a)
    for name in names:
        try:
            admin.json(JOURNEYS, "DeleteSegment", {"name": name})
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.NOT_FOUND:
                raise


@pytest.fixture(scope="module")
def adders(console_data: ConsoleData, rpc: Callable[[str], Rpc]) -> Iterator[dict[str, Any]]:
    """A's segment of the persons who added a product, built; deleted afterwards (after the tests' own)."""
    with built_segment(rpc(console_data.admin_key_a), "Save adders", "Product Added") as segment:
        yield segment


def test_an_admin_saves_an_rfm_segment_as_a_segment(
    console: Console, console_data: ConsoleData, rpc: Callable[[str], Rpc], saved: list[str]
) -> None:
    days = data_days(console_data)
    admin = rpc(console_data.admin_key_a)
    rfm = _biggest_segment(admin, days)
    label, span = _label(rfm), _days(days)
    page = console.open(f"#/value?{urlencode({'currency': CURRENCY, **days})}", key=console_data.admin_key_a)
    expect(page.get_by_test_id("value-save-segment-unavailable")).to_have_count(0)
    opener = _save_button(page, rfm)
    expect(opener).to_be_enabled()

    # The panel opens under the table with the defaults, the id focused; the condition is told in words.
    opener.click()
    panel = _panel(page)
    expect(panel).to_have_attribute("data-rfm", rfm)
    expect(panel.get_by_role("heading")).to_have_text(f"Save {label} as a segment")
    id_input = panel.get_by_label("Segment id")
    expect(id_input).to_be_focused()
    slug = label.lower().replace(" ", "-")
    expect(id_input).to_have_value(f"rfm-{slug}-eur-{span}d")
    display_name = panel.get_by_label("Display name")
    expect(display_name).to_have_value(re.compile(rf" \({CURRENCY}, last {span} days\)$"))
    expect(panel.get_by_label("Description")).to_have_value(
        f"Saved from the Customer value page: RFM segment {label} of purchasers in {CURRENCY}"
        f" over the trailing {span} days"
    )
    expect(panel).to_contain_text(f"the last {span} days, as of each moment")
    expect(page.get_by_test_id("value-save-segment-summary")).to_contain_text(
        f"this page shows the fixed days {days['from']} to {days['to']}"
    )
    console.shot("panel")

    # Escape closes it and gives the focus back to the row's button; so does Cancel.
    page.keyboard.press("Escape")
    expect(panel).to_have_count(0)
    expect(opener).to_be_focused()
    opener.click()
    panel.get_by_test_id("value-save-segment-cancel").click()
    expect(panel).to_have_count(0)
    expect(opener).to_be_focused()

    # Saved under an id of the test's: the result links to the segment on the Segments page.
    segment_id = f"rfm-test-{uuid.uuid4().hex[:8]}"
    name = f"segments/{segment_id}"
    saved.append(name)
    opener.click()
    id_input.fill(segment_id)
    shown_name = display_name.input_value()
    panel.get_by_test_id("value-save-segment-submit").click()
    result = page.get_by_test_id("value-save-segment-result")
    expect(result).to_contain_text(f"Saved {name}: its members are being computed")
    expect(panel).to_have_count(0)
    expect(opener).to_be_focused()
    link = page.get_by_test_id("value-save-segment-link")
    expect(link).to_have_attribute("href", f"#/segments?segment={quote(name, safe='')}")

    stored = admin.json(JOURNEYS, "GetSegment", {"name": name})["segment"]
    assert stored["displayName"] == shown_name
    assert stored["description"].startswith(f"Saved from the Customer value page: RFM segment {label} ")
    value = stored["condition"]["customerValue"]
    assert value["metric"] == "CUSTOMER_VALUE_METRIC_RFM_SEGMENT"
    assert value["currencyCode"] == CURRENCY
    assert value["rfmSegments"] == [rfm]
    assert value["window"] == f"{span * 86400}s"
    assert not value.get("purchaseEventNames")
    # The page asked whether the key may create segments with a validate-only request: nothing else stored.
    listed = admin.json(JOURNEYS, "ListSegments", {"pageSize": 1000}).get("segments", [])
    assert not [s for s in listed if s.get("displayName", "").startswith("console: may this key")]

    # The same id again is taken; a malformed one is refused beside the id input, in the server's words.
    opener.click()
    id_input.fill(segment_id)
    panel.get_by_test_id("value-save-segment-submit").click()
    error = panel.get_by_test_id("value-save-segment-error")
    expect(error).to_have_attribute("data-code", "already_exists")
    expect(error).to_contain_text(f"{name} exists already: choose another id")
    expect(id_input).to_have_attribute("aria-invalid", "true")
    expect(id_input).to_be_focused()
    id_input.fill("At risk!")
    panel.get_by_test_id("value-save-segment-submit").click()
    expect(error).to_have_attribute("data-code", "invalid_argument")
    id_error = panel.get_by_test_id("value-save-segment-id-error")
    expect(id_error).to_contain_text("lower-kebab-case")
    expect(id_input).to_have_accessible_description(re.compile("lower-kebab-case"))
    console.shot("refused")
    page.keyboard.press("Escape")
    expect(opener).to_be_focused()


def test_a_population_is_anded_and_the_segment_opens_on_the_segments_page(
    console: Console,
    console_data: ConsoleData,
    rpc: Callable[[str], Rpc],
    adders: dict[str, Any],
    saved: list[str],
) -> None:
    days = data_days(console_data, days=14)
    events = ("Order Completed",)
    admin = rpc(console_data.admin_key_a)
    rfm = _biggest_segment(
        admin, days, purchaseEventNames=list(events), population={"segments": [adders["name"]]}
    )
    query = urlencode(
        [
            ("currency", CURRENCY),
            ("from", days["from"]),
            ("to", days["to"]),
            ("event", events[0]),
            ("segment", adders["name"]),
        ]
    )
    page = console.open(f"#/value?{query}", key=console_data.admin_key_a)
    _save_button(page, rfm).click()
    panel = _panel(page)
    expect(panel.get_by_label("Description")).to_have_value(
        re.compile(
            re.escape(f", purchase events: Order Completed, members of: Save adders ({adders['name']})") + "$"
        )
    )
    expect(page.get_by_test_id("value-save-segment-summary")).to_contain_text(
        f"every one of: Save adders ({adders['name']})"
    )
    segment_id = f"rfm-test-{uuid.uuid4().hex[:8]}"
    name = f"segments/{segment_id}"
    saved.append(name)
    panel.get_by_label("Segment id").fill(segment_id)
    panel.get_by_label("Display name").fill("Adders at risk")
    panel.get_by_test_id("value-save-segment-submit").click()
    expect(page.get_by_test_id("value-save-segment-result")).to_contain_text(f"Saved {name}")

    condition = admin.json(JOURNEYS, "GetSegment", {"name": name})["segment"]["condition"]
    group = condition["group"]
    assert group["operator"] == "LOGICAL_OPERATOR_AND"
    value, member = group["conditions"]
    assert value["customerValue"]["metric"] == "CUSTOMER_VALUE_METRIC_RFM_SEGMENT"
    assert value["customerValue"]["currencyCode"] == CURRENCY
    assert value["customerValue"]["purchaseEventNames"] == list(events)
    assert value["customerValue"]["rfmSegments"] == [rfm]
    assert value["customerValue"]["window"] == f"{_days(days) * 86400}s"
    assert member["segmentMembership"]["segment"] == adders["name"]

    submit_and_wait(console, page.get_by_test_id("value-save-segment-link"), "segments")
    expect(page.get_by_test_id("segment-detail-title")).to_have_text("Adders at risk")


def test_a_key_without_the_admin_scope_sees_the_action_unavailable(
    console: Console, console_data: ConsoleData, bridge: Callable[[str], Bridge]
) -> None:
    days = data_days(console_data)
    page = console.open(f"#/value?{urlencode({'currency': CURRENCY, **days})}")
    buttons = page.get_by_test_id("value-save-segment")
    expect(buttons.first).to_be_visible()
    assert buttons.count() == page.get_by_test_id("value-segments-table").locator("tbody tr").count()
    for index in range(buttons.count()):
        expect(buttons.nth(index)).to_be_disabled()
        expect(buttons.nth(index)).to_have_accessible_description(UNAVAILABLE)
    expect(page.get_by_test_id("value-save-segment-unavailable")).to_have_text(UNAVAILABLE)
    # The bridge refuses such a key the call itself.
    with pytest.raises(BridgeError) as refused:
        bridge(console_data.read_key_a).call(
            JOURNEYS,
            "CreateSegment",
            {"segmentId": "rfm-refused", "segment": {"condition": {"hasIdentifierType": "email"}}},
        )
    assert refused.value.code == "permission_denied"
