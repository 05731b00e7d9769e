"""A flow's statistics: entries, persons at each step, paths taken, sends, suppressions, delivery failures,
conversions, and each split variant against its control. Free of gRPC; GetFlowStats and SimulateFlow (over
its throwaway store) both answer from `assemble`, so a simulation reads exactly as the live counts do.

The counts come from the runtime's records (flows/runtime/stats_store.py aggregates them in SQL): a step's
arrivals are the `PATH` runs leading to it (the entry's first step is reached from `~entry`), its branches
the `PATH` runs leaving it, a goal step's conversions the persons who went on from it by its `next` path, an
action step's suppressions by reason the labels of its `SUPPRESSED` runs (the kinds of rule that forbade each
contact). A step visited again in a cycle counts each visit. Steps appear in the definition's order; steps of
other versions (version 0 counts them all) follow, by id.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from wayline_orchestrator.flows.catalogue import FlowCatalogue
from wayline_orchestrator.flows.model import Definition
from wayline_orchestrator.flows.runtime.interpreter import ENTRY
from wayline_orchestrator.flows.runtime.model import suppression_reasons
from wayline_orchestrator.flows.runtime.stats_store import StatsCounts, StatsScope, StatsStore
from wayline_orchestrator.flows.significance import compare

__all__ = [
    "BranchCount",
    "FlowStatistics",
    "FlowStats",
    "StepStats",
    "SuppressionCount",
    "VariantStats",
    "assemble",
]


@dataclass(frozen=True)
class BranchCount:
    label: str
    next_step_id: str  # '' for the end of the path
    count: int


@dataclass(frozen=True)
class SuppressionCount:
    reason: str  # CONTACT_BLOCK_REASON_* without the prefix; '' for suppressions recorded without reasons
    count: int  # suppressed contacts a rule of this kind forbade (one forbidden by two kinds counts in both)


@dataclass(frozen=True)
class StepStats:
    step_id: str
    entered: int = 0
    active: int = 0
    sent: int = 0
    suppressed: int = 0
    error: int = 0
    converted: int = 0
    branches: tuple[BranchCount, ...] = ()
    suppressions: tuple[SuppressionCount, ...] = ()


@dataclass(frozen=True)
class VariantStats:
    step_id: str
    label: str
    control: bool
    entered: int
    converted: int
    conversion_rate: float
    lift_over_control: float = 0.0
    p_value: float = 1.0
    significant: bool = False
    difference_low: float = 0.0
    difference_high: float = 0.0


@dataclass(frozen=True)
class FlowStats:
    flow: str  # `flows/{flow_id}`; '' for a simulated definition
    version: int  # 0: every version
    entered: int
    active: int
    converted: int
    exited: int
    exit_condition: int
    suppressed: int
    steps: list[StepStats] = field(default_factory=list)
    variants: list[VariantStats] = field(default_factory=list)
    data_as_of: int = 0  # microseconds since the epoch
    suppressions: tuple[SuppressionCount, ...] = ()  # over every step


def _by_count(counts: dict[str, int]) -> tuple[SuppressionCount, ...]:
    """Largest first, then by reason, so that a page lists the main cause first and in a stable order."""
    return tuple(
        SuppressionCount(r, n) for r, n in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    )


def _suppressions(steps: list[StepStats]) -> tuple[SuppressionCount, ...]:
    total: dict[str, int] = defaultdict(int)
    for step in steps:
        for counted in step.suppressions:
            total[counted.reason] += counted.count
    return _by_count(total)


def _steps(definition: Definition, counts: StatsCounts) -> list[StepStats]:
    per: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    branches: dict[str, list[BranchCount]] = defaultdict(list)
    reasons: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    goals = {s["id"] for s in definition.get("steps", []) if "goal" in s}
    for run in counts.runs:
        if run.outcome == "PATH":
            if run.next_step_id:
                per[run.next_step_id]["entered"] += run.count
            if run.step_id != ENTRY:
                branches[run.step_id].append(BranchCount(run.label, run.next_step_id, run.count))
            if run.step_id in goals and run.label == "next":
                per[run.step_id]["converted"] += run.count
        elif run.outcome in {"SENT", "SUPPRESSED"}:
            per[run.step_id][run.outcome.lower()] += run.count
        if run.outcome == "SUPPRESSED":
            for reason in suppression_reasons(run.label) or ("",):
                reasons[run.step_id][reason] += run.count
    for step_id, active in counts.active_by_step.items():
        per[step_id]["active"] += active
    for step_id, dead in counts.dead_by_step.items():
        per[step_id]["error"] += dead
    ordered = [s["id"] for s in definition.get("steps", [])]
    others = sorted((set(per) | set(branches)) - set(ordered) - {"", ENTRY})
    return [
        StepStats(
            step_id,
            **per.get(step_id, {}),
            branches=tuple(sorted(branches.get(step_id, []), key=lambda b: (b.label, b.next_step_id))),
            suppressions=_by_count(reasons.get(step_id, {})),
        )
        for step_id in ordered + others
    ]


def _variants(definition: Definition, counts: StatsCounts) -> list[VariantStats]:
    found = {(v.step_id, v.label): v for v in counts.variants}
    result: list[VariantStats] = []
    for step in definition.get("steps", []):
        if "split" not in step:
            continue
        listed: list[dict[str, Any]] = step["split"].get("variants", [])
        labels = [str(v.get("label", "")) for v in listed]
        labels += sorted(label for s, label in found if s == step["id"] and label not in labels)
        controls = {str(v.get("label", "")) for v in listed if v.get("control")}

        def counted(label: str, step_id: str = step["id"]) -> tuple[int, int]:
            count = found.get((step_id, label))
            return (count.converted, count.entered) if count else (0, 0)

        control = counted(next(iter(controls))) if len(controls) == 1 else None
        for label in labels:
            converted, entered = counted(label)
            rate = converted / entered if entered else 0.0
            variant = VariantStats(step["id"], label, label in controls, entered, converted, rate)
            if control is not None and label not in controls:
                c = compare(converted, entered, *control)
                variant = replace(
                    variant,
                    lift_over_control=c.lift,
                    p_value=c.p_value,
                    significant=c.significant,
                    difference_low=c.difference_low,
                    difference_high=c.difference_high,
                )
            result.append(variant)
    return result


def assemble(  # noqa: PLR0917 - a FlowStats' every input, at its two callers
    flow: str,
    version: int,
    definition: Definition,
    counts: StatsCounts,
    as_of: int,
    live: bool = True,
) -> FlowStats:
    """The statistics of `counts`, laid out along `definition`. Without `live` (a simulation), nobody is
    counted as active: the simulated persons stay where the range's end left them."""
    if not live:
        counts = replace(counts, active=0, active_by_step={})
    steps = _steps(definition, counts)
    exit_condition = sum(
        r.count for r in counts.runs if r.outcome == "EXITED" and r.label == "exit_condition"
    )
    return FlowStats(
        flow=flow,
        version=version,
        entered=counts.entered,
        active=counts.active,
        converted=counts.converted,
        exited=counts.exited,
        exit_condition=exit_condition,
        suppressed=sum(s.suppressed for s in steps),
        steps=steps,
        variants=_variants(definition, counts),
        data_as_of=as_of,
        suppressions=_suppressions(steps),
    )


class FlowStatistics:
    """GetFlowStats: the live counts of a stored flow."""

    def __init__(self, flows: FlowCatalogue, store: StatsStore, clock: Callable[[], int]) -> None:
        self._flows = flows
        self._store = store
        self._clock = clock

    def get(self, tenant: str, flow_id: str, version: int, start: int | None, end: int | None) -> FlowStats:
        """NOT_FOUND for an unknown flow or version. Steps are laid out along the version asked for; with
        version 0, along the latest published version (the draft when none is)."""
        as_of = self._clock()
        flow = self._flows.get(tenant, flow_id)
        shown = version or flow.published_version
        if shown:
            flow = self._flows.get_version(tenant, flow_id, shown)[0]  # NOT_FOUND for an unknown version
        definition = flow.definition
        counts = self._store.counts(StatsScope(tenant, flow_id, version, start, end))
        return assemble(flow.name, version, definition, counts, as_of)
