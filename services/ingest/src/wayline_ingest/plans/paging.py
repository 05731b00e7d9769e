"""AIP-158 paging for tracking plans: page sizes and opaque, validated page tokens.

A token carries the id of the last plan of the previous page (keyset paging by id, which is the order of
resource names), wrapped so callers treat it as opaque: a version tag, base64url. A token that does not
decode to a well-formed plan id is refused with INVALID_ARGUMENT instead of silently restarting the list.
"""

from __future__ import annotations

from wayline.common import paging
from wayline_ingest.plans.rules import plan_id_problem

__all__ = ["DEFAULT_PAGE_SIZE", "MAX_PAGE_SIZE", "decode_page_token", "encode_page_token", "page_size"]

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
_VERSION = "tp1"


def page_size(requested: int) -> int:
    """0 means the default; values above the maximum are coerced to it; negative ones are refused."""
    return paging.page_size(requested, default=DEFAULT_PAGE_SIZE, maximum=MAX_PAGE_SIZE)


def encode_page_token(after: str) -> str:
    return paging.encode_page_token({"v": _VERSION, "after": after})


def decode_page_token(token: str) -> str:
    """The plan id a token resumes after; INVALID_ARGUMENT for anything this service did not issue."""
    raw = paging.decode_page_token(token, "ListTrackingPlans")
    after = raw.get("after") if raw.get("v") == _VERSION else None
    if not isinstance(after, str) or plan_id_problem(after, stored=True) is not None:
        raise paging.invalid_page_token("ListTrackingPlans")
    return after
