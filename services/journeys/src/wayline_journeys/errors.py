"""Errors of the journeys service."""

from __future__ import annotations

from wayline.common.errors import InvalidArgument, Unavailable

__all__ = ["InvalidPageToken", "StoreUnavailable"]


class StoreUnavailable(Unavailable):
    default_reason = "CLICKHOUSE_UNAVAILABLE"


class InvalidPageToken(InvalidArgument):
    default_reason = "INVALID_PAGE_TOKEN"
