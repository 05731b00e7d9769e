"""What one person's erasure costs the journey store in a row of erasures (identity's erasure driver sends
them one after another), on 1M events (chDB): the masks applied after each erasure (until 2026-12-05;
`WAYLINE_JOURNEYS_ERASURE_PURGE_SECONDS=0`) beside one APPLY DELETED MASK per table for the whole row
(store/purge.py), each beside the raw statement: the bare lightweight DELETE of one person's events.

Two layouts of the same events: as loaded (the journeys bench's cached 1M-event set in 8,000-row INSERTs,
as a stream arrives: large parts beside small fresh ones, merges going on) and merged (OPTIMIZE FINAL, a
quiet store). Each run is a process of its own on a fresh chDB directory (chDB takes one directory per
process). It times the raw DELETE for `erasures` persons, then `erase_person` (with the person's
identifiers, as identity sends them) for `erasures` others, one after another, and each statement the
erasures make; the row's purge is timed after it, until ClickHouse has no mutation left.
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
_PURGE_EACH, _PURGE_ONCE = "after each erasure", "once for the row"


def _child(purge: str, merged: bool, erasures: int, main_file: str, directory: str) -> str:
    """Runs in a spawned process: the figures of one run, as JSON."""
    import pyarrow as pa

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

    store = TimedStore(
        lambda: connect_clickhouse("", "wayline", Path(directory)),
        purge_seconds=0 if purge == _PURGE_EACH else 3600,
    )
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
    for person in persons[erasures:]:
        parameters = {"tenant": TENANT, "person": person}
        identifiers = [
            tuple(pair) for (pair,) in client.query(_IDENTIFIERS, parameters=parameters).result_rows
        ]
        mapping = store.overrides.mapping_for_person(TENANT, person)
        began = time.perf_counter()
        store.erase_person(TENANT, person, mapping, identifiers)
        erased.append(time.perf_counter() - began)
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
            "purge_ms": purge_ms,
            "parts": f"{parts[0]} ({'/'.join(sorted(parts[1]))})",
            "statements": {k: v for k, v in in_erasures.items() if k.startswith(("DELETE", "APPLY"))},
        }
    )


def main(erasures: int, cache: Path) -> None:
    console = Console()
    main_set = dataset(cache, "main", 1_000_000, 20_000, 1, console)
    main_file = str(main_set.directory / "events-0000.arrow")
    context = multiprocessing.get_context("spawn")
    table = Table(title=f"one person's erasure in a row of {erasures}, on 1M events (chDB)")
    for column in ("events", "masks applied", "raw DELETE p50 ms", "erasure p50 ms", "p90 ms", "p50 / raw"):
        table.add_column(column, justify="right")
    table.add_column("purge after the row ms", justify="right")
    notes: list[str] = []
    for merged in (False, True):
        for purge in (_PURGE_EACH, _PURGE_ONCE):
            with tempfile.TemporaryDirectory(prefix="wayline-erasure-") as directory, context.Pool(1) as pool:
                result = json.loads(pool.apply(_child, (purge, merged, erasures, main_file, directory)))
            layout = "merged" if merged else "as loaded"
            table.add_row(
                layout,
                purge,
                f"{result['raw_ms']:.1f}",
                f"{result['erase_ms']:.1f}",
                f"{result['erase_p90_ms']:.1f}",
                f"{result['erase_ms'] / result['raw_ms']:.1f}x",
                f"{result['purge_ms']:.0f}" if purge == _PURGE_ONCE else "-",
            )
            statements = ", ".join(f"{kind} {ms:.1f}" for kind, ms in result["statements"].items())
            notes.append(
                f"{layout}, {purge}: events parts after {result['parts']}; p50 ms a statement: {statements}"
            )
    console.print(table)
    for note in notes:
        console.print(note)
    console.print(
        f"tenant {TENANT}; raw: the bare lightweight DELETE of one person's events, in the same run"
    )
