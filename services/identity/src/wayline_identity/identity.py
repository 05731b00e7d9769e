"""The identity service's domain façade: every operation as one transaction on a tenant's graph.

Writers of one tenant are serialised: on PostgreSQL by a transaction-scoped advisory lock keyed by the tenant
(so several replicas never create two profiles for one person nor lose an edge), on SQLite by its single
writer. Tenants never share a row: every statement is scoped by tenant. `validate_only` operations run the
whole change and roll it back, so what they report is exactly what the real call would do.
"""

from __future__ import annotations

import bisect
import hashlib
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from functools import partial
from typing import Any, TypeVar

from wayline.common.errors import Aborted, FieldViolation, InvalidArgument, Unavailable
from wayline.common.sql import Database, Transaction, migrate, unavailable_as
from wayline_identity import edits, resolver
from wayline_identity.erasure import Erasure, acknowledge, read_erasure, record_erasure
from wayline_identity.errors import ProfileNotFound
from wayline_identity.metrics import IdentityMetrics
from wayline_identity.model import (
    IdentifierPage,
    Key,
    MergeRecord,
    Override,
    Profile,
    ResolutionInput,
    ResolveOutcome,
)
from wayline_identity.rules import Rules, rules_etag
from wayline_identity.simulate import Simulation, simulate
from wayline_identity.store import reads
from wayline_identity.store.cache import OwnerCache
from wayline_identity.store.graph import Graph
from wayline_identity.store.rules_store import load_rules, save_rules
from wayline_identity.store.schema import MIGRATIONS

__all__ = ["Identity"]

T = TypeVar("T")
_RULES_TTL_SECONDS = 5.0


class _Rollback(Exception):
    def __init__(self, result: object) -> None:
        self.result = result


def _now_micros() -> int:
    return time.time_ns() // 1000


def _lock_key(tenant: str) -> int:
    return int.from_bytes(
        hashlib.blake2b(f"identity:{tenant}".encode(), digest_size=8).digest(), "big", signed=True
    )


def _refused(current: Rules, updated: Rules, fields: Sequence[str]) -> list[FieldViolation]:
    """The updated rules' problems the update answers for: those under a field it writes, and any it brings
    about. A problem the stored rules already had, in a field the update leaves alone, is not the caller's
    request: a `validation_regex` saved when patterns were checked with Python's `re` (ADR 72, ADR 78). It
    keeps judging values as before, and an update of `identifier_types` must fix it."""
    found = updated.violations()
    if not found:
        return found
    written = tuple(f"identity_rules.{name}" for name in fields)
    stored = {(v.field, v.description) for v in current.violations()}
    return [
        v
        for v in found
        if (v.field, v.description) not in stored
        or any(v.field == w or v.field.startswith((f"{w}.", f"{w}[")) for w in written)
    ]


