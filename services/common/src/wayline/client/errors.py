"""What the client raises, and what it hands to `on_error` when events cannot be delivered.

Mistakes the caller can fix at once (a missing name, a naive timestamp, an oversized event) raise
`InvalidEvent` from the call that made them, before anything is queued: a bad event found a second later on
the background thread could only be logged. Everything that goes wrong after queueing (a per-event
rejection, an error that retrying cannot fix, retries used up) becomes one `DeliveryError` passed to
`on_error`, because by then the caller has moved on.
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from wayline.api.v1 import errors_pb2
from wayline.event.v1 import event_pb2

__all__ = ["ClientClosed", "ClientError", "DeliveryError", "InvalidEvent", "QueueFull"]


class ClientError(Exception):
    """Base of every error the Wayline client raises or reports."""


class InvalidEvent(ClientError, ValueError):
    """The event cannot be sent as built; `field` names the argument or field at fault."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class QueueFull(ClientError):
    """The queue stayed full for the whole `block_timeout` (the server is pushing back or unreachable)."""


class ClientClosed(ClientError, RuntimeError):
    """The client was closed; create a new one to send more events."""


class DeliveryError(ClientError):
    """Events Wayline did not accept and the client will not send again.

    `code` is the gRPC status (INVALID_ARGUMENT for a per-event rejection), `reason` the machine-readable
    reason (the server's ErrorInfo reason, `EVENT_REJECTED`, `QUEUE_FULL` or `CLIENT_CLOSED`), `violations`
    the field violations of a rejected event, `attempts` how many TrackBatch calls carried the events.
    """

    def __init__(
        self,
        message: str,
        *,
        events: Sequence[event_pb2.Event],
        code: grpc.StatusCode,
        reason: str,
        violations: Sequence[errors_pb2.FieldViolation] = (),
        attempts: int = 0,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.events = tuple(events)
        self.code = code
        self.reason = reason
        self.violations = tuple(violations)
        self.attempts = attempts

    @property
    def event_ids(self) -> list[str]:
        """The ids of the events that were not delivered."""
        return [event.event_id for event in self.events]

    def __repr__(self) -> str:
        return (
            f"DeliveryError(code={self.code.name}, reason={self.reason!r}, events={len(self.events)}, "
            f"attempts={self.attempts}, message={self.message!r})"
        )
