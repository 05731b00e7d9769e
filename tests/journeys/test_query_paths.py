"""QueryPaths and ListPathEdges over gRPC against the plain-Python reference on random event logs, edge
paging, person overrides, and validation."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf import duration_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from tests.breadth import extra, seeds
from tests.journeys.analytics_requests import set_breakdown, set_time_range
from tests.journeys.conftest import Journeys, error_reason, field_violations, new_person, override
from tests.journeys.event_log import Ev, random_log, to_pb
from tests.journeys.paths_reference import Expected, RefQuery, Series, reference_paths
from tests.journeys.segments_support import (
    assert_segments_overlap,
    built_segments,
    delete_all_segments,
)
from tests.journeys.segments_support import count as did
from wayline.common.timestamps import MAX_TIMESTAMP_SECONDS
from wayline.event.v1 import event_pb2
from wayline.journeys.v1 import analytics_pb2, paths_pb2
from wayline.journeys.v1 import journeys_service_pb2 as pb

START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
Step = tuple[str, str]
EdgeKey = tuple[int, Step, Step]


def channel_value(name: str) -> event_pb2.Channel.ValueType:
    return event_pb2.Channel.Value(f"CHANNEL_{name.upper()}")


def channel_name(value: int) -> str:
    return event_pb2.Channel.Name(value).removeprefix("CHANNEL_").lower()  # type: ignore[arg-type]


def request_of(q: RefQuery) -> pb.QueryPathsRequest:
    """The request the reference query stands for, with every top path returned."""
    gap = duration_pb2.Duration()
    gap.FromTimedelta(q.gap)
    request = pb.QueryPathsRequest(
        depth=q.depth,
        cleaning_rules=[paths_pb2.PathCleaningRule(regex=r, label=label) for r, label in q.rules],
        session_gap=gap,
        node_property=q.node_property,
        collapse_repeats=q.collapse,
        channels=[channel_value(c) for c in q.channels],
        exclude_event_names=q.exclude,
        top_paths_limit=1000,
        min_edge_count=q.min_edge_count,
    )
    if q.start_name:
        request.start_event.event_name = q.start_name
        if q.start_channel:
            request.start_event.channels.append(channel_value(q.start_channel))
    if q.end_name:
        request.end_event.event_name = q.end_name
        if q.end_channel:
            request.end_event.channels.append(channel_value(q.end_channel))
    set_time_range(request.time_range, q.start, q.end)
    set_breakdown(request.breakdown, q.breakdown, q.limit, [name for name, _ in q.segments])
    return request


def step_of(step: paths_pb2.PathStep) -> Step:
    return (step.label, channel_name(step.channel))


def all_edges(
    journeys: Journeys, request: pb.QueryPathsRequest, series: paths_pb2.PathsSeries, page_size: int
) -> tuple[list[tuple[EdgeKey, int, timedelta, int]], dict[str, paths_pb2.PathNode]]:
    """The series' edges: those QueryPaths returned, then every page of ListPathEdges after them."""
    edges, nodes = list(series.edges), {n.id: n for n in series.nodes}
    token = series.next_edges_page_token
    while token:
        page: pb.ListPathEdgesResponse = journeys.stub.ListPathEdges(
            pb.ListPathEdgesRequest(
                query=request, breakdown_value=series.breakdown_value, page_size=page_size, page_token=token
            ),
            metadata=journeys.metadata,
            timeout=30,
        )
        assert page.total_size == series.edge_count
        edges.extend(page.edges)
        for node in page.nodes:
            assert nodes.setdefault(node.id, node) == node  # a node is the same on every page
        token = page.next_page_token
    found = []
    for edge in edges:
        source, target = nodes[edge.source_node_id], nodes[edge.target_node_id]
        assert target.position == source.position + 1
        key = (source.position, step_of(source.step), step_of(target.step))
        found.append((key, edge.count, edge.average_gap.ToTimedelta(), edge.loop_count))
    counts = [c for _, c, _, _ in found]
    assert counts == sorted(counts, reverse=True)  # the largest first, across pages
    return found, nodes


