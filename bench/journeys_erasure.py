"""What one person's erasure costs the journey store in a row of erasures, on 1M events (chDB): sent one
after another (identity's erasure driver until 2026-12-06) beside sent in batches (BatchDeletePersonEvents,
ADR 96), each beside the raw statement: the bare lightweight DELETE of one person's events. The masks are
applied once for the row (store/purge.py), timed after it.

Two layouts of the same events: as loaded (the journeys bench's cached 1M-event set in 8,000-row INSERTs,
as a stream arrives: large parts beside small fresh ones, merges going on) and merged (OPTIMIZE FINAL, a
quiet store). Each run is a process of its own on a fresh chDB directory (chDB takes one directory per
process). It times the raw DELETE for `erasures` persons, then erases `erasures` others (with each person's
identifiers, as identity sends them), `batch` persons a call, and each statement the erasures make; the
row's purge is timed after it, until ClickHouse has no mutation left.
"""

from __future__ import annotations

import json
import multiprocessing
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.journeys_cache import dataset
from bench.journeys_data import TENANT
from bench.journeys_timing import percentile

__all__ = ["main"]

_LOAD_BATCH = 8_000
_RAW_DELETE = (
    "DELETE FROM events WHERE tenant_id = {tenant:String} AND anchor IN (SELECT anchor FROM person_anchors "
    "WHERE tenant_id = {tenant:String} AND person_id = {person:String}) AND person_id = {person:String}"
)
_IDENTIFIERS = (
    "SELECT DISTINCT arrayJoin(arrayZip(arrayMap(t -> toString(t), identifier_types), identifier_values)) "
    "FROM events WHERE tenant_id = {tenant:String} AND person_id = {person:String}"
)


def _child(batch: int, merged: bool, erasures: int, main_file: str, directory: str) -> str:
    """Runs in a spawned process: the figures of one run, as JSON."""
    import pyarrow as pa

    from wayline_journeys.erasures import PersonToErase
    from wayline_journeys.store import JourneyStore
    from wayline_journeys.store.client import connect_clickhouse

    statements: dict[str, list[float]] = {}

    class TimedStore(JourneyStore):
        """Times each statement an erasure makes, by what it does and to which table."""

        def command(
            self, sql: str, parameters: dict[str, Any], action: str, settings: dict[str, Any] | None = None
        ) -> None:
            began = time.perf_counter()
            super().command(sql, parameters, action, settings)
            words = sql.split()  # DELETE FROM t, ALTER TABLE t (APPLY DELETED MASK), INSERT INTO t
            kind = f"{'APPLY' if words[0] == 'ALTER' else words[0]} {words[2]}"
            statements.setdefault(kind, []).append(time.perf_counter() - began)

    store = TimedStore(lambda: connect_clickhouse("", "wayline", Path(directory)), purge_seconds=3600)
    store.open()
    client = store.client

    def settle() -> None:
        while client.query(
            "SELECT (SELECT count() FROM system.merges) "
            "+ (SELECT count() FROM system.mutations WHERE NOT is_done)"
        ).result_rows[0][0]:
            time.sleep(0.05)

    with pa.memory_map(main_file) as source:
        loaded = pa.ipc.open_file(source).read_all()
    for start in range(0, loaded.num_rows, _LOAD_BATCH):
        client.insert_arrow("events", loaded.slice(start, _LOAD_BATCH))
    settle()
    if merged:
        for table in ("events", "person_anchors", "identifier_anchors"):
            client.command(f"OPTIMIZE TABLE {table} FINAL")
        settle()
    persons = [
        str(p)
        for (p,) in client.query(
            f"SELECT DISTINCT person_id FROM events ORDER BY cityHash64(person_id) LIMIT {2 * erasures}"
        ).result_rows
    ]
    raw, erased = [], []
    for person in persons[:erasures]:
        began = time.perf_counter()
        client.command(_RAW_DELETE, parameters={"tenant": TENANT, "person": person})
        raw.append(time.perf_counter() - began)
    settle()
    to_erase = []
    for person in persons[erasures:]:
        parameters = {"tenant": TENANT, "person": person}
        identifiers = client.query(_IDENTIFIERS, parameters=parameters).result_rows
        to_erase.append(PersonToErase(person, tuple((str(k), str(v)) for ((k, v),) in identifiers)))
    row_began = time.perf_counter()
    for start in range(0, len(to_erase), batch):
        calls = to_erase[start : start + batch]
        mapping = store.overrides.mapping_for_persons(TENANT, [p.person_id for p in calls])
        began = time.perf_counter()
        store.erase_persons(TENANT, calls, mapping)
        erased.append((time.perf_counter() - began) / len(calls))  # a person's share of the call
    row_s = time.perf_counter() - row_began
    in_erasures = {kind: percentile(sorted(times), 0.5) * 1000 for kind, times in statements.items()}
    began = time.perf_counter()
    store.purge.purge()
    settle()
    purge_ms = (time.perf_counter() - began) * 1000
    parts = client.query(
        "SELECT count(), groupUniqArray(part_type) FROM system.parts "
        "WHERE active AND database = currentDatabase() AND table = 'events'"
    ).result_rows[0]
    store.close()
    return json.dumps(
        {
            "raw_ms": percentile(sorted(raw), 0.5) * 1000,
            "erase_ms": percentile(sorted(erased), 0.5) * 1000,
            "erase_p90_ms": percentile(sorted(erased), 0.9) * 1000,
            "row_s": row_s,
            "purge_ms": purge_ms,
            "parts": f"{parts[0]} ({'/'.join(sorted(parts[1]))})",
            "statements": {k: v for k, v in in_erasures.items() if k.startswith(("DELETE", "APPLY"))},
        }
    )


def main(erasures: int, cache: Path, batch_size: int = 10) -> None:
    console = Console()
    main_set = dataset(cache, "main", 1_000_000, 20_000, 1, console)
    main_file = str(main_set.directory / "events-0000.arrow")
    context = multiprocessing.get_context("spawn")
    table = Table(title=f"one person's erasure in a row of {erasures}, on 1M events (chDB)")
    for column in (
        "events",
        "persons a call",
        "raw DELETE p50 ms",
        "erasure p50 ms a person",
        "p90 ms",
        "p50 / raw",
        "the row s",
        "purge after the row ms",
    ):
        table.add_column(column, justify="right")
    notes: list[str] = []
    for merged in (False, True):
        for batch in (1, batch_size):
            with tempfile.TemporaryDirectory(prefix="wayline-erasure-") as directory, context.Pool(1) as pool:
                result = json.loads(pool.apply(_child, (batch, merged, erasures, main_file, directory)))
            layout = "merged" if merged else "as loaded"
            table.add_row(
                layout,
                str(batch),
                f"{result['raw_ms']:.1f}",
                f"{result['erase_ms']:.1f}",
                f"{result['erase_p90_ms']:.1f}",
                f"{result['erase_ms'] / result['raw_ms']:.2f}x",
                f"{result['row_s']:.1f}",
                f"{result['purge_ms']:.0f}",
            )
            statements = ", ".join(f"{kind} {ms:.1f}" for kind, ms in result["statements"].items())
            notes.append(
                f"{layout}, {batch} a call: events parts after {result['parts']}; p50 ms a statement: "
                + statements
            )
    console.print(table)
    for note in notes:
        console.print(note)
    console.print(
        f"tenant {TENANT}; raw: the bare lightweight DELETE of one person's events, in the same run"
    )
