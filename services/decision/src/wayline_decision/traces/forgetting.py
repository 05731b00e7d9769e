"""What the traces forget when identity's override feed reports a change of a person: the feature service's
follower (features/overrides.py) hands every page of a tenant's feed here too, before it acknowledges it.

- An erasure (`erased`): the person's identifier is forgotten and the person remembered as erased, so the
  trace writer and Feedback write nothing more for them (not even a trace that waits in the writer's buffer
  with an identifier looked up before), and their recent traces and feedback kept in memory are forgotten,
  so GetDecision and Feedback do not find their decisions (DECISION_NOT_FOUND).
- A merge, an unmerge, a split or a cancelled merge: both persons' identifiers are forgotten and asked of
  identity again, so a later event of theirs carries an identifier that is theirs now (after an unmerge,
  the one moved away would file it under the other person).

Replaying a page forgets again, which is harmless. Between the erasure and this process reading it (one poll
of the feed, WAYLINE_DECISION_OVERRIDE_POLL_SECONDS) a trace may still be written with the cached
identifier; the cache's expiry (WAYLINE_DECISION_PERSON_IDENTIFIER_CACHE_SECONDS) bounds that window when
the feed is not followed.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import structlog

from wayline.identity.v1 import person_override_pb2
from wayline_decision.traces.clients import PersonIdentifiers
from wayline_decision.traces.recent import RecentTraces

__all__ = ["TraceForgetting"]

log = structlog.get_logger("wayline.decision.traces")


class TraceForgetting:
    """An override listener (features/overrides.py) over the traces' person identifiers and recent traces."""

    def __init__(self, people: PersonIdentifiers, recent: RecentTraces) -> None:
        self._people = people
        self._recent = recent
        self._versions: dict[str, int] = {}
        self._lock = threading.Lock()

    def tenant_names(self) -> set[str]:
        """The tenants whose traces this process wrote or kept: their feed must be followed too."""
        return self._people.tenant_names() | self._recent.tenant_names()

    def apply_overrides(self, tenant: str, overrides: Sequence[person_override_pb2.PersonOverride]) -> None:
        erased = forgotten = 0
        for override in overrides:
            person = override.person_id
            if override.erased:
                self._people.erase(tenant, person)
                forgotten += self._recent.forget_person(tenant, person)
                erased += 1
            else:
                self._people.forget(tenant, person)
                self._people.forget(tenant, override.override_person_id)
        if overrides:
            with self._lock:
                self._versions[tenant] = max(self._versions.get(tenant, 0), *(o.version for o in overrides))
        if erased:
            log.info("decision.traces_erased", tenant=tenant, persons=erased, recent_decisions=forgotten)

    def version(self, tenant: str) -> int:
        """The highest version of the tenant's feed applied here (0: none)."""
        with self._lock:
            return self._versions.get(tenant, 0)
