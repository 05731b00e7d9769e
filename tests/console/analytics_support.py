"""What the analytics pages' tests share: the console's hash query for the data's days; submitting a page's
filter form and waiting for the page it navigates to (the page shown before is marked first, as `Console.go`
does, so that it is never mistaken for the new one); and a segment built for a test, deleted after it."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from playwright.sync_api import Locator

from tests.console.browser import Console
from tests.console.calls import JOURNEYS, Rpc
from tests.console.loading import ConsoleData

__all__ = ["built_segment", "data_days", "submit_and_wait"]

_BUILD_SECONDS = 30.0


def data_days(data: ConsoleData, days: int | None = None) -> dict[str, str]:
    """`from` and `to` (inclusive UTC days) covering the data's range, or its last `days` days."""
    last = data.end - timedelta(days=1)
    first = data.start if days is None else data.end - timedelta(days=days)
    return {"from": first.date().isoformat(), "to": last.date().isoformat()}


def submit_and_wait(console: Console, button: Locator, page_id: str, *, by_pointer: bool = False) -> Locator:
    """Click `button` (a filter form's submit, a row's action) and wait until `page_id` has rendered again;
    returns its section. `by_pointer` clicks the mouse at the element's centre, as a person does, without
    Playwright's check that the element itself receives the click (a chart's shapes: see the segment bar's
    test)."""
    console.page.evaluate(
        """() => { for (const shown of document.querySelectorAll("main section.page")) {
            shown.setAttribute("data-e2e-left", "");
        } }"""
    )
    if by_pointer:
        box = button.bounding_box()
        assert box is not None, "the element to click is not shown"
        console.page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    else:
        button.click()
    return console.wait_ready(page_id)


@contextmanager
def built_segment(admin: Rpc, display_name: str, event_name: str) -> Iterator[dict[str, Any]]:
    """A segment of the persons who did `event_name` at least once, created with `admin` (an admin key's
    client) under a fresh id and built; deleted on exit."""
    condition = {"eventCount": {"event": {"eventName": event_name}, "count": "1"}}
    created: dict[str, Any] = admin.json(
        JOURNEYS,
        "CreateSegment",
        {
            "segmentId": f"test-{uuid.uuid4().hex[:12]}",
            "segment": {"displayName": display_name, "condition": condition},
        },
    )["segment"]
    deadline = time.monotonic() + _BUILD_SECONDS
    while admin.json(JOURNEYS, "GetSegment", {"name": created["name"]})["segment"]["status"]["state"] != (
        "SEGMENT_STATE_READY"
    ):
        assert time.monotonic() < deadline, f"{created['name']} was not built in {_BUILD_SECONDS} s"
        time.sleep(0.2)
    try:
        yield created
    finally:
        admin.json(JOURNEYS, "DeleteSegment", {"name": created["name"]})
