"""The canary judge's verdicts applied through the model lifecycle, over a real registry holding packages
wayline_ml wrote and a real database (SQLite and PostgreSQL): two replicas concluding the same canary run
at once change the traffic exactly once; an undecided evaluation is kept without a new generation and
survives a restart; a new canary run starts counting afresh; the policy is refused where it means nothing;
a traffic table of the first schema is migrated with its rows, and an evaluation kept before the judged
versions were reads without them."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from tests.decision.serving.lifecycle_setup import lifecycle_over, register_ml
from wayline.common.errors import InvalidArgument
from wayline.common.sql import Database, SqliteDatabase, migrate
from wayline_decision.serving.judge import ArmCounts, CanaryCounts, JudgePolicy, Verdict, judge
from wayline_decision.serving.traffic import CanaryEvaluation, DeployMode, Traffic, TrafficChange
from wayline_decision.serving.traffic_store import MIGRATIONS, TrafficStore

TENANT = "acme"
POLICY = JudgePolicy(margin=0.01, min_decisions=50, confidence=0.9)


def _evaluation(stable: tuple[int, int], canary: tuple[int, int], at_us: int = 1_000) -> CanaryEvaluation:
    counts = CanaryCounts(stable=ArmCounts(*stable), canary=ArmCounts(*canary))
    return CanaryEvaluation(judge(counts, POLICY), at_us, stable_version="1", canary_version="2")


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A registry with versions 1 to 3, shared by the tests (each has a database of its own)."""
    tmp = tmp_path_factory.mktemp("conclusion")
    setup = lifecycle_over(tmp / "registry", SqliteDatabase(tmp / "scratch.db"))
    for version in ("1", "2", "3"):
        register_ml(setup.registry, TENANT, tmp, "offers", version)
    return tmp / "registry"


def _canaried(root: Path, database: Database) -> Traffic:
    lifecycle = lifecycle_over(root, database).lifecycle
    lifecycle.deploy(TENANT, "offers", "1", DeployMode.FULL, 0)
    return lifecycle.deploy(TENANT, "offers", "2", DeployMode.CANARY, 20, judgement=POLICY)


