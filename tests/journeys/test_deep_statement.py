"""Statements built of many nested stages (funnels, paths) run without three of the analyzer's rewrites that
cost them time and help none of them (store/client.py, DEEP_STATEMENT), short reads without column statistics
(SHORT_READ, ADR 101); a server that lacks one of those settings gets the statement with the others, never a
setting it would refuse."""

from __future__ import annotations

from wayline_journeys.store import JourneyStore
from wayline_journeys.store.client import DEEP_STATEMENT, SHORT_READ, ReadModel, query_rows
from wayline_journeys.store.sql import SqlParams


class _Probe(ReadModel):
    def settings_seen(self) -> dict[str, int]:
        """What the engine ran a deep statement with, for each of DEEP_STATEMENT's settings."""
        names = sorted(DEEP_STATEMENT)
        sql = f"SELECT {', '.join(f'toInt64(getSetting({name!r}))' for name in names)}"
        (row,) = self._deep_rows(sql, SqlParams(tenant="t"), "reading settings")
        return dict(zip(names, row, strict=True))


def test_the_embedded_engine_runs_deep_statements_with_every_setting_off(store: JourneyStore) -> None:
    seen = _Probe(lambda: store.client).settings_seen()
    assert seen == DEEP_STATEMENT  # each known to the engine, each applied


def test_a_server_without_one_of_the_settings_gets_the_others(store: JourneyStore) -> None:
    missing = "optimize_and_compare_chain"
    known = store.client.server_settings
    kept = known.pop(missing)  # as a server older than ClickHouse 25.1 reports its settings
    try:
        seen = _Probe(lambda: store.client).settings_seen()
    finally:
        known[missing] = kept
    # The engine itself has the setting: left unsent, it runs with its default (on).
    assert seen == {**DEEP_STATEMENT, missing: 1}


def test_short_reads_run_without_column_statistics(store: JourneyStore) -> None:
    names = sorted(SHORT_READ)
    sql = f"SELECT {', '.join(f'toInt64(getSetting({name!r}))' for name in names)}"
    (row,) = query_rows(store.client, sql, None, "reading settings", SHORT_READ)
    assert dict(zip(names, row, strict=True)) == {"use_statistics": 0, "use_uncompressed_cache": 1}
