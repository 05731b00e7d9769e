"""Reading the console's data tables (dom.js `dataTable`) as a test compares them with an RPC's answer: each
body row by its `data-row` key, each cell by its column's `data-key`, with the raw number a numeric cell
carries in `data-value` (before formatting) and the text shown."""

from __future__ import annotations

from dataclasses import dataclass

from playwright.sync_api import Locator, expect

__all__ = ["Cell", "read_table"]

_READ = """table => [...table.tBodies[0].rows].map(row => ({
    key: row.dataset.row ?? "",
    cells: Object.fromEntries([...row.cells].filter(c => c.dataset.key).map(c => [
        c.dataset.key, {value: c.dataset.value ?? null, text: c.textContent.trim()},
    ])),
}))"""


@dataclass(frozen=True)
class Cell:
    value: str | None
    """The raw value of a numeric cell (`data-value`), None for others and for empty numeric cells."""
    text: str

    @property
    def number(self) -> float:
        assert self.value is not None, f"{self.text!r} carries no value"
        return float(self.value)


def read_table(table: Locator) -> dict[str, dict[str, Cell]]:
    """Row key → column key → cell, once the table is visible."""
    expect(table).to_be_visible()
    rows = table.evaluate(_READ)
    return {
        row["key"]: {key: Cell(cell["value"], cell["text"]) for key, cell in row["cells"].items()}
        for row in rows
    }
