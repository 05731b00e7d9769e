"""ListPathPersons over gRPC against the plain-Python path reference: a node's and an edge's persons, per
series (`other` included), paged; and validation."""

from __future__ import annotations

from datetime import UTC, datetime

import grpc
import pytest

from tests.journeys.conftest import Journeys, error_reason, field_violations
from tests.journeys.event_log import random_log, to_pb
from tests.journeys.paths_reference import RefQuery, Series, reference_paths
from tests.journeys.segments_support import assert_segments_overlap, built_segments, delete_all_segments
from tests.journeys.segments_support import count as did
from tests.journeys.test_query_paths import request_of, step_of
from wayline.journeys.v1 import analytics_pb2
from wayline.journeys.v1 import journeys_service_pb2 as pb

START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
Step = tuple[str, str]


def all_persons(journeys: Journeys, request: pb.ListPathPersonsRequest, page_size: int) -> list[str]:
    """Every page's ids, in order."""
    found: list[str] = []
    request.page_size = page_size
    while True:
        page: pb.ListPathPersonsResponse = journeys.stub.ListPathPersons(
            request, metadata=journeys.metadata, timeout=30
        )
        assert len(page.person_ids) <= page_size
        found.extend(page.person_ids)
        if not page.next_page_token:
            return found
        request.page_token = page.next_page_token


def node_persons(series: Series, position: int, step: Step, target: Step | None = None) -> set[str]:
    """The persons with a path that has `step` at `position` (then `target`), from the reference."""
    return {
        person
        for steps, persons in series.path_persons.items()
        if len(steps) > position
        and steps[position] == step
        and (target is None or (len(steps) > position + 1 and steps[position + 1] == target))
        for person in persons
    }


def assert_persons_of_every_series(
    journeys: Journeys, q: RefQuery, expected: dict[tuple[str, bool, bool], Series]
) -> pb.QueryPathsResponse:
    """ListPathPersons of the first edges of each series QueryPaths returns (their source node alone, then
    the edge) against the reference; the response."""
    request = request_of(q)
    request.edge_limit = 8
    response: pb.QueryPathsResponse = journeys.stub.QueryPaths(
        request, metadata=journeys.metadata, timeout=30
    )
    checked = 0
    for series in response.series:
        value = series.breakdown_value
        want = expected[(value.value, value.other, value.missing)]
        nodes = {n.id: n for n in series.nodes}
        for edge in series.edges[:4]:
            source, target = nodes[edge.source_node_id], nodes[edge.target_node_id]
            by_node = all_persons(
                journeys,
                pb.ListPathPersonsRequest(query=request, breakdown_value=value, node_id=source.id),
                page_size=3,
            )
            assert by_node == sorted(set(by_node))  # ascending, each once, across pages
            assert set(by_node) == node_persons(want, source.position, step_of(source.step))
            by_edge = all_persons(
                journeys,
                pb.ListPathPersonsRequest(
                    query=request, breakdown_value=value, node_id=source.id, target_node_id=target.id
                ),
                page_size=1000,
            )
            assert set(by_edge) == node_persons(
                want, source.position, step_of(source.step), step_of(target.step)
            )
            assert set(by_edge) <= set(by_node)
            checked += 1
    assert checked >= 4
    return response


def test_list_path_persons_lists_each_node_and_edge_of_every_series(journeys: Journeys) -> None:
    log = random_log(3, START)
    journeys.write(*(to_pb(e) for e in log))
    q = RefQuery(breakdown="properties.plan", limit=2, depth=4)
    response = assert_persons_of_every_series(journeys, q, reference_paths(log, q))
    assert any(s.breakdown_value.other for s in response.series)  # the `other` series is exercised


def test_list_path_persons_lists_the_persons_of_each_segment(journeys: Journeys) -> None:
    """A person in two segments is listed in both series; a person in none in the `missing` one."""
    log = random_log(6, START)
    journeys.write(*(to_pb(e) for e in log))
    try:
        segments = built_segments(journeys, ("bought", did("Purchased")), ("signed-up", did("Signed Up")))
        assert_segments_overlap(segments, {e.person for e in log})
        q = RefQuery(breakdown="segment", segments=segments, limit=1, depth=4)
        expected = reference_paths(log, q)
        assert set(expected) == {
            ("segments/bought", False, False),
            ("segments/signed-up", False, False),
            ("", False, True),
        }
        response = assert_persons_of_every_series(journeys, q, expected)
        assert len(response.series) == 3  # no `other`: the limit does not fold segments
    finally:
        delete_all_segments(journeys)


