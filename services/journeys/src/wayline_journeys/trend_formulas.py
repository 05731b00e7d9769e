"""Trend formulas: lines computed from a trend's series, period by period, as PostHog's and Amplitude's
formulas are (`B / A * 100`: the share of A's persons who did B).

An expression holds the series' letters (A for the first series, B for the second, …), numbers, `+ - * /`,
unary minus and parentheses, parsed once into a tree (never `eval`). A value is missing (None) when an
operand is, when it divides by zero or when it is not finite, as a property math's point without values is.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from string import ascii_uppercase
from typing import TypeAlias

__all__ = [
    "MAX_EXPRESSION_LENGTH",
    "Formula",
    "FormulaError",
    "parse_formula",
]

MAX_EXPRESSION_LENGTH = 200

_TOKEN = re.compile(r"\s*(?:(?P<number>\d+(?:\.\d*)?|\.\d+)|(?P<letter>[A-Za-z])|(?P<op>[-+*/()]))")
_OPERATORS: dict[str, Callable[[float, float], float]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
}


class FormulaError(ValueError):
    """An expression that does not parse, with where (0-based character) and why."""

    def __init__(self, reason: str, position: int) -> None:
        super().__init__(f"{reason} at character {position + 1}")
        self.position = position


@dataclass(frozen=True)
class _Number:
    value: float


@dataclass(frozen=True)
class _Series:
    index: int


@dataclass(frozen=True)
class _Negated:
    operand: _Node


@dataclass(frozen=True)
class _Binary:
    operator: str
    left: _Node
    right: _Node


_Node: TypeAlias = _Number | _Series | _Negated | _Binary


def _value(node: _Node, values: Sequence[float | None]) -> float | None:
    if isinstance(node, _Number):
        return node.value
    if isinstance(node, _Series):
        return values[node.index]
    if isinstance(node, _Negated):
        found = _value(node.operand, values)
        return None if found is None else -found
    left, right = _value(node.left, values), _value(node.right, values)
    if left is None or right is None or (node.operator == "/" and right == 0):
        return None
    return _OPERATORS[node.operator](left, right)


@dataclass(frozen=True)
class Formula:
    """A parsed expression over the series of a trend, and the label its results carry."""

    label: str
    expression: str
    tree: _Node
    series: frozenset[int]  # the indexes of the series it names

    def evaluate(self, values: Sequence[float | None]) -> float | None:
        """The expression with each series' letter taking `values[index]`; None when undefined."""
        try:
            found = _value(self.tree, values)
        except OverflowError:
            return None
        return found if found is not None and math.isfinite(found) else None


class _Parser:
    """Recursive descent over the tokens: sum := product (('+'|'-') product)*; product := unary (('*'|'/')
    unary)*; unary := '-' unary | atom; atom := number | letter | '(' sum ')'."""

    def __init__(self, text: str, series: int) -> None:
        self._series = series
        self._tokens: list[tuple[str, str, int]] = []
        position = 0
        while position < len(text):
            if text[position:].strip() == "":
                break
            found = _TOKEN.match(text, position)
            if found is None:
                raise FormulaError(f"unexpected {text[position:].lstrip()[0]!r}", _skip(text, position))
            kind = found.lastgroup or ""
            self._tokens.append((kind, found.group(kind), found.start(kind)))
            position = found.end()
        self._end = len(text)
        self._next = 0
        self.named: set[int] = set()

    def _peek(self) -> tuple[str, str, int]:
        return self._tokens[self._next] if self._next < len(self._tokens) else ("end", "", self._end)

    def _take(self) -> tuple[str, str, int]:
        found = self._peek()
        self._next += 1
        return found

    def parse(self) -> _Node:
        if not self._tokens:
            raise FormulaError("empty expression", 0)
        tree = self._sum()
        kind, text, position = self._peek()
        if kind != "end":
            raise FormulaError(f"unexpected {text!r}", position)
        return tree

    def _sum(self) -> _Node:
        tree = self._product()
        while self._peek()[1] in ("+", "-"):
            sign = self._take()[1]
            tree = _Binary(sign, tree, self._product())
        return tree

    def _product(self) -> _Node:
        tree = self._unary()
        while self._peek()[1] in ("*", "/"):
            sign = self._take()[1]
            tree = _Binary(sign, tree, self._unary())
        return tree

    def _unary(self) -> _Node:
        if self._peek()[1] == "-":
            self._take()
            return _Negated(self._unary())
        return self._atom()

    def _atom(self) -> _Node:
        kind, text, position = self._take()
        if kind == "number":
            return _Number(float(text))
        if kind == "letter":
            index = ascii_uppercase.index(text.upper())
            if index >= self._series:
                last = ascii_uppercase[self._series - 1]
                named = "only A" if self._series == 1 else f"A to {last}"
                raise FormulaError(f"{text.upper()} names no series ({named} here)", position)
            self.named.add(index)
            return _Series(index)
        if text == "(":
            tree = self._sum()
            closing, shown, at = self._take()
            if shown != ")":
                raise FormulaError("missing ')'" if closing == "end" else f"expected ')', not {shown!r}", at)
            return tree
        if kind == "end":
            raise FormulaError("the expression ends early", position)
        raise FormulaError(f"unexpected {text!r}", position)


def _skip(text: str, position: int) -> int:
    """The position of the first character at or after `position` that is not white space."""
    return position + len(text[position:]) - len(text[position:].lstrip())


def parse_formula(label: str, expression: str, series: int) -> Formula:
    """The formula `expression` over a trend of `series` series; FormulaError when it does not parse or
    names a series the trend lacks. The label defaults to the expression."""
    if len(expression) > MAX_EXPRESSION_LENGTH:
        raise FormulaError(f"longer than {MAX_EXPRESSION_LENGTH} characters", MAX_EXPRESSION_LENGTH)
    if not any(c.isalpha() for c in expression):
        # A formula of numbers alone is a constant, not a line of the trend.
        raise FormulaError("name at least one series (A, B, …)", _skip(expression, 0))
    parser = _Parser(expression, series)
    tree = parser.parse()
    return Formula(label or expression.strip(), expression.strip(), tree, frozenset(parser.named))
