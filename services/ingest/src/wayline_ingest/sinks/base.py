"""The sink interface: deliver one tenant's events, or say whether trying again could help."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = ["DeliveryFailure", "PermanentDeliveryError", "Sink", "TransientDeliveryError"]


@dataclass(frozen=True)
class DeliveryFailure:
    """Why a sink refused events: a gRPC status code name, an ErrorInfo reason, a message, and the field
    and event index it blamed when it named one."""

    code: str
    reason: str = ""
    message: str = ""
    field: str = ""
    index: int | None = None


class TransientDeliveryError(Exception):
    """The sink could not take the events now (down, overloaded, deadline): retry the same events."""

    def __init__(self, failure: DeliveryFailure) -> None:
        super().__init__(f"{failure.code}: {failure.message}")
        self.failure = failure


class PermanentDeliveryError(Exception):
    """The sink refused the events and would refuse them again (INVALID_ARGUMENT and the like)."""

    def __init__(self, failure: DeliveryFailure) -> None:
        super().__init__(f"{failure.code}: {failure.message}")
        self.failure = failure


class Sink(Protocol):
    """One downstream. `deliver` returns once every event is taken; it must be idempotent by event_id,
    because the spool delivers at least once."""

    name: str

    def deliver(self, tenant: str, events: Sequence[bytes]) -> None:
        """Deliver serialised `wayline.event.v1.Event`s of one tenant, in order."""

    def close(self) -> None:
        """Release connections."""
