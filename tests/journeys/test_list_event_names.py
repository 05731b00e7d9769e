"""ListEventNames over gRPC against counts made in Python on a random event log: ranking, range, prefix,
persons read through a merge, paging, tenant isolation and validation."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

import grpc
import pytest

from tests.journeys.analytics_requests import set_time_range
from tests.journeys.conftest import (
    Journeys,
    error_reason,
    field_violations,
    new_person,
    override,
    stored_event,
)
from tests.journeys.event_log import Ev, random_log, to_pb
from wayline.common.timestamps import to_timestamp
from wayline.event.v1 import event_pb2
from wayline.journeys.v1 import journeys_service_pb2 as pb

START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
Row = tuple[str, int, int, datetime]


def expected_names(log: list[Ev], start: datetime | None = None, end: datetime | None = None) -> list[Row]:
    events: dict[str, int] = defaultdict(int)
    persons: dict[str, set[str]] = defaultdict(set)
    last: dict[str, datetime] = {}
    for e in log:
        if e.name and (start is None or e.at >= start) and (end is None or e.at < end):
            events[e.name] += 1
            persons[e.name].add(e.person)
            last[e.name] = max(last.get(e.name, e.at), e.at)
    rows = [(name, events[name], len(persons[name]), last[name]) for name in events]
    return sorted(rows, key=lambda r: (-r[1], r[0]))


def all_names(journeys: Journeys, request: pb.ListEventNamesRequest, page_size: int) -> list[Row]:
    found: list[Row] = []
    request.page_size = page_size
    while True:
        page: pb.ListEventNamesResponse = journeys.stub.ListEventNames(
            request, metadata=journeys.metadata, timeout=30
        )
        assert len(page.event_names) <= page_size
        found.extend(
            (n.name, n.event_count, n.person_count, n.last_seen.ToDatetime(tzinfo=UTC))
            for n in page.event_names
        )
        if not page.next_page_token:
            return found
        request.page_token = page.next_page_token


def test_list_event_names_ranks_counts_and_pages(journeys: Journeys) -> None:
    log = random_log(11, START)
    journeys.write(*(to_pb(e) for e in log))
    expected = expected_names(log)
    assert len(expected) > 4
    assert any(not e.name for e in log)  # nameless events exist and are not listed
    assert all_names(journeys, pb.ListEventNamesRequest(), page_size=1000) == expected
    assert all_names(journeys, pb.ListEventNamesRequest(), page_size=2) == expected


def test_list_event_names_in_a_range_and_by_prefix(journeys: Journeys) -> None:
    log = random_log(12, START)
    journeys.write(*(to_pb(e) for e in log))
    start, end = START + timedelta(days=1), START + timedelta(days=2)
    request = pb.ListEventNamesRequest()
    set_time_range(request.time_range, start, end)
    in_range = expected_names(log, start, end)
    assert in_range != expected_names(log)
    assert all_names(journeys, request, page_size=3) == in_range
    prefix = expected_names(log)[0][0][:3]
    by_prefix = all_names(journeys, pb.ListEventNamesRequest(name_prefix=prefix), page_size=100)
    assert by_prefix == [r for r in expected_names(log) if r[0].startswith(prefix)]
    assert 0 < len(by_prefix) < len(expected_names(log))


def test_list_event_names_counts_persons_after_a_merge_and_only_its_tenant(journeys: Journeys) -> None:
    first, second = new_person(), new_person()
    journeys.write(
        stored_event(first, ("email", "a@x.io")), stored_event(second, ("email", "b@x.io"), minute=1)
    )
    before = all_names(journeys, pb.ListEventNamesRequest(), page_size=10)
    assert [(n, c, p) for n, c, p, _ in before] == [("Product Viewed", 2, 2)]
    journeys.apply(override(second, first, 1))
    after = all_names(journeys, pb.ListEventNamesRequest(), page_size=10)
    assert [(n, c, p) for n, c, p, _ in after] == [("Product Viewed", 2, 1)]
    other = journeys.for_tenant(f"{journeys.tenant}-other")
    assert all_names(other, pb.ListEventNamesRequest(), page_size=10) == []


@pytest.mark.parametrize(
    ("request_", "violations"),
    [
        (pb.ListEventNamesRequest(page_size=-1), {"page_size"}),
        (
            pb.ListEventNamesRequest(
                time_range=event_pb2.TimeRange(
                    start=to_timestamp(START), end=to_timestamp(START - timedelta(1))
                )
            ),
            {"time_range"},
        ),
    ],
)
def test_list_event_names_refuses_invalid_requests(
    journeys: Journeys, request_: pb.ListEventNamesRequest, violations: set[str]
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        journeys.stub.ListEventNames(request_, metadata=journeys.metadata, timeout=30)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(field_violations(caught.value)) == violations


def test_list_event_names_refuses_a_token_of_another_prefix(journeys: Journeys) -> None:
    journeys.write(*(to_pb(e) for e in random_log(13, START, persons=5)))
    page = journeys.stub.ListEventNames(
        pb.ListEventNamesRequest(page_size=1), metadata=journeys.metadata, timeout=30
    )
    assert page.next_page_token
    with pytest.raises(grpc.RpcError) as caught:
        journeys.stub.ListEventNames(
            pb.ListEventNamesRequest(page_size=1, name_prefix="P", page_token=page.next_page_token),
            metadata=journeys.metadata,
            timeout=30,
        )
    assert error_reason(caught.value) == "INVALID_PAGE_TOKEN"
