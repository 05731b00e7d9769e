"""A flow as plain values. The definition is kept in the contract's own canonical form, the proto3 JSON
mapping of FlowDefinition with the fields' proto names (`entry_step_id`, not `entryStepId`): a dict of
dicts, lists, strings, numbers and booleans, with enumerations as their value names and durations as
`"3600s"`. It is deep and grows with every issue; mirroring it in dataclasses would copy the contract
(ADR 32). Field paths of violations are built from the same names, so they read as the request's fields."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = ["Definition", "Flow", "FlowState", "PauseMode", "definition_digest"]

Definition = dict[str, Any]


class FlowState(StrEnum):
    DRAFT = "DRAFT"
    PUBLISHED = "PUBLISHED"
    PAUSED = "PAUSED"
    ARCHIVED = "ARCHIVED"


class PauseMode(StrEnum):
    HOLD = "HOLD"
    DRAIN = "DRAIN"


def definition_digest(definition: Definition) -> str:
    """A digest of a definition's canonical JSON: equal definitions, equal digests."""
    canonical = json.dumps(definition, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Flow:
    """One flow with its draft. Times are microseconds since the epoch; `revision` is the etag's number,
    incremented by every write. `published_digest` is the digest of the latest published definition ('' when
    never published), against which the draft is compared."""

    flow_id: str
    display_name: str = ""
    description: str = ""
    definition: Definition = field(default_factory=dict)
    state: FlowState = FlowState.DRAFT
    pause_mode: PauseMode | None = None
    published_version: int = 0
    published_digest: str = ""
    revision: int = 0
    create_time: int = 0
    update_time: int = 0
    publish_time: int | None = None

    @property
    def name(self) -> str:
        return f"flows/{self.flow_id}"

    @property
    def etag(self) -> str:
        return str(self.revision)

    @property
    def has_unpublished_changes(self) -> bool:
        return definition_digest(self.definition) != self.published_digest