def test_two_replicas_concluding_one_run_change_the_traffic_once(root: Path, database: Database) -> None:
    judged = _canaried(root, database)
    assert (judged.canary_version, judged.judgement) == ("2", POLICY)
    assert judged.canary_start_us == judged.update_time_us
    promote = _evaluation((1000, 100), (1000, 200))
    assert promote.judgement.verdict is Verdict.PROMOTE
    replicas = [lifecycle_over(root, database).lifecycle for _ in range(2)]
    start = threading.Barrier(2)
    results: list[Traffic | None] = []

    def conclude(index: int) -> None:
        start.wait()
        results.append(replicas[index].conclude_canary(TENANT, "offers", judged, promote))

    threads = [threading.Thread(target=conclude, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    written = [r for r in results if r is not None]
    assert len(results) == 2
    assert len(written) == 1
    after = replicas[0].traffic(TENANT, "offers")
    assert after == written[0]
    assert (after.stable_version, after.canary_version, after.previous_stable_version) == ("2", "", "1")
    assert (after.generation, after.judgement, after.canary_start_us) == (judged.generation + 1, None, 0)
    assert after.evaluation == promote  # the verdict that ended the run stays readable
    # A verdict about a run that is over changes nothing, even a contrary one.
    assert replicas[1].conclude_canary(TENANT, "offers", judged, _evaluation((1000, 200), (1000, 80))) is None
    assert replicas[1].traffic(TENANT, "offers") == after


def test_roll_back_drops_the_canary_and_keeps_the_stable(root: Path, database: Database) -> None:
    judged = _canaried(root, database)
    lifecycle = lifecycle_over(root, database).lifecycle
    worse = _evaluation((1000, 200), (1000, 80))
    assert worse.judgement.verdict is Verdict.ROLL_BACK
    after = lifecycle.conclude_canary(TENANT, "offers", judged, worse)
    assert after is not None
    assert (after.stable_version, after.canary_version, after.canary_basis_points) == ("1", "", 0)
    assert after.previous_stable_version == judged.previous_stable_version
    assert after.evaluation == worse
    with pytest.raises(ValueError, match="wait"):
        lifecycle.conclude_canary(TENANT, "offers", after, _evaluation((10, 1), (10, 1)))


def test_an_undecided_evaluation_is_kept_without_a_new_generation_and_survives_a_restart(
    root: Path, database: Database
) -> None:
    judged = _canaried(root, database)
    first = lifecycle_over(root, database).lifecycle
    wait = _evaluation((30, 3), (20, 5), at_us=1_234_567)
    assert wait.judgement.verdict is Verdict.WAIT
    assert first.record_evaluation(TENANT, "offers", judged, wait)
    kept = first.traffic(TENANT, "offers")
    assert kept.evaluation == wait
    assert (kept.generation, kept.update_time_us) == (judged.generation, judged.update_time_us)
    restarted = lifecycle_over(root, database).lifecycle  # a new store over the same tables
    assert restarted.traffic(TENANT, "offers") == kept
    # The traffic moved on (here: the canary's share): an evaluation of the older generation is not kept.
    moved = restarted.set_traffic(
        TENANT, "offers", TrafficChange("1", canary_version="2", canary_percent=50, judgement=POLICY)
    )
    assert moved.canary_start_us == judged.canary_start_us  # the same run: the counts go on
    assert moved.evaluation == wait
    assert not restarted.record_evaluation(TENANT, "offers", judged, _evaluation((40, 3), (30, 5)))
    assert restarted.traffic(TENANT, "offers").evaluation == wait


def test_a_new_canary_starts_a_new_run(root: Path, database: Database) -> None:
    judged = _canaried(root, database)
    lifecycle = lifecycle_over(root, database).lifecycle
    assert lifecycle.record_evaluation(TENANT, "offers", judged, _evaluation((30, 3), (20, 5)))
    replaced = lifecycle.deploy(TENANT, "offers", "3", DeployMode.CANARY, 20)
    assert replaced.canary_start_us > judged.canary_start_us
    assert (replaced.judgement, replaced.evaluation) == (None, None)
    # A verdict on the run that was replaced does not touch the new one.
    assert lifecycle.conclude_canary(TENANT, "offers", judged, _evaluation((1000, 100), (1000, 200))) is None
    ended = lifecycle.rollback(TENANT, "offers", "1")
    assert (ended.canary_version, ended.canary_start_us, ended.judgement) == ("", 0, None)


def test_the_policy_is_refused_without_a_canary(root: Path, database: Database) -> None:
    lifecycle = lifecycle_over(root, database).lifecycle
    lifecycle.deploy(TENANT, "offers", "1", DeployMode.FULL, 0)
    for mode in (DeployMode.FULL, DeployMode.SHADOW):
        with pytest.raises(InvalidArgument) as refused:
            lifecycle.deploy(TENANT, "offers", "2", mode, 0, judgement=POLICY)
        assert [v.field for v in refused.value.violations] == ["judgement"]
    with pytest.raises(InvalidArgument) as refused:
        lifecycle.set_traffic(TENANT, "offers", TrafficChange("1", judgement=POLICY))
    assert [v.field for v in refused.value.violations] == ["traffic.judgement"]


def test_a_traffic_table_of_the_first_schema_is_migrated_with_its_rows(tmp_path: Path) -> None:
    db = SqliteDatabase(tmp_path / "old.db")
    migrate(db, "decision_traffic", MIGRATIONS[:1])
    with db.transaction() as tx:
        tx.execute(
            "INSERT INTO model_traffic VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (TENANT, "offers", "1", "2", 2000, "", "", 42, 3),
        )
    store = TrafficStore(db)
    assert store.migrate() == len(MIGRATIONS)
    assert store.get(TENANT, "offers") == Traffic(
        "offers", "1", "2", 2000, "", "", update_time_us=42, generation=3
    )


def test_an_evaluation_kept_before_its_versions_were_reads_without_them(
    root: Path, database: Database
) -> None:
    judged = _canaried(root, database)
    lifecycle = lifecycle_over(root, database).lifecycle
    kept = _evaluation((30, 3), (20, 5))
    assert lifecycle.record_evaluation(TENANT, "offers", judged, kept)
    with database.transaction() as tx:  # the evaluation as the judge wrote it before it named the versions
        [(text,)] = tx.execute("SELECT canary_evaluation FROM model_traffic WHERE tenant_id = ?", (TENANT,))
        older = {k: v for k, v in json.loads(text).items() if k not in {"stable_version", "canary_version"}}
        tx.execute(
            "UPDATE model_traffic SET canary_evaluation = ? WHERE tenant_id = ?", (json.dumps(older), TENANT)
        )
    read = TrafficStore(database).get(TENANT, "offers").evaluation
    assert read is not None
    assert (read.stable_version, read.canary_version) == ("", "")
    assert (read.judgement, read.evaluate_time_us) == (kept.judgement, kept.evaluate_time_us)
