"""QueryPaths and ListPathEdges: requests → PathsQuery (every bad field reported at once), results →
responses, and the edge page tokens.

An edge page token (AIP-158, the kit's encoding) holds the last edge returned and a fingerprint of the tenant,
the query (less its display limits) and the series, so a token used with another query or series is refused
instead of paging something else.
"""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta
from typing import Any

from google.protobuf import duration_pb2

from wayline.common.errors import FieldViolation, InvalidArgument
from wayline.common.paging import decode_page_token, encode_page_token, invalid_page_token, page_size
from wayline.common.property_paths import EVENT_FIELDS, is_event_path
from wayline.common.timestamps import duration_violation
from wayline.event.v1 import event_pb2
from wayline.journeys.v1 import analytics_pb2, paths_pb2
from wayline.journeys.v1 import journeys_service_pb2 as pb
from wayline_journeys import analytics_converters as convert
from wayline_journeys.analytics import Breakdown, Population
from wayline_journeys.converters import channel_names, enum_name
from wayline_journeys.paths import (
    DEFAULT_SESSION_GAP,
    CleaningRule,
    EdgeCursor,
    EdgePage,
    InvalidCleaningRules,
    PathEdge,
    PathNode,
    PathsQuery,
    PathsSeries,
    PathStep,
    SeriesKey,
)

__all__ = [
    "MAX_CLEANING_RULES",
    "cleaning_rule_error",
    "edges_request",
    "edges_response",
    "paths_query",
    "paths_response",
    "replacement",
]

MAX_CLEANING_RULES = 50
MAX_SESSION_GAP = timedelta(days=7)
_DEPTH, _TOP_PATHS, _EDGES, _PAGE = (2, 20, 5), (1_000, 20), (2_000, 100), (2_000, 100)
_GROUP_REFERENCE = re.compile(r"\$(\$|[0-9])|\\")
_RPC = "ListPathEdges"
_CHANNEL_VALUES = {enum_name(name, "CHANNEL_"): value for name, value in event_pb2.Channel.items()}


def replacement(label: str) -> str:
    """The contract's replacement (`$1`..`$9` a group, `$0` the match, `$$` a dollar) in ClickHouse's
    syntax (`\\1`, a backslash doubled)."""

    def one(found: re.Match[str]) -> str:
        if found.group(0) == "\\":
            return "\\\\"
        return "$" if found.group(1) == "$" else "\\" + found.group(1)

    return _GROUP_REFERENCE.sub(one, label)


def _bounded(value: int, field: str, bounds: tuple[int, ...], violations: list[FieldViolation]) -> int:
    """`value`, 0 meaning the default (the last bound); out of range is a violation."""
    low, high, default = (1, *bounds) if len(bounds) == 2 else bounds
    if value == 0:
        return default
    if not low <= value <= high:
        violations.append(FieldViolation(field, f"{low} to {high}, or 0 for {default}", "OUT_OF_RANGE"))
    return value


def _session_gap(request: pb.QueryPathsRequest, prefix: str, violations: list[FieldViolation]) -> timedelta:
    if not request.HasField("session_gap"):
        return DEFAULT_SESSION_GAP
    bad = duration_violation(request.session_gap, f"{prefix}session_gap")
    if bad is not None:  # ToTimedelta would overflow
        violations.append(bad)
        return DEFAULT_SESSION_GAP
    gap = request.session_gap.ToTimedelta()
    if not timedelta(0) < gap <= MAX_SESSION_GAP:
        violations.append(
            FieldViolation(f"{prefix}session_gap", "more than 0 and at most 7 days", "OUT_OF_RANGE")
        )
    return gap


