"""The metric names a PromQL expression reads, for checking dashboards and alert rules against what the
services export. A small tokenizer, not a parser: it drops what is not a metric name (string literals,
label matchers, range and subquery brackets, the label lists of `by`/`without`/`on`/`ignoring`/`group_*`,
function calls, keywords, numbers) and keeps the identifiers left."""

from __future__ import annotations

import re

__all__ = ["balanced", "metric_names"]

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_LABEL_LIST = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_FUNCTION = re.compile(r"\b[a-zA-Z_][a-zA-Z0-9_]*\s*\(")
_IDENTIFIER = re.compile(r"(?<![\w.$])[a-zA-Z_:][a-zA-Z0-9_:]*")
_NUMBER_WORDS = {"inf", "nan", "Inf", "NaN"}
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left"}
_KEYWORDS |= {"group_right", "atan2", "start", "end"}
_PAIRS = {")": "(", "]": "[", "}": "{"}


def metric_names(expr: str) -> set[str]:
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub(" ", text)  # matchers hold label names and values, not metrics
    text = _RANGE.sub(" ", text)  # [5m], [$__rate_interval], subqueries' [1h:5m]
    text = _LABEL_LIST.sub(" ", text)
    text = _FUNCTION.sub("(", text)
    return {name for name in _IDENTIFIER.findall(text) if name not in _KEYWORDS | _NUMBER_WORDS}


def balanced(expr: str) -> bool:
    """Whether the brackets of `expr` (outside string literals) open and close in order, and every string
    literal is closed."""
    text = _STRING.sub('""', expr)
    if text.count('"') % 2 or "'" in text:
        return False
    stack: list[str] = []
    for char in text:
        if char in "([{":
            stack.append(char)
        elif char in _PAIRS and (not stack or stack.pop() != _PAIRS[char]):
            return False
    return not stack
