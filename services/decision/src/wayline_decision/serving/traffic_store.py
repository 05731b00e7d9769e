"""Every model's traffic in SQL (SQLite embedded, PostgreSQL when replicas share it), one row per tenant and
model. A write is conditional on the generation it was made against, so of two admins (or replicas)
changing one model's traffic at once exactly one wins and the other applies its change again to what won.
Replicas poll the rows and load what changed. The canary judge's evaluations are written beside the traffic
without a new generation: they change what GetModel shows, not what serves."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from wayline.common.sql import DATABASE_DOWN, Database, migrate
from wayline_decision.errors import TrafficStoreUnavailable
from wayline_decision.serving.judge import ArmCounts, CanaryCounts, Judgement, JudgePolicy, Verdict
from wayline_decision.serving.traffic import CanaryEvaluation, Traffic

__all__ = ["MIGRATIONS", "TrafficStore"]

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        "CREATE TABLE model_traffic (tenant_id TEXT NOT NULL, model_id TEXT NOT NULL,"
        " stable_version TEXT NOT NULL, canary_version TEXT NOT NULL,"
        " canary_basis_points BIGINT NOT NULL, shadow_version TEXT NOT NULL,"
        " previous_stable_version TEXT NOT NULL, update_time_us BIGINT NOT NULL,"
        " generation BIGINT NOT NULL, PRIMARY KEY (tenant_id, model_id))",
    ),
    # The canary judge: the run's start, its policy (judge_margin NULL: not judged) and the last evaluation
    # (JSON, '' for none: read whole, never queried by its parts).
    (
        "ALTER TABLE model_traffic ADD COLUMN canary_start_us BIGINT NOT NULL DEFAULT 0",
        "ALTER TABLE model_traffic ADD COLUMN judge_margin DOUBLE PRECISION",
        "ALTER TABLE model_traffic ADD COLUMN judge_min_decisions BIGINT",
        "ALTER TABLE model_traffic ADD COLUMN judge_confidence DOUBLE PRECISION",
        "ALTER TABLE model_traffic ADD COLUMN canary_evaluation TEXT NOT NULL DEFAULT ''",
    ),
)
# One column list: the DDL above, the SELECTs, the writes and the row parsing follow it.
_COLUMNS = (
    "stable_version",
    "canary_version",
    "canary_basis_points",
    "shadow_version",
    "previous_stable_version",
    "update_time_us",
    "generation",
    "canary_start_us",
    "judge_margin",
    "judge_min_decisions",
    "judge_confidence",
    "canary_evaluation",
)
_VALUES = ", ".join(_COLUMNS)
_PLACEHOLDERS = ", ".join("?" for _ in _COLUMNS)
_ASSIGNMENTS = ", ".join(f"{column} = ?" for column in _COLUMNS)


def _evaluation_json(evaluation: CanaryEvaluation | None) -> str:
    if evaluation is None:
        return ""
    judgement = evaluation.judgement
    counts = judgement.counts
    return json.dumps(
        {
            "verdict": judgement.verdict.value,
            "stable": [counts.stable.decisions, counts.stable.conversions],
            "canary": [counts.canary.decisions, counts.canary.conversions],
            "difference": judgement.difference,
            "lower": judgement.lower,
            "upper": judgement.upper,
            "explanation": judgement.explanation,
            "evaluate_time_us": evaluation.evaluate_time_us,
            "stable_version": evaluation.stable_version,
            "canary_version": evaluation.canary_version,
        }
    )


def _evaluation(text: str) -> CanaryEvaluation | None:
    if not text:
        return None
    data = json.loads(text)
    counts = CanaryCounts(stable=ArmCounts(*data["stable"]), canary=ArmCounts(*data["canary"]))
    judgement = Judgement(
        Verdict(data["verdict"]),
        counts,
        data["difference"],
        data["lower"],
        data["upper"],
        data["explanation"],
    )
    return CanaryEvaluation(
        judgement,
        int(data["evaluate_time_us"]),
        data.get("stable_version", ""),  # absent from evaluations stored before the versions were kept
        data.get("canary_version", ""),
    )


def _traffic(model_id: str, row: tuple[Any, ...]) -> Traffic:
    (
        stable,
        canary,
        basis_points,
        shadow,
        previous,
        update_time_us,
        generation,
        canary_start_us,
        margin,
        min_decisions,
        confidence,
        evaluation,
    ) = row
    judgement = (
        None
        if margin is None
        else JudgePolicy(margin=float(margin), min_decisions=int(min_decisions), confidence=float(confidence))
    )
    return Traffic(
        model_id=model_id,
        stable_version=stable,
        canary_version=canary,
        canary_basis_points=int(basis_points),
        shadow_version=shadow,
        previous_stable_version=previous,
        update_time_us=int(update_time_us),
        generation=int(generation),
        canary_start_us=int(canary_start_us),
        judgement=judgement,
        evaluation=_evaluation(evaluation),
    )


def _values(traffic: Traffic) -> tuple[Any, ...]:
    return (
        traffic.stable_version,
        traffic.canary_version,
        traffic.canary_basis_points,
        traffic.shadow_version,
        traffic.previous_stable_version,
        traffic.update_time_us,
        traffic.generation,
        traffic.canary_start_us,
        *(
            (None, None, None)
            if traffic.judgement is None
            else (traffic.judgement.margin, traffic.judgement.min_decisions, traffic.judgement.confidence)
        ),
        _evaluation_json(traffic.evaluation),
    )


class TrafficStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def migrate(self) -> int:
        with self._guard():
            return migrate(self._db, "decision_traffic", MIGRATIONS)

    @contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except DATABASE_DOWN as down:
            raise TrafficStoreUnavailable() from down

    def get(self, tenant: str, model_id: str) -> Traffic:
        """The model's traffic; generation 0 and no versions when it was never deployed."""
        with self._guard(), self._db.transaction() as tx:
            rows = tx.execute(
                f"SELECT {_VALUES} FROM model_traffic WHERE tenant_id = ? AND model_id = ?",
                (tenant, model_id),
            )
        return _traffic(model_id, rows[0]) if rows else Traffic(model_id)

    def of_tenant(self, tenant: str) -> dict[str, Traffic]:
        """Model id → traffic, for the tenant's deployed models."""
        with self._guard(), self._db.transaction() as tx:
            rows = tx.execute(f"SELECT model_id, {_VALUES} FROM model_traffic WHERE tenant_id = ?", (tenant,))
        return {row[0]: _traffic(row[0], row[1:]) for row in rows}

    def everything(self) -> dict[tuple[str, str], Traffic]:
        """(tenant, model id) → traffic, for every tenant: what a replica serves."""
        with self._guard(), self._db.transaction() as tx:
            rows = tx.execute(f"SELECT tenant_id, model_id, {_VALUES} FROM model_traffic")
        return {(row[0], row[1]): _traffic(row[1], row[2:]) for row in rows}

    def replace(self, tenant: str, traffic: Traffic, read_generation: int) -> bool:
        """Store `traffic` (whose generation is `read_generation` + 1) if the row is still at
        `read_generation` (0: absent); False when another change landed first."""
        with self._guard(), self._db.transaction() as tx:
            if read_generation == 0:
                rows = tx.execute(
                    f"INSERT INTO model_traffic (tenant_id, model_id, {_VALUES})"
                    f" VALUES (?, ?, {_PLACEHOLDERS})"
                    " ON CONFLICT (tenant_id, model_id) DO NOTHING RETURNING generation",
                    (tenant, traffic.model_id, *_values(traffic)),
                )
            else:
                rows = tx.execute(
                    f"UPDATE model_traffic SET {_ASSIGNMENTS}"
                    " WHERE tenant_id = ? AND model_id = ? AND generation = ? RETURNING generation",
                    (*_values(traffic), tenant, traffic.model_id, read_generation),
                )
        return bool(rows)

    def record_evaluation(
        self, tenant: str, model_id: str, generation: int, evaluation: CanaryEvaluation
    ) -> bool:
        """Keep the judge's evaluation on the model's traffic if the row is still at `generation` (the
        traffic it judged), without a new generation; False when the traffic changed since."""
        with self._guard(), self._db.transaction() as tx:
            rows = tx.execute(
                "UPDATE model_traffic SET canary_evaluation = ?"
                " WHERE tenant_id = ? AND model_id = ? AND generation = ? RETURNING generation",
                (_evaluation_json(evaluation), tenant, model_id, generation),
            )
        return bool(rows)
