"""What the demo's analytics steps share: the journeys stub with the demo's auth, customer names for person
ids, and how times, money and channels are printed."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from google.protobuf import duration_pb2
from rich.console import Console
from rich.table import Table

from wayline.journeys.v1 import journeys_service_pb2_grpc as journeys_grpc
from wayline_cli import demo

__all__ = ["TIMEOUT", "Reader", "days", "duration", "wait_for_count"]

TIMEOUT = 30.0  # seconds per call: chDB answers these in milliseconds, but a loaded box deserves slack
DAY = 86_400


def days(count: int) -> duration_pb2.Duration:
    return duration_pb2.Duration(seconds=count * DAY)


def duration(value: duration_pb2.Duration) -> str:
    seconds = value.seconds
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    if seconds < DAY:
        return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"
    return f"{seconds // DAY}d {seconds % DAY // 3600}h"


@dataclass
class Reader:
    """Calls JourneyService through the gateway. Its errors propagate: a step that cannot run fails the
    demo rather than being skipped."""

    stub: journeys_grpc.JourneyServiceStub
    auth: tuple[tuple[str, str], ...]
    console: Console
    names: dict[str, str] = field(default_factory=dict)  # person id → the customer's user_id

    def name_customers(self) -> None:
        """Answers name persons by id; the tables show the customers' user ids instead."""
        for customer in demo.CUSTOMERS:
            page = self.stub.GetTimeline(
                demo.timeline_request(customer, 1), metadata=self.auth, timeout=TIMEOUT
            )
            # GetTimelineResponse.person_id is not filled in yet; every event carries its current person
            self.names[page.person_id or page.events[0].person_id] = customer.user_id

    def name(self, person_id: str) -> str:
        return self.names.get(person_id) or f"{person_id[:8]}… (anonymous)"

    def names_of(self, person_ids: Iterable[str]) -> str:
        return ", ".join(self.name(p) for p in person_ids) or "(none)"

    def table(self, rpc: str, about: str, *columns: str) -> Table:
        """Prints the heading of a table (the RPC and what its answer shows) and returns the empty table."""
        self.console.print(f"[bold]{rpc}[/bold]: {about}")
        table = Table()
        for column in columns:
            table.add_column(column)
        return table


def wait_for_count(
    count: Callable[[], int], expected: int, limit_s: float, quiet_s: float | None = None
) -> None:
    """Until `count()` reaches `expected` (messages arriving at the demo's receiver), or `limit_s` in all,
    or, with `quiet_s`, once it has grown and then not for that long; then half a second more, so that
    anything that would be a duplicate has arrived too."""
    started = last_change = time.monotonic()
    seen = 0
    while (found := count()) < expected:
        now = time.monotonic()
        if now - started > limit_s:
            break
        if found != seen:
            seen, last_change = found, now
        elif quiet_s is not None and seen and now - last_change > quiet_s:
            break
        time.sleep(0.2)
    time.sleep(0.5)
