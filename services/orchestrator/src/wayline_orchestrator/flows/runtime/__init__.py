"""Flow execution: per-person entries on the version they entered with, durable timers claimed once across
replicas, the step interpreter (at least once, idempotent by step keys), the outbox the connectors drain.
Free of gRPC."""

from wayline_orchestrator.flows.runtime.engine import FlowRuntime
from wayline_orchestrator.flows.runtime.model import Entry, EntryStatus, Message, StepRun, Timer, TimerKind
from wayline_orchestrator.flows.runtime.occurrence import EventFields, Occurrence
from wayline_orchestrator.flows.runtime.store import RuntimeStore
from wayline_orchestrator.flows.runtime.timer_loop import TimerLoop

__all__ = [
    "Entry",
    "EntryStatus",
    "EventFields",
    "FlowRuntime",
    "Message",
    "Occurrence",
    "RuntimeStore",
    "StepRun",
    "Timer",
    "TimerKind",
    "TimerLoop",
]
