"""Lifecycle stages in ClickHouse: the stage of given persons at one time, and the stage counts of a
population at many times, each in one query compiled by store/conditions.py."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from wayline.common.timestamps import to_micros
from wayline_journeys.analytics import Population
from wayline_journeys.conditions import LifecycleStage
from wayline_journeys.lifecycle import LifecycleModel
from wayline_journeys.store.client import ReadModel
from wayline_journeys.store.conditions import AS_OF, ConditionCompiler
from wayline_journeys.store.matching import UnsupportedFilter
from wayline_journeys.store.person_refs import current_persons
from wayline_journeys.store.sql import SqlParams

__all__ = ["ClickHouseLifecycleStore"]

_DATETIME = "DateTime64(6, 'UTC')"


class ClickHouseLifecycleStore(ReadModel):
    """Implements lifecycle.LifecycleStore; thread-safe as the client it is given."""

    def current_persons(
        self, tenant: str, identifiers: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], str]:
        return current_persons(self._rows, tenant, identifiers)

    def person_stages(
        self, tenant: str, model: LifecycleModel, as_of: datetime, person_ids: Sequence[str]
    ) -> dict[str, LifecycleStage]:
        params = SqlParams(tenant=tenant)
        compiler = ConditionCompiler(params)
        stage = compiler.stage(model)
        persons = params.bind(list(person_ids), "Array(String)")
        # Stored persons whose events may read as one of the persons: themselves and those overridden to them.
        stored = (
            f"(person_id IN {persons} OR person_id IN (SELECT person_id FROM person_overrides "
            f"WHERE tenant_id = {{tenant:String}} AND override_person_id IN {persons}))"
        )
        sql = compiler.query(
            [f"{stage} AS stage"],
            times=params.bind([to_micros(as_of)], "Array(Int64)"),
            where=f"timestamp < {params.bind(as_of, _DATETIME)} AND {stored}",
            persons=f"person_id IN {persons}",
        )
        rows = self._rows(sql, params, "computing lifecycle stages")
        return {person: LifecycleStage(stage) for _, person, stage in rows}

    def stage_counts(
        self, tenant: str, model: LifecycleModel, population: Population, times: Sequence[datetime]
    ) -> dict[datetime, dict[LifecycleStage, int]]:
        if population.segments:
            raise UnsupportedFilter("segment populations need the segments read model")
        params = SqlParams(tenant=tenant)
        compiler = ConditionCompiler(params)
        stage = compiler.stage(model)
        member = compiler.person_filters(population.person_filters)
        by_micros = {to_micros(t): t for t in times}
        inner = compiler.query(
            [f"{stage} AS stage", f"{member} AS member"],
            times=params.bind(sorted(by_micros), "Array(Int64)"),
            where=f"timestamp < {params.bind(max(times), _DATETIME)}",
        )
        sql = f"SELECT {AS_OF}, stage, count() FROM ({inner}) WHERE member GROUP BY {AS_OF}, stage"
        counts: dict[datetime, dict[LifecycleStage, int]] = {}
        for micros, stage_number, count in self._rows(sql, params, "counting lifecycle stages"):
            counts.setdefault(by_micros[int(micros)], {})[LifecycleStage(stage_number)] = int(count)
        return counts
