"""ListPathPersons: the request → (PathsQuery, PersonsPage), the ids → a page, and the page tokens.

The node ids are PathNode.id as QueryPaths returns them (`{position}:{channel}:{label}`; neither a position
nor a channel holds a colon, so the label is everything after the second one). A page token (AIP-158, the
kit's encoding) holds the last person id returned and a fingerprint of the tenant and of the request less its
paging, so a token used with another query, series or node is refused instead of paging something else.
"""

from __future__ import annotations

from wayline.common.errors import FieldViolation, InvalidArgument
from wayline.event.v1 import event_pb2
from wayline.journeys.v1 import journeys_service_pb2 as pb
from wayline_journeys.converters import enum_name
from wayline_journeys.paths import PathsQuery, PathStep, PersonsPage
from wayline_journeys.paths_converters import paths_query
from wayline_journeys.person_pages import (
    breakdown_series,
    next_page,
    page_bounds,
    page_size_violations,
    request_fingerprint,
    unpaged,
)

__all__ = ["path_persons_request", "path_persons_response"]

_RPC = "ListPathPersons"
_CHANNELS = frozenset(
    enum_name(name, "CHANNEL_")
    for name, value in event_pb2.Channel.items()
    if value != event_pb2.CHANNEL_UNSPECIFIED
)


def _node(node_id: str, field: str, violations: list[FieldViolation]) -> tuple[int, PathStep] | None:
    """(position, step) of a PathNode id; a violation on `field` when it is not one."""
    position, _, rest = node_id.partition(":")
    channel, colon, label = rest.partition(":")
    # ASCII digits: str.isdigit alone takes `²`, which int() refuses.
    if not (position.isascii() and position.isdigit() and colon and channel in _CHANNELS):
        violations.append(
            FieldViolation(field, "a PathNode id: `{position}:{channel}:{label}`, e.g. `1:web:/pricing`")
        )
        return None
    return int(position), PathStep(label=label, channel=channel)


def _fingerprint(tenant: str, request: pb.ListPathPersonsRequest) -> str:
    bound = unpaged(request)
    for display_only in ("top_paths_limit", "edge_limit", "min_edge_count"):
        bound.query.ClearField(display_only)
    return request_fingerprint(tenant, bound)


def path_persons_request(tenant: str, request: pb.ListPathPersonsRequest) -> tuple[PathsQuery, PersonsPage]:
    """The query and page of a ListPathPersonsRequest; INVALID_ARGUMENT names every bad field."""
    violations: list[FieldViolation] = []
    query: PathsQuery | None = None
    try:
        query = paths_query(tenant, request.query, "query.")
    except InvalidArgument as error:
        violations.extend(error.violations)
    node = _node(request.node_id, "node_id", violations)
    target = None
    if request.target_node_id:
        target = _node(request.target_node_id, "target_node_id", violations)
        if node is not None and target is not None and target[0] != node[0] + 1:
            violations.append(FieldViolation("target_node_id", "a node at the position after `node_id`'s"))
    violations.extend(page_size_violations(request))
    if violations or query is None or node is None:
        raise InvalidArgument("the request is not valid; see the field violations", violations)
    after, limit = page_bounds(request, _RPC, _fingerprint(tenant, request))
    series = breakdown_series(request.breakdown_value if request.HasField("breakdown_value") else None)
    position, step = node
    page = PersonsPage(series, position, step, target[1] if target else None, after, limit)
    return query, page


def path_persons_response(
    tenant: str, request: pb.ListPathPersonsRequest, found: list[str], page: PersonsPage
) -> pb.ListPathPersonsResponse:
    """The first `limit - 1` ids (one more was read to know whether a next page exists)."""
    shown, token = next_page(found, page.limit, _fingerprint(tenant, request))
    return pb.ListPathPersonsResponse(person_ids=shown, next_page_token=token)
