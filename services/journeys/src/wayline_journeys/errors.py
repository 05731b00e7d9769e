"""Errors of the journeys service."""

from __future__ import annotations

from wayline.common.errors import Unavailable
from wayline.common.paging import InvalidPageToken

__all__ = ["InvalidPageToken", "StoreUnavailable"]


class StoreUnavailable(Unavailable):
    default_reason = "CLICKHOUSE_UNAVAILABLE"
