"""Reading a console data table by its test id while the page may be redrawing it, on top of the harness's
`read_table`: each row as {column key: raw value or text} with its `data-row` key under `_row` (None while the
table is not on the page), and waiting until what a page shows equals what an RPC answered (the page redraws
after a filter is applied; the wait is for the redraw, never a measurement)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from playwright.sync_api import Page

from tests.console.browser import read_table

__all__ = ["row_kinds", "table_rows", "wait_until_equal"]

T = TypeVar("T")


def table_rows(page: Page, testid: str) -> list[dict[str, str]] | None:
    """The rows of the table with `testid`, each with its `data-row` key as `_row` (None while it is not on
    the page)."""
    table = page.locator(f'table[data-testid="{testid}"]')
    if table.count() == 0:
        return None
    read = read_table(table)
    return [row | {"_row": key} for row, key in zip(read.rows, read.row_keys, strict=True)]


def row_kinds(page: Page, testid: str) -> dict[str, str]:
    """`data-row` → `data-kind` of the rows of the table with `testid` (how the Paths page drew each link)."""
    kinds: dict[str, str] = page.locator(f'table[data-testid="{testid}"] tbody tr').evaluate_all(
        "rows => Object.fromEntries(rows.map(row => [row.dataset.row ?? '', row.dataset.kind ?? '']))"
    )
    return kinds


def wait_until_equal(read: Callable[[], T | None], expected: T, timeout_seconds: float = 15.0) -> T | None:
    """`read()` once it equals `expected`, or its last value when the time is up (the caller asserts); a
    reader answers None while what it reads is not on the page."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        got = read()
        if got == expected or time.monotonic() > deadline:
            return got
        time.sleep(0.1)
