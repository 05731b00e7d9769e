"""PathsReadModel on ClickHouse: one statement per call (store/path_sql.py), rows turned into results here
(ListPathPersons: the person ids as they come).

Cleaning rules are checked by ClickHouse itself before the analysis, so the verdict is RE2's as the query
will apply it (Python's `re` accepts lookarounds RE2 refuses, and refuses some syntax RE2 takes): one small
statement for all the rules, and one per rule only when that fails, to name the culprits.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from clickhouse_connect.driver.exceptions import ClickHouseError

from wayline_journeys.paths import (
    CleaningRule,
    EdgeCursor,
    EdgePage,
    InvalidCleaningRules,
    PathEdge,
    PathNode,
    PathSequence,
    PathsQuery,
    PathsSeries,
    PathStep,
    PersonsPage,
    SeriesKey,
)
from wayline_journeys.store.client import (
    CANNOT_COMPILE_REGEXP,
    ReadModel,
    clickhouse_error_code,
    regex_problem,
    store_error,
)
from wayline_journeys.store.path_sql import path_persons_sql, paths_sql
from wayline_journeys.store.sql import SqlParams

__all__ = ["ClickHousePaths"]

_REGEX_ERRORS = frozenset(
    {36, CANNOT_COMPILE_REGEXP}
)  # BAD_ARGUMENTS (replaceRegexpAll's checks), CANNOT_COMPILE_REGEXP


def _step(pair: Sequence[str]) -> PathStep:
    return PathStep(label=pair[0], channel=pair[1])


def _edge(row: Sequence[Any]) -> tuple[PathEdge, PathNode, PathNode]:
    (
        position,
        (source, target),
        count,
        gap_sum,
        source_count,
        source_drops,
        target_count,
        target_drops,
        loops,
    ) = row
    edge = PathEdge(
        position=position,
        source=_step(source),
        target=_step(target),
        count=count,
        average_gap=timedelta(microseconds=round(gap_sum / count)),
        loop_count=loops,
    )
    return (
        edge,
        PathNode(position, edge.source, source_count, source_drops),
        PathNode(position + 1, edge.target, target_count, target_drops),
    )


def _nodes(found: Sequence[tuple[PathEdge, PathNode, PathNode]]) -> tuple[PathNode, ...]:
    unique = {node.id: node for _, *ends in found for node in ends}
    return tuple(sorted(unique.values(), key=lambda n: (n.position, -n.count, n.step)))


def _edges(rows: Sequence[Any]) -> list[tuple[PathEdge, PathNode, PathNode]]:
    found = [_edge(r) for r in rows]
    found.sort(key=lambda e: (-e[0].count, e[0].position, e[0].source, e[0].target))
    return found


def _series(row: Sequence[Any], query: PathsQuery) -> PathsSeries:
    (value, other, missing), path_count, person_count, top, edge_rows, edge_count = row
    paths = sorted(
        (PathSequence(tuple(_step(s) for s in steps), count, persons) for steps, count, persons in top),
        key=lambda p: (-p.count, p.steps),
    )
    edges = _edges(edge_rows)
    return PathsSeries(
        key=SeriesKey(value, bool(other), bool(missing)),
        path_count=path_count,
        person_count=person_count,
        top_paths=tuple(paths[: query.top_paths_limit]),
        nodes=_nodes(edges),
        edges=tuple(e for e, _, _ in edges),
        edge_count=edge_count,
    )


class ClickHousePaths(ReadModel):
    """PathsReadModel on the journey store's ClickHouse client."""

    def check_cleaning_rules(self, rules: Sequence[CleaningRule]) -> None:
        """InvalidCleaningRules naming every rule whose regex or replacement RE2 refuses."""
        if not rules:
            return
        try:
            self._probe(rules)
            return
        except ClickHouseError as exc:
            if clickhouse_error_code(exc) not in _REGEX_ERRORS:
                raise store_error(exc, "checking the cleaning rules") from exc
        problems: list[tuple[int, str, str]] = []
        for i, rule in enumerate(rules):
            for part, probe in (("regex", CleaningRule(rule.regex, "")), ("label", rule)):
                try:
                    self._probe([probe])
                except ClickHouseError as exc:
                    if clickhouse_error_code(exc) not in _REGEX_ERRORS:
                        raise store_error(exc, "checking the cleaning rules") from exc
                    problems.append((i, part, regex_problem(exc)))
                    break
        raise InvalidCleaningRules(problems)

    def _probe(self, rules: Sequence[CleaningRule]) -> None:
        params = SqlParams()
        checks = [
            f"replaceRegexpAll('', {params.bind(r.regex, 'String')}, {params.bind(r.replacement, 'String')})"
            for r in rules
        ]
        # match() compiles the pattern with the engine's regex cache, replaceRegexpAll checks the groups.
        checks += [f"match('', {params.bind(r.regex, 'String')})" for r in rules]
        self._client().query(f"SELECT {', '.join(checks)}", parameters=params.values)

    def query(self, query: PathsQuery) -> list[PathsSeries]:
        self.check_cleaning_rules(query.cleaning_rules)
        params = self._tenant_params(query.tenant)
        sql = paths_sql(query, params, edge_limit=query.edge_limit)
        found = [_series(r, query) for r in self._deep_rows(sql, params, "analysing paths")]
        found.sort(key=lambda s: (s.key.other, -s.path_count, s.key))
        return found

    def edges(self, query: PathsQuery, series: SeriesKey, after: EdgeCursor | None, limit: int) -> EdgePage:
        self.check_cleaning_rules(query.cleaning_rules)
        params = self._tenant_params(query.tenant)
        sql = paths_sql(query, params, edge_limit=limit + 1, with_paths=False, after=after, series=series)
        rows = self._deep_rows(sql, params, "listing path edges")
        if not rows:
            return EdgePage(edges=(), nodes=(), total_size=0, more=False)
        *_, edge_rows, edge_count = rows[0]
        found = _edges(edge_rows)
        page = found[:limit]
        return EdgePage(
            edges=tuple(e for e, _, _ in page),
            nodes=_nodes(page),
            total_size=edge_count,
            more=len(found) > limit,
        )

    def persons(self, query: PathsQuery, page: PersonsPage) -> list[str]:
        self.check_cleaning_rules(query.cleaning_rules)
        params = self._tenant_params(query.tenant)
        rows = self._deep_rows(path_persons_sql(query, page, params), params, "listing a path node's persons")
        return [str(person) for (person,) in rows]
