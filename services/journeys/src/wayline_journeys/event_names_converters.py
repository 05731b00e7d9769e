"""ListEventNames: request → EventNamesQuery (every bad field reported at once), names → a page, and the
page tokens.

A page token (AIP-158, the kit's encoding) holds the last (event count, name) returned and a fingerprint of
the tenant, the range and the prefix, so a token used with another request is refused instead of paging
something else.
"""

from __future__ import annotations

import hashlib
from typing import Any

from wayline.common.errors import FieldViolation, InvalidArgument
from wayline.common.paging import decode_page_token, encode_page_token, invalid_page_token, page_size
from wayline.common.timestamps import to_timestamp
from wayline.journeys.v1 import journeys_service_pb2 as pb
from wayline_journeys import analytics_converters as convert
from wayline_journeys.event_names import EventNameCount, EventNamesCursor, EventNamesQuery

__all__ = ["event_names_query", "event_names_response"]

_PAGE_DEFAULT, _PAGE_MAX = 100, 1_000
_RPC = "ListEventNames"


def _fingerprint(tenant: str, request: pb.ListEventNamesRequest) -> str:
    bound = pb.ListEventNamesRequest(time_range=request.time_range, name_prefix=request.name_prefix)
    digest = hashlib.sha256(tenant.encode() + b"\0" + bound.SerializeToString(deterministic=True))
    return digest.hexdigest()[:24]


def _cursor(token: str, fingerprint: str) -> EventNamesCursor:
    fields: dict[str, Any] = decode_page_token(token, _RPC)
    last = fields.get("n")
    if fields.get("f") != fingerprint or not isinstance(last, list) or len(last) != 2:
        raise invalid_page_token(_RPC)
    count, name = last
    if not (isinstance(count, int) and isinstance(name, str)):
        raise invalid_page_token(_RPC)
    return EventNamesCursor(count, name)


def event_names_query(tenant: str, request: pb.ListEventNamesRequest) -> EventNamesQuery:
    """The query of a request (one name more than the page, to know whether another page follows)."""
    violations: list[FieldViolation] = []
    time_range = convert.time_range(request.time_range, "time_range", violations)
    if request.page_size < 0:
        violations.append(FieldViolation("page_size", "must be 0 (the default) or positive", "OUT_OF_RANGE"))
    if violations:
        raise InvalidArgument("the request is not valid; see the field violations", violations)
    after = _cursor(request.page_token, _fingerprint(tenant, request)) if request.page_token else None
    limit = page_size(request.page_size, default=_PAGE_DEFAULT, maximum=_PAGE_MAX)
    return EventNamesQuery(tenant, time_range, request.name_prefix, after, limit + 1)


def event_names_response(
    tenant: str, request: pb.ListEventNamesRequest, query: EventNamesQuery, found: list[EventNameCount]
) -> pb.ListEventNamesResponse:
    shown = found[: query.limit - 1]
    token = ""
    if len(found) == query.limit:
        last = shown[-1]
        token = encode_page_token({"n": [last.event_count, last.name], "f": _fingerprint(tenant, request)})
    return pb.ListEventNamesResponse(
        event_names=[
            pb.EventNameCount(
                name=n.name,
                event_count=n.event_count,
                person_count=n.person_count,
                last_seen=to_timestamp(n.last_seen),
            )
            for n in shown
        ],
        next_page_token=token,
    )
