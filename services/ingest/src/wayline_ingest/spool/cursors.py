"""Where each sink stands in the spool: one small file per sink holding a byte position.

A cursor is saved after its sink acknowledged everything before it. Saving is a write to a temporary file
and an atomic rename, without fsync: after a machine crash a cursor may fall back to an older position and
the sink receives some events again, which every sink tolerates (writes are idempotent by event_id). A
missing or unreadable cursor starts at the oldest record still in the spool.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["Cursor"]


class Cursor:
    def __init__(self, directory: Path, name: str) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.name = name
        self._path = directory / name
        self._tmp = directory / f".{name}.tmp"
        self.position = self._load()

    def _load(self) -> int:
        try:
            return int(self._path.read_text().strip())
        except (FileNotFoundError, ValueError):
            return 0

    def save(self, position: int) -> None:
        self._tmp.write_text(str(position))
        os.replace(self._tmp, self._path)
        self.position = position
