"""Tracking plans: per-tenant JSON Schemas for events, checked at ingest's door.

Public surface for the service wiring: `PlanStore` (SQL), `TrackingPlans` (writes, reads and the per-event
`check`), `TrackingPlanRpcs` (the four RPCs), and the domain types the pipeline reads (`PlanVerdict`).
"""

from __future__ import annotations

from wayline_ingest.plans.model import EventSchema, PlanMode, PlanPage, PlanSpec, PlanVerdict, TrackingPlan
from wayline_ingest.plans.registry import TrackingPlans
from wayline_ingest.plans.rpcs import TrackingPlanRpcs
from wayline_ingest.plans.store import PlanStore

__all__ = [
    "EventSchema",
    "PlanMode",
    "PlanPage",
    "PlanSpec",
    "PlanStore",
    "PlanVerdict",
    "TrackingPlan",
    "TrackingPlanRpcs",
    "TrackingPlans",
]
