"""What an INSERT costs the journey store, and what a timeline read costs, by how many anchor partitions the
events table has: versions 1 to 11's eight, the store's four (ANCHOR_PARTITIONS) and one, in the same run.
ADR 0011, "Partitions".

Each layout runs in a process of its own on a fresh chDB directory (chDB takes one directory per process):
the events table made first with the partition count under test, then the store's migrations up to 11
(version 12 would rebuild it). Rows come from the journeys bench's cached 1M-event data sets (generated on
first use). Into the empty table the child inserts `inserts` batches of 500 rows, then of 50, 50 ms apart (a
trickle, as ingest's forwarder sends them), waits until ClickHouse has no merge left and reports its process
CPU (every engine thread counted) per INSERT, emptying the table after each size. Then it loads 1M events in
8,000-row INSERTs (what group commit makes of a stream), waits for the merges, and times a page of 100
through `person_anchors` with FINAL (the timeline's read) for 300 persons.
"""

from __future__ import annotations

import json
import multiprocessing
import resource
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.journeys_cache import dataset
from bench.journeys_data import TENANT
from bench.journeys_timing import percentile

__all__ = ["main"]

_PAUSE_SECONDS = 0.05
_LOAD_BATCH = 8_000
_PERSONS = 300
_TRICKLE_BATCHES = (500, 50)


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _child(partitions: int, inserts: int, main_file: str, extra_file: str, directory: str) -> str:
    """Runs in a spawned process: the figures of one layout, as JSON."""
    import pyarrow as pa

    from bench.journeys_raw import _PAGE, _PERSON_ANCHORS, _TIMELINE
    from wayline_journeys.store.client import connect_clickhouse
    from wayline_journeys.store.migrations import migrate
    from wayline_journeys.store.schema import ANCHOR_PARTITIONS, MIGRATIONS, events_ddl
    from wayline_journeys.store.topology import Topology

    def rows(path: str) -> pa.Table:
        with pa.memory_map(path) as source:
            return pa.ipc.open_file(source).read_all()

    def settle() -> None:
        while client.query("SELECT count() FROM system.merges").result_rows[0][0]:
            time.sleep(0.2)

    client = connect_clickhouse("", "wayline", Path(directory))
    ddl = events_ddl(Topology()).replace(f"anchor % {ANCHOR_PARTITIONS}", f"anchor % {partitions}")
    client.command(ddl.replace("PARTITION BY anchor % 1", ""))
    migrate(client, Topology(), MIGRATIONS[:11])
    trickle = rows(extra_file)
    cpu: dict[str, float] = {}
    offset = 0
    for batch in _TRICKLE_BATCHES:
        began_cpu = _cpu_seconds()
        for _ in range(inserts):
            client.insert_arrow("events", trickle.slice(offset, batch))
            offset += batch
            time.sleep(_PAUSE_SECONDS)
        settle()
        cpu[str(batch)] = (_cpu_seconds() - began_cpu) * 1000 / inserts
        client.command("TRUNCATE TABLE events")  # the next size starts on an empty table, no merge pending
    loaded = rows(main_file)
    for start in range(0, loaded.num_rows, _LOAD_BATCH):
        client.insert_arrow("events", loaded.slice(start, _LOAD_BATCH))
    settle()
    parts = client.query(
        "SELECT count() FROM system.parts WHERE active AND database = currentDatabase() AND table = 'events'"
    ).result_rows[0][0]
    persons = [
        p
        for (p,) in client.query(
            f"SELECT DISTINCT person_id FROM events ORDER BY cityHash64(person_id) LIMIT {_PERSONS}"
        ).result_rows
    ]
    page = _TIMELINE.replace("FROM events", "FROM events FINAL") + _PERSON_ANCHORS + _PAGE
    times = []
    for person in persons:
        began = time.perf_counter()
        client.query(page, parameters={"tenant": TENANT, "person": person})
        times.append(time.perf_counter() - began)
    return json.dumps(
        {"parts": int(parts), "timeline_ms": percentile(sorted(times), 0.5) * 1000, "cpu_ms": cpu}
    )


def main(inserts: int, cache: Path, layouts: tuple[int, ...] = (8, 4, 1)) -> None:
    console = Console()
    main_set = dataset(cache, "main", 1_000_000, 20_000, 1, console)
    extra_set = dataset(cache, "extra", 1_000_000, 20_000, 1, console)
    files = (str(main_set.directory / "events-0000.arrow"), str(extra_set.directory / "events-0000.arrow"))
    context = multiprocessing.get_context("spawn")
    table = Table(
        title=f"events by anchor partitions (the store's: 4): {inserts} INSERTs of each size "
        f"{_PAUSE_SECONDS * 1000:.0f} ms apart; then 1M events in {_LOAD_BATCH:,}-row INSERTs and timelines"
    )
    columns = ["partitions", "parts after the load", f"timeline p50 ms ({_PERSONS} persons)"]
    columns += [f"CPU ms per {batch}-row INSERT" for batch in _TRICKLE_BATCHES]
    for column in columns:
        table.add_column(column, justify="right")
    baseline: dict[str, float] = {}
    for partitions in layouts:
        with tempfile.TemporaryDirectory(prefix="wayline-inserts-") as directory, context.Pool(1) as pool:
            result = json.loads(pool.apply(_child, (partitions, inserts, *files, directory)))
        baseline = baseline or {"timeline": result["timeline_ms"], **result["cpu_ms"]}
        cells = [f"{result['timeline_ms']:.1f} ({result['timeline_ms'] / baseline['timeline']:.2f}x)"]
        for batch in _TRICKLE_BATCHES:
            value = result["cpu_ms"][str(batch)]
            cells.append(f"{value:.0f} ({value / baseline[str(batch)]:.2f}x)")
        table.add_row(str(partitions), str(result["parts"]), *cells)
    console.print(table)
    console.print(f"ratios against the first row ({layouts[0]} partitions); tenant {TENANT}")
