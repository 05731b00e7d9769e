"""The errors of tracking plans, each a kit error with the reason the contract documents."""

from __future__ import annotations

from wayline.common.errors import (
    Aborted,
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Unavailable,
)

__all__ = [
    "EtagMismatch",
    "InvalidPageToken",
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


class InvalidPageToken(InvalidArgument):
    default_reason = "INVALID_PAGE_TOKEN"


class PlanStoreUnavailable(Unavailable):
    default_reason = "TRACKING_PLAN_STORE_UNAVAILABLE"
