"""The persons erasures took, and when, in `erased_persons` (schema.py): what the sweep of erasure_sweep.py
reads to find an erased person's events stored after their erasure."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from wayline_journeys.erasure_sweep import ErasedPerson
from wayline_journeys.store.client import JourneyDatabase
from wayline_journeys.store.columns import as_utc

__all__ = ["ClickHouseErasedPersons"]

# The persons erased since {since} that have events again: the anchor lookup (schema.py) gets a row for each
# anchor an event of the person is stored under, and an erasure leaves the person none (it rebuilds the
# lookups of the anchors it erased events from). A person with events an override maps to someone else keeps
# those rows; the erasure's find tells them apart.
_STORED_AGAIN = """
SELECT tenant_id, person_id, max(erased_at) FROM erased_persons
WHERE erased_at >= {since:DateTime64(6, 'UTC')}
  AND (tenant_id, person_id) IN (
      SELECT tenant_id, person_id FROM person_anchors
      WHERE (tenant_id, person_id) IN (
          SELECT tenant_id, person_id FROM erased_persons WHERE erased_at >= {since:DateTime64(6, 'UTC')}
      )
  )
GROUP BY tenant_id, person_id
"""


class ClickHouseErasedPersons:
    """Satisfies ErasedPersonsMemory (person_changes.py) and ErasedPersons (erasure_sweep.py). A row per
    erasure until merges keep each person's latest (ReplacingMergeTree by tenant and person; reads take the
    max either way), kept for good: a person id is random and says nothing of the person."""

    def __init__(self, db: JourneyDatabase) -> None:
        self._db = db

    def remember(self, tenant: str, person_ids: Sequence[str]) -> None:
        now = datetime.now(UTC)
        self._db.insert(
            "erased_persons",
            [(tenant, person_id, now) for person_id in person_ids],
            ("tenant_id", "person_id", "erased_at"),
            "remembering an erased person",
        )

    def stored_again(self, within: timedelta) -> list[ErasedPerson]:
        rows = self._db.rows(
            _STORED_AGAIN, {"since": datetime.now(UTC) - within}, "looking for erased persons' events"
        )
        return [ErasedPerson(str(tenant), str(person), as_utc(at)) for tenant, person, at in rows]
