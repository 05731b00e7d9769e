"""Flow definitions: the model (the definition in its proto3 JSON form) and its validation with field paths.
Free of gRPC: the servicer converts."""

from wayline_orchestrator.flows.model import Definition, Flow, FlowState, PauseMode, definition_digest
from wayline_orchestrator.flows.rules import INCOMPLETE, draft_violations, publish_violations

__all__ = [
    "INCOMPLETE",
    "Definition",
    "Flow",
    "FlowState",
    "PauseMode",
    "definition_digest",
    "draft_violations",
    "publish_violations",
]