def _cleaning_rules(
    request: pb.QueryPathsRequest, prefix: str, violations: list[FieldViolation]
) -> tuple[CleaningRule, ...]:
    if len(request.cleaning_rules) > MAX_CLEANING_RULES:
        violations.append(
            FieldViolation(f"{prefix}cleaning_rules", f"at most {MAX_CLEANING_RULES} rules", "TOO_MANY")
        )
    for i, rule in enumerate(request.cleaning_rules):
        if not rule.regex:
            violations.append(
                FieldViolation(f"{prefix}cleaning_rules[{i}].regex", "must not be empty", "REQUIRED")
            )
    return tuple(CleaningRule(r.regex, replacement(r.label)) for r in request.cleaning_rules)


def paths_query(tenant: str, request: pb.QueryPathsRequest, prefix: str = "") -> PathsQuery:
    """The query of a QueryPathsRequest; INVALID_ARGUMENT names every bad field (under `prefix`), then
    FAILED_PRECONDITION for segments."""
    violations: list[FieldViolation] = []
    if request.node_property and not (
        request.node_property in EVENT_FIELDS or is_event_path(request.node_property)
    ):
        violations.append(
            FieldViolation(
                f"{prefix}node_property",
                f"an event field ({', '.join(sorted(EVENT_FIELDS))}) or a properties. or context. path",
            )
        )
    if request.min_edge_count < 0:
        violations.append(FieldViolation(f"{prefix}min_edge_count", "must not be negative", "OUT_OF_RANGE"))
    start = (
        convert.event_matcher(request.start_event, f"{prefix}start_event", violations)
        if request.HasField("start_event")
        else None
    )
    end = (
        convert.event_matcher(request.end_event, f"{prefix}end_event", violations)
        if request.HasField("end_event")
        else None
    )
    query = PathsQuery(
        tenant=tenant,
        start_event=start,
        end_event=end,
        depth=_bounded(request.depth, f"{prefix}depth", _DEPTH, violations),
        cleaning_rules=_cleaning_rules(request, prefix, violations),
        session_gap=_session_gap(request, prefix, violations),
        node_property=request.node_property,
        collapse_repeats=request.collapse_repeats,
        channels=channel_names(request.channels, f"{prefix}channels", violations),
        exclude_event_names=tuple(request.exclude_event_names),
        time_range=convert.time_range(request.time_range, f"{prefix}time_range", violations),
        breakdown=convert.breakdown(request.breakdown, f"{prefix}breakdown", violations)
        if request.HasField("breakdown")
        else Breakdown(),
        population=convert.population(request.population, f"{prefix}population", violations)
        if request.HasField("population")
        else Population(),
        top_paths_limit=_bounded(request.top_paths_limit, f"{prefix}top_paths_limit", _TOP_PATHS, violations),
        edge_limit=_bounded(request.edge_limit, f"{prefix}edge_limit", _EDGES, violations),
        min_edge_count=request.min_edge_count or 1,
    )
    if violations:
        raise InvalidArgument("the path analysis is invalid; see the field violations", violations)
    return query


def cleaning_rule_error(error: InvalidCleaningRules, prefix: str = "") -> InvalidArgument:
    return InvalidArgument(
        "cleaning rules are not valid RE2; see the field violations",
        [
            FieldViolation(f"{prefix}cleaning_rules[{i}].{part}", problem)
            for i, part, problem in error.problems
        ],
    )


def _fingerprint(tenant: str, request: pb.QueryPathsRequest, series: SeriesKey) -> str:
    """What a token is bound to: the tenant, the query less its display limits, the series."""
    bound = pb.QueryPathsRequest()
    bound.CopyFrom(request)
    bound.ClearField("top_paths_limit")
    bound.ClearField("edge_limit")
    digest = hashlib.sha256(tenant.encode() + b"\0" + bound.SerializeToString(deterministic=True))
    digest.update(repr((series.value, series.other, series.missing)).encode())
    return digest.hexdigest()[:24]


def _token(tenant: str, request: pb.QueryPathsRequest, series: SeriesKey, last: PathEdge) -> str:
    c = last.cursor
    return encode_page_token(
        {
            "q": _fingerprint(tenant, request, series),
            "e": [
                c.count,
                c.position,
                c.source_label,
                c.source_channel,
                c.target_label,
                c.target_channel,
            ],
        }
    )


