"""ListDeadLetters' and RedriveDeadLetters' messages: the parent connector, page size and the opaque keyset
token (the last letter's dead time and key, bound to the connector so that a token cannot be replayed
against another's list), and a stored letter as the contract's DeadLetter."""

from __future__ import annotations

from wayline.common.paging import decode_page_token, encode_page_token, invalid_page_token, page_size
from wayline.event.v1 import event_pb2
from wayline.orchestrator.v1 import orchestrator_service_pb2 as pb
from wayline_orchestrator.connectors import DeadLetter
from wayline_orchestrator.connectors.catalogue import parse_name
from wayline_orchestrator.connectors.dead_letters import LetterPage
from wayline_orchestrator.converters import timestamp
from wayline_orchestrator.field_checks import text_violation

__all__ = ["dead_letter_message", "list_dead_letters_request", "list_dead_letters_response"]

_RPC = "ListDeadLetters"


def list_dead_letters_request(request: pb.ListDeadLettersRequest) -> tuple[str, tuple[int, str] | None, int]:
    """(the connector id, the (dead time, key) cursor to continue after, the page size)."""
    connector_id = parse_name(request.parent, "parent")
    limit = page_size(request.page_size, default=50, maximum=1_000)
    if not request.page_token:
        return connector_id, None, limit
    token = decode_page_token(request.page_token, _RPC)
    cursor = token.get("after")
    # Bound into SQL as it is: a bool is no BIGINT to PostgreSQL, a NUL no text (see contact_pages.py).
    if (
        token.get("parent") != connector_id
        or not isinstance(cursor, list)
        or len(cursor) != 2
        or type(cursor[0]) is not int
        or not isinstance(cursor[1], str)
        or text_violation("page_token", cursor[1]) is not None
    ):
        raise invalid_page_token(_RPC)
    return connector_id, (cursor[0], cursor[1]), limit


def _channel(name: str) -> int:
    return event_pb2.Channel.Value(name) if name in event_pb2.Channel.keys() else 0  # noqa: SIM118


def dead_letter_message(letter: DeadLetter) -> pb.DeadLetter:
    origin = letter.origin
    return pb.DeadLetter(
        idempotency_key=letter.message.idempotency_key,
        person_id=letter.message.recipient.person_id,
        flow=f"flows/{origin.flow_id}" if origin.flow_id else "",
        flow_step_id=origin.flow_step_id,
        channel=_channel(origin.channel),  # type: ignore[arg-type]
        dead_time=timestamp(letter.dead_time),
        attempts=letter.attempts,
        response_code=letter.response_code,
        reason=letter.reason,
        error_message=letter.error,
    )


def list_dead_letters_response(page: LetterPage, connector_id: str) -> pb.ListDeadLettersResponse:
    token = ""
    if page.more and page.letters:
        last = page.letters[-1]
        token = encode_page_token(
            {"after": [last.dead_time, last.message.idempotency_key], "parent": connector_id}
        )
    return pb.ListDeadLettersResponse(
        dead_letters=[dead_letter_message(letter) for letter in page.letters], next_page_token=token
    )
