"""AIP-158 paging for tracking plans: page sizes and opaque, validated page tokens.

A token carries the id of the last plan of the previous page (keyset paging by id, which is the order of
resource names), wrapped so callers treat it as opaque: a version tag, base64url. A token that does not
decode to a well-formed plan id is refused with INVALID_ARGUMENT instead of silently restarting the list.
"""

from __future__ import annotations

import base64
import binascii
import json

from wayline.common.errors import FieldViolation, InvalidArgument
from wayline_ingest.plans.errors import InvalidPageToken
from wayline_ingest.plans.rules import PLAN_ID_PATTERN

__all__ = ["DEFAULT_PAGE_SIZE", "MAX_PAGE_SIZE", "decode_page_token", "encode_page_token", "page_size"]

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
_VERSION = "tp1"


def page_size(requested: int) -> int:
    """0 means the default; values above the maximum are coerced to it; negative ones are refused."""
    if requested < 0:
        raise InvalidArgument(
            "page_size must not be negative",
            [FieldViolation("page_size", "must be 0 (the default) or positive", "OUT_OF_RANGE")],
        )
    return min(requested or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def encode_page_token(after: str) -> str:
    raw = json.dumps({"v": _VERSION, "after": after}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_page_token(token: str) -> str:
    """The plan id a token resumes after; INVALID_ARGUMENT for anything this service did not issue."""
    try:
        raw = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        after = raw["after"] if isinstance(raw, dict) and raw.get("v") == _VERSION else None
    except (ValueError, binascii.Error, KeyError, UnicodeDecodeError):
        after = None
    if not isinstance(after, str) or not PLAN_ID_PATTERN.match(after):
        raise InvalidPageToken(
            "page_token is not one this service issued; pass next_page_token from the previous response",
            [FieldViolation("page_token", "not a token from a previous ListTrackingPlans response")],
        )
    return after