def test_list_path_persons_without_a_series_lists_every_series(journeys: Journeys) -> None:
    log = random_log(4, START)
    journeys.write(*(to_pb(e) for e in log))
    q = RefQuery(breakdown="properties.plan", limit=1)
    expected = reference_paths(log, q)
    request = request_of(q)
    largest = journeys.stub.QueryPaths(request, metadata=journeys.metadata, timeout=30).series[0]
    value = largest.breakdown_value
    beyond_the_series = 0
    for node in [n for n in largest.nodes if n.position == 1][:4]:
        found = all_persons(
            journeys, pb.ListPathPersonsRequest(query=request, node_id=node.id), page_size=1000
        )
        step = step_of(node.step)
        assert set(found) == set().union(*(node_persons(s, 1, step) for s in expected.values()))
        in_series = node_persons(expected[(value.value, value.other, value.missing)], 1, step)
        beyond_the_series += len(set(found) - in_series)
    assert beyond_the_series > 0


def test_list_path_persons_lists_only_the_callers_tenant(journeys: Journeys) -> None:
    journeys.write(*(to_pb(e) for e in random_log(9, START, persons=6)))
    request = request_of(RefQuery())
    node = journeys.stub.QueryPaths(request, metadata=journeys.metadata, timeout=30).series[0].nodes[0]
    mine = pb.ListPathPersonsRequest(query=request, node_id=node.id)
    assert journeys.stub.ListPathPersons(mine, metadata=journeys.metadata, timeout=30).person_ids
    other = journeys.for_tenant(f"{journeys.tenant}-other")
    found = other.stub.ListPathPersons(mine, metadata=other.metadata, timeout=30)
    assert list(found.person_ids) == []


def test_list_path_persons_of_an_unknown_node_is_empty(journeys: Journeys) -> None:
    journeys.write(*(to_pb(e) for e in random_log(5, START, persons=3)))
    found = journeys.stub.ListPathPersons(
        pb.ListPathPersonsRequest(query=request_of(RefQuery()), node_id="1:web:No Such Step"),
        metadata=journeys.metadata,
        timeout=30,
    )
    assert list(found.person_ids) == []
    assert found.next_page_token == ""


@pytest.mark.parametrize(
    ("request_", "violations"),
    [
        (pb.ListPathPersonsRequest(), {"node_id"}),
        (pb.ListPathPersonsRequest(node_id="web:Checkout"), {"node_id"}),
        (pb.ListPathPersonsRequest(node_id="1:carrier_pigeon:Checkout"), {"node_id"}),
        (pb.ListPathPersonsRequest(node_id="\u00b2:web:Checkout"), {"node_id"}),  # a digit of no number
        (
            pb.ListPathPersonsRequest(node_id="1:web:Checkout", target_node_id="3:web:Paid"),
            {"target_node_id"},
        ),
        (
            pb.ListPathPersonsRequest(query=pb.QueryPathsRequest(depth=1), node_id="0:web:A", page_size=-1),
            {"query.depth", "page_size"},
        ),
    ],
)
def test_list_path_persons_refuses_invalid_requests(
    journeys: Journeys, request_: pb.ListPathPersonsRequest, violations: set[str]
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        journeys.stub.ListPathPersons(request_, metadata=journeys.metadata, timeout=30)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(field_violations(caught.value)) == violations


def test_list_path_persons_refuses_a_token_of_another_node(journeys: Journeys) -> None:
    log = random_log(6, START)
    journeys.write(*(to_pb(e) for e in log))
    request = request_of(RefQuery())
    series = journeys.stub.QueryPaths(request, metadata=journeys.metadata, timeout=30).series[0]
    first, second = series.nodes[0], series.nodes[1]
    page = journeys.stub.ListPathPersons(
        pb.ListPathPersonsRequest(query=request, node_id=first.id, page_size=1),
        metadata=journeys.metadata,
        timeout=30,
    )
    assert page.next_page_token
    with pytest.raises(grpc.RpcError) as caught:
        journeys.stub.ListPathPersons(
            pb.ListPathPersonsRequest(
                query=request,
                node_id=second.id,
                breakdown_value=analytics_pb2.BreakdownValue(),
                page_token=page.next_page_token,
            ),
            metadata=journeys.metadata,
            timeout=30,
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_reason(caught.value) == "INVALID_PAGE_TOKEN"
