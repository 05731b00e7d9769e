"""The runtime's values: a person's entry into a flow, its timers, the outbox's messages and the record of
each step executed. Times are microseconds since the epoch."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from wayline_orchestrator.contacts.metrics import REASONS

__all__ = [
    "LIVE",
    "Entry",
    "EntryStatus",
    "Message",
    "StepRun",
    "Timer",
    "TimerKind",
    "suppression_label",
    "suppression_reasons",
]


class EntryStatus(StrEnum):
    ACTIVE = "ACTIVE"  # running steps (only inside a transaction; stored briefly at most)
    WAITING = "WAITING"  # held by a wait, a goal step or a deferred action, until an event or a timer
    EXITED = "EXITED"
    CONVERTED = "CONVERTED"


LIVE = (EntryStatus.ACTIVE.value, EntryStatus.WAITING.value)


class TimerKind(StrEnum):
    STEP = "STEP"  # resumes the entry at its step (a wait's end, a timeout, a deferred action's retry)
    EXIT = "EXIT"  # ends the entry (max duration, a time exit), with the timer's reason


@dataclass
class Entry:
    """One person's entry number `number` into a flow, on the version they entered with. `visits` counts the
    visits of each step (a cycle through a wait visits a step again); `events` keeps the person's events
    since entry that the definition's conditions read (the latest MAX_EVENTS)."""

    flow_id: str
    person_id: str
    number: int
    version: int
    step_id: str
    status: EntryStatus
    entered_time: int
    update_time: int
    trigger_event_id: str
    revision: int = 0
    reason: str = ""
    trigger: dict[str, Any] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    visits: dict[str, int] = field(default_factory=dict)
    converted_time: int | None = None
    # The key the entry was born with, kept when a merge moves it to another person or number (ADR 38), so
    # that its step keys — the ledger's contact ids, the outbox's idempotency keys, its timers' keys, the
    # ids engagement events carry back — never change; empty until it moves.
    key_base: str = ""

    @property
    def live(self) -> bool:
        return self.status.value in LIVE

    def key(self) -> str:
        return self.key_base or f"{self.flow_id}/{self.version}/{self.person_id}/{self.number}"

    def step_key(self, step_id: str) -> str:
        """The idempotency key of this visit of a step: `{flow}/{version}/{person}/{entry}/{step}`, with
        `#{n}` for the n-th visit after the first (the person and number the entry was born with)."""
        visit = self.visits.get(step_id, 1)
        return f"{self.key()}/{step_id}" + (f"#{visit}" if visit > 1 else "")


@dataclass(frozen=True)
class Timer:
    key: str
    due_time: int
    flow_id: str
    person_id: str
    entry_number: int
    kind: TimerKind
    step_id: str = ""
    visit: int = 0
    reason: str = ""


@dataclass(frozen=True)
class Message:
    """An allowed send, for the connectors to deliver once by its idempotency key."""

    idempotency_key: str
    flow_id: str
    version: int
    person_id: str
    entry_number: int
    step_id: str
    channel: str
    create_time: int
    purpose: str = ""
    action_id: str = ""
    connector: str = ""
    template_id: str = ""
    personalisation: dict[str, str] = field(default_factory=dict)
    payload: dict[str, Any] = field(default_factory=dict)
    decision_id: str = ""  # the decision that chose `action_id` (an action step with a decision_placement)


def suppression_label(reasons: Iterable[str]) -> str:
    """The label of a SUPPRESSED step run: the distinct kinds of rule that forbade the contact
    (CONTACT_BLOCK_REASON_* without the prefix), sorted and comma-separated, so that the statistics count
    suppressions by reason with the GROUP BY they already run on the label column."""
    return ",".join(sorted(set(reasons)))


def suppression_reasons(label: str) -> tuple[str, ...]:
    """The kinds of rule in a SUPPRESSED run's label; none for a run recorded before labels held them (its
    label is empty, or a decision's fallback reason such as `nothing_ranked`)."""
    return tuple(reason for reason in label.split(",") if reason in REASONS)


@dataclass(frozen=True)
class StepRun:
    """What one step execution did (`outcome`: SENT, SUPPRESSED, BRANCH, VARIANT, WAIT, ...), by its key."""

    key: str
    flow_id: str
    version: int
    person_id: str
    entry_number: int
    step_id: str
    outcome: str
    run_time: int
    detail: dict[str, Any] = field(default_factory=dict)
