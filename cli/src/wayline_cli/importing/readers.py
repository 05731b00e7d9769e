"""Readers that stream an export's rows one at a time, whatever the file's size.

Each yields `(row_number, row)` with row numbers counted from 1 over data records only (a CSV header and
blank JSON lines are not rows), so one file always numbers its rows the same way: the number is part of each
row's deterministic event id and the unit of the checkpoint. `skip` passes over the rows an earlier run
finished without building them; Parquet skips whole row groups without decoding them.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import IO, Literal

import pyarrow.parquet as pq  # type: ignore[import-untyped,unused-ignore]

from wayline_cli.importing.errors import UsageError

__all__ = ["FORMATS", "Row", "RowSource", "Unreadable", "detect_format", "open_source"]

Format = Literal["csv", "jsonl", "parquet"]
FORMATS: tuple[Format, ...] = ("csv", "jsonl", "parquet")
Row = dict[str, object]
_SUFFIXES: dict[str, Format] = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}


@dataclass(frozen=True)
class Unreadable:
    """A record the format itself cannot parse (a broken JSON line, a CSV row with the wrong cell count)."""

    reason: str
    description: str
    raw: str


def detect_format(path: Path) -> Format:
    found = _SUFFIXES.get(path.suffix.lower())
    if found is None:
        raise UsageError(
            f"cannot tell the format of {path.name} by its suffix; pass --format csv|jsonl|parquet"
        )
    return found


class RowSource:
    """One open export. `columns` is known before the first row: the CSV header, the Parquet schema, or the
    keys of the first JSON line (`columns_fixed` is False then: later lines may have others). Progress is
    measured in `position()` out of `total` units (bytes for text files, rows for Parquet)."""

    columns: list[str]
    columns_fixed: bool
    total: int

    def position(self) -> int:
        raise NotImplementedError

    def rows(self, skip: int = 0) -> Iterator[tuple[int, Row | Unreadable]]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> RowSource:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def open_source(path: Path, fmt: Format, *, delimiter: str = ",") -> RowSource:
    try:
        if fmt == "csv":
            return _CsvSource(path, delimiter)
        if fmt == "jsonl":
            return _JsonLinesSource(path)
        return _ParquetSource(path)
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise UsageError(f"cannot read {path}: {error}") from error
    except Exception as error:  # pyarrow's ArrowInvalid and friends: not a Parquet file
        raise UsageError(f"cannot read {path} as {fmt}: {error}") from error


class _CsvSource(RowSource):
    """CSV through the csv module (quoted cells with delimiters and line breaks included), UTF-8 with or
    without the BOM spreadsheets write. Cells stay strings; the mapping may give them types."""

    def __init__(self, path: Path, delimiter: str) -> None:
        self._binary = path.open("rb")
        self.total = path.stat().st_size
        self._text = io.TextIOWrapper(self._binary, encoding="utf-8-sig", newline="")
        self._reader = csv.reader(self._text, delimiter=delimiter)
        self.columns = [name.strip() for name in next(self._reader, [])]
        self.columns_fixed = True
        duplicates = sorted({c for c in self.columns if self.columns.count(c) > 1})
        if duplicates:
            self.close()
            raise UsageError(f"the CSV header names these columns twice: {', '.join(duplicates)}")

    def position(self) -> int:
        return self._binary.tell()

    def rows(self, skip: int = 0) -> Iterator[tuple[int, Row | Unreadable]]:
        number = 0
        while True:
            try:
                record = next(self._reader, None)
            except csv.Error as error:
                number += 1
                if number > skip:
                    yield number, Unreadable("UNREADABLE_ROW", f"the CSV row cannot be parsed: {error}", "")
                continue
            if record is None:
                return
            if not record:
                continue  # a blank line is not a row
            number += 1
            if number <= skip:
                continue
            if len(record) != len(self.columns):
                description = (
                    f"the row has {len(record)} cells and the header {len(self.columns)}; "
                    "check the delimiter and the quoting"
                )
                yield number, Unreadable("CELL_COUNT_MISMATCH", description, json.dumps(record))
                continue
            yield number, dict(zip(self.columns, record, strict=True))

    def close(self) -> None:
        self._text.close()


class _JsonLinesSource(RowSource):
    """One JSON object per line. Decimals are parsed exactly (revenue stays exact); numbers stay numbers."""

    def __init__(self, path: Path) -> None:
        self._binary: IO[bytes] = path.open("rb")
        self.total = path.stat().st_size
        self.columns = self._first_keys()
        self.columns_fixed = False

    def _first_keys(self) -> list[str]:
        for line in self._binary:
            if line.strip():
                try:
                    first = json.loads(line)
                except ValueError:
                    break
                self._binary.seek(0)
                return [str(key) for key in first] if isinstance(first, dict) else []
        self._binary.seek(0)
        return []

    def position(self) -> int:
        return self._binary.tell()

    def rows(self, skip: int = 0) -> Iterator[tuple[int, Row | Unreadable]]:
        number = 0
        for line in self._binary:
            if not line.strip():
                continue
            number += 1
            if number <= skip:
                continue  # not even parsed
            text = line.decode("utf-8", errors="replace").strip()
            try:
                parsed = json.loads(text, parse_float=Decimal)
            except ValueError as error:
                yield number, Unreadable("INVALID_JSON", f"the line is not JSON: {error}", text)
                continue
            if not isinstance(parsed, dict):
                yield number, Unreadable("NOT_AN_OBJECT", "each line must hold one JSON object", text)
                continue
            yield number, parsed

    def close(self) -> None:
        self._binary.close()


class _ParquetSource(RowSource):
    """Parquet in record batches (pyarrow's iter_batches), so only one batch of rows is in memory."""

    _BATCH_ROWS = 2048

    def __init__(self, path: Path) -> None:
        self._file = pq.ParquetFile(path)
        self.columns = [str(name) for name in self._file.schema_arrow.names]
        self.columns_fixed = True
        self.total = int(self._file.metadata.num_rows)
        self._done = 0

    def position(self) -> int:
        return self._done

    def rows(self, skip: int = 0) -> Iterator[tuple[int, Row | Unreadable]]:
        metadata = self._file.metadata
        first_group, number = 0, 0
        while first_group < metadata.num_row_groups:
            group_rows = int(metadata.row_group(first_group).num_rows)
            if number + group_rows > skip:
                break
            number += group_rows
            first_group += 1
        self._done = number
        groups = list(range(first_group, metadata.num_row_groups))
        if not groups:
            return
        for batch in self._file.iter_batches(batch_size=self._BATCH_ROWS, row_groups=groups):
            if number + batch.num_rows <= skip:
                number += batch.num_rows
                self._done = number
                continue
            for row in batch.to_pylist():
                number += 1
                self._done = number
                if number > skip:
                    yield number, row

    def close(self) -> None:
        self._file.close()
