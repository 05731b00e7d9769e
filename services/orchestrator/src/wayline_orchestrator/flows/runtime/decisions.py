"""Next-best-action decisions in flows: the question a decision branch or a decided action asks
DecisionService.Decide, the answer (the top action and the decision's id, or the reason for the fallback),
and the answers of one run, which keep every network call outside the run's transaction.

A run executes inside one database transaction that holds the entries' locks (and, on SQLite, the one write
lock). Decide may call back into this orchestrator (CheckContact, for contact candidates), and that call
needs a transaction of its own, so asking Decide from inside the run would stall until Decide's deadline on
SQLite (ADR 37). Instead `RunDecisions` raises `Unanswered` for a question it has no answer to yet: the
engine rolls the transaction back, asks Decide with no transaction open, and runs again from the same state
with the answer in hand. Answers are kept for the rest of the run, so one question is asked once however
many branches or replays read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from wayline_orchestrator.flows.runtime.answers import Unanswered

__all__ = [
    "MAX_DECISIONS_PER_RUN",
    "Decided",
    "DecisionLookup",
    "DecisionQuestion",
    "Fallback",
    "NoDecisions",
    "RunDecisions",
    "bare_action_id",
]

MAX_DECISIONS_PER_RUN = 16  # distinct questions one run may ask; later ones fall back (each costs a replay)


class Fallback:
    """Why a decision gave no action (the step run's `reason`)."""

    NO_DECISION_SERVICE = "no_decision_service"  # no decision address configured
    NO_MODEL = "no_model_deployed"  # FAILED_PRECONDITION: nothing serves the channel and placement
    TIMEOUT = "timeout"  # DEADLINE_EXCEEDED
    UNAVAILABLE = "unavailable"  # the decision service is down or not ready
    REJECTED = "rejected"  # INVALID_ARGUMENT or NOT_FOUND: the flow's question is wrong (a model, a channel)
    ERROR = "error"  # any other failure
    HOLDOUT = "holdout"  # the person is in a holdout group: Decide returned no action on purpose
    NOTHING_RANKED = "nothing_ranked"  # every candidate was filtered
    NO_CHANNEL = "no_channel"  # a condition without a channel, outside an event with one
    DECISION_LIMIT = "decision_limit"  # the run asked more than MAX_DECISIONS_PER_RUN questions


def bare_action_id(action_id: str) -> str:
    """`actions/{id}` or a bare id, as the bare id (how Decide names actions)."""
    return action_id.removeprefix("actions/")


@dataclass(frozen=True)
class DecisionQuestion:
    """One Decide request of a flow: for a person, on a channel (a value name such as `CHANNEL_EMAIL`) and a
    placement, with the model named or the placement's deployed one, among candidates (bare action ids;
    empty: the catalogue's). `flow` (`flows/{id}`) is the caller, passed in the decision's context."""

    tenant: str
    person_id: str
    placement: str
    channel: str
    model: str = ""
    candidates: tuple[str, ...] = ()
    flow: str = ""


@dataclass(frozen=True)
class Decided:
    """Decide's answer: the top-ranked action (bare id) and the decision's id, or no action and why."""

    action_id: str = ""
    decision_id: str = ""
    fallback: str = ""

    def detail(self) -> dict[str, str]:
        """What the step run records of it: `decided` with the decision and the action, or `fallback` with
        the reason (and the decision id, when Decide answered without an action)."""
        if self.action_id:
            return {"decision": "decided", "decision_id": self.decision_id, "action_id": self.action_id}
        found = {"decision_id": self.decision_id} if self.decision_id else {}
        return {"decision": "fallback", "reason": self.fallback, **found}


class DecisionLookup(Protocol):
    def decide(self, question: DecisionQuestion) -> Decided:
        """Ask Decide; never raises for the decision service's failures (they are a fallback)."""
        ...


class NoDecisions:
    """No decision service: every decision falls back."""

    def decide(self, question: DecisionQuestion) -> Decided:
        return Decided(fallback=Fallback.NO_DECISION_SERVICE)


@dataclass
class RunDecisions:
    """The answers of one run (a DecisionLookup): known answers are returned, an unknown question raises
    `Unanswered` until `answer` has asked the decision service for it."""

    lookup: DecisionLookup
    answers: dict[DecisionQuestion, Decided] = field(default_factory=dict)

    def decide(self, question: DecisionQuestion) -> Decided:
        found = self.answers.get(question)
        if found is not None:
            return found
        if len(self.answers) >= MAX_DECISIONS_PER_RUN:
            return Decided(fallback=Fallback.DECISION_LIMIT)
        raise Unanswered(f"decision for {question.placement}", lambda: self.answer(question))

    def answer(self, question: DecisionQuestion) -> None:
        """Ask the decision service (call with no transaction open)."""
        self.answers[question] = self.lookup.decide(question)
