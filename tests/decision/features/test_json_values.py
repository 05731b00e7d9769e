"""JSON values as the store's ClickHouse reads them back (json_values.py); the parity test checks the same
against ClickHouse itself, these pin the rules down (numbers' text: tests/common/test_json_text.py)."""

from __future__ import annotations

from wayline_decision.features.json_values import distinct_key, feature_value


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
