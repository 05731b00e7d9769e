"""The contract's text of a JSON value for the text operators (wayline.common.json_text; ADR 77). That it is
ClickHouse's own text of every number is checked against ClickHouse in tests/journeys/test_matching.py;
these pin the layout down."""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wayline.common.json_text import number_text, text_of


@pytest.mark.parametrize(
    ("number", "text"),
    [
        (1.0, "1"),
        (2.5, "2.5"),
        (-0.0, "-0"),
        (0.0, "0"),
        (0.1, "0.1"),
        (1e15, "1000000000000000"),
        (1e16, "10000000000000000"),
        (1e20, "100000000000000000000"),
        (1e21, "1e21"),
        (1.5e21, "1.5e21"),
        (-1e22, "-1e22"),
        (123456789012345678901234567890.0, "1.2345678901234568e29"),
        (1e-4, "0.0001"),
        (1.5e-5, "0.000015"),
        (1e-6, "0.000001"),
        (1e-7, "1e-7"),
        (1.5e-7, "1.5e-7"),
        (123456.789, "123456.789"),
        (12345678901234567890.0, "12345678901234567000"),
        (1.7976931348623157e308, "1.7976931348623157e308"),
        (5e-324, "5e-324"),
        (1080, "1080"),  # an integer (a context's int32 field)
    ],
)
def test_number_text_is_clickhouse_s(number: float, text: str) -> None:
    assert number_text(number) == text


_LAYOUT = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]*[1-9])?|-?[1-9](\.[0-9]*[1-9])?e-?[1-9][0-9]*")


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_every_number_s_text_is_its_shortest_round_trip_in_ecmascript_s_layout(number: float) -> None:
    text = number_text(number)
    assert float(text) == number
    assert math.copysign(1, float(text)) == math.copysign(1, number)
    assert _LAYOUT.fullmatch(text), text
    # Shortest: as many significant digits as Python's repr, which writes the shortest round trip.
    significant = re.sub(r"e.*|[-.]", "", text).strip("0")
    assert len(significant) == len(re.sub(r"e.*|[-.]", "", repr(number)).strip("0"))
    assert ("e" in text) == (number != 0 and not 1e-6 <= abs(number) < 1e21)


def test_no_text_for_numbers_json_lacks() -> None:
    for number in (math.nan, math.inf, -math.inf):
        with pytest.raises(ValueError, match="not a JSON number"):
            number_text(number)


def test_text_of_every_json_value() -> None:
    assert [text_of(v) for v in ("Abc", "", 125.0, -0.0, 1e-7, True, False, None)] == [
        "Abc",
        "",
        "125",
        "-0",
        "1e-7",
        "true",
        "false",
        "null",
    ]
    assert text_of({"a": 1.0}) is None  # objects and lists have none
    assert text_of([]) is None
