"""The demo's ingest steps: a high-volume stream with acknowledgements, a retry without event ids stored
once, and a tracking plan that catches a malformed event at the door."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

import grpc
from google.protobuf import field_mask_pb2
from google.rpc import error_details_pb2
from rich.console import Console

from wayline.common.errors import status_details
from wayline.common.timestamps import to_timestamp
from wayline.event.v1 import event_pb2
from wayline.ingest.v1 import ingest_service_pb2 as ingest_pb
from wayline.ingest.v1 import ingest_service_pb2_grpc as ingest_grpc
from wayline.ingest.v1 import tracking_plan_pb2 as plan_pb

__all__ = ["show_retry_without_ids", "show_tracking_plan", "stream"]

Auth = tuple[tuple[str, str], ...]


def stream(
    ingest: ingest_grpc.IngestServiceStub, events: Sequence[event_pb2.Event], auth: Auth, console: Console
) -> int:
    """Send `events` on one StreamEvents call in numbered batches of 25, within the server's window."""
    batches = [events[i : i + 25] for i in range(0, len(events), 25)]
    granted = {"max": 1}
    window = threading.Condition()

    def requests() -> Iterator[ingest_pb.StreamEventsRequest]:
        for sequence, batch in enumerate(batches, start=1):
            with window:
                window.wait_for(lambda due=sequence: granted["max"] >= due, timeout=30)  # type: ignore[misc]
            yield ingest_pb.StreamEventsRequest(sequence=sequence, events=batch)

    accepted = acks = 0
    for response in ingest.StreamEvents(requests(), metadata=auth, timeout=60):
        with window:
            granted["max"] = max(granted["max"], response.max_sequence)
            window.notify_all()
        if response.sequence:
            acks += 1
            accepted += response.accepted_count
    console.print(
        f"streamed {len(events)} events with StreamEvents in {len(batches)} numbered batches: {acks} "
        f"acknowledgements, each after the batch was fsync'd in ingest's spool; {accepted} accepted"
    )
    return accepted


def _walk_in(minute: int) -> event_pb2.Event:
    event = event_pb2.Event(
        type=event_pb2.EVENT_TYPE_TRACK,
        name="Store Visited",
        channel=event_pb2.CHANNEL_IN_STORE,
        identifiers=[event_pb2.Identifier(type="loyalty_id", value="walk-in-4711")],
        timestamp=to_timestamp(datetime.now(UTC).replace(second=0, microsecond=0, minute=minute)),
    )
    event.properties.update({"store": "berlin-mitte"})
    return event


def show_retry_without_ids(ingest: ingest_grpc.IngestServiceStub, auth: Auth, console: Console) -> None:
    """The same event sent twice without an event_id, as a retrying collector would: one id, one row."""
    first = ingest.Track(ingest_pb.TrackRequest(event=_walk_in(0)), metadata=auth, timeout=10)
    again = ingest.Track(ingest_pb.TrackRequest(event=_walk_in(0)), metadata=auth, timeout=10)
    same = "the same id" if first.event_id == again.event_id else "DIFFERENT ids"
    console.print(
        f"an event sent twice without event_id got {same} ({first.event_id}), derived from its content: "
        "a retry is stored once"
    )


def show_tracking_plan(ingest: ingest_grpc.IngestServiceStub, auth: Auth, console: Console) -> None:
    """A plan for in-store orders in reject mode, and an order that breaks it."""
    schema = {
        "type": "object",
        "properties": {"order_id": {"type": "string"}, "revenue": {"type": "number", "minimum": 0}},
        "required": ["order_id", "revenue"],
    }
    plan = ingest.CreateTrackingPlan(
        ingest_pb.CreateTrackingPlanRequest(
            tracking_plan_id="pos-orders",
            tracking_plan=plan_pb.TrackingPlan(
                display_name="Point-of-sale orders",
                mode=plan_pb.TRACKING_PLAN_MODE_REJECT,
                channels=[event_pb2.CHANNEL_IN_STORE],
                enabled=True,
                allow_unplanned_events=True,
                event_schemas=[
                    plan_pb.EventSchema(
                        event_type=event_pb2.EVENT_TYPE_TRACK,
                        event_name="Order Completed",
                        properties_json_schema=json.dumps(schema),
                    )
                ],
            ),
        ),
        metadata=auth,
        timeout=10,
    ).tracking_plan
    console.print(f"tracking plan {plan.name} (revision {plan.revision}) checks in-store orders")
    order = _walk_in(1)
    order.name = "Order Completed"
    order.properties.update({"revenue": -5})
    try:
        ingest.Track(ingest_pb.TrackRequest(event=order), metadata=auth, timeout=10)
    except grpc.RpcError as error:
        console.print(f"an order breaking the plan is refused: [yellow]{error.code().name}[/yellow]")
        for detail in status_details(error):
            if isinstance(detail, error_details_pb2.BadRequest):
                for violation in detail.field_violations:
                    console.print(f"  • {violation.field}: {violation.description} ({violation.reason})")
    ingest.UpdateTrackingPlan(
        ingest_pb.UpdateTrackingPlanRequest(
            tracking_plan=plan_pb.TrackingPlan(name=plan.name, enabled=False),
            update_mask=field_mask_pb2.FieldMask(paths=["enabled"]),
        ),
        metadata=auth,
        timeout=10,
    )