def assert_matches(journeys: Journeys, q: RefQuery, expected: Expected, edge_limit: int = 15) -> None:
    request = request_of(q)
    request.edge_limit = edge_limit
    response: pb.QueryPathsResponse = journeys.stub.QueryPaths(
        request, metadata=journeys.metadata, timeout=30
    )
    got = {
        (s.breakdown_value.value, s.breakdown_value.other, s.breakdown_value.missing): s
        for s in response.series
    }
    if not q.breakdown and not expected:
        expected = {("", False, False): Series()}  # one series without breakdown, even empty
    assert set(got) == set(expected)
    for key, want in expected.items():
        series = got[key]
        assert (series.path_count, series.person_count) == (want.path_count, len(want.persons)), key
        assert {tuple(step_of(s) for s in p.steps): (p.count, p.person_count) for p in series.top_paths} == {
            steps: (count, len(want.path_persons[steps])) for steps, count in want.paths.items()
        }
        edges, nodes = all_edges(journeys, request, series, page_size=40)
        keys = [k for k, _, _, _ in edges]
        assert len(keys) == len(set(keys)), "an edge came back twice"
        wanted = {k: v for k, v in want.edges.items() if v[0] >= q.min_edge_count}
        assert series.edge_count == len(wanted)
        assert {k: c for k, c, _, _ in edges} == {k: v[0] for k, v in wanted.items()}
        assert {k: loops for k, _, _, loops in edges} == {k: v[2] for k, v in wanted.items()}
        for k, count, gap, _ in edges:
            assert abs(gap - timedelta(microseconds=wanted[k][1] / count)) <= timedelta(microseconds=1)
        for node in nodes.values():
            count, drops = want.nodes[(node.position, step_of(node.step))]
            assert (node.count, node.drop_off_count) == (count, drops)


VARIANTS = {
    "defaults": RefQuery(),
    "start anchor, collapsed, cleaned": RefQuery(
        start_name="Product Viewed",
        collapse=True,
        depth=4,
        rules=((r"/product/[0-9]+", "/product/:id"), (r"^/help/(.*)$", "help: $1"), (r" Screen$", "")),
    ),
    "end anchor, channels, exclusions": RefQuery(
        end_name="Checkout", channels=("web", "mobile_app"), exclude=("Heartbeat",), depth=3
    ),
    "both anchors, node property, channel breakdown": RefQuery(
        start_name="Product Viewed",
        end_name="Purchased",
        depth=20,
        gap=timedelta(hours=8),
        node_property="properties.plan",
        breakdown="channel",
        limit=1,
    ),
    "property breakdown, range, min edge count": RefQuery(
        breakdown="properties.plan",
        limit=3,
        start=START + timedelta(hours=20),
        end=START + timedelta(days=2),
        min_edge_count=2,
        collapse=True,
        depth=6,
    ),
}


@pytest.mark.parametrize("seed", seeds(1, 2))
def test_query_paths_matches_the_reference(journeys: Journeys, seed: int) -> None:
    log = random_log(seed, START)
    journeys.write(*(to_pb(e) for e in log))
    for name, q in VARIANTS.items():
        expected = reference_paths(log, q)
        assert expected or extra(seed), name
        assert_matches(journeys, q, expected)


def test_query_paths_of_history_before_1970(journeys: Journeys) -> None:
    """Imported history across 1970's new year (negative epoch times in the walk, session gaps and ranges)
    matches the reference too."""
    shift = datetime(1969, 12, 31, 8, 0, tzinfo=UTC) - START
    log = random_log(3, START + shift)
    journeys.write(*(to_pb(e) for e in log))
    for name, variant in VARIANTS.items():
        q = replace(
            variant,
            start=variant.start and variant.start + shift,
            end=variant.end and variant.end + shift,
        )
        expected = reference_paths(log, q)
        assert expected, name
        assert_matches(journeys, q, expected)


def test_list_path_edges_returns_every_transition_exactly_once(journeys: Journeys) -> None:
    log = random_log(7, START, persons=20, max_events=20)
    journeys.write(*(to_pb(e) for e in log))
    q = RefQuery(depth=10)
    expected = reference_paths(log, q)[("", False, False)]
    assert len(expected.edges) > 40
    for edge_limit, page_size in ((1, 13), (10, 7), (2000, 100)):
        request = request_of(q)
        request.edge_limit = edge_limit
        series = journeys.stub.QueryPaths(request, metadata=journeys.metadata, timeout=30).series[0]
        assert len(series.edges) == min(edge_limit, len(expected.edges))
        assert bool(series.next_edges_page_token) == (edge_limit < len(expected.edges))
        edges, _ = all_edges(journeys, request, series, page_size)
        assert Counter(k for k, _, _, _ in edges) == Counter(set(expected.edges))  # each once, none missing
        # Every transition of every path is counted on its edge.
        transitions = Counter(
            (i, steps[i], steps[i + 1])
            for steps, n in expected.paths.items()
            for i in range(len(steps) - 1)
            for _ in range(n)
        )
        assert {k: c for k, c, _, _ in edges} == dict(transitions)


def test_list_path_edges_pages_from_the_largest_edge_without_a_token(journeys: Journeys) -> None:
    log = random_log(8, START)
    journeys.write(*(to_pb(e) for e in log))
    request = request_of(RefQuery())
    request.edge_limit = 3
    series = journeys.stub.QueryPaths(request, metadata=journeys.metadata, timeout=30).series[0]
    first: pb.ListPathEdgesResponse = journeys.stub.ListPathEdges(
        pb.ListPathEdgesRequest(query=request, page_size=3), metadata=journeys.metadata, timeout=30
    )
    assert list(first.edges) == list(series.edges)
    assert first.next_page_token == series.next_edges_page_token


