"""Flow definitions: the model (the definition in its proto3 JSON form), their validation with field paths,
their store (SQLite embedded, PostgreSQL in production) and their operations, with published versions that
never change. Free of gRPC: the servicer converts."""

from wayline_orchestrator.flows.catalogue import DEFINITION_FIELDS, MASK_PATHS, FlowCatalogue, FlowPage
from wayline_orchestrator.flows.model import Definition, Flow, FlowState, PauseMode, definition_digest
from wayline_orchestrator.flows.rules import INCOMPLETE, draft_violations, publish_violations
from wayline_orchestrator.flows.store import FlowStore

__all__ = [
    "DEFINITION_FIELDS",
    "INCOMPLETE",
    "MASK_PATHS",
    "Definition",
    "Flow",
    "FlowCatalogue",
    "FlowPage",
    "FlowState",
    "FlowStore",
    "PauseMode",
    "definition_digest",
    "draft_violations",
    "publish_violations",
]
