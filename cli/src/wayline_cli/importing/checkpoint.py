"""The checkpoint that makes an import resumable: how many rows are settled, and of which file and mapping.

It is rewritten atomically (temporary file, fsync, rename) after every batch the server acknowledged, so a
crash leaves either the old or the new checkpoint, never half of one. A rerun skips the settled rows and
resends at most the one batch that was in flight, whose deterministic event ids make that harmless. The
report's size is recorded too, so the rows reported by a batch that was never checkpointed are cut off
before they are reported again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from wayline_cli.importing.errors import UsageError

__all__ = ["Checkpoint", "file_fingerprint"]

_SAMPLE_BYTES = 1024 * 1024
_VERSION = 1


def file_fingerprint(path: Path) -> str:
    """sha256 over the file's first MiB and its size: cheap on a 50 GB export, and it changes when the file
    is replaced or appended to, which is when its row numbers stop naming the same rows."""
    size = path.stat().st_size
    digest = hashlib.sha256(size.to_bytes(8, "big"))
    with path.open("rb") as file:
        digest.update(file.read(_SAMPLE_BYTES))
    return digest.hexdigest()[:32]


@dataclass
class Checkpoint:
    fingerprint: str
    mapping_digest: str
    rows_done: int = 0
    accepted: int = 0
    rejected_locally: int = 0
    rejected_by_server: int = 0
    report: str = ""
    report_bytes: int = 0
    complete: bool = False

    @property
    def rejected(self) -> int:
        return self.rejected_locally + self.rejected_by_server

    @classmethod
    def resume_or_start(cls, path: Path, fingerprint: str, mapping_digest: str) -> Checkpoint:
        """The checkpoint at `path` when it belongs to this file and mapping, a fresh one when there is none.
        A checkpoint of another file or mapping is a usage error: resuming it would skip the wrong rows."""
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return cls(fingerprint, mapping_digest)
        except OSError as error:
            raise UsageError(f"cannot read the checkpoint {path}: {error}") from error
        try:
            saved = json.loads(text)
            version = saved.pop("version")
            state = cls(**saved)
        except (ValueError, TypeError, KeyError, AttributeError) as error:
            raise UsageError(
                f"{path} is not an import checkpoint ({error}); delete it to start over"
            ) from None
        if version != _VERSION:
            raise UsageError(f"{path} was written by another version of wayline import; delete it to restart")
        if state.fingerprint != fingerprint:
            raise UsageError(
                f"the file changed since the checkpoint {path} was written; delete the checkpoint to import "
                "it from the start (rows already stored would be stored again under new ids)"
            )
        if state.mapping_digest != mapping_digest:
            raise UsageError(
                f"the mapping, time zone or format differs from the run that wrote {path}; rerun with the "
                "same options to resume, or delete the checkpoint to start over"
            )
        return state

    def save(self, path: Path) -> None:
        temporary = path.with_name(path.name + ".tmp")
        body = json.dumps({"version": _VERSION, **dataclasses.asdict(self)}, indent=2)
        with temporary.open("w", encoding="utf-8") as file:
            file.write(body + "\n")
            file.flush()
            os.fsync(file.fileno())
        temporary.replace(path)
        _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    """Makes the rename itself durable (POSIX); a no-op where directories cannot be opened."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
