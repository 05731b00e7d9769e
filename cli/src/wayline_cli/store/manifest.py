"""`manifest.json` of an export: what the directory holds and how to check it before anything is loaded.

One entry per table: its file, row count, the columns the file has (name and ClickHouse type, in file
order), and the SHA-256 and size of the file as stored. `schema_version` is the journey schema version of
the source (its `schema_migrations`); an import refuses a newer one than its release knows.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from wayline_cli.store.errors import StoreCopyError

__all__ = ["FORMAT", "MANIFEST", "Manifest", "TableFile", "sha256_of"]

MANIFEST = "manifest.json"
FORMAT = "wayline-journey-store/1"


@dataclass(frozen=True)
class TableFile:
    table: str
    file: str
    rows: int
    sha256: str
    bytes: int
    columns: list[tuple[str, str]]


@dataclass(frozen=True)
class Manifest:
    schema_version: int
    source: str
    database: str
    exported_at: str
    tables: list[TableFile] = field(default_factory=list)
    format: str = FORMAT

    def write(self, directory: Path) -> None:
        body = asdict(self)
        body["tables"] = [{**asdict(t), "columns": [list(c) for c in t.columns]} for t in self.tables]
        temporary = directory / f"{MANIFEST}.tmp"
        temporary.write_text(json.dumps(body, indent=2) + "\n")
        temporary.replace(directory / MANIFEST)  # a manifest exists only once every file is complete

    @classmethod
    def read(cls, directory: Path) -> Manifest:
        path = directory / MANIFEST
        if not path.is_file():
            raise StoreCopyError(f"{path} is missing: not an export of `wayline store export`, or incomplete")
        try:
            body: dict[str, Any] = json.loads(path.read_text())
            if body.get("format") != FORMAT:
                raise StoreCopyError(f"{path}: format {body.get('format')!r}, expected {FORMAT!r}")
            tables = [
                TableFile(
                    table=str(t["table"]),
                    file=str(t["file"]),
                    rows=int(t["rows"]),
                    sha256=str(t["sha256"]),
                    bytes=int(t["bytes"]),
                    columns=[(str(name), str(type_)) for name, type_ in t["columns"]],
                )
                for t in body["tables"]
            ]
            return cls(
                schema_version=int(body["schema_version"]),
                source=str(body["source"]),
                database=str(body["database"]),
                exported_at=str(body["exported_at"]),
                tables=tables,
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise StoreCopyError(f"{path} is not a valid manifest: {exc!r}") from exc

    def check_files(self, directory: Path) -> None:
        """Every file present, of its size and checksum; all problems in one error, before any load."""
        problems = []
        for entry in self.tables:
            path = directory / entry.file
            if Path(entry.file).name != entry.file:
                problems.append(f"{entry.file}: not a file name of the export directory")
            elif not path.is_file():
                problems.append(f"{entry.file} (table {entry.table}) is missing")
            elif path.stat().st_size != entry.bytes:
                problems.append(
                    f"{entry.file} has {path.stat().st_size} bytes, the manifest says {entry.bytes}"
                )
            elif sha256_of(path) != entry.sha256:
                problems.append(f"{entry.file} does not match its checksum (corrupt or changed)")
        if problems:
            raise StoreCopyError("the export is damaged, nothing was imported:\n  " + "\n  ".join(problems))


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
