"""The canary judge at work: every `period` seconds, each model whose canary has an enabled judgement is
judged on the decisions and conversions journeys counted for both arms since the canary's run started
(serving/judge_counts.py, serving/judge.py). An undecided evaluation is kept on the traffic for GetModel; a
decisive one promotes the canary (stable at 100%) or drops it through the lifecycle's conditional write, so
of several replicas judging the same run exactly one applies the verdict and the others find it over.

Every replica judges: there is no leader to elect or lose, and the counts are the same wherever they are
read. A model whose counts or change fail is logged and judged again next period; the others go on.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import structlog

from wayline.common.timestamps import now_us
from wayline_decision.serving.judge import Judgement, Verdict, judge
from wayline_decision.serving.judge_counts import canary_counts
from wayline_decision.serving.lifecycle import ModelLifecycle
from wayline_decision.serving.traffic import CanaryEvaluation, Traffic
from wayline_decision.traces.clients import JourneysDecisions

__all__ = ["CanaryJudging"]

log = structlog.get_logger("wayline.decision.serving")

_EVENTS = {Verdict.PROMOTE: "model.canary_promoted", Verdict.ROLL_BACK: "model.canary_rolled_back"}


class CanaryJudging:
    def __init__(
        self,
        lifecycle: ModelLifecycle,
        journeys: JourneysDecisions,
        period: float,
        clock_us: Callable[[], int] = now_us,
    ) -> None:
        self._lifecycle = lifecycle
        self._journeys = journeys
        self._period = period
        self._clock_us = clock_us
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Judge every period until stopped; a period of 0 leaves canaries to the operator."""
        if self._thread is None and self._period > 0:
            self._thread = threading.Thread(target=self._run, name="decision-canary-judge", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(self._period):
            try:
                self.judge_all()
            except Exception as error:  # noqa: BLE001 - a down database must not end the judge: logged, retried
                log.warning("model.canary_judge_failed", error=str(error))

    def judge_all(self) -> None:
        """One round: every judged canary, each on its own (one model's failure does not stop the others)."""
        for (tenant, model_id), traffic in sorted(self._lifecycle.everything().items()):
            if self._stop.is_set():
                return
            if not traffic.canary_version or traffic.judgement is None:
                continue
            try:
                self.judge_one(tenant, model_id, traffic)
            except Exception as error:  # noqa: BLE001 - journeys down or a version that fails to load: next round
                log.warning(
                    "model.canary_judge_failed",
                    tenant=tenant,
                    model=model_id,
                    canary=traffic.canary_version,
                    error=str(error),
                )

    def judge_one(self, tenant: str, model_id: str, traffic: Traffic) -> Judgement:
        """Judge the canary run of `traffic` (which has a canary and a judgement), keep the evaluation, and
        apply a decisive verdict."""
        assert traffic.judgement is not None
        counts = canary_counts(
            self._journeys,
            tenant,
            model_id,
            stable_version=traffic.stable_version,
            canary_version=traffic.canary_version,
            since_us=traffic.canary_start_us,
        )
        judgement = judge(counts, traffic.judgement)
        evaluation = CanaryEvaluation(
            judgement, self._clock_us(), traffic.stable_version, traffic.canary_version
        )
        if judgement.verdict is Verdict.WAIT:
            self._lifecycle.record_evaluation(tenant, model_id, traffic, evaluation)
            return judgement
        changed = self._lifecycle.conclude_canary(tenant, model_id, traffic, evaluation)
        if changed is None:  # another replica (or an admin) ended this run first
            log.info(
                "model.canary_verdict_superseded",
                tenant=tenant,
                model=model_id,
                canary=traffic.canary_version,
                verdict=judgement.verdict.value,
            )
            return judgement
        log.info(
            _EVENTS[judgement.verdict],
            tenant=tenant,
            model=model_id,
            canary=traffic.canary_version,
            previous_stable=traffic.stable_version,
            stable=changed.stable_version,
            generation=changed.generation,
            why=judgement.explanation,
        )
        return judgement
