"""What the CLV job reads from Wayline, through the gateway: every purchaser's lifetime summary
(JourneyService.GetCustomerValue in bulk, paged) and an identifier for each person
(IdentityService.GetProfile), since an event names its person by an identifier (ingest refuses a
`person_id` set by a caller)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import grpc
import numpy as np

from wayline.common.timestamps import to_timestamp
from wayline.event.v1 import event_pb2
from wayline.identity.v1 import identity_service_pb2 as identity_pb
from wayline.identity.v1 import identity_service_pb2_grpc as identity_grpc
from wayline.journeys.v1 import analytics_pb2
from wayline.journeys.v1 import customer_value_pb2 as value_pb
from wayline.journeys.v1 import journeys_service_pb2 as journeys_pb
from wayline.journeys.v1 import journeys_service_pb2_grpc as journeys_grpc
from wayline_ml.clv.model import LifetimeSummaries

__all__ = ["Metadata", "SummaryQuery", "ValuedCustomers", "identifiers_of", "read_summaries"]

Metadata = tuple[tuple[str, str], ...]
Progress = Callable[[int, int], None]
"""Called with (done, total) as pages or persons complete."""
TIMEOUT = 60.0


@dataclass(frozen=True)
class SummaryQuery:
    """Which purchases make the summaries: in `currency`, before `as_of` (and from `since`), by the persons of
    `segments` (all purchasers when empty), counting only `purchase_event_names` when given."""

    currency: str
    as_of: datetime
    since: datetime | None = None
    segments: tuple[str, ...] = ()
    purchase_event_names: tuple[str, ...] = ()
    page_size: int = 1000

    def request(self, page_token: str = "") -> journeys_pb.GetCustomerValueRequest:
        time_range = event_pb2.TimeRange(end=to_timestamp(self.as_of))
        if self.since is not None:
            time_range.start.CopyFrom(to_timestamp(self.since))
        return journeys_pb.GetCustomerValueRequest(
            population=analytics_pb2.Population(segments=list(self.segments)),
            currency_code=self.currency,
            time_range=time_range,
            purchase_event_names=list(self.purchase_event_names),
            page_size=self.page_size,
            page_token=page_token,
        )


@dataclass(frozen=True)
class ValuedCustomers:
    """The persons with a lifetime summary, in the service's order, and how many it listed in all."""

    person_ids: list[str]
    summaries: LifetimeSummaries
    listed: int


def _amount(money: event_pb2.Money) -> float:
    return money.units + money.nanos / 1e9


def read_summaries(
    channel: grpc.Channel, metadata: Metadata, query: SummaryQuery, progress: Progress | None = None
) -> ValuedCustomers:
    """Every purchaser's lifetime summary, page by page."""
    stub = journeys_grpc.JourneyServiceStub(channel)
    persons: list[str] = []
    rows: list[tuple[int, int, int, float]] = []
    listed, token = 0, ""
    while True:
        page = stub.GetCustomerValue(query.request(token), metadata=metadata, timeout=TIMEOUT)
        for value in page.values:
            listed += 1
            if not value.HasField("lifetime_summary"):
                continue  # no purchase period in the range: nothing for the models
            life = value.lifetime_summary
            if life.period_unit != value_pb.LIFETIME_PERIOD_UNIT_DAY:
                raise ValueError(f"lifetime summaries in {life.period_unit} are not supported; days are")
            persons.append(value.person_id)
            monetary = _amount(life.monetary_value) if life.frequency else 0.0
            rows.append((life.frequency, life.recency, life.t, monetary))
        if progress is not None:
            progress(listed, page.total_size)
        token = page.next_page_token
        if not token:
            break
    columns = np.asarray(rows, dtype=np.float64).reshape(-1, 4)
    summaries = LifetimeSummaries(columns[:, 0], columns[:, 1], columns[:, 2], columns[:, 3])
    return ValuedCustomers(person_ids=persons, summaries=summaries, listed=listed)


def identifiers_of(
    channel: grpc.Channel,
    metadata: Metadata,
    person_ids: Sequence[str],
    in_flight: int = 16,
    progress: Progress | None = None,
) -> dict[str, event_pb2.Identifier]:
    """Each person's first identifier as identity lists them (the highest-priority type, then the first
    seen): the one that names them in an event. Persons identity no longer knows (erased) are left out.
    `in_flight` GetProfile calls run at once."""
    stub = identity_grpc.IdentityServiceStub(channel)
    found: dict[str, event_pb2.Identifier] = {}
    for start in range(0, len(person_ids), in_flight):
        chunk = person_ids[start : start + in_flight]
        calls = [
            stub.GetProfile.future(
                identity_pb.GetProfileRequest(person=event_pb2.PersonRef(person_id=person)),
                metadata=metadata,
                timeout=TIMEOUT,
            )
            for person in chunk
        ]
        for person, call in zip(chunk, calls, strict=True):
            try:
                profile = call.result().profile
            except grpc.RpcError as error:
                if error.code() == grpc.StatusCode.NOT_FOUND:
                    continue
                raise
            if profile.identifiers:
                found[person] = profile.identifiers[0].identifier
        if progress is not None:
            progress(start + len(chunk), len(person_ids))
    return found
