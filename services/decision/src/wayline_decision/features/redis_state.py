"""The online feature state in Redis, shared by several decision replicas: the same semantics as
InProcessFeatureState (state.py: idempotency by event id, later copies replacing earlier ones, the settle
horizon, late events refused, windows), with the person's slots kept in Redis (redis_codec.py says how).

Each replica consumes a share of the events (ingest's forwarder holds one channel to the decision address,
so whichever replica its connection or the balancer picks gets a batch) and reads any person:
- `observe` matches and extracts in the replica, then one EVALSHA appends the event to the person's log
  and moves the person's horizon atomically (redis_scripts.OBSERVE), so copies consumed by two replicas at
  once still count once; now and then (COMPACT_AFTER_US, COMPACT_RECORDS) the script asks the replica to
  fold the person's settled events, which it does in an optimistic transaction (WATCH, read, fold with the
  same Slot code, MULTI/EXEC; again when another write came between);
- `values` reads the person in one round trip (HMGET of the horizon, the log and the spec's settled folds)
  and computes the summaries in the replica, with the same read_feature as the in-process state.

Person merges (`merge`, identity's override feed) join two persons' hashes exactly as
InProcessFeatureState.merge joins their slots, in one optimistic transaction over both keys (an observe of
either person between the read and the write makes it start again), and `forget` deletes the person's key.
Every replica following the feed applies each override: a merge whose merged person is already gone, or
an erasure of a person already deleted, changes nothing, so applying one twice is harmless.

The watermark is the tenant's (the latest receipt any replica consumed), so the horizon and the late
refusals are those one process consuming everything would have. `settle_after_us` must be the same in every
replica. Persons whose slots all have windows expire by TTL once nothing they keep can count; `advance`
also drops them (and settles everyone), like the in-process state's, but costs a scan of the tenant's keys.

Thread safety: reads and observes may run on any thread (redis-py's pool); register specs before serving.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

import redis

from wayline_decision.errors import FeatureStateUnavailable
from wayline_decision.features import redis_codec as codec
from wayline_decision.features import redis_scripts as scripts
from wayline_decision.features.model import CompiledSpec, FeatureValue, ObservedEvent
from wayline_decision.features.plans import Registry
from wayline_decision.features.slots import Slot, SlotKind
from wayline_decision.features.state import (
    DEFAULT_SETTLE_AFTER_US,
    NEVER,
    OutsideRetention,
    read_plans,
)

__all__ = ["COMPACT_AFTER_US", "COMPACT_RECORDS", "RedisFeatureState"]

COMPACT_AFTER_US = 4 * 3_600_000_000
"""A person's settled events are folded when its horizon moved this far (or settle_after, if longer) since
the last fold, or after COMPACT_RECORDS events, whichever comes first: a fold costs four round trips, so it
is batched, while every entry left unfolded is decoded again by every read (docs/benchmarks.md: with a day
instead of 4 hours, observe cost half as much and reads about 1.7 times as much)."""
COMPACT_RECORDS = 64


class RedisFeatureState:
    """OnlineFeatureState for one tenant in Redis, shared by every replica opening it on the same server."""

    def __init__(
        self, client: redis.Redis, tenant: str, settle_after_us: int = DEFAULT_SETTLE_AFTER_US
    ) -> None:
        if settle_after_us <= 0:
            raise ValueError("settle_after_us must be positive")
        self._client = client
        self._prefix = codec.key_prefix(tenant)
        self._meta = self._prefix + "meta"
        self._settle_after_us = settle_after_us
        self._settle_step_us = max(settle_after_us // 4, 1)
        # Kept until a read can no longer tell: one more settle_after for the gap between the watermark
        # and the clock Redis expires keys by.
        self._expiry_margin_us = 2 * settle_after_us + self._settle_step_us
        self._registry = Registry()
        self._digests: list[bytes] = []  # by slot index
        self._hex: list[str] = []
        self._settled_fields: list[bytes] = []
        self._spec_fields: dict[tuple[str, str], tuple[list[bytes], dict[bytes, int]]] = {}
        self._lock = threading.Lock()
        self._observe = client.register_script(scripts.OBSERVE)
        self._merge_plans = client.register_script(scripts.MERGE_PLANS)
        self._advance = client.register_script(scripts.ADVANCE)
        self.late_events = 0
        """Events this replica refused as late (each replica counts its own)."""

    @property
    def horizon_us(self) -> int:
        """The tenant's horizon: reads at or after it are exact for every person."""
        with _guard():
            watermark = self._client.hget(self._meta, codec.WATERMARK)
        return NEVER if watermark is None else int(watermark) - self._settle_after_us

    def register(self, spec: CompiledSpec) -> None:
        with self._lock:
            self._registry.register(spec)
            for plan in self._registry.slots[len(self._digests) :]:
                digest = codec.slot_digest(plan.key)
                self._digests.append(digest)
                self._hex.append(digest.hex())
                self._settled_fields.append((codec.SETTLED + digest.hex()).encode())
            shared: list[str] = []
            for index, plan in enumerate(self._registry.slots):
                shared += [self._hex[index], codec.plan_text(plan)]
            with _guard():
                self._merge_plans(keys=[self._meta], args=shared)
            slots = sorted({index for plan in self._registry.specs[spec.key] for index in plan.slots})
            fields = [codec.HORIZON, codec.MAX_RECEIVED, codec.LOG, *(self._settled_fields[i] for i in slots)]
            self._spec_fields[spec.key] = (fields, {self._digests[i]: i for i in slots})

    def observe(self, event: ObservedEvent) -> bool:
        slots: list[tuple[bytes, Any]] = []
        hexes: list[str] = []
        for index, payload in self._registry.payloads(event):
            slots.append((self._digests[index], payload))
            hexes.append(self._hex[index])
        received = event.received_at_us
        record = codec.encode_record(event.event_id, event.timestamp_us, received, slots)
        args: list[bytes | str | int] = [
            event.event_id,
            event.timestamp_us,
            received,
            self._settle_after_us,
            self._settle_step_us,
            self._expiry_margin_us,
            max(self._settle_after_us, COMPACT_AFTER_US),
            COMPACT_RECORDS,
            record,
            *hexes,
        ]
        with _guard():
            status, compact = self._observe(keys=[self._meta, self._person_key(event.person_id)], args=args)
            if compact:
                self._settle(self._person_key(event.person_id), drop_empty=False)
        if status == scripts.LATE:
            self.late_events += 1
        return bool(status == scripts.CHANGED)

    def advance(self, now_us: int) -> None:
        """Move the tenant's watermark with the clock and settle every person behind it, dropping those with
        nothing left, as InProcessFeatureState.advance does. O(persons) round trips: TTLs already expire
        the persons with nothing left, so one replica calling it now and then is plenty."""
        with _guard():
            self._advance(keys=[self._meta], args=[now_us])
            for key in self._person_keys():
                self._settle(key, drop_empty=True)

    def merge(self, source_id: str, target_id: str) -> None:
        """Move the source person into the target, as InProcessFeatureState.merge does: the target's slots
        take the source's entries (an event both hold is kept once, the target's copy) and settled folds,
        its receipts those of both, then it settles up to the tenant's horizon; when only the source exists
        it is renamed. Atomic: WATCH on both persons, MULTI/EXEC, again when another write came between."""
        if source_id == target_id:
            return
        source_key, target_key = self._person_key(source_id), self._person_key(target_id)
        with _guard(), self._client.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(source_key, target_key)  # type: ignore[no-untyped-call]
                    source = cast(dict[bytes, bytes], pipe.hgetall(source_key))
                    if not source:
                        pipe.unwatch()
                        return
                    target = cast(dict[bytes, bytes], pipe.hgetall(target_key))
                    if not target:
                        pipe.multi()
                        pipe.rename(source_key, target_key)  # its horizon, receipts and expiry as they are
                    else:
                        meta = cast(dict[bytes, bytes], pipe.hgetall(self._meta))
                        pipe.multi()
                        self._queue_merge(pipe, (source_key, target_key), (source, target), meta)
                    pipe.execute()
                    return
                except redis.WatchError:
                    continue

    def _queue_merge(
        self,
        pipe: redis.client.Pipeline,
        keys: tuple[str, str],
        persons: tuple[dict[bytes, bytes], dict[bytes, bytes]],
        meta: dict[bytes, bytes],
    ) -> None:
        """Queue (in MULTI) the writes replacing the target's hash (the second of `keys` and `persons`) by
        the two persons joined, and deleting the source's."""
        source, target = persons
        plans = _shared_plans(meta)
        slots = self._held_slots(target, plans)
        for digest, slot in self._held_slots(source, plans).items():
            held = slots.get(digest)
            if held is None:
                slots[digest] = slot
            else:
                held.absorb(slot)
        watermark = meta.get(codec.WATERMARK)
        # One horizon for the joined slots, the tenant's now (InProcessFeatureState.merge settles so too).
        horizon = NEVER if watermark is None else int(watermark) - self._settle_after_us
        foldable: int | None = None
        for digest, slot in slots.items():
            plan = plans.get(digest)
            if plan is None:
                continue  # no replica's plan: it cannot be settled
            slot.settle(horizon, plan.window_us, plan.keeps_all)
            for timestamp, _, received, _ in slot.entries:
                at = max(timestamp + (plan.window_us or 0), received)
                foldable = at if foldable is None or at < foldable else foldable
        writes: dict[bytes | str, bytes | str | int] = {
            field: value
            for field, value in (*source.items(), *target.items())  # the target's receipt wins
            if field.startswith(codec.RECENT.encode()) and int(value) >= horizon
        }
        writes |= {
            codec.HORIZON: horizon,
            codec.COMPACTED: horizon,
            codec.APPENDED: 0,
            codec.LOG: codec.encode_log(codec.records_of(slots)),
            codec.MAX_RECEIVED: max(int(p.get(codec.MAX_RECEIVED, NEVER)) for p in persons),
        }
        if foldable is not None:
            writes[codec.FOLDABLE] = foldable
        for digest, slot in slots.items():
            if slot.settled.count:
                writes[codec.SETTLED + digest.hex()] = codec.encode_settled(slot.settled)
        writes[codec.KEEP_UNTIL], ttl_ms = self._joined_expiry(persons, watermark)
        pipe.delete(*keys)
        pipe.hset(keys[1], mapping=writes)  # type: ignore[arg-type]
        if ttl_ms is not None:
            pipe.pexpire(keys[1], ttl_ms)

    def _joined_expiry(
        self, persons: tuple[dict[bytes, bytes], ...], watermark: bytes | None
    ) -> tuple[str | int, int | None]:
        """The joined person's `u` (the later of the two, `all` if either keeps all history) and its TTL in
        ms (None: it persists), as the observe script sets them."""
        keeps = [p.get(codec.KEEP_UNTIL) for p in persons]
        if any(keep is None or keep == codec.KEEPS_ALL.encode() for keep in keeps):
            return codec.KEEPS_ALL, None
        until = max(int(cast(bytes, keep)) for keep in keeps)
        now = int(watermark) if watermark is not None else until
        return until, max(round((until + self._expiry_margin_us - now) / 1000), 1000)

    def forget(self, person_id: str) -> None:
        """Delete everything kept for the person (an erasure)."""
        with _guard():
            self._client.delete(self._person_key(person_id))

    def holds(self, person_id: str) -> bool:
        """Whether Redis still keeps anything of the person."""
        with _guard():
            return bool(self._client.exists(self._person_key(person_id)))

    def values(self, spec: CompiledSpec, person_id: str, as_of_us: int) -> list[FeatureValue]:
        plans = self._registry.specs.get(spec.key)
        if plans is None:
            raise KeyError(f"spec {spec.name} version {spec.version} is not registered")
        fields, wanted = self._spec_fields[spec.key]
        with _guard():
            found = cast(list[bytes | None], self._client.hmget(self._person_key(person_id), fields))
        horizon, latest, log, *settled = found
        if horizon is not None and as_of_us < int(horizon):
            raise OutsideRetention(f"as_of is before the online state's horizon for person {person_id}")
        entries = codec.slot_entries(codec.live_records(log), wanted)
        slots: dict[int, Slot] = {}
        for index, raw in zip(wanted.values(), settled, strict=True):
            kept = entries.get(index)
            if kept is None and raw is None:
                continue
            held = slots[index] = Slot(self._registry.slots[index].kind, kept or [])
            if raw is not None:
                held.settled = codec.decode_settled(raw)
        fast = latest is None or int(latest) < as_of_us  # every entry was received before as_of
        return read_plans(plans, slots, as_of_us, fast)

    def _person_key(self, person_id: str) -> str:
        return f"{self._prefix}person:{person_id}"

    def _person_keys(self) -> Iterator[bytes]:
        pattern = self._prefix.replace("{", "\\{").replace("}", "\\}") + "person:*"
        yield from self._client.scan_iter(match=pattern, count=500)

    def _settle(self, key: str | bytes, *, drop_empty: bool) -> None:
        """Settle the person up to the tenant's horizon (slots.Slot.settle on each slot, with the plans all
        replicas registered), forget the receipts of events received before it, and with `drop_empty`
        delete a person with nothing left; in a WATCH transaction, again when another write came between."""
        with self._client.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(key)  # type: ignore[no-untyped-call]
                    person = cast(dict[bytes, bytes], pipe.hgetall(key))
                    if not person:
                        pipe.unwatch()
                        return
                    meta = cast(dict[bytes, bytes], pipe.hgetall(self._meta))
                    if self._settle_person(pipe, key, person, meta, drop_empty):
                        pipe.execute()
                    else:
                        pipe.unwatch()
                    return
                except redis.WatchError:
                    continue

    def _settle_person(
        self,
        pipe: redis.client.Pipeline,
        key: str | bytes,
        person: dict[bytes, bytes],
        meta: dict[bytes, bytes],
        drop_empty: bool,
    ) -> bool:
        """Queue the writes settling `person` on `pipe` (then in MULTI); False when there is nothing to do.
        The horizon moves as the observe script moves it (by settle steps behind the tenant's); events
        behind it are folded or dropped (Slot.settle, with the plans every replica registered)."""
        held = int(person[codec.HORIZON]) if codec.HORIZON in person else NEVER
        target = int(meta[codec.WATERMARK]) - self._settle_after_us
        horizon = target if target - held >= self._settle_step_us else held
        plans = _shared_plans(meta)
        slots = self._held_slots(person, plans)
        before = {digest: (len(slot.entries), slot.settled.count) for digest, slot in slots.items()}
        foldable: int | None = None
        for digest, slot in slots.items():
            plan = plans.get(digest)
            if plan is None:
                continue  # no replica's plan: it cannot be settled
            slot.settle(horizon, plan.window_us, plan.keeps_all)
            for timestamp, _, received, _ in slot.entries:
                at = max(timestamp + (plan.window_us or 0), received)
                foldable = at if foldable is None or at < foldable else foldable
        if drop_empty and all(slot.empty for slot in slots.values()):
            pipe.multi()
            pipe.delete(key)
            return True
        forgotten = [
            field
            for field, value in person.items()
            if field.startswith(codec.RECENT.encode()) and int(value) < horizon
        ]
        after = {digest: (len(slot.entries), slot.settled.count) for digest, slot in slots.items()}
        if horizon == held and after == before and not forgotten:
            return False
        pipe.multi()
        writes: dict[bytes | str, bytes | str | int] = {
            codec.HORIZON: horizon,
            codec.COMPACTED: horizon,
            codec.APPENDED: 0,
            codec.LOG: codec.encode_log(codec.records_of(slots)),
        }
        for digest, slot in slots.items():
            if slot.settled.count != before[digest][1]:
                writes[codec.SETTLED + digest.hex()] = codec.encode_settled(slot.settled)
        pipe.hset(key, mapping=writes)  # type: ignore[arg-type]
        if foldable is not None:
            pipe.hset(key, codec.FOLDABLE, foldable)
        if forgotten or foldable is None:
            pipe.hdel(key, *forgotten, *([codec.FOLDABLE] if foldable is None else []))
        return True

    @staticmethod
    def _held_slots(person: dict[bytes, bytes], plans: dict[bytes, codec.SharedPlan]) -> dict[bytes, Slot]:
        """Every slot the person's hash holds, by digest, whether this replica registered it or not."""
        records = codec.live_records(person.get(codec.LOG))
        settled = {
            bytes.fromhex(field[len(codec.SETTLED) :].decode()): value
            for field, value in person.items()
            if field.startswith(codec.SETTLED.encode())
        }
        digests = {digest for record in records for digest, _ in record[4]} | settled.keys()
        order = {digest: i for i, digest in enumerate(digests)}
        entries = codec.slot_entries(records, order)
        slots: dict[bytes, Slot] = {}
        for digest, i in order.items():
            plan = plans.get(digest)
            # A slot without a shared plan is never settled; its kind does not matter then.
            slot = slots[digest] = Slot(plan.kind if plan else SlotKind.TIMES, entries.get(i, []))
            if digest in settled:
                slot.settled = codec.decode_settled(settled[digest])
        return slots


def _shared_plans(meta: dict[bytes, bytes]) -> dict[bytes, codec.SharedPlan]:
    """The slot plans every replica registered, by digest, from the tenant's meta hash."""
    return {
        bytes.fromhex(field[len(codec.PLAN) :].decode()): codec.parse_plan(value)
        for field, value in meta.items()
        if field.startswith(codec.PLAN.encode())
    }


@contextmanager
def _guard() -> Iterator[None]:
    """Redis down, timing out or refusing writes (out of memory) is the caller's UNAVAILABLE: retryable."""
    try:
        yield
    except redis.RedisError as error:
        raise FeatureStateUnavailable(str(error) or type(error).__name__) from error
