"""How the Redis-backed online state (redis_state.py) lays a tenant out in Redis: the keys, the fields of a
person's hash and their encoding (msgpack, version 1 of the layout, named in every key so that a new layout
starts from an empty key space instead of misreading the old one).

Keys, all under `wayline:decision:features:v1:{<tenant>}:` (the braces are a Redis Cluster hash tag: a
tenant's keys share one cluster slot, so a script may touch the tenant's meta hash and a person together):
- `meta`: a hash of the tenant's watermark (the latest `received_at` consumed by any replica) and the shared
  plan of every slot some replica registered (`plan:<digest>`, see `plan_text`);
- `person:<person id>`: a hash per person:
  - `h` the person's horizon, `x` the latest `received_at` of an event kept, `u` when the person may expire
    (an event time, or `all` when a slot keeps all history); `m` the earliest horizon at which a listed
    entry may be folded, `c` the horizon of the last fold, `n` the records appended since (redis_scripts);
  - `log`: the events not settled yet, one msgpack record each, appended in arrival order:
    `[replaces, event id, timestamp, received_at, [[slot digest, payload], ...]]`, `replaces` being true
    when the record is a later copy that takes the place of the last earlier record of the same event id;
  - `r:<event id>`: the `received_at` of a recent event, what idempotency compares copies with;
  - `s:<slot digest hex>`: the slot's settled fold (slots.Settled), rewritten only when settling.

Beside the tenants' keys, one set names every tenant a replica met: `wayline:decision:features:v1:tenants`
(TENANTS_KEY), which every replica follows identity's override feed for (features/service.py, ADR 76).

Slots are named by a digest of what they are (kind, matcher, property), not by their registration order, so
replicas that registered specs in different orders share them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import msgpack

from wayline_decision.features.plans import SlotKey, SlotPlan
from wayline_decision.features.slots import Entry, Settled, Slot, SlotKind

__all__ = [
    "APPENDED",
    "COMPACTED",
    "FOLDABLE",
    "HORIZON",
    "KEEPS_ALL",
    "KEEP_UNTIL",
    "LOG",
    "MAX_RECEIVED",
    "RECENT",
    "SETTLED",
    "WATERMARK",
    "Record",
    "SharedPlan",
    "decode_settled",
    "encode_log",
    "encode_record",
    "encode_settled",
    "key_prefix",
    "live_records",
    "parse_plan",
    "plan_text",
    "records_of",
    "slot_digest",
    "slot_entries",
]

LAYOUT_VERSION = 1
HORIZON, MAX_RECEIVED, KEEP_UNTIL, LOG = b"h", b"x", b"u", b"log"
FOLDABLE, COMPACTED, APPENDED = b"m", b"c", b"n"
RECENT, SETTLED, PLAN, WATERMARK = "r:", "s:", "plan:", b"watermark"
KEEPS_ALL = "all"
TENANTS_KEY = f"wayline:decision:features:v{LAYOUT_VERSION}:tenants"

Record = tuple[bool, str, int, int, tuple[tuple[bytes, Any], ...]]
"""(replaces, event id, timestamp µs, received_at µs, ((slot digest, payload), ...))."""


def key_prefix(tenant: str) -> str:
    """The prefix of every key of the tenant; tenant ids (`[a-z][a-z0-9-]+`) cannot break out of it."""
    if not tenant or any(c in tenant for c in "{}:*?[]\\"):
        raise ValueError(f"tenant id {tenant!r} cannot name Redis keys")
    return f"wayline:decision:features:v{LAYOUT_VERSION}:{{{tenant}}}:"


def slot_digest(key: SlotKey) -> bytes:
    """A stable 8-byte name of the slot: the same in every replica and across restarts (the dataclasses'
    reprs are deterministic: enum names, strings, floats' shortest round-trip digits)."""
    kind, matcher, path = key
    return hashlib.blake2b(repr((kind.value, matcher, path)).encode(), digest_size=8).digest()


@dataclass(frozen=True, slots=True)
class SharedPlan:
    """What every replica must respect of a slot when settling it: the union of what their specs need."""

    kind: SlotKind
    window_us: int | None
    keeps_all: bool


def plan_text(plan: SlotPlan) -> str:
    """`<keeps all 0|1>:<longest window µs, or ->:<kind>`, merged by the register script (longest window,
    keeps all if any replica's specs do) and read by the observe script (expiry) and by settling."""
    window = "-" if plan.window_us is None else str(plan.window_us)
    return f"{int(plan.keeps_all)}:{window}:{plan.kind.value}"


def parse_plan(text: bytes) -> SharedPlan:
    keeps, window, kind = text.decode().split(":")
    return SharedPlan(SlotKind(kind), None if window == "-" else int(window), keeps == "1")


def encode_record(
    event_id: str, timestamp_us: int, received_us: int, slots: list[tuple[bytes, Any]]
) -> bytes:
    """A log record with `replaces` false; the observe script flips that byte (the second: the record is a
    5-element fixarray) when the event replaces an earlier copy."""
    record: bytes = msgpack.packb((False, event_id, timestamp_us, received_us, slots), use_bin_type=True)
    assert record[:2] == b"\x95\xc2"
    return record


def encode_log(records: Iterable[Record]) -> bytes:
    pack = msgpack.Packer(use_bin_type=True).pack
    return b"".join(pack(record) for record in records)


def live_records(log: bytes | None) -> list[Record]:
    """The log's records less those a later copy replaced."""
    if not log:
        return []
    unpacker = msgpack.Unpacker(use_list=False, raw=False)
    unpacker.feed(log)
    records: list[Record] = list(unpacker)
    if not any(record[0] for record in records):
        return records
    latest: dict[str, int] = {}
    replaced: set[int] = set()
    for i, record in enumerate(records):
        if record[0] and record[1] in latest:
            replaced.add(latest[record[1]])
        latest[record[1]] = i
    return [record for i, record in enumerate(records) if i not in replaced]


def slot_entries(records: list[Record], wanted: Mapping[bytes, int]) -> dict[int, list[Entry]]:
    """The entries of the wanted slots (digest → the index the caller knows the slot by), sorted as
    Slot.entries are: by (timestamp, event id), then received_at."""
    found: dict[int, list[Entry]] = {}
    for _, event_id, timestamp, received, slots in records:
        for digest, payload in slots:
            index = wanted.get(digest)
            if index is not None:
                entries = found.get(index)
                if entries is None:
                    entries = found[index] = []
                entries.append((timestamp, event_id, received, payload))
    for entries in found.values():
        entries.sort()
    return found


def records_of(slots: Mapping[bytes, Slot]) -> list[Record]:
    """The log records holding the slots' entries (after settling), one per kept copy, oldest receipt
    first so that a later replacing copy finds the copy idempotency remembers."""
    grouped: dict[tuple[str, int], tuple[int, list[tuple[bytes, Any]]]] = {}
    for digest, slot in slots.items():
        for timestamp, event_id, received, payload in slot.entries:
            grouped.setdefault((event_id, received), (timestamp, []))[1].append((digest, payload))
    ordered = sorted(grouped.items(), key=lambda item: (item[0][1], item[0][0]))
    return [(False, event_id, ts, received, tuple(pairs)) for (event_id, received), (ts, pairs) in ordered]


def encode_settled(settled: Settled) -> bytes:
    fields = (
        settled.count,
        settled.first,
        settled.last,
        sorted(settled.days),
        settled.numbers,
        list(settled.keys),
    )
    encoded: bytes = msgpack.packb(fields, use_bin_type=True)
    return encoded


def decode_settled(raw: bytes) -> Settled:
    count, first, last, days, numbers, keys = msgpack.unpackb(raw, use_list=False, raw=False)
    return Settled(count, first, last, set(days), list(numbers), set(keys))