class Identity:
    def __init__(
        self,
        db: Database,
        *,
        clock: Callable[[], int] = _now_micros,
        erasure_stores: Sequence[str] = (),
        on_erasure: Callable[[], None] = lambda: None,
        seen_granularity_seconds: float = 0.0,
        cache_identifiers: int = 0,
        metrics: IdentityMetrics | None = None,
    ) -> None:
        """`erasure_stores` are the stores besides identity that each erasure must reach (see erasure.py);
        `on_erasure` is told when one is recorded (it wakes the driver); `metrics` counts what commits."""
        self._db = db
        self._metrics = metrics
        self._clock = clock
        self._erasure_stores = tuple(erasure_stores)
        self._on_erasure = on_erasure
        self._seen_granularity = int(seen_granularity_seconds * 1_000_000)
        self._rules: dict[str, tuple[float, Rules]] = {}
        # Only on SQLite: one process writes it, so the cache can be exact (store/cache.py).
        self._cache = OwnerCache(cache_identifiers) if cache_identifiers and db.engine == "sqlite" else None

    def migrate(self) -> None:
        migrate(self._db, "identity", MIGRATIONS)

    @contextmanager
    def _graph(self, tenant: str) -> Iterator[tuple[Graph, Rules]]:
        applied = False
        try:
            with self._db.transaction() as tx:
                if self._db.engine == "postgresql":
                    tx.execute("SELECT pg_advisory_xact_lock(?)", (_lock_key(tenant),))
                graph = Graph(tx, tenant, self._clock(), self._cache)
                yield graph, self._rules_of(tx, tenant)
                graph.flush()
                if self._cache is not None:
                    # Still holding the write lock: the next transaction of the tenant sees the changes.
                    self._cache.apply(tenant, graph.pending())
                    applied = True
        except BaseException:
            if applied and self._cache is not None:
                self._cache.clear(tenant)  # the commit failed after the cache took the changes
            raise

    def _rules_of(self, tx: Transaction, tenant: str) -> Rules:
        """The tenant's rules, read at most every few seconds: they change rarely, and reading them cost
        a round trip per call. A change made on another replica applies here within `_RULES_TTL_SECONDS`."""
        cached = self._rules.get(tenant)
        now = time.monotonic()
        if cached is not None and now - cached[0] < _RULES_TTL_SECONDS:
            return cached[1]
        rules = load_rules(tx, tenant)
        self._rules[tenant] = (now, rules)
        return rules

    def _run(self, tenant: str, work: Callable[[Graph, Rules], T], *, validate_only: bool = False) -> T:
        try:
            with unavailable_as(_store_down), self._graph(tenant) as (g, rules):
                result = work(g, rules)
                if validate_only:
                    raise _Rollback(result)
                return result
        except _Rollback as rolled_back:
            return rolled_back.result  # type: ignore[return-value]

    # --- resolution ----------------------------------------------------------------------------------------
    def resolve(self, tenant: str, items: Sequence[ResolutionInput]) -> ResolveOutcome:
        outcome = self._run(
            tenant, lambda g, rules: resolver.resolve_batch(g, rules, items, self._seen_granularity)
        )
        if self._metrics is not None:
            self._metrics.resolved(outcome)
        return outcome

    # --- profiles ------------------------------------------------------------------------------------------
    def person_of(self, tenant: str, person_id: str = "", identifier: Key | None = None) -> str:
        """The canonical person of a person id or an identifier; ProfileNotFound when there is none."""
        return self._run(tenant, lambda g, rules: _find(g, rules, person_id, identifier))

    def get_profile(self, tenant: str, person_id: str = "", identifier: Key | None = None) -> Profile:
        def read(g: Graph, rules: Rules) -> Profile:
            person = _find(g, rules, person_id, identifier)
            profile = reads.read_profile(g.tx, tenant, person, rules)
            if profile is None:
                raise ProfileNotFound(f"person {person_id!r} does not exist")
            return profile

        return self._run(tenant, read)

    def list_identifiers(
        self,
        tenant: str,
        person_id: str = "",
        identifier: Key | None = None,
        *,
        after: tuple[int, int, str, str] | None,
        limit: int,
    ) -> IdentifierPage:
        """The profile's identifiers after the place `after` (None: from the first), at most `limit`."""

        def read(g: Graph, rules: Rules) -> IdentifierPage:
            person = _find(g, rules, person_id, identifier)
            held = reads.read_identifiers(g.tx, tenant, person, rules)
            place = partial(reads.identifier_order, rules)
            start = bisect.bisect_right(held, after, key=place) if after is not None else 0
            page = held[start : start + limit]
            more = start + limit < len(held)
            return IdentifierPage(person, page, len(held), place(page[-1]) if more else None)

        return self._run(tenant, read)

    def list_profiles(self, tenant: str, **query: Any) -> tuple[list[Profile], int]:
        def read(g: Graph, rules: Rules) -> tuple[list[Profile], int]:
            identifier = query.pop("identifier", None)
            if identifier is not None:
                key = rules.normalise(identifier)
                identifier = key if isinstance(key, tuple) else identifier
            return reads.list_profiles(g.tx, tenant, rules, identifier=identifier, **query)

        return self._run(tenant, read)

    def merge(
        self, tenant: str, persons: list[str], *, actor: str, reason: str, validate_only: bool = False
    ) -> tuple[Profile, list[MergeRecord], list[Override]]:
        def work(g: Graph, rules: Rules) -> tuple[Profile, list[MergeRecord], list[Override]]:
            survivor, records, changes = edits.manual_merge(g, rules, persons, actor, reason)
            profile = reads.read_profile(g.tx, tenant, survivor, rules)
            assert profile is not None
            return profile, records, changes

        merged = self._run(tenant, work, validate_only=validate_only)
        self._count(merged[1], validate_only)
        return merged

    def unmerge(
        self,
        tenant: str,
        person: str,
        identifier: Key,
        *,
        actor: str,
        reason: str,
        validate_only: bool = False,
    ) -> tuple[Profile, Profile, edits.Separated]:
        separated = self._run(
            tenant,
            lambda g, rules: self._both(
                g, rules, edits.unmerge_identifier(g, rules, person, identifier, actor=actor, reason=reason)
            ),
            validate_only=validate_only,
        )
        self._count([separated[2].record], validate_only)
        return separated

    def split(
        self, tenant: str, person: str, merge_id: str, *, actor: str, reason: str, validate_only: bool = False
    ) -> tuple[Profile, Profile, edits.Separated]:
        separated = self._run(
            tenant,
            lambda g, rules: self._both(g, rules, edits.split_profile(g, person, merge_id, actor, reason)),
            validate_only=validate_only,
        )
        self._count([separated[2].record], validate_only)
        return separated

    def _count(self, records: Sequence[MergeRecord], validate_only: bool) -> None:
        if self._metrics is not None and not validate_only:
            self._metrics.merged(records)

    @staticmethod
    def _both(g: Graph, rules: Rules, done: edits.Separated) -> tuple[Profile, Profile, edits.Separated]:
        kept = reads.read_profile(g.tx, g.tenant, done.person_id, rules)
        other = reads.read_profile(g.tx, g.tenant, done.other_person_id, rules)
        assert kept is not None
        assert other is not None
        return kept, other, done

    def delete(self, tenant: str, person: str, actor: str = "") -> edits.Erased:
        def work(g: Graph, rules: Rules) -> edits.Erased:
            erased = edits.delete_profile(g, person)
            erased.erasure_id = record_erasure(
                g.tx,
                tenant,
                person_ids=erased.person_ids,
                identifiers=erased.identifiers,
                identity_count=len(erased.identifiers),
                marker_version=max(o.version for o in erased.overrides),
                stores=self._erasure_stores,
                actor=actor,
                now=g.now,
            )
            return erased

        erased = self._run(tenant, work)
        self._on_erasure()
        return erased

    def erasure(self, tenant: str, erasure_id: str) -> Erasure:
        return self._run(tenant, lambda g, rules: read_erasure(g.tx, tenant, erasure_id))

    def acknowledge(self, tenant: str, consumer: str, version: int) -> int:
        """Move a feed consumer's cursor; the feed's head."""
        return self._run(tenant, lambda g, rules: acknowledge(g.tx, tenant, consumer, version, g.now))

    # --- rules ---------------------------------------------------------------------------------------------
    def rules(self, tenant: str) -> Rules:
        return self._run(tenant, lambda g, _: load_rules(g.tx, tenant))

    def update_rules(self, tenant: str, proposed: Rules, fields: Sequence[str], etag: str) -> Rules:
        def work(g: Graph, _: Rules) -> Rules:
            current = load_rules(g.tx, tenant)  # not the cached copy: the etag and revision must be exact
            if etag and etag != rules_etag(current):
                raise Aborted(
                    "the rules changed since they were read; read them again", reason="ETAG_MISMATCH"
                )
            changes = {name: getattr(proposed, name) for name in fields}
            updated = replace(current, **changes, revision=current.revision + 1)
            violations = _refused(current, updated, fields)
            if violations:
                raise InvalidArgument("the identity rules are invalid", violations)
            save_rules(g.tx, tenant, updated, g.now)
            return load_rules(g.tx, tenant)

        saved = self._run(tenant, work)
        self._rules.pop(tenant, None)  # after the commit, so that no call caches the old rules again
        return saved

    def simulate(self, tenant: str, proposed: Rules, start: int, end: int, sample: int) -> Simulation:
        return self._run(
            tenant,
            lambda g, current: simulate(g, current, proposed, start=start, end=end, sample=sample),
            validate_only=True,
        )

    # --- feed ----------------------------------------------------------------------------------------------
    def overrides(self, tenant: str, after_version: int, limit: int) -> tuple[list[Override], int]:
        def read(g: Graph, rules: Rules) -> tuple[list[Override], int]:
            return reads.list_overrides(g.tx, tenant, after_version, limit), reads.max_override_version(
                g.tx, tenant
            )

        return self._run(tenant, read)

    def override_heads(self, tenants: Sequence[str]) -> dict[str, int]:
        """The head of each tenant's override feed (0 for a tenant without overrides), read without the
        tenants' locks: a head only grows, and the transaction that moved it committed its overrides."""
        with unavailable_as(_store_down):
            return reads.override_heads(self._db, tenants)


def _store_down() -> Unavailable:
    return Unavailable("the identity store is unavailable; retry shortly", retry_after=1.0)


def _find(g: Graph, rules: Rules, person_id: str, identifier: Key | None) -> str:
    if identifier is None:
        return edits.existing(g, person_id)
    key = rules.normalise(identifier)
    owner = (g.owner(key) if isinstance(key, tuple) else None) or g.owner(identifier)
    if owner is None:
        raise ProfileNotFound(f"no profile holds the identifier {identifier[0]}:{identifier[1]!r}")
    return owner
