"""Tracking plans as the domain sees them: plain dataclasses, free of protobuf.

Enumerations are the lower-case names of the contract's values without their prefix (`track`, `web`), the
convention journeys uses, so that stored rows stay readable and survive a renumbering. `PlanSpec` holds the
fields a caller writes, `TrackingPlan` adds what the server owns (revision, times, etag); an update replaces
whole fields of the spec, which is what `update_mask` means.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Literal

from wayline.common.errors import FieldViolation

__all__ = [
    "CHANNELS",
    "EVENT_TYPES",
    "NAMED_EVENT_TYPES",
    "UNNAMED_EVENT_TYPES",
    "WRITABLE_FIELDS",
    "EventSchema",
    "PlanMode",
    "PlanPage",
    "PlanSpec",
    "PlanVerdict",
    "TrackingPlan",
    "plan_etag",
]

PlanMode = Literal["reject", "flag"]

EVENT_TYPES = ("track", "identify", "page", "screen", "alias", "group")
# Types whose schema is chosen by event name (a page schema with an empty name covers every page).
NAMED_EVENT_TYPES = frozenset({"track", "page", "screen"})
# Types whose schema describes traits or nothing: the event name plays no part, so it must be empty.
UNNAMED_EVENT_TYPES = frozenset({"identify", "alias", "group"})
CHANNELS = (
    "web",
    "mobile_app",
    "email",
    "sms",
    "push",
    "call_center",
    "chatbot",
    "in_store",
    "display_ads",
    "social",
    "video",
    "kiosk",
    "other",
)


@dataclass(frozen=True)
class EventSchema:
    """The contract of one planned event: a JSON Schema (text) its properties must satisfy."""

    event_type: str
    event_name: str = ""
    properties_json_schema: str = ""  # empty: any properties
    description: str = ""


@dataclass(frozen=True)
class PlanSpec:
    """The writable fields of a plan; `channels` empty means every channel."""

    display_name: str = ""
    description: str = ""
    mode: PlanMode = "flag"
    channels: tuple[str, ...] = ()
    enabled: bool = False
    allow_unplanned_events: bool = False
    event_schemas: tuple[EventSchema, ...] = ()


WRITABLE_FIELDS = frozenset(PlanSpec.__dataclass_fields__)


@dataclass(frozen=True)
class TrackingPlan:
    """A stored plan of one tenant, at one revision."""

    tenant: str
    plan_id: str
    spec: PlanSpec
    revision: int
    create_time: datetime
    update_time: datetime

    @property
    def name(self) -> str:
        return f"trackingPlans/{self.plan_id}"

    @property
    def etag(self) -> str:
        return plan_etag(self)


def plan_etag(plan: TrackingPlan) -> str:
    """A tag that changes with every revision: a digest of the plan's identity, revision and content.

    Derived rather than stored, so it can never disagree with the row it describes.
    """
    body = json.dumps(
        [plan.tenant, plan.plan_id, plan.revision, plan.update_time.isoformat(), asdict(plan.spec)],
        sort_keys=True,
        separators=(",", ":"),
    )
    return '"' + hashlib.sha256(body.encode()).hexdigest()[:24] + '"'


@dataclass(frozen=True)
class PlanPage:
    """One page of a tenant's plans, ordered by id; `next_after` is the id to resume after, if any."""

    plans: list[TrackingPlan]
    next_after: str | None
    total_size: int


@dataclass(frozen=True)
class PlanVerdict:
    """What a plan says about one event that violates it: what to do, and why (paths from the event)."""

    plan: str  # the plan's resource name, `trackingPlans/{id}`
    mode: PlanMode
    violations: list[FieldViolation] = field(default_factory=list)
