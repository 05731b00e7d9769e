"""How `wayline trends` writes periods, breakdown values and shares."""

from __future__ import annotations

from typing import Protocol
from zoneinfo import ZoneInfo

from google.protobuf.timestamp_pb2 import Timestamp

from wayline.common.timestamps import to_datetime
from wayline.journeys.v1 import trends_pb2

__all__ = ["period_label", "share", "value_name"]


class _Dated(Protocol):
    @property
    def period_start(self) -> Timestamp: ...
    @property
    def complete(self) -> bool: ...


def value_name(result: trends_pb2.TrendResult | trends_pb2.StickinessResult) -> str:
    """The breakdown value as a column or title names it; '' without breakdown."""
    value = result.breakdown_value
    return "other" if value.other else "(none)" if value.missing else value.value


def period_label(point: _Dated, zone: ZoneInfo, period: str) -> str:
    local = to_datetime(point.period_start).astimezone(zone)
    shape = {"month": "%Y-%m", "hour": "%Y-%m-%d %H:%M"}.get(period, "%Y-%m-%d")
    label = local.strftime(shape)
    return label if point.complete else f"{label} *"


def share(part: float, whole: float) -> str:
    return f"{part / whole:.0%}" if whole else "—"