def test_query_paths_follows_a_merge(journeys: Journeys) -> None:
    web, app = new_person(), new_person()
    at = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)
    log = [
        Ev(web, at, "00000000-0000-0000-0000-000000000001", "page", "", "web", "/home"),
        Ev(
            web,
            at + timedelta(minutes=1),
            "00000000-0000-0000-0000-000000000002",
            "track",
            "Product Viewed",
            "web",
        ),
        Ev(
            app,
            at + timedelta(minutes=2),
            "00000000-0000-0000-0000-000000000003",
            "track",
            "Added To Cart",
            "mobile_app",
        ),
        Ev(
            app,
            at + timedelta(minutes=3),
            "00000000-0000-0000-0000-000000000004",
            "track",
            "Purchased",
            "mobile_app",
        ),
    ]
    journeys.write(*(to_pb(e) for e in log))
    request = request_of(RefQuery())
    before = journeys.stub.QueryPaths(request, metadata=journeys.metadata, timeout=30).series[0]
    assert (before.path_count, before.person_count) == (2, 2)
    journeys.apply(override(app, web, 1))
    after = journeys.stub.QueryPaths(request, metadata=journeys.metadata, timeout=30).series[0]
    assert (after.path_count, after.person_count) == (1, 1)
    assert [step_of(s) for s in after.top_paths[0].steps] == [
        ("/home", "web"),
        ("Product Viewed", "web"),
        ("Added To Cart", "mobile_app"),  # the channel jump is an edge between two channels' nodes
        ("Purchased", "mobile_app"),
    ]
    merged = [replace(e, person=web) for e in log]
    assert_matches(journeys, RefQuery(), reference_paths(merged, RefQuery()))


