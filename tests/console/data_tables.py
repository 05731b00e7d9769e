"""Reading the console's data tables from a test: each row as {column key: value} (a numeric cell's raw
`data-value`, else its text), with the row's `data-row` key, and waiting until a table shows what an RPC
answered (the page redraws after a filter is applied; the wait is for the redraw, never a measurement)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from playwright.sync_api import Page

__all__ = ["table_rows", "wait_until_equal"]

T = TypeVar("T")

_ROWS = """testid => {
  const table = document.querySelector(`table[data-testid="${testid}"]`);
  if (!table) return null;
  return [...table.tBodies[0].rows]
    .filter(row => !row.querySelector("td.empty"))
    .map(row => {
      const cells = Object.fromEntries(
        [...row.cells].map(cell => [cell.dataset.key, cell.dataset.value ?? cell.textContent.trim()])
      );
      return { ...cells, _row: row.dataset.row ?? "", _kind: row.dataset.kind ?? "" };
    });
}"""


def table_rows(page: Page, testid: str) -> list[dict[str, Any]] | None:
    """The rows of the table with `testid` (None while it is not on the page)."""
    rows: list[dict[str, Any]] | None = page.evaluate(_ROWS, testid)
    return rows


def wait_until_equal(read: Callable[[], T | None], expected: T, timeout_seconds: float = 15.0) -> T | None:
    """`read()` once it equals `expected`, or its last value when the time is up (the caller asserts); a
    reader answers None while what it reads is not on the page."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        got = read()
        if got == expected or time.monotonic() > deadline:
            return got
        time.sleep(0.1)
