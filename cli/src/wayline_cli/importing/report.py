"""The report of rejected rows: a CSV a person can open next to the export and fix rows from.

One line per problem (a row with two bad fields has two lines): the row number, the event id it was given,
the field path (the mapping's target for rows rejected locally, the event's field for the server's
rejections), the machine-readable reason, the description, the source column and the raw row as JSON.
Lines are flushed and fsync'd before the checkpoint that covers them is written.
"""

from __future__ import annotations

import base64
import csv
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import IO

__all__ = ["HEADER", "Rejection", "RejectionReport", "raw_json"]

HEADER = ("row", "event_id", "field", "reason", "description", "column", "raw")


@dataclass(frozen=True)
class Rejection:
    row: int
    event_id: str
    field: str
    reason: str
    description: str
    column: str
    raw: str


class RejectionReport:
    """Appends to `path`, first cutting it to `keep_bytes`: the size it had at the checkpoint being resumed
    (0 for a fresh import, which replaces any old report). The file is created at the first rejection."""

    def __init__(self, path: Path, keep_bytes: int) -> None:
        self.path = path
        self._file: IO[str] | None = None
        if path.exists():
            if keep_bytes == 0:
                path.unlink()
            elif path.stat().st_size > keep_bytes:
                os.truncate(path, keep_bytes)

    def size(self) -> int:
        return self.path.stat().st_size if self.path.exists() else 0

    def write(self, rejections: Iterable[Rejection]) -> None:
        rows = list(rejections)
        if not rows:
            return
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("a", encoding="utf-8", newline="")
        writer = csv.writer(self._file)
        if self._file.tell() == 0:
            writer.writerow(HEADER)
        for r in rows:
            writer.writerow((r.row, r.event_id, r.field, r.reason, r.description, r.column, r.raw))
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def raw_json(row: object) -> str:
    """The row as the reader saw it, as JSON (Parquet's dates, decimals and bytes as text)."""
    return json.dumps(row, ensure_ascii=False, default=_default)


def _default(value: object) -> object:
    if isinstance(value, Decimal):
        return float(value) if value == Decimal(repr(float(value))) else str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return str(value)
