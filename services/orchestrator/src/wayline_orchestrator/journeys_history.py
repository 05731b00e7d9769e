"""The history SimulateFlow replays, read from journeys' ExportEvents (a stable sample of persons, each
person's events oldest first, through identity's overrides) and converted person by person as ObserveEvents
converts live events, so the simulated runtime reads them as the live one does. The stream is consumed as
the simulation goes: one person's events in memory at a time.

The call inherits the tenant and the remaining deadline of the SimulateFlow call (the kit's client
interceptor); journeys' refusals map to this service's errors.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import groupby

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from wayline.common.errors import DeadlineExceeded
from wayline.event.v1 import event_pb2
from wayline.journeys.v1 import journeys_service_pb2 as journeys_pb
from wayline.journeys.v1 import journeys_service_pb2_grpc as journeys_grpc
from wayline_orchestrator.errors import HistoryUnavailable, SimulationTooLarge
from wayline_orchestrator.flows.simulation import PersonHistory
from wayline_orchestrator.person_events import engagements, occurrences, person_statements

__all__ = ["JourneysHistory"]


def _timestamp(us: int) -> Timestamp:
    return Timestamp(seconds=us // 1_000_000, nanos=(us % 1_000_000) * 1_000)


class JourneysHistory:
    """A HistorySource (flows/simulation.py) over a channel to journeys."""

    def __init__(self, channel: grpc.Channel) -> None:
        self._stub = journeys_grpc.JourneyServiceStub(channel)

    def persons(self, start: int, end: int, max_persons: int) -> Iterator[PersonHistory]:
        request = journeys_pb.ExportEventsRequest(
            time_range=event_pb2.TimeRange(start=_timestamp(start), end=_timestamp(end)),
            max_persons=max_persons,
        )
        stream = self._stub.ExportEvents(request)
        try:
            events = (event for message in stream for event in message.events)
            for person_id, group in groupby(events, key=lambda e: e.person_id):
                mine = list(group)
                history = PersonHistory(person_id, occurrences(mine))
                for event in mine:  # one at a time: ObserveEvents' limit per call does not apply here
                    consents, attributes = person_statements([event])
                    history.consents.extend(consents)
                    history.attributes.extend(attributes)
                    history.engagements.extend(engagements([event]))
                yield history
        except grpc.RpcError as error:
            code, detail = error.code(), error.details() or ""
            if code is grpc.StatusCode.RESOURCE_EXHAUSTED:
                raise SimulationTooLarge(detail) from error
            if code is grpc.StatusCode.DEADLINE_EXCEEDED:
                raise DeadlineExceeded("the simulation outlasted its deadline reading history") from error
            raise HistoryUnavailable(f"{code.name}: {detail}") from error
        finally:
            # A simulation stopped early (its deadline, an error) stops journeys too (grpc-stubs: untyped).
            stream.cancel()  # type: ignore[no-untyped-call]
