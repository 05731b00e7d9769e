"""Identity resolution: the identifier sets of a batch of events → one person each, merging as rules allow.

For each event, in order: normalise its identifiers (blocked and invalid values are ignored), then walk them
from the highest priority down. The first one already known decides the event's profile; each further known
identifier of another profile merges that profile in when the rules allow (never two values of a limit-1
type, never beyond a type's limit, never across a separation left by an unmerge or a split), else it is
ignored with MERGE_BLOCKED and the refusal is recorded as a conflict on both profiles; new identifiers join
the profile while their type's limit allows. When no identifier is known, the event creates a profile. So the
event always lands on the profile of its highest-priority usable identifier: on a shared family device, each
parent's user id keeps its own profile and the device id only joins the first.

Identifiers of a non-linking type, and every identifier of an event type the rules do not link, are only
looked up. A Segment alias's previous identifiers are merged in even across a limit (the alias says both
values are the same person), but never across a separation. Merges keep the oldest profile; each is logged
with the event that caused it and produces person overrides (overrides.py).
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence

from wayline.common.timestamps import from_micros
from wayline_identity import overrides
from wayline_identity.model import (
    IgnoredIdentifier,
    IgnoreReason,
    Key,
    MergeKind,
    MergeRecord,
    Override,
    Resolution,
    ResolutionInput,
    ResolveOutcome,
)
from wayline_identity.rules import Rules
from wayline_identity.store.graph import Graph

__all__ = ["blocked_merge", "merge_profiles", "resolve_batch"]


class _Prepared:
    """An event's identifiers once normalised: what the walk goes through."""

    __slots__ = ("_position", "candidates", "ignored", "previous", "sent")

    def __init__(
        self,
        candidates: list[Key],
        previous: list[Key],
        sent: dict[Key, Key],
        ignored: list[IgnoredIdentifier],
    ) -> None:
        self.candidates = candidates  # normalised, distinct, highest priority first
        self.previous = previous
        self.sent = sent  # normalised → as sent, in the order they came in the input
        self.ignored = ignored
        self._position: dict[Key, int] | None = None

    @property
    def position(self) -> dict[Key, int]:
        """Normalised → where it first came in the input (made when an event needs it: few do)."""
        if self._position is None:
            self._position = {key: i for i, key in enumerate(self.sent)}
        return self._position


def _prepare(rules: Rules, item: ResolutionInput) -> _Prepared:
    current, previous = item.identifiers, item.previous_identifiers
    if item.event_type == "alias" and not previous:  # an alias event: the first identifier is the new one
        current, previous = current[:1], current[1:]
    normalise = rules.normalise
    sent: dict[Key, Key] = {}
    ignored: list[IgnoredIdentifier] = []
    for identifier in current:
        normalised = normalise(identifier)
        if not isinstance(normalised, tuple):  # an IgnoreReason
            ignored.append(IgnoredIdentifier(identifier, normalised))
        elif normalised not in sent:
            sent[normalised] = identifier
    candidates = list(sent)
    if len(candidates) > 1:
        candidates.sort(key=rules.rank)
    later: list[Key] = []
    for identifier in previous:
        normalised = normalise(identifier)
        if not isinstance(normalised, tuple):
            ignored.append(IgnoredIdentifier(identifier, normalised))
        elif normalised not in sent:
            sent[normalised] = identifier
            later.append(normalised)
    return _Prepared(candidates, later, sent, ignored)


def blocked_merge(
    g: Graph, rules: Rules, left: str | None, extra: Counter[str], right: str
) -> tuple[str, str] | None:
    """Why the profile `left` (None for an event's new identifiers only), holding also the `extra` new
    identifiers, may not merge with `right`: (identifier type, explanation); None when it may."""
    if left is not None and g.separated(g.lineage(left), g.lineage(right)):
        return "", "an unmerge or a split keeps these profiles apart"
    mine = (g.type_counts(left) if left is not None else Counter()) + extra
    theirs = g.type_counts(right)
    for kind in sorted(set(mine) & set(theirs)):
        limit = rules.limit(kind)
        total = mine[kind] + theirs[kind]
        if limit and total > limit:
            if limit == 1:
                return kind, f"both hold a {kind}, and a profile holds at most one"
            return kind, f"together they would hold {total} {kind} values, more than the limit of {limit}"
    return None


