"""The tenant's action catalogue: the offers, messages and content that decisions choose from, with the
business factors of their priority and their eligibility. Free of protobuf; stored in SQL (store.py)."""

from wayline_decision.actions.model import Action, ActionState, Eligibility
from wayline_decision.actions.service import MASK_PATHS, ActionCatalogue, ActionPage
from wayline_decision.actions.store import ActionStore

__all__ = [
    "MASK_PATHS",
    "Action",
    "ActionCatalogue",
    "ActionPage",
    "ActionState",
    "ActionStore",
    "Eligibility",
]
