"""Trend formulas: the parser against an independent evaluation of random expression trees, its errors, and
QueryTrends' formula results over gRPC against formulas applied by hand to the plain-Python reference."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import timedelta

import grpc
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.journeys.conftest import Journeys, field_violations
from tests.journeys.test_query_trends import END, START, actual, request_of
from tests.journeys.trends_reference import Series, TQuery, reference_trend, to_pb, trend_log
from tests.rpc_errors import violations
from wayline.journeys.v1 import journeys_service_pb2 as pb
from wayline.journeys.v1 import trends_pb2
from wayline_journeys.trend_formulas import FormulaError, parse_formula

Value = float | None


def _divide(a: Value, b: Value) -> Value:
    return None if a is None or b is None or b == 0 else a / b


def _same(a: Value, b: Value) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9))


# A tree is a number, a series index, ("-", tree) or (operator, left, right).
Tree = float | int | tuple  # type: ignore[type-arg]

_LEAVES = st.one_of(
    st.integers(0, 3),
    st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.25, 100.0]),
)
_TREES = st.recursive(
    _LEAVES,
    lambda inner: st.one_of(
        st.tuples(st.just("-"), inner),
        st.tuples(st.sampled_from("+-*/"), inner, inner),
    ),
    max_leaves=12,
)


def _text(tree: Tree, letters: str) -> str:
    """The tree written out with every operation in parentheses, spaces and letter case varied."""
    if isinstance(tree, int):
        return letters[tree]
    if isinstance(tree, float):
        return repr(tree)
    if len(tree) == 2:
        return f"-({_text(tree[1], letters)})"
    operator, left, right = tree
    return f"( {_text(left, letters)}{operator} {_text(right, letters)})"


def _evaluate(tree: Tree, values: list[Value]) -> Value:
    if isinstance(tree, int):
        return values[tree]
    if isinstance(tree, float):
        return tree
    if len(tree) == 2:
        found = _evaluate(tree[1], values)
        return None if found is None else -found
    operator, left, right = tree
    a, b = _evaluate(left, values), _evaluate(right, values)
    if a is None or b is None:
        return None
    if operator == "/":
        return _divide(a, b)
    return {"+": a + b, "-": a - b, "*": a * b}[operator]


@given(
    _TREES,
    st.lists(st.one_of(st.none(), st.floats(-1e6, 1e6, allow_nan=False)), min_size=4, max_size=4),
    st.sampled_from(["ABCD", "abcd", "AbCd"]),
)
def test_a_formula_evaluates_as_its_tree(tree: Tree, values: list[Value], letters: str) -> None:
    if not any(c.isalpha() for c in _text(tree, letters)):
        tree = ("+", tree, 0)
    formula = parse_formula("", _text(tree, letters), 4)
    expected = _evaluate(tree, values)
    got = formula.evaluate(values)
    if expected is None or abs(expected) == float("inf") or expected != expected:
        assert got is None
    else:
        assert got == pytest.approx(expected, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize(
    ("expression", "values", "expected"),
    [
        ("A + B * C", [1.0, 2.0, 3.0], 7.0),  # * before +
        ("(A + B) * C", [1.0, 2.0, 3.0], 9.0),
        ("A - B - C", [10.0, 2.0, 3.0], 5.0),  # left to right
        ("A / B / C", [12.0, 2.0, 3.0], 2.0),
        ("-A * -B", [2.0, 3.0, 0.0], 6.0),
        ("--A", [2.0, 0.0, 0.0], 2.0),
        ("b / a * 100", [4.0, 1.0, 0.0], 25.0),
        ("A / B", [1.0, 0.0, 0.0], None),  # division by zero: no value
        ("A + C", [1.0, 0.0, None], None),  # an operand without a value
    ],
)
def test_formula_precedence_and_missing_values(expression: str, values: list[Value], expected: Value) -> None:
    assert parse_formula("", expression, 3).evaluate(values) == expected


def test_a_formula_that_overflows_has_no_value() -> None:
    formula = parse_formula("", "A * A * A", 1)
    assert formula.evaluate([1e200]) is None


def test_a_formula_is_labelled_by_its_expression_unless_named() -> None:
    assert parse_formula("", "  B / A ", 2).label == "B / A"
    assert parse_formula("conversion", "B / A", 2).label == "conversion"
    assert parse_formula("", "B / A + B", 2).series == frozenset({0, 1})


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("", "name at least one series (A, B, …) at character 1"),
        ("2 * 3", "name at least one series (A, B, …) at character 1"),
        ("A +", "the expression ends early at character 4"),
        ("A + D", "D names no series (A to C here) at character 5"),
        ("A $ B", "unexpected '$' at character 3"),
        ("(A + B", "missing ')' at character 7"),
        ("(A + B C", "expected ')', not 'C' at character 8"),
        ("A B", "unexpected 'B' at character 3"),
        ("A)", "unexpected ')' at character 2"),
        ("AB", "unexpected 'B' at character 2"),
        ("A" + " + A" * 60, "longer than 200 characters at character 201"),
    ],
)
def test_formula_errors_say_where_and_why(expression: str, message: str) -> None:
    with pytest.raises(FormulaError) as caught:
        parse_formula("", expression, 3)
    assert str(caught.value) == message


# The formula trend: A purchases, B purchasers, C EUR revenue, D the mean sentiment of calls. By channel, D
# has results for calls only: a formula takes what an empty period measures for a series without a result (0
# for counts and sums, no value for D's mean).
SERIES = (
    Series(("Purchased",)),
    Series(("Purchased",), "unique_persons"),
    Series(("Purchased",), "sum", "revenue", "EUR"),
    Series(("Call Ended",), "average", "sentiment_score"),
)
EMPTY: list[Value] = [0.0, 0.0, 0.0, None]  # what each series measures where it has no events
FORMULAS: list[tuple[str, str, Callable[[Value, Value, Value, Value], Value]]] = [
    ("revenue per purchaser", "C / B", lambda a, b, c, d: _divide(c, b)),
    ("", "a - 2*b", lambda a, b, c, d: None if a is None or b is None else a - 2 * b),
    ("", "(D + 0.5) * -A", lambda a, b, c, d: None if d is None or a is None else (d + 0.5) * -a),
]


@pytest.mark.parametrize(
    "q",
    [
        TQuery(SERIES, START, END, "week", "Europe/Paris"),
        TQuery(SERIES, START + timedelta(days=20), END, "day", "UTC", breakdown="channel", limit=2),
    ],
)
def test_query_trends_computes_formulas_from_the_series(journeys: Journeys, q: TQuery) -> None:
    log = trend_log(31, START)
    journeys.write(*(to_pb(e) for e in log))
    request = request_of(q)
    request.formulas.extend(trends_pb2.TrendFormula(label=label, expression=e) for label, e, _ in FORMULAS)
    response: pb.QueryTrendsResponse = journeys.stub.QueryTrends(
        request, metadata=journeys.metadata, timeout=30
    )

    reference = reference_trend(log, q)
    keys = list(dict.fromkeys(key[1:] for key in reference))
    got = actual(pb.QueryTrendsResponse(results=response.formula_results))
    expected_keys = set()
    for index, (_, _, by_hand) in enumerate(FORMULAS):
        for key in keys:
            lines = [reference.get((i, *key)) for i in range(len(SERIES))]
            if not any(lines):
                continue
            expected_keys.add((index, *key))
            measured = got[(index, *key)]
            assert measured.events == 0
            periods = len(next(line for line in lines if line).points)
            assert len(measured.points) == periods
            for n, (at, value, events) in enumerate(measured.points):
                operands = [line.points[n][1] if line else EMPTY[i] for i, line in enumerate(lines)]
                assert events == 0
                assert at == next(line for line in lines if line).points[n][0]
                assert _same(value, by_hand(*operands)), (index, key, n, value)
            totals = [line.total if line else EMPTY[i] for i, line in enumerate(lines)]
            assert _same(measured.total, by_hand(*totals)), (index, key)
    assert set(got) == expected_keys
    assert any(m.total is not None for m in got.values())
    assert any(p[1] is None for m in got.values() for p in m.points)  # D lacks values in some periods
    if q.breakdown:
        assert all(p[1] is None for p in got[(2, "web", False, False)].points)  # no calls on the web
        assert any(p[1] is not None for p in got[(2, "call_center", False, False)].points)
    labels = {r.series_index: r.label for r in response.formula_results}
    assert labels == {0: "revenue per purchaser", 1: "a - 2*b", 2: "(D + 0.5) * -A"}
    if q.breakdown:
        assert any(key[1] for key in got)  # `other` has its formula results too


def test_query_trends_refuses_invalid_formulas(journeys: Journeys) -> None:
    request = request_of(TQuery(SERIES[:2], START, END))
    request.formulas.extend(
        trends_pb2.TrendFormula(expression=e) for e in ("A + B", "A + C", "A +", "", "(A", "B / A")
    )
    with pytest.raises(grpc.RpcError) as caught:
        journeys.stub.QueryTrends(request, metadata=journeys.metadata, timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(field_violations(caught.value)) == {
        "formulas",
        "formulas[1].expression",
        "formulas[2].expression",
        "formulas[3].expression",
        "formulas[4].expression",
    }
    messages = violations(caught.value)
    assert messages["formulas[1].expression"].startswith("C names no series (A to B here) at character 5")
