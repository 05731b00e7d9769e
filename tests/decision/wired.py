"""A decision server wired as in production to the suite's real journeys, identity and ingest (and an
orchestrator when a test has one), for the tests of Decide and the model lifecycle under Decide."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import common_settings, start_server
from wayline.common.server import Server
from wayline_decision.service import decision_service
from wayline_decision.settings import DecisionSettings

__all__ = ["start_wired_decision"]

# chDB answers a lifecycle or feature query in 50-250 ms on the shared test box, more under load; production
# budgets are tighter (a late fact fails closed, late features fall back to the spec's defaults).
_GENEROUS_BUDGETS: dict[str, object] = {
    "decide_facts_budget_seconds": 5.0,
    "decide_features_budget_seconds": 5.0,
    "features_fallback_budget_ms": 5000,
}


def start_wired_decision(
    data_dir: Path,
    *,
    journeys: Server,
    identity: Server,
    ingest: Server,
    orchestrator_address: str = "",
    generous_budgets: bool = False,
    **settings: object,
) -> Server:
    """A started decision server; `settings` override DecisionSettings fields (budgets, caches).
    `generous_budgets`: seconds for facts and features, so that a test's decisions do not depend on how busy
    the machine is."""
    if generous_budgets:
        settings = {**_GENEROUS_BUDGETS, **settings}
    decision_settings = DecisionSettings(
        **common_settings(data_dir),  # type: ignore[arg-type]
        journeys_address=journeys.address,
        identity_address=identity.address,
        ingest_address=ingest.address,
        orchestrator_address=orchestrator_address,
        **settings,  # type: ignore[arg-type]
    )
    return start_server(decision_service(decision_settings), decision_settings)
