"""The patterns of a flow's MATCHES_REGEX property filters, which analytics.proto defines as RE2 ("matches the
RE2 regular expression"), as journeys evaluates them in ClickHouse (ADR 72).

They are checked with RE2 (`google-re2`) whenever a definition is validated (CreateFlow, UpdateFlow,
PublishFlow, SimulateFlow: filters.py asks `pattern_problem`), and the runtime searches event values with
RE2 (`searcher`): RE2 runs in time linear in the value, where Python's backtracking `re` takes exponential
time on patterns such as `(a+)+$` and values anyone with a write key chooses. "Matches" is a search, as in
journeys' `match()`: the pattern may match any part of the value (anchor it with `^` and `$` to match the
whole).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import re2
import structlog

__all__ = ["MATCHES_REGEX", "pattern_problem", "searcher"]

log = structlog.get_logger("wayline.orchestrator.flows.patterns")

MATCHES_REGEX = "FILTER_OPERATOR_MATCHES_REGEX"
_PATTERNS_CACHED = 4_096
# Only whether a value matches is asked (no captures); a refused pattern is reported as a field violation (or
# logged once by `searcher`), not written to stderr by the library as well. RE2's own memory bound (8 MiB
# per pattern, `max_mem`) refuses patterns whose program would be larger.
_OPTIONS = re2.Options()
_OPTIONS.never_capture = True
_OPTIONS.log_errors = False

Search = Callable[[str], bool]


def _compile(pattern: str) -> Any:
    return re2.compile(pattern, _OPTIONS)


def _message(exc: Exception) -> str:
    """RE2's own words, such as `missing ): (unclosed` (the library gives bytes)."""
    message = exc.args[0] if exc.args else exc
    return message.decode(errors="replace") if isinstance(message, bytes) else str(message)


def pattern_problem(pattern: str) -> str | None:
    """Why RE2 refuses `pattern`, or None when it compiles."""
    try:
        _compile(pattern)
    except re2.error as exc:
        return f"not an RE2 pattern: {_message(exc)}"
    return None


def _never(text: str) -> bool:
    return False


@functools.lru_cache(maxsize=_PATTERNS_CACHED)
def searcher(pattern: str) -> Search:
    """Whether `pattern` is found in a text, compiled once per pattern (the latest _PATTERNS_CACHED kept).

    A pattern RE2 refuses can only be in a definition saved before definitions were checked with RE2 (they
    were not checked at all, and ran on Python's `re`). Such a filter holds for no event, and the pattern is
    logged (`orchestrator.flows.pattern_not_re2`, once per pattern while it stays cached): running it on `re`
    would keep the exponential cost on values the tenant's senders choose, and raising would fail every
    ObserveEvents batch holding a matching event (ingest retries it, every tenant's events with it). The flow
    keeps running otherwise; publishing it again requires a pattern RE2 accepts."""
    try:
        compiled = _compile(pattern)
    except re2.error as exc:
        log.warning("orchestrator.flows.pattern_not_re2", pattern=pattern, error=_message(exc))
        return _never
    search = compiled.search
    return lambda text: search(text) is not None
