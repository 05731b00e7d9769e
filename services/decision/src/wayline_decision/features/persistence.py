"""The in-process online state survives restarts: a change log written before ObserveEvents (and every other
change) is acknowledged, and snapshots that let the log be cut (docs/adr/0027-online-feature-service.md).

Files, in one directory:
- `changes-<n>.jsonl`: one JSON object a line, `{"seq", "tenant", "kind", "data"}`, sequence numbers
  increasing across files; `kind` is one of the feature service's changes (events, spec, overrides,
  advance, and tenant: a tenant to follow identity's override feed for, recorded once) and events, specs
  and overrides travel as their protobuf wire bytes in base64 — the contract's own versioned format, not a
  pickle of Python objects.
- `snapshot.jsonl`: JSON lines — `{"format", "version", "written_at_us"}`, then per tenant a line with its
  `tenant`, `seq` (the last change it includes), specs, override cursor and state header, followed by lines
  of at most 10 persons each (`clean`, `dirty`, `merged`, `persons`). Lines, not one document: Python's
  JSON encoder holds the GIL for a whole `dump` (0.6 s for 87 MB, measured), stalling every RPC, while
  10 persons encode in a few milliseconds and the writer yields between lines. Written to a temporary file,
  flushed to disk, then renamed over the previous one (atomic on POSIX), so a crash leaves the old snapshot
  or the new one, never half.

A snapshot first starts a new log file, then exports every tenant (each under its own lock, consistent with
its `seq`), writes the snapshot, and deletes the log files before the new one: all their changes are in the
snapshot. Restoring loads the snapshot and replays the remaining files, skipping, per tenant, the changes its
document already holds. A torn last line (the process died mid-write, before acknowledging) is ignored.

Durability: each append is written to the file (the kernel's page cache) before the change is acknowledged,
so a crash of the process loses nothing; with `fsync` each acknowledged batch is also on disk (a power cut
loses nothing either), at the cost of one fsync per ObserveEvents call.

With a shared state (Redis, `shared=True`) the state is Redis's to keep: replaying one replica's log into it
would apply that replica's share of the events again, over what every replica consumed since. So there is
no change log (the feature service is given none), and snapshots hold only the replica's own bookkeeping —
specs with their coverage starts, the persons verified clean or dirty, merges, the override cursor — so that
a restarted replica reads online at once instead of asking journeys about every person again. What changed
after the last snapshot (a crash) is rebuilt: the override feed is followed again from the snapshot's cursor
(a merge applied twice changes nothing the second time: the merged person is gone), persons are verified
again, specs registered since register again with a later coverage start. A snapshot written for the other
kind of state is not restored (its bookkeeping would claim coverage the state does not have), and a shared
start deletes change log files left by an in-process run: their events went to a state no longer used.
"""

from __future__ import annotations

import gc
import json
import os
import threading
import time
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any, TextIO, cast

import structlog

from wayline_decision.features.service import OnlineFeatures
from wayline_decision.features.state import InProcessFeatureState, OnlineFeatureState

__all__ = ["FORMAT", "VERSION", "FeatureFiles"]

log = structlog.get_logger("wayline.decision.features")

FORMAT = "wayline.decision.online_features"
VERSION = 1
_SNAPSHOT = "snapshot.jsonl"
_PART = 10
"""Persons a line: encoding one costs a few milliseconds with the GIL held."""
_PARTS = ("clean", "dirty", "merged")