def merge_profiles(
    g: Graph,
    left: str,
    right: str,
    *,
    via: Key | None,
    anchor: Key | None,
    event_id: str,
    kind: MergeKind,
    actor: str = "",
    reason: str = "",
) -> tuple[str, MergeRecord, list[Override]]:
    """Join two profiles (the older survives), with an edge from `anchor` to `via` when both are given."""
    survivor, absorbed = (left, right) if g.seq(left) <= g.seq(right) else (right, left)
    record = MergeRecord(
        uuid.uuid4().hex,
        kind,
        survivor,
        absorbed,
        via,
        event_id,
        from_micros(g.now),
        actor=actor,
        reason=reason,
    )
    g.record_merge(record, g.now)
    moved = g.absorb(absorbed, survivor)
    if via is not None and anchor is not None:
        g.add_edge(anchor, via, survivor, event_id, record.merge_id)
    return survivor, record, overrides.after_merge(g, moved, survivor, record.merge_id)


class _Event:
    """The state of one event's resolution while its identifiers are walked."""

    def __init__(
        self, g: Graph, rules: Rules, index: int, item: ResolutionInput, prepared: _Prepared
    ) -> None:
        self.g = g
        self.rules = rules
        self.item = item
        self.prepared = prepared
        self.person: str | None = None
        self.anchor: Key | None = None  # the identifier of this event, in `person`, new edges start from
        self.pending: list[Key] = []  # new identifiers to add
        self.pending_counts: Counter[str] = Counter()
        self.deferred_conflicts: list[tuple[str, str, str]] = []  # (other person, type, why) once created
        self.result = Resolution(index, item.event_id, "", False, [], list(prepared.ignored))
        self.merges: list[MergeRecord] = []
        self.overrides: list[Override] = []

    def ignore(self, key: Key, reason: IgnoreReason) -> None:
        self.result.ignored.append(IgnoredIdentifier(self.prepared.sent[key], reason))

    def use(self, key: Key) -> None:
        self.result.identifiers.append(key)

    def add_new(self, key: Key, *, check_limit: bool = True) -> None:
        kind = key[0]
        limit = self.rules.limit(kind)
        held = (self.g.type_counts(self.person)[kind] if self.person else 0) + self.pending_counts[kind]
        if check_limit and limit and held + 1 > limit and (self.person or self.pending):
            self.ignore(key, IgnoreReason.LIMIT_REACHED)
            return
        self.pending.append(key)
        self.pending_counts[kind] += 1
        self.use(key)

    def join(self, key: Key, owner: str, *, alias: bool = False) -> None:
        """`key` belongs to `owner`, another profile than the event's: merge when allowed."""
        if self.person is None:
            why = None if alias else blocked_merge(self.g, self.rules, None, self.pending_counts, owner)
            if why is None:
                self.person, self.anchor = owner, key
                self.use(key)
            else:
                self.deferred_conflicts.append((owner, why[0] or key[0], why[1]))
                self.ignore(key, IgnoreReason.MERGE_BLOCKED)
            return
        why = blocked_merge(self.g, self.rules, self.person, self.pending_counts, owner)
        if why is not None and (not alias or why[0] == ""):  # an alias overrides limits, not separations
            self.g.record_conflict(
                self.person, owner, why[0] or key[0], why[1], event_id=self.item.event_id, at=self.g.now
            )
            self.ignore(key, IgnoreReason.MERGE_BLOCKED)
            return
        self.person, record, changes = merge_profiles(
            self.g,
            self.person,
            owner,
            via=key,
            anchor=self.anchor,
            event_id=self.item.event_id,
            kind=MergeKind.AUTOMATIC,
        )
        self.merges.append(record)
        self.overrides.extend(changes)
        self.use(key)

    def walk(self, links: bool) -> None:
        """Decide, identifier by identifier, the event's profile and what joins it."""
        linking = [k for k in self.prepared.candidates if links and self.rules.links(k[0])]
        looked_up = [k for k in self.prepared.candidates if not (links and self.rules.links(k[0]))]
        for key in linking:
            self._link(key)
        for key in looked_up:
            self._look_up(key, links)
        for key in self.prepared.previous:
            if links:
                self._alias(key)
            else:
                self.ignore(key, IgnoreReason.NON_LINKING_EVENT)

    def _settle_on(self, key: Key, owner: str) -> None:
        self.person, self.anchor = owner, key
        self.use(key)

    def _link(self, key: Key) -> None:
        owner = self.g.owner(key)
        if owner is None:
            self.add_new(key)
        elif self.person is None and not self.pending:
            self._settle_on(key, owner)
        elif owner == self.person:
            self.use(key)
        else:
            self.join(key, owner)

    def _look_up(self, key: Key, links: bool) -> None:
        owner = self.g.owner(key)
        if self.person is None and not self.pending:
            if owner is None:
                self.add_new(key)
            else:
                self._settle_on(key, owner)
        elif owner is not None and owner == self.person:
            self.use(key)
        elif owner is None and links:
            self.add_new(key)  # a non-linking type is kept on the profile, to be looked up later
        else:
            self.ignore(key, IgnoreReason.MERGE_BLOCKED if links else IgnoreReason.NON_LINKING_EVENT)

    def _alias(self, key: Key) -> None:
        owner = self.g.owner(key)
        if owner is None:
            self.add_new(key, check_limit=False)
        elif self.person is None and not self.pending:
            self._settle_on(key, owner)
        elif owner != self.person:
            self.join(key, owner, alias=True)

    def finish(self, seen: int) -> None:
        g = self.g
        if self.person is None:
            if not self.pending:
                return  # every identifier was ignored: the event has no person
            first = self.pending.pop(0)
            self.person = g.create_profile(seen)
            g.add_identifier(first, self.person, self.person, seen, self.item.event_id)
            self.anchor = first
            self.result.person_created = True
        assert self.anchor is not None
        origin = g.origin(self.anchor)
        for key in self.pending:
            g.add_identifier(key, self.person, origin, seen, self.item.event_id)
            g.add_edge(self.anchor, key, self.person, self.item.event_id)
        for other, kind, why in self.deferred_conflicts:
            if g.owner(self.anchor) != other:
                g.record_conflict(self.person, other, kind, why, event_id=self.item.event_id, at=g.now)
        self.result.person_id = self.person


