"""The errors of tracking plans, each a kit error with the reason the contract documents."""

from __future__ import annotations

from wayline.common.errors import (
    Aborted,
    AlreadyExists,
    FailedPrecondition,
    NotFound,
    Unavailable,
)

__all__ = [
    "EtagMismatch",
    "PlanStoreUnavailable",
    "TrackingPlanExists",
    "TrackingPlanNotFound",
    "TrackingPlanOverlap",
]


class TrackingPlanNotFound(NotFound):
    default_reason = "TRACKING_PLAN_NOT_FOUND"


class TrackingPlanExists(AlreadyExists):
    default_reason = "TRACKING_PLAN_EXISTS"


class TrackingPlanOverlap(FailedPrecondition):
    default_reason = "TRACKING_PLAN_OVERLAP"


class EtagMismatch(Aborted):
    default_reason = "ETAG_MISMATCH"


class PlanStoreUnavailable(Unavailable):
    default_reason = "TRACKING_PLAN_STORE_UNAVAILABLE"
