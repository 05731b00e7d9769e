"""The on-disk cache of generated journeys: per data set, Arrow IPC files (zstd) of the events table's rows
and of the serialised WriteEventsRequests that carry the same events, one pair per chunk of 1M events.

A data set is generated only when its directory lacks the `complete` marker, so an interrupted generation
starts over and a finished one is reused by every later run with the same size and seed.
"""

from __future__ import annotations

import json
import multiprocessing
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
from rich.console import Console

from bench.journeys_data import event_chunks, make_persons
from bench.journeys_wire import encode_requests

__all__ = ["CHUNK", "Dataset", "dataset"]

VERSION = 1  # bump when the generator's output changes, so stale caches are not reused
CHUNK = 1_000_000
BATCH = 5_000  # events per WriteEventsRequest (the contract allows 10,000)
_PARTS = {"main": 1, "extra": 2, "freshness": 3}  # each part its own events, over the same persons
_BATCHES = {"freshness": 500}  # the freshness load is paced, in the forwarder's smaller batches


@dataclass(frozen=True)
class Dataset:
    directory: Path
    events: int
    chunks: int

    def _path(self, kind: str, chunk: int) -> Path:
        return self.directory / f"{kind}-{chunk:04d}.arrow"

    def rows(self, chunk: int) -> pa.Table:
        """One chunk's rows, with the columns of the events table (for the raw chDB insert)."""
        with pa.memory_map(str(self._path("events", chunk))) as source:
            return pa.ipc.open_file(source).read_all()

    def requests(self, chunk: int) -> list[bytes]:
        """One chunk's serialised WriteEventsRequests, in row order."""
        with pa.memory_map(str(self._path("requests", chunk))) as source:
            return pa.ipc.open_file(source).read_all()["request"].to_pylist()  # type: ignore[no-any-return]


def _write(path: Path, table: pa.Table) -> None:
    options = pa.ipc.IpcWriteOptions(compression="zstd")
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema, options=options) as writer:
        writer.write_table(table)


def _encode(events: Path, requests: Path, batch: int) -> None:
    """Runs in a worker process: one chunk's rows → its requests file."""
    with pa.memory_map(str(events)) as source:
        table = pa.ipc.open_file(source).read_all()
    _write(requests, pa.table({"request": pa.array(encode_requests(table, batch), pa.binary())}))


def dataset(cache: Path, part: str, events: int, persons: int, seed: int, console: Console) -> Dataset:
    """The data set `part` ("main", "extra" or "freshness") of `events` events over `persons` persons,
    generated into `cache` unless already there."""
    directory = cache / f"journeys-v{VERSION}-persons{persons}-seed{seed}" / f"{part}-{events}"
    chunks = -(-events // CHUNK)
    found = Dataset(directory, events, chunks)
    if (directory / "complete").exists():
        return found
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    began = time.perf_counter()
    people = make_persons(persons, seed)
    for number, table in enumerate(event_chunks(people, events, seed * 100 + _PARTS[part], CHUNK)):
        _write(found._path("events", number), table)
    generated = time.perf_counter() - began
    # Encoding is per-event Python (~15 µs); a process per core. Spawned, not forked: the parent's Arrow
    # thread pool must not be copied mid-flight.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
        batch = _BATCHES.get(part, BATCH)
        jobs = [
            pool.submit(_encode, found._path("events", n), found._path("requests", n), batch)
            for n in range(chunks)
        ]
        for job in jobs:
            job.result()
    seconds = time.perf_counter() - began
    (directory / "complete").write_text(
        json.dumps({"events": events, "persons": persons, "seed": seed, "chunks": chunks, "seconds": seconds})
    )
    console.print(
        f"generated {part}: {events:,} events over {persons:,} persons in {generated:.0f}s, "
        f"encoded as WriteEventsRequests in {seconds - generated:.0f}s more ({directory})"
    )
    return found
