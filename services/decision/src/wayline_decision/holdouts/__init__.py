"""Holdout groups per tenant: stable shares of persons who get no action, or a random eligible one, so that
every decision policy is compared with doing nothing and with chance. Free of protobuf; stored in SQL."""

from wayline_decision.holdouts.assignment import bucket, holdout_for
from wayline_decision.holdouts.model import HoldoutConfig, HoldoutGroup, Treatment
from wayline_decision.holdouts.service import HOLDOUT_MASK_PATHS, Holdouts
from wayline_decision.holdouts.store import HoldoutStore

__all__ = [
    "HOLDOUT_MASK_PATHS",
    "HoldoutConfig",
    "HoldoutGroup",
    "HoldoutStore",
    "Holdouts",
    "Treatment",
    "bucket",
    "holdout_for",
]
