"""The evaluator's SQL (store/segment_evaluation.py): evaluating given persons finds exactly what evaluating
everyone finds for them, through merges and identifier-scoped splits, and the persons to evaluate again are
those written or overridden since a time, with the persons their overrides point to. (The passes choose
between the two by measured cost, so the RPC tests do not always take the per-person path.)"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

from tests.journeys.conditions_reference import condition
from tests.journeys.conftest import Journeys, override
from tests.journeys.segments_support import event
from tests.journeys.test_segment_members import converted, shifted_log
from wayline.common.server import Server
from wayline_journeys.store.client import connect_clickhouse
from wayline_journeys.store.segment_evaluation import ClickHouseSegmentEvaluation


@pytest.fixture
def evaluation(journeys_server: Server, chdb_path: Path) -> Iterator[ClickHouseSegmentEvaluation]:
    """The evaluator's SQL on the journeys server's own database (the suite keeps its default name)."""
    client: Client = connect_clickhouse("", "wayline", chdb_path)
    yield ClickHouseSegmentEvaluation(lambda: client)
    client.close()


def test_evaluating_given_persons_agrees_with_evaluating_everyone(
    journeys: Journeys, evaluation: ClickHouseSegmentEvaluation
) -> None:
    rng = random.Random(11)
    log = shifted_log(rng)
    journeys.write(*(e.message() for e in log))
    people = sorted({e.person for e in log})
    split_identifier = next(i for e in log if e.person == people[4] for i in e.identifiers)
    journeys.apply(
        override(people[0], people[1], version=1),  # a merge
        override(people[4], people[5], version=2, identifier=split_identifier),  # a split by identifier
    )
    conditions = {str(uuid.uuid4()): converted(condition(rng)) for _ in range(12)}
    now = datetime.now(UTC)

    everyone = evaluation.differences(journeys.tenant, conditions, None, now, None)
    assert all(entered for _, _, entered in everyone)  # no stored members for these uids: entries only
    assert people[0] not in {p for _, p, _ in everyone}  # merged away: no events of its own
    # Targets apart from their sources: their events are found through the overrides.
    for chunk in ([people[1]], [people[0]], [people[5], people[6]], people[2:5], people[7:], ["nobody"]):
        given = evaluation.differences(journeys.tenant, conditions, None, now, chunk)
        assert sorted(given) == sorted(d for d in everyone if d[1] in chunk), chunk


def test_dirty_persons_are_those_written_or_overridden_since(
    journeys: Journeys, evaluation: ClickHouseSegmentEvaluation
) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    journeys.write(event("old", "X", datetime.now(UTC) - timedelta(days=400)))  # dated long ago, written now
    journeys.apply(override("source", "target", version=1))
    since = datetime.now(UTC)
    journeys.write(event("later", "X"))

    assert evaluation.dirty({journeys.tenant: before}, {}) == {
        journeys.tenant: {"old", "source", "target", "later"}
    }
    assert evaluation.dirty({journeys.tenant: since}, {}) == {journeys.tenant: {"later"}}
    crossing = (datetime.now(UTC) - timedelta(days=401), datetime.now(UTC) - timedelta(days=399))
    assert evaluation.dirty({}, {journeys.tenant: [crossing]}) == {journeys.tenant: {"old"}}
