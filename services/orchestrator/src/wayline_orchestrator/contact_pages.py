"""ListContacts' request and response: filters, page size and the opaque keyset token (the last contact's
time and id, bound to the filters so that a token cannot be replayed against another query)."""

from __future__ import annotations

from wayline.common.paging import decode_page_token, encode_page_token, invalid_page_token, page_size
from wayline.orchestrator.v1 import orchestrator_service_pb2 as pb
from wayline_orchestrator.contacts import ContactFilter, ContactPage
from wayline_orchestrator.converters import channel_name, checked_micros, contact_message
from wayline_orchestrator.field_checks import text_violation

__all__ = ["list_contacts_request", "list_contacts_response"]

_RPC = "ListContacts"


def _bound(where: ContactFilter) -> list[object]:
    return [where.person_id, where.start, where.end, where.channel]


def list_contacts_request(
    request: pb.ListContactsRequest,
) -> tuple[ContactFilter, tuple[int, str] | None, int]:
    """(the filters, the (time, id) cursor to continue after, the page size)."""
    limit = page_size(request.page_size, default=50, maximum=1_000)
    window = request.time_range
    where = ContactFilter(
        person_id=request.person_id,
        start=checked_micros(window.start, "time_range.start") if window.HasField("start") else None,
        end=checked_micros(window.end, "time_range.end") if window.HasField("end") else None,
        channel=channel_name(request.channel, "channel"),
    )
    if not request.page_token:
        return where, None, limit
    token = decode_page_token(request.page_token, _RPC)
    cursor = token.get("after")
    # The cursor is bound into SQL as it is: a bool is an int to Python but not a BIGINT to PostgreSQL, and
    # a NUL cannot be sent as its text; both engines refuse such a token alike (no service issues one).
    if (
        token.get("filters") != _bound(where)
        or not isinstance(cursor, list)
        or len(cursor) != 2
        or type(cursor[0]) is not int
        or not isinstance(cursor[1], str)
        or text_violation("page_token", cursor[1]) is not None
    ):
        raise invalid_page_token(_RPC)
    return where, (cursor[0], cursor[1]), limit


def list_contacts_response(page: ContactPage, where: ContactFilter) -> pb.ListContactsResponse:
    token = ""
    if page.more and page.contacts:
        last = page.contacts[-1]
        token = encode_page_token({"after": [last.contact_time, last.contact_id], "filters": _bound(where)})
    return pb.ListContactsResponse(
        contacts=[contact_message(c) for c in page.contacts], next_page_token=token, total_size=page.total
    )