def _already_together(g: Graph, prepared: _Prepared) -> str | None:
    """The profile holding every identifier of an event (and it has no alias): then the walk would only use
    them all; None otherwise."""
    if prepared.previous or not prepared.candidates:
        return None
    person = g.owner(prepared.candidates[0])
    if person is None:
        return None
    for key in prepared.candidates[1:]:
        if g.owner(key) != person:
            return None
    return person


def _changing_owners(g: Graph, prepared: _Prepared) -> set[str]:
    """The known profiles of an event that brings a new identifier or joins several profiles."""
    owner = g.owner
    owners = [owner(k) for k in (prepared.candidates if not prepared.previous else prepared.sent)]
    if not owners or (owners[0] is not None and owners.count(owners[0]) == len(owners)):
        return set()  # the common case: every identifier on one profile already
    known = {o for o in owners if o is not None}
    return known if known and (len(known) > 1 or None in owners) else set()


def resolve_batch(
    g: Graph, rules: Rules, items: Sequence[ResolutionInput], seen_granularity: int = 0
) -> ResolveOutcome:
    """Resolve `items` in order inside `g`'s transaction; first and last seen times are kept to
    `seen_granularity` microseconds (see Graph.touch)."""
    prepared = [_prepare(rules, item) for item in items]
    g.preload(key for p in prepared for key in (*p.candidates, *p.previous))
    # The profiles an event will grow or merge need their type counts (limits): read those together.
    g.prefetch_counts(person for p in prepared for person in _changing_owners(g, p))
    outcome = ResolveOutcome([], [], [])
    seen_keys: dict[Key, tuple[int, int]] = {}
    for index, (item, prep) in enumerate(zip(items, prepared, strict=True)):
        seen = item.time
        person = _already_together(g, prep)
        if person is not None:  # the common case: nothing to decide, nothing to write
            used = list(prep.sent)  # without previous identifiers, exactly the candidates, in input order
            outcome.resolutions.append(Resolution(index, item.event_id, person, False, used, prep.ignored))
        else:
            event = _Event(g, rules, index, item, prep)
            event.walk(rules.event_links(item.event_type))
            event.finish(seen)
            event.result.identifiers.sort(key=prep.position.__getitem__)  # in the order they were sent
            outcome.resolutions.append(event.result)
            outcome.merges.extend(event.merges)
            outcome.overrides.extend(event.overrides)
            used = event.result.identifiers
        for key in used:
            span = seen_keys.get(key)
            if span is None:
                seen_keys[key] = (seen, seen)
            elif seen < span[0] or seen > span[1]:
                seen_keys[key] = (min(span[0], seen), max(span[1], seen))
    g.touch(seen_keys, seen_granularity)
    return outcome
