"""Batch-level limits and the per-event parts of batch replies, shared by TrackBatch and StreamEvents."""

from __future__ import annotations

from collections.abc import Sequence

from wayline.api.v1 import errors_pb2
from wayline.common.errors import FieldViolation, InvalidArgument
from wayline.ingest.v1 import ingest_service_pb2 as pb
from wayline_ingest.pipeline import EventIssue

__all__ = ["BatchLimits", "batch_path", "field_violations", "rejections", "warnings"]


class BatchLimits:
    def __init__(self, max_events: int, max_bytes: int) -> None:
        self.max_events = max_events
        self.max_bytes = max_bytes

    def check(self, count: int, size: int, field: str = "events") -> None:
        """INVALID_ARGUMENT for an empty or oversized batch: refused whole, nothing cut silently."""
        if not count:
            raise InvalidArgument(
                "the batch is empty", [FieldViolation(field, "send at least one event", "REQUIRED")]
            )
        if count > self.max_events:
            raise InvalidArgument(
                f"the batch holds {count} events; split it into batches of at most {self.max_events}",
                [FieldViolation(field, f"at most {self.max_events} events per batch", "TOO_MANY")],
            )
        if size > self.max_bytes:
            raise InvalidArgument(
                f"the batch is {size} bytes; split it into batches of at most {self.max_bytes} bytes",
                [FieldViolation(field, f"at most {self.max_bytes} bytes per batch", "TOO_LARGE")],
            )


def field_violations(issue: EventIssue) -> list[errors_pb2.FieldViolation]:
    return [
        errors_pb2.FieldViolation(field=v.field, description=v.description, reason=v.reason)
        for v in issue.violations
    ]


def rejections(issues: Sequence[EventIssue]) -> list[pb.EventRejection]:
    return [
        pb.EventRejection(index=i.index, event_id=i.event_id, violations=field_violations(i)) for i in issues
    ]


def warnings(issues: Sequence[EventIssue]) -> list[pb.EventWarning]:
    return [
        pb.EventWarning(index=i.index, event_id=i.event_id, violations=field_violations(i)) for i in issues
    ]


def batch_path(index: int) -> str:
    """The field path of event `index` of a batch, the prefix of its violations."""
    return f"events[{index}]"