class FeatureFiles:
    """The change log and snapshots of one replica's in-process state, or with `shared` the snapshots of its
    bookkeeping beside a shared state (see the module's docstring). Thread-safe."""

    def __init__(self, directory: Path, *, fsync: bool = False, shared: bool = False) -> None:
        self._directory = directory
        self._fsync = fsync
        self._shared = shared
        self._lock = threading.Lock()
        self._seq = 0
        self._synced = 0
        self._file_index = 0
        self._fd: int | None = None

    # --- ChangeLog ------------------------------------------------------------------------------------

    def append(self, tenant: str, kind: str, data: Any) -> int:
        with self._lock:
            if self._fd is None:
                raise RuntimeError("the feature change log is not open")
            self._seq += 1
            line = json.dumps({"seq": self._seq, "tenant": tenant, "kind": kind, "data": data}) + "\n"
            os.write(self._fd, line.encode())
            return self._seq

    def sync(self, seq: int) -> None:
        if not self._fsync:
            return
        with self._lock:
            if seq <= self._synced or self._fd is None:
                return
            os.fsync(self._fd)
            self._synced = self._seq

    # --- start and snapshots ------------------------------------------------------------------------

    def open(self, features: OnlineFeatures) -> int:
        """Restore `features` from the snapshot and the log after it, then start a new log file; how many
        changes were replayed."""
        self._directory.mkdir(parents=True, exist_ok=True)
        snapshot = self._directory / _SNAPSHOT
        documents: dict[str, Any] = {}
        if snapshot.exists():
            documents = _read_snapshot(snapshot)
            self._seq = max((int(d["seq"]) for d in documents.values()), default=0)
            other = [name for name, d in documents.items() if (d["state"] is None) is not self._shared]
            if other:
                log.warning("features.other_states_snapshot_ignored", tenants=other, shared=self._shared)
            documents = {name: d for name, d in documents.items() if name not in other}
        files = self._log_files()
        if self._shared:
            for _, path in files:
                log.warning("features.change_log_dropped", file=str(path))
                path.unlink()
            files = []
        replayed = features.restore(documents, _load_state, self._changes(files))
        tenants = len(documents)
        del documents
        # The restored state is millions of long-lived objects: left to the collector, its first full pass
        # would hold the GIL for about half a second (measured, 10k persons) while the service serves.
        # The state holds no reference cycles, so freezing them out of the collector's scans leaks nothing.
        gc.collect()
        gc.freeze()
        self._file_index = max((index for index, _ in files), default=0) + 1
        if not self._shared:
            with self._lock:
                self._open_file()
        log.info("features.restored", tenants=tenants, replayed=replayed, log_files=len(files))
        return replayed

    def snapshot(self, features: OnlineFeatures) -> Path:
        """Write a snapshot of `features` and drop the log files it makes redundant."""
        with self._lock:
            if not self._shared:
                self._open_file()  # changes from now on go to a new file, which the snapshot does not cover
            current = self._file_index
        started = time.perf_counter()
        documents = features.export(_freeze_state)
        target = self._directory / _SNAPSHOT
        temporary = target.with_suffix(".tmp")
        with temporary.open("w") as out:
            _write_snapshot(out, documents)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, target)
        _sync_directory(self._directory)
        for index, path in self._log_files():
            if index < current:
                path.unlink()
        log.info(
            "features.snapshot_written",
            tenants=len(documents),
            bytes=target.stat().st_size,
            seconds=round(time.perf_counter() - started, 3),
        )
        return target

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.fsync(self._fd)
                os.close(self._fd)
                self._fd = None

    def _open_file(self) -> None:
        if self._fd is not None:
            os.fsync(self._fd)
            os.close(self._fd)
            self._file_index += 1
        path = self._directory / f"changes-{self._file_index:08d}.jsonl"
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        _sync_directory(self._directory)

    def _log_files(self) -> list[tuple[int, Path]]:
        found = []
        for path in self._directory.glob("changes-*.jsonl"):
            found.append((int(path.stem.removeprefix("changes-")), path))
        return sorted(found)

    def _changes(self, files: list[tuple[int, Path]]) -> Iterator[tuple[int, str, str, Any]]:
        for position, (_, path) in enumerate(files):
            lines = path.read_bytes().split(b"\n")
            for number, line in enumerate(lines):
                if not line:
                    continue
                try:
                    change = json.loads(line)
                except ValueError:
                    if position == len(files) - 1 and number == len(lines) - 1:
                        log.warning("features.torn_change_ignored", file=str(path))
                        continue  # written in part when the process died, so never acknowledged
                    raise
                self._seq = max(self._seq, int(change["seq"]))
                yield int(change["seq"]), change["tenant"], change["kind"], change["data"]


def batched(items: Iterable[tuple[str, Any]], size: int) -> Iterator[list[tuple[str, Any]]]:
    iterator = iter(items)
    while part := list(islice(iterator, size)):
        yield part


def _line(found: Any) -> str:
    return json.dumps(found, separators=(",", ":")) + "\n"


def _write_snapshot(out: TextIO, documents: dict[str, Any]) -> None:
    out.write(_line({"format": FORMAT, "version": VERSION, "written_at_us": int(time.time() * 1_000_000)}))
    for name, document in documents.items():
        state = document["state"]
        head = {k: v for k, v in document.items() if k not in _PARTS and k != "state"}
        head["tenant"] = name
        head["state"] = state.document_head() if isinstance(state, InProcessFeatureState) else None
        out.write(_line(head))
        parts: list[tuple[str, Iterable[tuple[str, Any]]]] = [(key, document[key].items()) for key in _PARTS]
        if isinstance(state, InProcessFeatureState):
            parts.append(("persons", state.person_documents()))
        for key, values in parts:
            for part in batched(values, _PART):
                out.write(_line({key: dict(part)}))
                time.sleep(0)  # let the serving threads have the GIL between lines


def _read_snapshot(path: Path) -> dict[str, Any]:
    documents: dict[str, Any] = {}
    current: dict[str, Any] | None = None
    with path.open() as lines:
        header = json.loads(next(lines, "{}"))
        if header.get("format") != FORMAT or header.get("version") != VERSION:
            raise ValueError(
                f"{path} is not a version {VERSION} online feature snapshot "
                f"(format {header.get('format')!r}, version {header.get('version')!r})"
            )
        for line in lines:
            found = json.loads(line)
            if "tenant" in found:
                current = documents[found.pop("tenant")] = found | {key: {} for key in _PARTS}
                if current["state"] is not None:
                    current["state"]["persons"] = {}
                continue
            if current is None:
                raise ValueError(f"{path}: a part before any tenant")
            ((key, values),) = found.items()
            (current["state"] if key == "persons" else current)[key].update(values)
    return documents


def _freeze_state(state: OnlineFeatureState) -> Any:
    if not isinstance(state, InProcessFeatureState):
        return None  # a shared state (Redis) persists itself
    return state.detached_copy()


def _load_state(state: OnlineFeatureState, document: Any) -> None:
    if document is not None and isinstance(state, InProcessFeatureState):
        state.from_document(cast(dict[str, Any], document))


def _sync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