@pytest.mark.parametrize(
    ("request_", "fields"),
    [
        (pb.QueryPathsRequest(depth=1), {"depth"}),
        (
            pb.QueryPathsRequest(depth=21, edge_limit=2001, top_paths_limit=-1),
            {"depth", "edge_limit", "top_paths_limit"},
        ),
        (
            pb.QueryPathsRequest(
                cleaning_rules=[
                    paths_pb2.PathCleaningRule(regex="ok", label="fine"),
                    paths_pb2.PathCleaningRule(regex=""),
                ]
            ),
            {"cleaning_rules[1].regex"},
        ),
        (pb.QueryPathsRequest(session_gap=duration_pb2.Duration(seconds=-1)), {"session_gap"}),
        (pb.QueryPathsRequest(session_gap=duration_pb2.Duration(seconds=8 * 86400)), {"session_gap"}),
        (pb.QueryPathsRequest(node_property="person.plan"), {"node_property"}),
        (
            pb.QueryPathsRequest(channels=[event_pb2.CHANNEL_UNSPECIFIED], min_edge_count=-1),
            {"channels", "min_edge_count"},
        ),
        (
            pb.QueryPathsRequest(
                start_event=analytics_pb2.EventMatcher(channels=[event_pb2.CHANNEL_UNSPECIFIED])
            ),
            {"start_event.channels"},
        ),
        # Were INTERNAL: an enum number the contract does not define, a time or a duration out of range.
        (pb.QueryPathsRequest(channels=[99]), {"channels"}),  # type: ignore[list-item]
        (
            pb.QueryPathsRequest(start_event=analytics_pb2.EventMatcher(event_type=42)),  # type: ignore[arg-type]
            {"start_event.event_type"},
        ),
        (pb.QueryPathsRequest(session_gap=duration_pb2.Duration(seconds=2**62)), {"session_gap"}),
        (
            pb.QueryPathsRequest(
                time_range=event_pb2.TimeRange(end=Timestamp(seconds=MAX_TIMESTAMP_SECONDS + 1))
            ),
            {"time_range.end"},
        ),
    ],
)
def test_query_paths_refuses_invalid_requests(
    journeys: Journeys, request_: pb.QueryPathsRequest, fields: set[str]
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        journeys.stub.QueryPaths(request_, metadata=journeys.metadata, timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(field_violations(caught.value)) == fields


def test_query_paths_names_the_cleaning_rules_re2_refuses(journeys: Journeys) -> None:
    rules = [
        paths_pb2.PathCleaningRule(regex="/product/[0-9]+", label="/product/:id"),
        paths_pb2.PathCleaningRule(regex="(?=lookahead)", label="x"),  # Python's re takes it, RE2 does not
        paths_pb2.PathCleaningRule(regex="/(a)", label="$2"),  # no second group
        paths_pb2.PathCleaningRule(regex="(unclosed", label="x"),
    ]
    with pytest.raises(grpc.RpcError) as caught:
        journeys.stub.QueryPaths(
            pb.QueryPathsRequest(cleaning_rules=rules), metadata=journeys.metadata, timeout=10
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(field_violations(caught.value)) == {
        "cleaning_rules[1].regex",
        "cleaning_rules[2].label",
        "cleaning_rules[3].regex",
    }
    with pytest.raises(grpc.RpcError) as caught:
        journeys.stub.ListPathEdges(
            pb.ListPathEdgesRequest(query=pb.QueryPathsRequest(cleaning_rules=rules[1:2])),
            metadata=journeys.metadata,
            timeout=10,
        )
    assert set(field_violations(caught.value)) == {"query.cleaning_rules[0].regex"}


def test_query_paths_cleaning_rule_replacements_use_groups_and_literals(journeys: Journeys) -> None:
    at = datetime(2026, 4, 2, 9, 0, tzinfo=UTC)
    person = new_person()
    journeys.write(
        to_pb(Ev(person, at, "00000000-0000-0000-0000-00000000000a", "page", "", "web", "/shop/42/item")),
        to_pb(
            Ev(
                person,
                at + timedelta(seconds=1),
                "00000000-0000-0000-0000-00000000000b",
                "track",
                "Cost $5",
                "web",
            )
        ),
    )
    request = pb.QueryPathsRequest(
        cleaning_rules=[
            paths_pb2.PathCleaningRule(regex=r"^/shop/([0-9]+)/(\w+)$", label=r"$2 in shop $1 \ $$x"),
            paths_pb2.PathCleaningRule(regex=r"\$([0-9])", label="$$$1.00"),
        ]
    )
    series = journeys.stub.QueryPaths(request, metadata=journeys.metadata, timeout=10).series[0]
    assert [s.label for s in series.top_paths[0].steps] == [r"item in shop 42 \ $x", "Cost $5.00"]


def test_list_path_edges_refuses_a_token_of_another_query(journeys: Journeys) -> None:
    log = random_log(3, START)
    journeys.write(*(to_pb(e) for e in log))
    request = request_of(RefQuery())
    request.edge_limit = 1
    token = (
        journeys.stub.QueryPaths(request, metadata=journeys.metadata, timeout=30)
        .series[0]
        .next_edges_page_token
    )
    assert token
    other = pb.QueryPathsRequest()
    other.CopyFrom(request)
    other.depth = 3
    for query, value, page_token in (
        (other, analytics_pb2.BreakdownValue(), token),
        (request, analytics_pb2.BreakdownValue(value="web"), token),
        (request, analytics_pb2.BreakdownValue(), "not-a-token"),
    ):
        with pytest.raises(grpc.RpcError) as caught:
            journeys.stub.ListPathEdges(
                pb.ListPathEdgesRequest(query=query, breakdown_value=value, page_token=page_token),
                metadata=journeys.metadata,
                timeout=10,
            )
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error_reason(caught.value) == "INVALID_PAGE_TOKEN"
    # The display limits are not part of the query a token is bound to.
    request.edge_limit = 50
    journeys.stub.ListPathEdges(
        pb.ListPathEdgesRequest(query=request, page_token=token), metadata=journeys.metadata, timeout=10
    )


def test_query_paths_breaks_down_by_segment_membership(journeys: Journeys) -> None:
    """A person's paths count in each segment they are in, and in the `missing` series when in none; every
    listed segment keeps its series whatever the limit."""
    log = random_log(5, START)
    journeys.write(*(to_pb(e) for e in log))
    try:
        segments = built_segments(
            journeys,
            ("bought", did("Purchased")),
            ("signed-up", did("Signed Up")),
            ("never", did("Never Done")),
        )
        assert_segments_overlap(segments, {e.person for e in log})
        segments += (("segments/no-such-segment", frozenset()),)
        for q in (
            RefQuery(breakdown="segment", segments=segments, limit=1),
            RefQuery(
                start_name="Product Viewed", depth=3, collapse=True, breakdown="segment", segments=segments
            ),
        ):
            expected = reference_paths(log, q)
            assert {("segments/bought", False, False), ("", False, True)} <= set(expected), q
            assert_matches(journeys, q, expected)
    finally:
        delete_all_segments(journeys)


def test_query_paths_without_events_returns_one_empty_series(journeys: Journeys) -> None:
    response = journeys.stub.QueryPaths(pb.QueryPathsRequest(), metadata=journeys.metadata, timeout=10)
    assert len(response.series) == 1
    assert (response.series[0].path_count, len(response.series[0].edges)) == (0, 0)
