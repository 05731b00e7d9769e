"""What CheckContact reads, kept in memory per (tenant, person) so that a check of a person seen recently
needs no database round trip (ADR 60). The cache holds the inputs, never the answers: the tenant's policy,
the person's consents, attributes and channel scores, and their contacts from the start of the policy's
longest window as it was when read, with no upper bound (a contact dated ahead counts once its time comes).
A check evaluates the rules on them at its own `at`, so a window sliding forward needs nothing new; a check
further back than the rows reach is read from the database.

A check is advisory (RecordContact with `enforce_policy` decides under the person's lock), so the cache may
lag a write by the few milliseconds its invalidation takes, the window a check-then-send has anyway. It may
never keep what a write changed: every write that changes a check's inputs invalidates the entry, whichever
replica made it (`invalidation.py`: PostgreSQL's NOTIFY from triggers, SQLite's `data_version`), and:

- A read that was under way when an invalidation of its person (or tenant, or everything) came is not kept:
  every invalidation takes the next number of a sequence, a read notes the number before it starts, and its
  rows are stored only if nothing that concerns them was invalidated since.
- A write by this process holds its person (or tenant, for the policy) out of the cache for `hold_seconds`:
  the caller that wrote and checks next reads the database, even before the notice of its own commit is
  back.
- While the source of invalidations is not known to be complete (before the listener is listening, after its
  connection dropped) the cache is emptied and every check reads the database.

Bounded: at most `capacity` entries, the least recently used dropped first. Counted: lookups by result (hit,
miss, bypass: the cache not in use) and invalidations by scope (person, tenant, all).

Kept as plain tuples of strings and numbers, the policy once per tenant: the garbage collector stops
tracking such tuples, so a full cache adds nothing to its full collections. Kept as the model's objects,
20,000 persons were 220,000 more objects to traverse, a full collection 100 ms longer (a CheckContact p99
that got worse once the cache was warm). The objects are made again for each hit (a few microseconds).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from opentelemetry import metrics

from wayline_orchestrator.contacts.model import ChannelScore, Consent, ContactPolicy, Person
from wayline_orchestrator.contacts.rules import Past

__all__ = ["CheckCache", "CheckInputs", "longest_window"]

_Key = tuple[str, str]


def longest_window(policy: ContactPolicy) -> int:
    """How far back the policy's caps look: the history a check needs."""
    return max((cap.window_us for cap in policy.frequency_caps), default=0)


def _window_start(policy: ContactPolicy, when: int, after: int) -> int | None:
    """Where the policy's window up to `when` starts; None when it reaches back before `after`, the start of
    the contacts kept: a check then needs rows that were not read."""
    start = when - longest_window(policy)
    return None if start < after else start


@dataclass(frozen=True)
class CheckInputs:
    """A check's inputs as read: the person's contacts made after `after` (all of them: no upper bound)."""

    policy: ContactPolicy
    person: Person
    contacts: tuple[Past, ...]
    after: int

    def at(self, when: int) -> tuple[ContactPolicy, Person, list[Past]] | None:
        """The policy, the person and their contacts in the policy's window up to `when`; None when the window
        reaches back before the rows kept."""
        start = _window_start(self.policy, when, self.after)
        if start is None:
            return None
        return self.policy, self.person, [p for p in self.contacts if start < p.contact_time <= when]


# A person's kept inputs: the rows' start (`CheckInputs.after`), the consents (channel, purpose, granted,
# event time), the preferred channel, the time zone, the channel scores (channel, score, score time) and the
# contacts (channel, purpose, time). Tuples of atomic values only, which the garbage collector untracks.
_Entry = tuple[
    int,
    tuple[tuple[str, str, bool, int], ...],
    str,
    str,
    tuple[tuple[str, float, int], ...],
    tuple[tuple[str, str, int], ...],
]


def _entry(inputs: CheckInputs) -> _Entry:
    person = inputs.person
    return (
        inputs.after,
        tuple((c.channel, c.purpose, c.granted, c.event_time) for c in person.consents),
        person.preferred_channel,
        person.time_zone,
        tuple((e.channel, e.score, e.score_time) for e in person.engagement),
        tuple((p.channel, p.purpose, p.contact_time) for p in inputs.contacts),
    )


def _inputs_at(
    policy: ContactPolicy, entry: _Entry, when: int
) -> tuple[ContactPolicy, Person, list[Past]] | None:
    """`CheckInputs.at` of a kept entry."""
    after, consents, preferred, time_zone, engagement, contacts = entry
    start = _window_start(policy, when, after)
    if start is None:
        return None
    person = Person(
        consents=tuple(Consent(*c) for c in consents),
        preferred_channel=preferred,
        time_zone=time_zone,
        engagement=tuple(ChannelScore(*e) for e in engagement),
    )
    return policy, person, [Past(*c) for c in contacts if start < c[2] <= when]


class _CacheMetrics:
    def __init__(self, meter: metrics.Meter) -> None:
        self._lookups = meter.create_counter(
            "orchestrator.contacts.check_cache.lookups",
            unit="{lookup}",
            description="CheckContact's lookups of its inputs in memory, by result (hit; miss: read from the "
            "database; bypass: the cache not in use, its invalidations not known to be complete).",
        )
        self._invalidations = meter.create_counter(
            "orchestrator.contacts.check_cache.invalidations",
            unit="{invalidation}",
            description="Invalidations of CheckContact's cached inputs, by scope (person: a write concerning "
            "one person; tenant: the policy; all: the listener (re)connected or dropped, or SQLite changed).",
        )
        for result in ("hit", "miss", "bypass"):
            self._lookups.add(0, {"result": result})
        for scope in ("person", "tenant", "all"):
            self._invalidations.add(0, {"scope": scope})

    def lookup(self, result: str) -> None:
        self._lookups.add(1, {"result": result})

    def invalidated(self, scope: str) -> None:
        self._invalidations.add(1, {"scope": scope})


