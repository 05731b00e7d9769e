"""The paths a property filter, a breakdown or a feature names (analytics.proto's `property`): one grammar for
journeys' store, the decision service's online features and the orchestrator's flows, so that a path one of
them accepts, the others read the same way.

An event field by name (EVENT_FIELDS), a path into the event's properties or context (`properties.<key>...`,
`context.<field>...`), or a person trait (`person.<trait>`); no segment empty or holding whitespace. Matched
in full: `re.match` with `$` also took a path ending in a newline.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType

__all__ = ["EVENT_FIELDS", "is_event_path", "is_person_path"]

EVENT_FIELDS: Mapping[str, bool] = MappingProxyType(
    {
        "name": False,
        "type": False,
        "channel": False,
        "text": False,
        "group_id": False,
        "sentiment_score": True,
        "revenue": True,
    }
)
"""The event fields a path may name directly, and whether their values are numbers (which may be absent)."""

_EVENT_PATH = re.compile(r"(properties|context)(\.[^.\s]+)+")
_PERSON_PATH = re.compile(r"person\.[^.\s]+")


def is_event_path(path: str) -> bool:
    """A path into an event's properties or context: `properties.<key>[.<key>...]`, `context.<field>...`."""
    return _EVENT_PATH.fullmatch(path) is not None


def is_person_path(path: str) -> bool:
    """A person trait: `person.<trait>`."""
    return _PERSON_PATH.fullmatch(path) is not None
