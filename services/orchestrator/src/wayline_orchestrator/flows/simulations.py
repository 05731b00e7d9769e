"""SimulateFlow's domain side: which definition to run (the flow's draft, or the one given, checked as
publication checks it), that journeys is there to read history from, and the run itself
(flows/simulation.py). Free of gRPC."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from wayline_orchestrator.contacts import ContactLedger
from wayline_orchestrator.errors import FlowInvalid, JourneysNotConfigured
from wayline_orchestrator.flows.catalogue import FlowCatalogue
from wayline_orchestrator.flows.model import Definition
from wayline_orchestrator.flows.rules import publish_violations
from wayline_orchestrator.flows.runtime.lookups import Lookups
from wayline_orchestrator.flows.simulation import (
    INLINE_FLOW_ID,
    HistorySource,
    Simulation,
    SimulationResult,
    simulate,
)

__all__ = ["DEFAULT_MAX_PERSONS", "MAX_PERSONS", "FlowSimulations", "SimulationAsk"]

DEFAULT_MAX_PERSONS = 10_000
MAX_PERSONS = 1_000_000


@dataclass(frozen=True)
class SimulationAsk:
    """A SimulateFlow request, its fields checked one by one (servicer side)."""

    flow_id: str  # the flow whose draft to run; '' with `definition`
    definition: Definition | None
    start: int
    end: int
    max_persons: int
    ignore_contact_policy: bool = False
    engagement_rate: float = 0.0


class FlowSimulations:
    def __init__(
        self,
        flows: FlowCatalogue,
        ledger: ContactLedger,
        lookups: Lookups,
        history: HistorySource | None,
        work_dir: Path,
    ) -> None:
        """`ledger` and `lookups` are the live runtime's: the policy is copied from one, persons' conditions
        asked of the other; `history` is None when no journeys is configured."""
        self._flows = flows
        self._ledger = ledger
        self._lookups = lookups
        self._history = history
        self._work_dir = work_dir

    def run(self, tenant: str, ask: SimulationAsk, keep_going: Callable[[], None]) -> SimulationResult:
        """INVALID_ARGUMENT for a definition publication would refuse (paths under `definition`), NOT_FOUND
        for an unknown flow, FAILED_PRECONDITION without journeys."""
        if ask.definition is None:
            flow = self._flows.get(tenant, ask.flow_id)
            flow_id, name, definition = flow.flow_id, flow.name, flow.definition
        else:
            flow_id, name, definition = INLINE_FLOW_ID, "", ask.definition
        problems = publish_violations(definition, "definition")
        if problems:
            raise FlowInvalid(problems)
        if self._history is None:
            raise JourneysNotConfigured
        simulation = Simulation(
            tenant=tenant,
            flow_id=flow_id,
            flow_name=name,
            definition=definition,
            start=ask.start,
            end=ask.end,
            ignore_contact_policy=ask.ignore_contact_policy,
            engagement_rate=ask.engagement_rate,
        )
        histories = self._history.persons(ask.start, ask.end, ask.max_persons)
        return simulate(simulation, histories, self._ledger, self._lookups, self._work_dir, keep_going)