def _cursor(token: str, fingerprint: str) -> EdgeCursor:
    fields: dict[str, Any] = decode_page_token(token, _RPC)
    edge = fields.get("e")
    if fields.get("q") != fingerprint or not isinstance(edge, list) or len(edge) != 6:
        raise invalid_page_token(_RPC)
    count, position, *texts = edge
    if not (isinstance(count, int) and isinstance(position, int) and all(isinstance(t, str) for t in texts)):
        raise invalid_page_token(_RPC)
    return EdgeCursor(count, position, *texts)


def _series_key(value: analytics_pb2.BreakdownValue) -> SeriesKey:
    return SeriesKey(value.value, value.other, value.missing)


def edges_request(
    tenant: str, request: pb.ListPathEdgesRequest
) -> tuple[PathsQuery, SeriesKey, EdgeCursor | None, int]:
    """(query, series, cursor, page size) of a ListPathEdgesRequest."""
    query = paths_query(tenant, request.query, "query.")
    limit = page_size(request.page_size, default=_PAGE[1], maximum=_PAGE[0])
    series = _series_key(request.breakdown_value)
    fingerprint = _fingerprint(tenant, request.query, series)
    return query, series, _cursor(request.page_token, fingerprint) if request.page_token else None, limit


def _step(step: PathStep) -> paths_pb2.PathStep:
    return paths_pb2.PathStep(
        label=step.label, channel=_CHANNEL_VALUES.get(step.channel, event_pb2.CHANNEL_UNSPECIFIED)
    )


def _node(node: PathNode) -> paths_pb2.PathNode:
    return paths_pb2.PathNode(
        id=node.id,
        position=node.position,
        step=_step(node.step),
        count=node.count,
        drop_off_count=node.drop_off_count,
    )


def _edge(edge: PathEdge) -> paths_pb2.PathEdge:
    gap = duration_pb2.Duration()
    gap.FromTimedelta(edge.average_gap)
    return paths_pb2.PathEdge(
        source_node_id=PathNode(edge.position, edge.source, 0, 0).id,
        target_node_id=PathNode(edge.position + 1, edge.target, 0, 0).id,
        count=edge.count,
        average_gap=gap,
        loop_count=edge.loop_count,
    )


def _series(tenant: str, request: pb.QueryPathsRequest, series: PathsSeries) -> paths_pb2.PathsSeries:
    key = series.key
    return paths_pb2.PathsSeries(
        breakdown_value=analytics_pb2.BreakdownValue(value=key.value, other=key.other, missing=key.missing),
        path_count=series.path_count,
        person_count=series.person_count,
        top_paths=[
            paths_pb2.PathSequence(
                steps=[_step(s) for s in p.steps], count=p.count, person_count=p.person_count
            )
            for p in series.top_paths
        ],
        nodes=[_node(n) for n in series.nodes],
        edges=[_edge(e) for e in series.edges],
        edge_count=series.edge_count,
        next_edges_page_token=_token(tenant, request, key, series.edges[-1])
        if series.more_edges and series.edges
        else "",
    )


def paths_response(
    tenant: str, request: pb.QueryPathsRequest, found: list[PathsSeries]
) -> pb.QueryPathsResponse:
    if not found and request.breakdown.dimension == analytics_pb2.BREAKDOWN_DIMENSION_UNSPECIFIED:
        found = [PathsSeries(SeriesKey(), 0, 0, (), (), (), 0)]  # one series without breakdown, even empty
    return pb.QueryPathsResponse(series=[_series(tenant, request, s) for s in found])


def edges_response(
    tenant: str, request: pb.ListPathEdgesRequest, series: SeriesKey, page: EdgePage
) -> pb.ListPathEdgesResponse:
    return pb.ListPathEdgesResponse(
        edges=[_edge(e) for e in page.edges],
        nodes=[_node(n) for n in page.nodes],
        next_page_token=_token(tenant, request.query, series, page.edges[-1])
        if page.more and page.edges
        else "",
        total_size=page.total_size,
    )
