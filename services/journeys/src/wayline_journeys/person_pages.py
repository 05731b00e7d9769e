"""Paging of the person lists behind an analytics answer (ListFunnelPersons, ListPathPersons).

Both page by person id (AIP-158, the kit's token encoding). A token holds the last id returned and a
fingerprint of the tenant and of the request less its paging and display fields, so a token used with another
query, series or node is refused instead of paging something else; both read one more id than they show, to
know whether a next page exists.
"""

from __future__ import annotations

import hashlib
from typing import Any, Protocol, TypeVar

from google.protobuf.message import Message

from wayline.common.errors import FieldViolation
from wayline.common.paging import decode_page_token, encode_page_token, invalid_page_token, page_size
from wayline.journeys.v1 import analytics_pb2
from wayline_journeys.analytics import SeriesKey

__all__ = [
    "breakdown_series",
    "cursor_after",
    "next_page",
    "page_bounds",
    "page_size_violations",
    "request_fingerprint",
    "unpaged",
]

_PAGE_DEFAULT, _PAGE_MAX = 100, 1_000


class PagedRequest(Protocol):
    page_size: int
    page_token: str


Paged = TypeVar("Paged", bound=Message)


def unpaged(request: Paged) -> Paged:
    """A copy of a person-list request without its page token and size: what its tokens are bound to."""
    bound = type(request)()
    bound.CopyFrom(request)
    bound.ClearField("page_token")
    bound.ClearField("page_size")
    return bound


def page_size_violations(request: PagedRequest) -> list[FieldViolation]:
    if request.page_size < 0:
        return [FieldViolation("page_size", "must be 0 (the default) or positive", "OUT_OF_RANGE")]
    return []


def page_bounds(request: PagedRequest, rpc: str, fingerprint: str) -> tuple[str, int]:
    """The last person id of the previous page ('' for the first) and how many ids to read: the page size
    (0 means 100, at most 1,000) and one more, to know whether a next page exists."""
    after = cursor_after(request.page_token, rpc, fingerprint)
    return after, page_size(request.page_size, default=_PAGE_DEFAULT, maximum=_PAGE_MAX) + 1


def request_fingerprint(tenant: str, bound: Message) -> str:
    """A short digest of `tenant` and `bound` (the request with its paging and display fields cleared)."""
    digest = hashlib.sha256(tenant.encode() + b"\0" + bound.SerializeToString(deterministic=True))
    return digest.hexdigest()[:24]


def cursor_after(page_token: str, rpc: str, fingerprint: str) -> str:
    """The last person id of the previous page ('' for the first); INVALID_ARGUMENT for a token that another
    request issued or that was tampered with."""
    if not page_token:
        return ""
    fields: dict[str, Any] = decode_page_token(page_token, rpc)
    if fields.get("f") != fingerprint or not isinstance(fields.get("after"), str):
        raise invalid_page_token(rpc)
    return str(fields["after"])


def next_page(found: list[str], limit: int, fingerprint: str) -> tuple[list[str], str]:
    """The ids to show (`limit - 1` at most: one more was read) and the next page's token ('' on the last)."""
    shown = found[: limit - 1]
    if len(found) < limit:
        return shown, ""
    return shown, encode_page_token({"after": shown[-1], "f": fingerprint})


def breakdown_series(value: analytics_pb2.BreakdownValue | None) -> SeriesKey | None:
    """The series a request names by its BreakdownValue; None (every series together) when it names none."""
    if value is None:
        return None
    return SeriesKey(value.value if not value.other else "", value.other, value.missing and not value.other)
