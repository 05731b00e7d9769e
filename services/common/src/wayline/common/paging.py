"""AIP-158 page tokens, the same in every service: opaque to callers, validated on the way back.

A token is a small JSON object (the keyset cursor a list resumes after, plus whatever the service binds it
to) in URL-safe base64. A token that does not decode is refused with INVALID_ARGUMENT (reason
`INVALID_PAGE_TOKEN`, field `page_token`) instead of silently restarting the list. So is one no service
issues: longer than MAX_PAGE_TOKEN_LENGTH, holding NaN or Infinity, or an integer outside int64 (what every
store's integer columns hold), since a token is caller input like any other field.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from wayline.common.errors import FieldViolation, InvalidArgument

__all__ = [
    "MAX_PAGE_TOKEN_LENGTH",
    "InvalidPageToken",
    "decode_page_token",
    "encode_page_token",
    "invalid_page_token",
    "page_size",
]

# Far above any token a service issues (a cursor and a fingerprint, a few hundred characters, one wrapped
# in another at most), far below what would make decoding one costly.
MAX_PAGE_TOKEN_LENGTH = 4096
_INT64 = range(-(2**63), 2**63)


class InvalidPageToken(InvalidArgument):
    default_reason = "INVALID_PAGE_TOKEN"


def invalid_page_token(rpc: str) -> InvalidPageToken:
    """The error for a token `rpc` did not issue."""
    return InvalidPageToken(
        "page_token is not one this service issued; pass next_page_token from the previous page",
        [FieldViolation("page_token", f"not a token from a previous {rpc} response")],
    )


def encode_page_token(fields: Mapping[str, Any]) -> str:
    raw = json.dumps(dict(fields), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_page_token(token: str, rpc: str) -> dict[str, Any]:
    """The fields of a token `rpc` issued; InvalidPageToken for anything else."""
    if len(token) > MAX_PAGE_TOKEN_LENGTH:
        raise invalid_page_token(rpc)
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        fields = json.loads(raw, parse_int=_int64, parse_constant=_no_constant)
    # RecursionError: JSON nested deeper than the decoder's recursion allows, which no token is.
    except (ValueError, binascii.Error, UnicodeDecodeError, RecursionError) as exc:
        raise invalid_page_token(rpc) from exc
    if not isinstance(fields, dict):
        raise invalid_page_token(rpc)
    return fields


def _int64(text: str) -> int:
    value = int(text)
    if value not in _INT64:
        raise ValueError(f"{text} is outside int64")
    return value


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON a token holds")


_NEGATIVE_PAGE_SIZE = FieldViolation("page_size", "must be 0 (the default) or positive", "OUT_OF_RANGE")


def page_size(
    requested: int,
    *,
    default: int,
    maximum: int,
    error: type[InvalidArgument] = InvalidArgument,
    violation: FieldViolation = _NEGATIVE_PAGE_SIZE,
) -> int:
    """AIP-158: 0 means `default`, values above `maximum` are coerced to it, negative ones are refused (with
    `error` and `violation`, so that a service keeps the ErrorInfo reason and violation it documents)."""
    if requested < 0:
        raise error("page_size must not be negative", [violation])
    return min(requested or default, maximum)
