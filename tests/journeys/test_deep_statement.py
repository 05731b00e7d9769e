"""Statements built of many nested stages (funnels, paths) run without three of the analyzer's rewrites that
cost them time and help none of them (store/client.py, DEEP_STATEMENT); a server that lacks one of those
settings gets the statement with the others, never a setting it would refuse."""

from __future__ import annotations

from typing import Any

from wayline_journeys.store import JourneyStore
from wayline_journeys.store.client import DEEP_STATEMENT, ReadModel
from wayline_journeys.store.sql import SqlParams


class _Probe(ReadModel):
    def settings_seen(self) -> dict[str, Any]:
        """What the engine ran a statement with, for each of DEEP_STATEMENT's settings it has."""
        settings = self._deep_statement()
        names = sorted(DEEP_STATEMENT)
        sql = f"SELECT {', '.join(f'toInt64(getSetting({name!r}))' for name in names)}"
        (row,) = self._rows(sql, SqlParams(tenant="t"), "reading settings", settings)
        return {name: value for name, value in zip(names, row, strict=True) if name in settings}


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
    assert missing not in seen
    assert seen == {name: value for name, value in DEEP_STATEMENT.items() if name != missing}
