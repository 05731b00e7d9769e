"""Regular expressions tenants write: identity's `validation_regex` and the MATCHES_REGEX property filters of
flows and feature specs. The contracts define them as RE2 (identity_rules.proto, analytics.proto), as
journeys evaluates them in ClickHouse, and RE2 (`google-re2`) is what every service checks and runs them with
(ADR 72): it matches in time linear in the value, where Python's backtracking `re` takes exponential time on
patterns such as `(a+)+$` and values anyone with a write key chooses, and it refuses syntax RE2 does not have
(backreferences, lookaround), which journeys would refuse offline.

Only whether a value matches is asked (no captures); a refused pattern is reported by the caller as a field
violation (or logged once by `searcher`), not written to stderr by the library as well. RE2's own memory
bound (8 MiB per pattern) refuses patterns whose program would be larger.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import re2
import structlog

__all__ = ["Search", "compile_pattern", "pattern_problem", "re2_message", "searcher"]

log = structlog.get_logger("wayline.common.patterns")

_PATTERNS_CACHED = 4_096
_OPTIONS = re2.Options()
_OPTIONS.never_capture = True
_OPTIONS.log_errors = False

Search = Callable[[str], bool]


def compile_pattern(pattern: str) -> Any:
    """`pattern` compiled with RE2 (the library's own type, untyped); re2.error when RE2 refuses it."""
    return re2.compile(pattern, _OPTIONS)


def re2_message(exc: Exception) -> str:
    """RE2's own words, such as `invalid perl operator: (?=` (the library gives bytes)."""
    message = exc.args[0] if exc.args else exc
    return message.decode(errors="replace") if isinstance(message, bytes) else str(message)


def pattern_problem(pattern: str) -> str | None:
    """Why RE2 refuses `pattern` (a field violation's description), or None when it compiles."""
    try:
        compile_pattern(pattern)
    except re2.error as exc:
        return f"not an RE2 pattern: {re2_message(exc)}"
    return None


def _never(text: str) -> bool:
    return False


@functools.lru_cache(maxsize=_PATTERNS_CACHED)
def searcher(pattern: str, refused_event: str) -> Search:
    """Whether `pattern` is found in a text ("matches" is a search, as journeys' `match()`: `^` and `$` anchor
    it), compiled once per pattern (the latest _PATTERNS_CACHED kept).

    A pattern RE2 refuses can only come from something stored before patterns were checked with RE2 (a flow
    version, a feature spec restored into the online state): its filter holds for no value, and the pattern is
    logged as `refused_event` (once per pattern while it stays cached), rather than run on `re` with its
    exponential cost on values the tenant's senders choose, or raised on every event it meets."""
    try:
        compiled = compile_pattern(pattern)
    except re2.error as exc:
        log.warning(refused_event, pattern=pattern, error=re2_message(exc))
        return _never
    search = compiled.search
    return lambda text: search(text) is not None