class CheckCache:
    def __init__(
        self,
        capacity: int,
        hold_seconds: float = 1.0,
        meter: metrics.Meter | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """Empty and not in use until `resume` (the invalidation source is then complete)."""
        self._capacity = capacity
        self._hold_s = hold_seconds
        self._monotonic = monotonic
        self._metrics = _CacheMetrics(meter or metrics.get_meter("wayline.orchestrator"))
        self._lock = threading.Lock()
        self._entries: OrderedDict[_Key, _Entry] = OrderedDict()
        self._policies: dict[str, ContactPolicy] = {}  # the policy the tenant's entries were read with
        self._sequence = 0
        self._in_use = False
        self._refused_before = 0  # reads noted before this are not kept (a reset, or the log below pruned)
        self._tenant_changed: dict[str, int] = {}  # sequence of each tenant's last invalidation
        self._person_changed: dict[_Key, int] = {}  # sequence of each person's last invalidation
        self._held_until: dict[_Key, float] = {}  # (tenant, "") for a whole tenant
        self.before_lookup: Callable[[], None] = lambda: None  # SQLite's data_version poll

    @property
    def in_use(self) -> bool:
        return self._in_use

    def __len__(self) -> int:
        return len(self._entries)

    # The check's side.

    def lookup(
        self, tenant: str, person_id: str, when: int
    ) -> tuple[ContactPolicy, Person, list[Past]] | None:
        """The inputs of a check of the person at `when`, if kept; None: read the database (and `keep`)."""
        self.before_lookup()
        key = (tenant, person_id)
        with self._lock:
            if not self._in_use:
                self._metrics.lookup("bypass")
                return None
            entry = self._entries.get(key)
            policy = self._policies.get(tenant)
            found = _inputs_at(policy, entry, when) if entry is not None and policy is not None else None
            if found is None:
                self._metrics.lookup("miss")
                return None
            self._entries.move_to_end(key)
        self._metrics.lookup("hit")
        return found

    def note(self) -> int:
        """The number to give `keep` for a read starting now."""
        with self._lock:
            return self._sequence

    def keep(self, noted: int, tenant: str, person_id: str, inputs: CheckInputs) -> None:
        """Keep what a read that started at `noted` found, unless an invalidation since concerns it."""
        key = (tenant, person_id)
        with self._lock:
            if (
                not self._in_use
                or noted < self._refused_before
                or self._tenant_changed.get(tenant, 0) > noted
                or self._person_changed.get(key, 0) > noted
                or self._held(key)
                or self._held((tenant, ""))
            ):
                return
            kept = self._policies.get(tenant)
            if kept is not None and kept.revision > inputs.policy.revision:
                return  # read before the policy the tenant's entries have: stale
            if kept is None or kept.revision < inputs.policy.revision:
                self._drop_tenant(tenant)  # read with an older policy than this one
                self._policies[tenant] = inputs.policy
            self._entries[key] = _entry(inputs)
            self._entries.move_to_end(key)
            while len(self._entries) > self._capacity:
                self._entries.popitem(last=False)

    def _held(self, key: _Key) -> bool:
        until = self._held_until.get(key)
        if until is None:
            return False
        if until > self._monotonic():
            return True
        del self._held_until[key]
        return False

    # The writers' side.

    def invalidate(self, tenant: str, person_id: str = "") -> None:
        """A write changed the person's inputs (no person: the tenant's policy, every person's)."""
        with self._lock:
            self._sequence += 1
            if person_id:
                self._entries.pop((tenant, person_id), None)
                self._person_changed[(tenant, person_id)] = self._sequence
                self._prune()
            else:
                self._tenant_changed[tenant] = self._sequence
                self._drop_tenant(tenant)
        self._metrics.invalidated("person" if person_id else "tenant")

    def _drop_tenant(self, tenant: str) -> None:
        self._policies.pop(tenant, None)
        for key in [k for k in self._entries if k[0] == tenant]:
            del self._entries[key]

    def written(self, tenant: str, person_id: str = "") -> None:
        """This process writes the person's inputs (no person: the tenant's policy): invalidated now and held
        out for `hold_seconds`, so that the writer's next check reads what it wrote."""
        with self._lock:
            self._held_until[(tenant, person_id)] = self._monotonic() + self._hold_s
        self.invalidate(tenant, person_id)

    def _prune(self) -> None:
        # The log of invalidated persons only needs to outlive the reads under way: past its bound, it is
        # dropped and every read under way is refused instead.
        if len(self._person_changed) > max(1024, self._capacity):
            self._person_changed.clear()
            self._refused_before = self._sequence
            now = self._monotonic()
            self._held_until = {k: t for k, t in self._held_until.items() if t > now}

    # The invalidation source's side.

    def resume(self) -> None:
        """The source of invalidations is complete from now on: empty, then in use."""
        self._reset(in_use=True)

    def suspend(self) -> None:
        """The source of invalidations may have missed some: empty, and not in use until `resume`."""
        self._reset(in_use=False)

    def clear(self) -> None:
        """Something changed, who knows what (SQLite's data_version): empty, still in use."""
        self._reset(in_use=self._in_use)

    def _reset(self, in_use: bool) -> None:
        with self._lock:
            self._sequence += 1
            self._refused_before = self._sequence
            self._entries.clear()
            self._policies.clear()
            self._tenant_changed.clear()
            self._person_changed.clear()
            self._in_use = in_use
        self._metrics.invalidated("all")
