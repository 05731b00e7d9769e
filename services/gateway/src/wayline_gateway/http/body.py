"""An HTTP request body → parsed JSON, within Segment's size limits, gzip or not.

The limits apply to the JSON as the sender wrote it (decompressed), as Segment's do: 32 KB for one call,
500 KB for a batch. Decompression stops one byte past the limit, so a small gzip bomb costs at most the
limit in memory, never the size it claims to expand to.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

__all__ = ["BodyError", "decode", "parse_json", "too_large"]


class BodyError(Exception):
    """The body cannot be read: too large, not valid gzip, or not JSON (HTTP 400, as Segment answers)."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason


def too_large(limit: int) -> BodyError:
    return BodyError(f"the request body is larger than {limit} bytes (decompressed)", "TOO_LARGE")


def decode(raw: bytes, encoding: str, limit: int) -> bytes:
    """The body's bytes after `Content-Encoding` (gzip, deflate or none), at most `limit` of them."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        if len(raw) > limit:
            raise too_large(limit)
        return raw
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise BodyError(f"Content-Encoding {encoding!r} is not supported; send gzip or none", "BAD_ENCODING")
    # wbits: 16 + MAX_WBITS reads a gzip wrapper; 32 + MAX_WBITS auto-detects zlib or gzip (for deflate).
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS if "gzip" in encoding else 32 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(raw, limit + 1)
    except zlib.error as error:
        raise BodyError(f"the body is not valid {encoding} data: {error}", "BAD_ENCODING") from None
    if len(data) > limit or inflater.unconsumed_tail:
        raise too_large(limit)
    if not inflater.eof:
        raise BodyError(f"the {encoding} body is truncated", "BAD_ENCODING")
    return data


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_json(data: bytes) -> Any:
    """The JSON value of `data` (UTF-8). NaN and Infinity, which Python would accept, are refused: no JSON
    reader downstream could read them back."""
    try:
        return json.loads(data, parse_constant=_no_constants)
    except (ValueError, RecursionError) as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise BodyError(f"the body is not valid JSON: {error}", "MALFORMED_JSON") from None
