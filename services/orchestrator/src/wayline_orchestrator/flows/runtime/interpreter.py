"""The step interpreter: moves one entry through its version's steps, inside the transaction that locked it,
until the entry waits (a timer or an event will resume it) or leaves the flow.

Every effect of a run — the entry's new state, its timers, the contacts recorded in the ledger, the outbox's
messages, the step runs and the timeline's contact events (a send's, a suppression's: ADR 42) — is written in
that one transaction, so a crash leaves either all of a run or none of it, and the retry (the timer claimed
again, the event delivered again) starts from the same state.
The keys make the effects idempotent besides: a step visit's key `{flow}/{version}/{person}/{entry}/{step}`
is the contact's id in the ledger and the message's idempotency key in the outbox, both written once.

An action step with a `decision_placement` sends the action DecisionService.Decide ranks first (among its
`candidate_action_ids`), or its own `action_id` when the decision falls back; the contact, the message and
the step run carry the decision's id, so feedback can be linked to it.

Every move from one step to the next is recorded as a `PATH` step run (the step left, the path's label —
a branch's or variant's label, `default`, `next`, `timeout`, `engaged`, `not_engaged`, `suppressed`,
`skip_ahead` — and the step reached, '' for the end), so that the flow's statistics (flows/stats.py) count
arrivals and branches with GROUP BY rather than replaying entries.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeAlias

from wayline_orchestrator.contacts import Contact, ContactLedger, learned_channel
from wayline_orchestrator.flows.runtime.conditions import Facts, holds, with_person_answers
from wayline_orchestrator.flows.runtime.decisions import Decided, DecisionQuestion, bare_action_id
from wayline_orchestrator.flows.runtime.matching import Occurrence
from wayline_orchestrator.flows.runtime.matching import matches as _matches
from wayline_orchestrator.flows.runtime.model import (
    EntryStatus,
    StepRun,
    Timer,
    TimerKind,
    suppression_label,
)
from wayline_orchestrator.flows.runtime.outbox import message_of, traits_needed
from wayline_orchestrator.flows.runtime.runs import SECOND, Run, local_due, micros_of, split_bucket
from wayline_orchestrator.flows.runtime.runs import us as _us
from wayline_orchestrator.flows.runtime.store import RuntimeStore

__all__ = ["ENTRY", "MAX_EVENTS", "MAX_STEPS_PER_RUN", "SUPPRESSION_WAIT_LIMIT_US", "Interpreter", "Run"]

ENTRY = "~entry"  # the step id of what precedes an entry's first step, in step runs
Path: TypeAlias = tuple[str, str]  # the label of the way out of a step, and the step it leads to ('' = end)

SUPPRESSION_WAIT_LIMIT_US = 7 * 86_400 * SECOND
MAX_STEPS_PER_RUN = 200  # a definition has at most 200 steps, and every cycle holds a wait
MAX_EVENTS = 100  # the events since entry an entry keeps for its conditions


def _decisions_of(facts: Facts) -> dict[str, Any]:
    """The step run's record of the decisions a branch's conditions asked (none: nothing)."""
    return {"decisions": facts.decisions} if facts.decisions else {}


class Interpreter:
    def __init__(self, store: RuntimeStore, ledger: ContactLedger) -> None:
        self._store = store
        self._ledger = ledger  # lookups (journeys, decisions) come with each run: `run.lookups`

    # Entry points.

    def start(self, run: Run) -> None:
        """Run a new entry from the definition's entry step, with its flow-level exit timers."""
        self._start(run)
        self._written(run)

    def resume(self, run: Run, timer: Timer) -> None:
        """A timer of the entry is due (the timer is already deleted in this transaction)."""
        self._resume(run, timer)
        self._written(run)

    def leave(self, run: Run, reason: str) -> None:
        """End a live entry from outside its steps (the person left a segment it exits on)."""
        if run.entry.live:
            self._end(run, EntryStatus.EXITED, reason)
            self._written(run)

    def observe(self, run: Run, event: Occurrence) -> None:
        """An event of the entry's person: kept for the conditions, then the flow's goal and exit conditions,
        then a wake-up of a wait for it."""
        self._observe(run, event)
        self._written(run)

    def _written(self, run: Run) -> None:
        """Write what the run added: its timers, then its step runs, one statement each (a run adds up to a
        few of each, and a statement apiece cost a round trip apiece on PostgreSQL). Nothing in a run reads
        them back; a timer the run deletes is dropped from its list as well as from the table."""
        self._store.add_timers(run.tx, run.tenant, run.timers)
        self._store.add_runs(run.tx, run.tenant, run.step_runs)
        run.timers, run.step_runs = [], []

    def _start(self, run: Run) -> None:
        entry, definition = run.entry, run.definition
        max_duration = _us(definition.get("max_duration")) or 90 * 86_400 * SECOND
        self._exit_timer(run, "max_duration", entry.entered_time + max_duration, "max_duration")
        for i, time_exit in enumerate(definition.get("time_exits", [])):
            reason = time_exit.get("reason") or f"time_exits[{i}]"
            if "time_in_flow" in time_exit:
                self._exit_timer(
                    run, f"time_exit{i}", entry.entered_time + _us(time_exit["time_in_flow"]), reason
                )
            elif "end_time" in time_exit:
                end = micros_of(time_exit["end_time"])
                if end is not None:
                    self._exit_timer(run, f"time_exit{i}", end, reason)
            # segment_exit: the segment poller ends the entry when the person leaves the segment (`leave`).
        first = definition.get("entry_step_id", "")
        self._record_path(run, ENTRY, ("entry", first))
        self._go(run, first)

    def _resume(self, run: Run, timer: Timer) -> None:
        entry = run.entry
        if not entry.live:
            return
        if timer.kind is TimerKind.EXIT:
            self._end(run, EntryStatus.EXITED, timer.reason)
            return
        if entry.step_id != timer.step_id or entry.visits.get(timer.step_id, 0) != timer.visit:
            return  # the entry moved on (an event woke it first): nothing to do
        step = run.steps.get(entry.step_id)
        if step is None:
            self._end(run, EntryStatus.EXITED, "unknown_step")
            return
        entry.status = EntryStatus.ACTIVE
        if "wait" in step:
            wait = step["wait"]
            if "event" in wait:
                self._take(run, ("timeout", wait["event"].get("timeout_step_id", "")))
            else:
                self._take(run, ("next", wait.get("next_step_id", "")))
        elif "goal" in step:
            self._take(run, ("timeout", step["goal"].get("timeout_step_id", "")))
        elif "engagement_branch" in step:
            self._take(run, ("not_engaged", step["engagement_branch"].get("not_engaged_step_id", "")))
        elif "action" in step:
            path = self._action(run, entry.step_id, step["action"])
            if path is not None:
                self._take(run, path)

    def _observe(self, run: Run, event: Occurrence) -> None:
        entry, definition = run.entry, run.definition
        if not entry.live or event.event_id == entry.trigger_event_id:
            return
        if any(seen.get("event_id") == event.event_id for seen in entry.events):
            return  # delivered again (ingest delivers at least once): taken into account already
        entry.events = [*entry.events, event.as_json()][-MAX_EVENTS:]
        goal = definition.get("goal")
        if (
            goal
            and entry.converted_time is None
            and run.now - entry.entered_time <= _us(goal.get("window"))
            and _matches(event, goal.get("event"), run.traits)  # last: it may ask for traits
        ):
            entry.converted_time = run.now
            if goal.get("exit_on_conversion"):
                self._end(run, EntryStatus.CONVERTED, "goal")
                return
        exits = definition.get("exit_conditions", [])
        if exits:  # only then the ledger's person is read (three statements) for the conditions' facts
            facts = with_person_answers(self._facts(run), exits)
            if any(holds(c, facts) for c in exits):
                self._end(run, EntryStatus.EXITED, "exit_condition")
                return
        waiting_on = entry.step_key(entry.step_id)
        skip_to = self._skip_ahead(run, event)
        if skip_to is not None:
            self._delete_timer(run, waiting_on)
            entry.converted_time = entry.converted_time or run.now
            entry.status = EntryStatus.ACTIVE
            self._take(run, ("next", skip_to))
            return
        if entry.status is not EntryStatus.WAITING:
            return
        step = run.steps.get(entry.step_id, {})
        path: Path | None = None
        if (
            "wait" in step
            and "event" in step["wait"]
            and _matches(event, step["wait"]["event"].get("event"), run.traits)
        ):
            path = ("next", step["wait"].get("next_step_id", ""))
        elif "goal" in step and _matches(event, step["goal"].get("event"), run.traits):
            entry.converted_time = entry.converted_time or run.now
            path = ("next", step["goal"].get("next_step_id", ""))
        elif "engagement_branch" in step and self._engaged(run, step["engagement_branch"], event):
            path = ("engaged", step["engagement_branch"].get("engaged_step_id", ""))
        if path is not None:
            self._delete_timer(run, entry.step_key(entry.step_id))
            entry.status = EntryStatus.ACTIVE
            self._take(run, path)

    def _skip_ahead(self, run: Run, event: Occurrence) -> str | None:
        """The goal step with `skip_ahead` the event meets (the person jumps there, converted, and goes on to
        its `next_step_id`), unless the entry is at it already; None when there is none."""
        for step_id, step in run.steps.items():
            goal = step.get("goal", {})
            if (
                goal.get("skip_ahead")
                and step_id != run.entry.step_id
                and _matches(event, goal.get("event"), run.traits)
            ):
                self._record_path(run, run.entry.step_id, ("skip_ahead", step_id))
                run.entry.step_id = step_id
                run.entry.visits = {**run.entry.visits, step_id: run.entry.visits.get(step_id, 0) + 1}
                self._record(run, step_id, "GOAL", reason="skip_ahead")
                return str(goal.get("next_step_id", ""))
        return None

    # Moving through steps.

    def _go(self, run: Run, step_id: str) -> None:
        """Arrive at `step_id` and run steps until the entry waits or leaves."""
        entry = run.entry
        for _ in range(MAX_STEPS_PER_RUN):
            if not step_id:
                self._end(
                    run, EntryStatus.CONVERTED if entry.converted_time else EntryStatus.EXITED, "completed"
                )
                return
            step = run.steps.get(step_id)
            if step is None:
                self._end(run, EntryStatus.EXITED, "unknown_step")
                return
            entry.step_id = step_id
            # A new visit: its count up, the deferred-send bookkeeping of an earlier visit dropped.
            visits = {k: v for k, v in entry.visits.items() if not k.startswith(f"{step_id}~")}
            entry.visits = {**visits, step_id: entry.visits.get(step_id, 0) + 1}
            entry.status = EntryStatus.ACTIVE
            path = self._arrive(run, step_id, step)
            if path is None:
                return
            self._record_path(run, step_id, path)
            step_id = path[1]
        self._end(run, EntryStatus.EXITED, "step_limit")

    def _take(self, run: Run, path: Path) -> None:
        """Leave the entry's current step by `path` and go on from the step it leads to."""
        self._record_path(run, run.entry.step_id, path)
        self._go(run, path[1])

    def _arrive(self, run: Run, step_id: str, step: dict[str, Any]) -> Path | None:
        """Run one step; the path out of it, or None when the entry waits or has left."""
        entry = run.entry
        if "wait" in step:
            return self._wait(run, step_id, step["wait"])
        if "branch" in step:
            branch = step["branch"]
            branches = branch.get("branches", [])
            facts = with_person_answers(self._facts(run), [b.get("condition", {}) for b in branches])
            for chosen in branches:
                if holds(chosen.get("condition", {}), facts):
                    label = chosen.get("label", "")
                    self._record(run, step_id, "BRANCH", label=label, **_decisions_of(facts))
                    return str(label), str(chosen.get("next_step_id", ""))
            self._record(run, step_id, "BRANCH", label="", **_decisions_of(facts))
            return "default", str(branch.get("default_step_id", ""))
        if "split" in step:
            bucket, total = split_bucket(entry.flow_id, step_id, entry.person_id), 0.0
            variants = step["split"].get("variants", [])
            for variant in variants:
                total += float(variant.get("weight", 0.0))
                if bucket < total or variant is variants[-1]:
                    self._record(run, step_id, "VARIANT", label=variant.get("label", ""))
                    return str(variant.get("label", "")), str(variant.get("next_step_id", ""))
            return "default", ""
        if "action" in step:
            return self._action(run, step_id, step["action"])
        if "goal" in step:
            return self._goal(run, step_id, step["goal"])
        if "engagement_branch" in step:
            self._hold(run, step_id, run.now + _us(step["engagement_branch"].get("window")))
            return None
        if "exit" in step:
            self._end(run, EntryStatus.EXITED, step["exit"].get("reason") or "exit_step")
            return None
        self._end(run, EntryStatus.EXITED, "unknown_step")
        return None

    def _goal(self, run: Run, step_id: str, goal: dict[str, Any]) -> Path | None:
        """Met already (an event since entry counts), or held until the goal event or the timeout."""
        entry = run.entry
        if entry.converted_time is not None or any(
            _matches(Occurrence.of_json(e), goal.get("event"), run.traits) for e in entry.events
        ):
            entry.converted_time = entry.converted_time or run.now
            return "next", str(goal.get("next_step_id", ""))
        if goal.get("timeout"):
            self._hold(run, step_id, run.now + _us(goal["timeout"]))
        else:
            entry.status = EntryStatus.WAITING  # until the goal, or the flow's max duration
        return None

    def _wait(self, run: Run, step_id: str, wait: dict[str, Any]) -> Path | None:
        if "duration" in wait:
            due = run.now + _us(wait["duration"])
        elif "time" in wait:
            moment = micros_of(wait["time"])
            due = run.now if moment is None else moment
            if due <= run.now:
                return "next", str(wait.get("next_step_id", ""))
        elif "local_time" in wait:
            local = wait["local_time"]
            zone = (
                local.get("time_zone")
                or self._ledger.person(run.tx, run.tenant, run.entry.person_id).time_zone
            )
            due = local_due(run.now, int(local.get("hour", 0)), int(local.get("minute", 0)), zone)
        else:
            due = run.now + _us(wait.get("event", {}).get("timeout"))
        self._hold(run, step_id, due)
        return None

    def _action(self, run: Run, step_id: str, action: dict[str, Any]) -> Path | None:
        """Send through the ledger and the outbox, or follow the step's suppression behaviour."""
        entry = run.entry
        key = entry.step_key(step_id)
        decided = self._decided_action(run, action)
        noted = decided.detail() if decided else {}
        if decided and decided.action_id:
            action = {**action, "action_id": decided.action_id}
        if decided and not action.get("action_id") and not action.get("connector"):
            self._record(run, step_id, "NOT_SENT", **noted)  # no action of its own to fall back to
            return "next", str(action.get("next_step_id", ""))
        contact = Contact(
            contact_id=key,
            person_id=entry.person_id,
            channel=action["channel"],
            purpose=action.get("purpose", "CONTACT_PURPOSE_MARKETING"),
            action_id=action.get("action_id", ""),
            source="CONTACT_SOURCE_FLOW",
            flow=f"flows/{entry.flow_id}",
            flow_version=entry.version,
            flow_step_id=step_id,
            decision_id=decided.decision_id if decided else "",
            contact_time=run.now,
        )
        outcome = self._ledger.record_in(run.tx, run.tenant, contact, enforce_policy=True)
        if outcome.recorded:
            traits = self._traits(run, action)
            message = message_of(entry, step_id, key, action, run.now, traits)
            if decided and decided.decision_id:
                message = dataclasses.replace(message, decision_id=decided.decision_id)
            self._store.add_message(run.tx, run.tenant, message)
            self._record(run, step_id, "SENT", contact_id=key, **noted)
            return "next", str(action.get("next_step_id", ""))
        reasons = [
            {"reason": v.reason, "rule": v.rule, "description": v.description} for v in outcome.violations
        ]
        attempt = entry.visits.get(f"{step_id}~attempts", 0) + 1
        entry.visits = {**entry.visits, f"{step_id}~attempts": attempt}
        behaviour = action.get("on_suppressed", "SUPPRESSION_BEHAVIOR_SKIP")
        suppression = f"{key}~suppressed{attempt}"
        self._ledger.note_suppressed(run.tx, run.tenant, outcome.contact, suppression, outcome.violations)
        violations = outcome.violations
        self._store.after_commit(lambda: self._ledger.count_suppressed(violations))
        self._record(
            run,
            step_id,
            "SUPPRESSED",
            suppression,
            label=suppression_label(v.reason for v in outcome.violations),
            violations=reasons,
            behaviour=behaviour,
            **noted,
        )
        if behaviour == "SUPPRESSION_BEHAVIOR_BRANCH":
            return "suppressed", str(action.get("suppressed_step_id", ""))
        if behaviour == "SUPPRESSION_BEHAVIOR_EXIT":
            self._end(run, EntryStatus.EXITED, "suppressed")
            return None
        if behaviour == "SUPPRESSION_BEHAVIOR_WAIT":
            retries = [v.retry_time for v in outcome.violations]
            first = entry.visits.get(f"{step_id}~since", run.now)
            entry.visits = {**entry.visits, f"{step_id}~since": first}
            if retries and None not in retries:
                due = max(t for t in retries if t is not None)
                if due > run.now and due - first <= SUPPRESSION_WAIT_LIMIT_US:
                    self._hold(run, step_id, due)
                    return None
        return "suppressed", str(action.get("next_step_id", ""))

    # Helpers.

    def _decided_action(self, run: Run, action: dict[str, Any]) -> Decided | None:
        """Decide's answer for an action step with a `decision_placement` (None without one)."""
        placement = action.get("decision_placement", "")
        if not placement:
            return None
        question = DecisionQuestion(
            run.tenant,
            run.entry.person_id,
            placement,
            action["channel"],
            candidates=tuple(bare_action_id(a) for a in action.get("candidate_action_ids", [])),
            flow=f"flows/{run.entry.flow_id}",
        )
        return run.lookups.decision.decide(question)

    def _facts(self, run: Run) -> Facts:
        entry = run.entry
        person = self._ledger.person(run.tx, run.tenant, entry.person_id)
        return Facts(
            trigger=Occurrence.of_json(entry.trigger) if entry.trigger else None,
            events=[Occurrence.of_json(e) for e in entry.events],
            preferred_channel=person.preferred_channel,
            tenant=run.tenant,
            learned_channel=learned_channel(person.engagement, run.now),
            person_id=entry.person_id,
            lookups=run.lookups,
            flow=f"flows/{entry.flow_id}",
        )

    def _traits(self, run: Run, action: dict[str, Any]) -> dict[str, Any]:
        """The person's traits the action personalises with, in one call; none when it uses none."""
        keys = traits_needed(action)
        return run.lookups.person.properties(run.tenant, run.entry.person_id, keys) if keys else {}

    def _engaged(self, run: Run, branch: dict[str, Any], event: Occurrence) -> bool:
        names = {
            "ENGAGEMENT_TYPE_DELIVERED": (
                "Message Delivered",
                "Message Opened",
                "Message Clicked",
                "Message Replied",
            ),
            "ENGAGEMENT_TYPE_OPENED": ("Message Opened", "Message Clicked", "Message Replied"),
            "ENGAGEMENT_TYPE_CLICKED": ("Message Clicked",),
            "ENGAGEMENT_TYPE_REPLIED": ("Message Replied",),
        }.get(branch.get("engagement", ""), ())
        watched = run.entry.step_key(branch.get("action_step_id", ""))
        return event.name in names and event.properties.get("contact_id") == watched

    def _hold(self, run: Run, step_id: str, due: int) -> None:
        entry = run.entry
        entry.status = EntryStatus.WAITING
        timer = Timer(
            key=entry.step_key(step_id),
            due_time=due,
            flow_id=entry.flow_id,
            person_id=entry.person_id,
            entry_number=entry.number,
            kind=TimerKind.STEP,
            step_id=step_id,
            visit=entry.visits.get(step_id, 0),
        )
        run.timers.append(timer)
        self._record(
            run,
            step_id,
            "WAIT",
            f"{timer.key}~wait{entry.visits.get(f'{step_id}~attempts', 0)}",
            due_time=due,
        )

    def _record_path(self, run: Run, step_id: str, path: Path) -> None:
        key = f"{run.entry.step_key(step_id)}~path"
        self._record(run, step_id, "PATH", key, label=path[0], next_step_id=path[1])

    def _exit_timer(self, run: Run, name: str, due: int, reason: str) -> None:
        entry = run.entry
        timer = Timer(
            f"{entry.key()}/~{name}",
            due,
            entry.flow_id,
            entry.person_id,
            entry.number,
            TimerKind.EXIT,
            reason=reason,
        )
        run.timers.append(timer)

    def _end(self, run: Run, status: EntryStatus, reason: str) -> None:
        entry = run.entry
        entry.status, entry.reason = status, reason
        run.timers = []  # the run's are the entry's: deleted with those in the table
        self._store.delete_entry_timers(run.tx, run.tenant, entry)
        self._record(run, entry.step_id or ENTRY, status.value, f"{entry.key()}/~end", reason=reason)

    def _record(self, run: Run, step_id: str, outcome: str, key: str = "", **detail: Any) -> None:
        entry = run.entry
        run.step_runs.append(
            StepRun(
                key=key or entry.step_key(step_id),
                flow_id=entry.flow_id,
                version=entry.version,
                person_id=entry.person_id,
                entry_number=entry.number,
                step_id=step_id,
                outcome=outcome,
                run_time=run.now,
                detail=detail,
            )
        )

    def _delete_timer(self, run: Run, key: str) -> None:
        run.timers = [timer for timer in run.timers if timer.key != key]
        self._store.delete_timer(run.tx, run.tenant, key)
