"""JSON values as the store's ClickHouse reads them back (json_values.py); the parity test checks the same
against ClickHouse itself, these pin the rules down."""

from __future__ import annotations

import pytest

from wayline_decision.features.json_values import MISSING, distinct_key, feature_value, number_text, raw_text


@pytest.mark.parametrize(
    ("number", "text"),
    [
        (1.0, "1"),
        (-0.0, "-0"),
        (0.1, "0.1"),
        (1e20, "100000000000000000000"),
        (1e21, "1e21"),
        (1.5e21, "1.5e21"),
        (-1e22, "-1e22"),
        (1e-6, "0.000001"),
        (1e-7, "1e-7"),
        (1.5e-7, "1.5e-7"),
        (123456.789, "123456.789"),
        (12345678901234567890.0, "12345678901234567000"),
        (5e-324, "5e-324"),
        (1080, "1080"),
    ],
)
def test_number_text_is_clickhouse_s(number: float, text: str) -> None:
    assert number_text(number) == text


def test_feature_values_are_the_json_values_read_back() -> None:
    assert feature_value(3.0) == 3.0
    assert isinstance(feature_value(3), float)
    assert str(feature_value(-0.0)) == "0.0"
    assert feature_value("été") == "été"
    assert feature_value(False) is False
    assert feature_value(None) is None
    # Objects and lists: compact, keys sorted, integral numbers as integers, nested -0 as 0.
    assert (
        feature_value({"b": 2.0, "a": [1.5, -0.0, {"d": None, "c": "x"}]})
        == '{"a":[1.5,0,{"c":"x","d":null}],"b":2}'
    )
    assert feature_value({"big": 1e21, "small": 1e-7}) == '{"big":1e+21,"small":1e-07}'


def test_distinct_keys_compare_json_values() -> None:
    assert distinct_key(1.0) == distinct_key(1) == distinct_key(1.0 + 0.0)
    assert distinct_key(0.0) == distinct_key(-0.0)
    assert distinct_key({"a": 1.0, "b": 2.0}) == distinct_key({"b": 2, "a": 1})
    assert len({distinct_key(v) for v in (1.0, "1", True, [1.0], {"a": 1.0}, None)}) == 6
    assert distinct_key(True) != distinct_key(1.0)


def test_raw_text_is_what_text_operators_read() -> None:
    assert raw_text("Abc") == "Abc"
    assert raw_text(125.0) == "125"
    assert raw_text(True) == "true"
    assert raw_text({"a": 1.0, "b": ["x"]}) == '{"a":1,"b":["x"]}'
    assert MISSING is not None
