"""The times an ordering property filter compares (analytics.proto's `greater_than` and the like with a time
for a bound; ADR 22's parity): one definition for journeys' store, the decision service's online matcher, the
orchestrator's flows and the checks of a filter's bound in each, so that a bound one of them accepts the
others read alike, and a stored string is a time to all of them or to none.

ASCII digits only (`\\d` is any Unicode digit in `re`, and `datetime.fromisoformat` refuses the others),
hours, minutes and seconds in range (ClickHouse's parser would roll 24:00 or a leap second over to the next
minute or day where Python refuses them) and a real date (not February 30): a bound that failed any of these
was once accepted by the decision service and then compared with None for every event carrying a time.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

__all__ = ["RFC3339_PATTERN", "STORED_TIME_PATTERN", "rfc3339_time", "stored_time"]

RFC3339_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]+)?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)
"""The shape of a time an ordering filter's bound must have: RFC 3339 with its offset."""
_RFC3339 = re.compile(RFC3339_PATTERN)

STORED_TIME_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([Tt ]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]+)?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})?)?$"
)
"""The shape of a stored string that ordering filters compare as a time: an RFC 3339 date-time, its offset
optional (UTC without one), or a date alone (its midnight, UTC), as senders write times (Segment's libraries
with an offset, exports from databases often without). ClickHouse matches it with RE2 (journeys'
store/matching.py); anything else ("3", "2026", "1700000000", "10/01/2026", "20261005") is not a time, where
ClickHouse's best-effort parser would read it as one."""
_STORED_TIME = re.compile(STORED_TIME_PATTERN)


def rfc3339_time(text: str) -> datetime | None:
    """The time `text` writes in RFC 3339 (RFC3339_PATTERN, and a real date), else None."""
    if not _RFC3339.fullmatch(text):  # not match: Python's `$` also matches before a final newline
        return None
    try:
        return datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        return None


def stored_time(text: str) -> datetime | None:
    """The time a stored string writes (STORED_TIME_PATTERN, and a real date), aware (UTC when it names no
    offset), else None."""
    if not _STORED_TIME.fullmatch(text):
        return None
    try:
        found = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        return None
    return found if found.tzinfo is not None else found.replace(tzinfo=UTC)
