"""The patterns of a feature spec's MATCHES_REGEX property filters, which analytics.proto defines as RE2
("matches the RE2 regular expression"), as journeys evaluates them in ClickHouse for the offline features
(ADR 22's parity, ADR 72).

The spec compiler checks them with RE2 (`google-re2`, `pattern_problem`) and the online matcher searches event
values with it (`searcher`): RE2 runs in time linear in the value, where Python's backtracking `re` takes
exponential time on patterns such as `(a+)+$`, on every event the online state observes, and accepts syntax
RE2 refuses (backreferences, lookaround), which journeys then refuses offline. "Matches" is a search, as in
journeys' `match()`: the pattern may match any part of the value (`^` and `$` anchor it).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import re2
import structlog

__all__ = ["pattern_problem", "searcher"]

log = structlog.get_logger("wayline.decision.features")

_PATTERNS_CACHED = 4_096
# Only whether a value matches is asked (no captures); a refused pattern is reported as a field violation (or
# logged once by `searcher`), not written to stderr by the library as well. RE2's own memory bound (8 MiB
# per pattern, `max_mem`) refuses patterns whose program would be larger.
_OPTIONS = re2.Options()
_OPTIONS.never_capture = True
_OPTIONS.log_errors = False

Search = Callable[[str], bool]


def _message(exc: Exception) -> str:
    """RE2's own words, such as `invalid perl operator: (?=` (the library gives bytes)."""
    message = exc.args[0] if exc.args else exc
    return message.decode(errors="replace") if isinstance(message, bytes) else str(message)


def pattern_problem(pattern: str) -> str | None:
    """Why RE2 refuses `pattern`, or None when it compiles."""
    try:
        re2.compile(pattern, _OPTIONS)
    except re2.error as exc:
        return f"not an RE2 pattern: {_message(exc)}"
    return None


def _never(text: str) -> bool:
    return False


@functools.lru_cache(maxsize=_PATTERNS_CACHED)
def searcher(pattern: str) -> Search:
    """Whether `pattern` is found in a text, compiled once per pattern (the latest _PATTERNS_CACHED kept).

    A pattern RE2 refuses reaches here only from a spec restored into the online state (spec_compiler's
    `stored`), registered before specs were checked with RE2: its filter holds for no event, and the pattern
    is logged (`features.pattern_not_re2`, once per pattern while it stays cached), rather than run on `re`
    with its exponential cost on values the tenant's senders choose. A model whose spec holds it no longer
    loads (the compiler names the field), so no decision reads such a feature."""
    try:
        compiled = re2.compile(pattern, _OPTIONS)
    except re2.error as exc:
        log.warning("features.pattern_not_re2", pattern=pattern, error=_message(exc))
        return _never
    search = compiled.search
    return lambda text: search(text) is not None
