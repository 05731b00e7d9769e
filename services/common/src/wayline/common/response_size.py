"""How much of a list fits one response: gRPC clients refuse a message past 4 MiB unless told otherwise
(`grpc.max_receive_message_length`), and our servers refuse to send one past `WAYLINE_MAX_MESSAGE_BYTES`.
A page of 1,000 events of 25 KB (a rich Segment payload) was 25 MB: the server failed to send it
(RESOURCE_EXHAUSTED "Sent message larger than max") and no page size the caller could guess was safe. Pages
and chunks stop at RESPONSE_BUDGET_BYTES instead; the page token (or the next chunk) carries on."""

from __future__ import annotations

from collections.abc import Sequence

from google.protobuf.message import Message

__all__ = ["RESPONSE_BUDGET_BYTES", "fitting"]

RESPONSE_BUDGET_BYTES = 3 * 1024 * 1024  # under a default client's 4 MiB, with room for the other fields
_ELEMENT_OVERHEAD = 6  # a repeated field's tag and length prefix, at most, per element


def fitting(messages: Sequence[Message], budget: int = RESPONSE_BUDGET_BYTES) -> int:
    """How many of `messages`, from the first, a repeated field holds within `budget` bytes: at least one
    (a single message is bounded by the limits of what was written), all of them when they fit."""
    used = 0
    for count, message in enumerate(messages):
        used += message.ByteSize() + _ELEMENT_OVERHEAD
        if used > budget and count > 0:
            return count
    return len(messages)
