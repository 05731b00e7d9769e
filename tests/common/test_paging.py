"""Page tokens: what a service issued comes back as it was; anything else is INVALID_PAGE_TOKEN, never an
exception the server would answer INTERNAL for."""

from __future__ import annotations

import base64

import pytest

from wayline.common.paging import (
    MAX_PAGE_TOKEN_LENGTH,
    InvalidPageToken,
    decode_page_token,
    encode_page_token,
)


def _token(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def test_a_token_comes_back_as_issued() -> None:
    fields = {"after": [2**63 - 1, "p1"], "v": -(2**63), "f": "abc", "x": 1.5}
    assert decode_page_token(encode_page_token(fields), "ListThings") == fields


@pytest.mark.parametrize(
    "raw",
    [
        "[" * 100_000,  # nested deeper than the decoder recurses
        '{"after": 9223372036854775808}',  # one past int64
        '{"after": -9223372036854775809}',
        '{"t": Infinity, "e": "x"}',
        '{"t": NaN}',
        '{"t": -Infinity}',
        "[1, 2]",  # not an object
        "not json",
    ],
    ids=["nested", "int64-max+1", "int64-min-1", "infinity", "nan", "-infinity", "array", "text"],
)
def test_a_forged_token_is_refused(raw: str) -> None:
    with pytest.raises(InvalidPageToken) as refused:
        decode_page_token(_token(raw), "ListThings")
    assert refused.value.reason == "INVALID_PAGE_TOKEN"


def test_a_token_longer_than_any_issued_is_refused_before_decoding() -> None:
    longest = _token('{"f": "' + "a" * (MAX_PAGE_TOKEN_LENGTH * 3 // 4 - 20) + '"}')
    assert len(longest) <= MAX_PAGE_TOKEN_LENGTH
    assert decode_page_token(longest, "ListThings")["f"].startswith("a")
    with pytest.raises(InvalidPageToken):
        decode_page_token(longest + "AAAA", "ListThings")
