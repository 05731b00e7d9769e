"""Generated customer journeys for the journeys benchmark: deterministic (seeded), vectorised with numpy and
pyarrow, cached on disk as Arrow IPC files of the events table's columns.

Persons have 1 to 3 identifiers (a cookie id always; a device id and an email for some), traits (country,
plan), a first-seen time over one year and an activity weight with a long tail (a few heavy persons). Events
come in sessions of one channel, each a small Markov chain over event names: web and app browsing (pages or
screens, searches, the Product Viewed → Product Added → Checkout Started → Order Completed funnel with
drop-offs and loops), email, push and SMS campaigns (delivered → opened → clicked), call-centre calls (some
ending in a refund), store purchases and identify calls carrying the traits and every identifier. Purchases
carry revenue in EUR, refunds a negative amount. Rows are sorted by time, as a live stream would arrive.

The data spans a fixed year (`START` to `END`, in the past), so a cached set never changes meaning.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa

from bench.journeys_properties import join, number_text, properties, random_hex, random_uuids
from bench.journeys_vocabulary import (
    APP_CONTEXT,
    CHANNELS,
    END_STATE,
    GAP_SECONDS,
    INITIAL,
    KIND_CHANNEL,
    KIND_SHARE,
    MAX_SESSION,
    PAGES,
    SCREENS,
    STATE_NAMES,
    TRANSITIONS,
    CallReasons,
    Kind,
    State,
    traits,
)

__all__ = ["END", "START", "TENANT", "Persons", "event_chunks", "make_persons"]

TENANT = "bench"
START = datetime(2025, 11, 1, tzinfo=UTC)
END = datetime(2026, 11, 1, tzinfo=UTC)
_START_US = int(START.timestamp()) * 1_000_000
_SPAN_US = int((END - START).total_seconds()) * 1_000_000
_DAY_US = 86_400 * 1_000_000
_ANON, _DEVICE, _EMAIL = 0, 1, 2
_IDENTIFIER_TYPES = pa.array(["anonymous_id", "device_id", "email"])


@dataclass(frozen=True)
class Persons:
    ids: pa.Array
    identifiers: pa.Array  # 3 * count values: every anonymous id, then every device id, then every email
    has_device: np.ndarray
    has_email: np.ndarray
    traits: pa.Array  # the properties of the person's identify events (JSON text)
    weight: np.ndarray  # relative activity; a long tail
    first_seen: np.ndarray  # microseconds since the epoch
    active_until: np.ndarray

    @property
    def count(self) -> int:
        return len(self.ids)


def make_persons(count: int, seed: int) -> Persons:
    rng = np.random.default_rng([seed, 0])
    emails = join("customer", number_text(np.arange(count)), "@example.com")
    weight = rng.pareto(1.3, count) + 1.0
    weight = np.minimum(weight, 0.002 * weight.sum())  # heavy persons, but none above 0.2% of all events
    first_seen = _START_US + (rng.random(count) * (_SPAN_US - 3 * _DAY_US)).astype(np.int64)
    lifetime = rng.exponential(60 * _DAY_US, count) * (1 + np.log(weight))  # heavy persons stay longer
    active_until = np.minimum(
        first_seen + _DAY_US + lifetime.astype(np.int64), _START_US + _SPAN_US - 3 * _DAY_US
    )
    return Persons(
        ids=random_uuids(rng, count),
        identifiers=pa.concat_arrays([random_hex(rng, count, "a-"), random_hex(rng, count, "d-"), emails]),
        has_device=rng.random(count) < 0.4,
        has_email=rng.random(count) < 0.55,
        traits=traits(rng, count, emails),
        weight=weight,
        first_seen=first_seen,
        active_until=active_until,
    )


@dataclass
class _Events:
    """The numeric columns of generated events, one entry per event."""

    state: np.ndarray
    kind: np.ndarray
    channel: np.ndarray
    person: np.ndarray
    timestamp: np.ndarray

    def take(self, index: np.ndarray) -> _Events:
        return _Events(*(getattr(self, f.name)[index] for f in fields(self)))


def _session_batch(rng: np.random.Generator, persons: Persons, sessions: int) -> _Events:
    person = rng.choice(persons.count, size=sessions, p=persons.weight / persons.weight.sum()).astype(
        np.int32
    )
    kind = rng.choice(len(KIND_SHARE), size=sessions, p=KIND_SHARE).astype(np.int8)
    device, email = persons.has_device[person], persons.has_email[person]
    needs_device = np.isin(kind, (Kind.MOBILE_APP, Kind.PUSH))
    needs_email = np.isin(kind, (Kind.EMAIL, Kind.SMS, Kind.CALL_CENTER, Kind.STORE, Kind.IDENTIFY))
    kind[(needs_device & ~device) | (needs_email & ~email)] = Kind.WEB
    channel = KIND_CHANNEL[kind]
    on_app = (kind == Kind.IDENTIFY) & device & (rng.random(sessions) < 0.5)
    channel[on_app] = CHANNELS.index("mobile_app")
    window = persons.active_until[person] - persons.first_seen[person]
    start = persons.first_seen[person] + (rng.random(sessions) * window).astype(np.int64)

    states = np.full((sessions, MAX_SESSION), -1, dtype=np.int8)
    for first_kind, shares in enumerate(INITIAL):
        of_kind = np.flatnonzero(kind == first_kind)
        states[of_kind, 0] = rng.choice(len(shares), size=of_kind.size, p=shares)
    alive = np.ones(sessions, dtype=bool)
    cumulative = TRANSITIONS.cumsum(1)
    for position in range(1, MAX_SESSION):
        live = np.flatnonzero(alive)
        if not live.size:
            break
        following = (rng.random(live.size)[:, None] < cumulative[states[live, position - 1]]).argmax(1)
        going = following != END_STATE
        alive[live] = going
        states[live[going], position] = following[going]
    lengths = (states >= 0).sum(1)
    session = np.repeat(np.arange(sessions), lengths)
    state = states[states >= 0]
    gap = rng.exponential(GAP_SECONDS[state] * 1e6).astype(np.int64)
    first = np.r_[0, np.cumsum(lengths)[:-1]]
    gap[first] = 0
    gap = np.minimum(gap, 2 * _DAY_US)
    elapsed = np.cumsum(gap)
    timestamp = start[session] + elapsed - elapsed[first][session]
    return _Events(state, kind[session], channel[session], person[session], timestamp)


def _events(persons: Persons, count: int, seed: int) -> _Events:
    rng = np.random.default_rng([seed, 1])
    batches, total = [], 0
    while total < count:
        batch = _session_batch(rng, persons, max(1000, (count - total) // 3))
        batches.append(batch)
        total += len(batch.state)
    merged = _Events(*(np.concatenate([getattr(b, f.name) for b in batches]) for f in fields(_Events)))
    merged = merged.take(np.arange(count))  # the last session is cut short
    return merged.take(np.argsort(merged.timestamp, kind="stable"))


def _identifiers(e: _Events, persons: Persons) -> tuple[pa.Array, pa.Array]:
    """identifier_types and identifier_values: the channel's identifier, or all of them on identify."""
    n = len(e.state)
    identify = e.state == State.IDENTIFY
    channel_type = np.full(n, _ANON, dtype=np.int64)
    channel_type[np.isin(e.kind, (Kind.MOBILE_APP, Kind.PUSH))] = _DEVICE
    channel_type[np.isin(e.kind, (Kind.EMAIL, Kind.SMS, Kind.CALL_CENTER, Kind.STORE))] = _EMAIL
    slots = np.zeros((n, 3), dtype=bool)
    slots[np.arange(n), channel_type] = ~identify
    slots[identify, _ANON] = True
    slots[identify, _DEVICE] = persons.has_device[e.person[identify]]
    slots[identify, _EMAIL] = persons.has_email[e.person[identify]]
    event, slot = np.nonzero(slots)  # row-major: each event's identifiers in slot order
    offsets = pa.array(np.r_[0, np.cumsum(slots.sum(1))].astype(np.int32))
    values = persons.identifiers.take(pa.array(slot * persons.count + e.person[event]))
    types = _IDENTIFIER_TYPES.take(pa.array(slot))
    return pa.ListArray.from_arrays(offsets, types), pa.ListArray.from_arrays(offsets, values)


def _revenue(cents: np.ndarray) -> pa.Array:
    """Nullable Decimal(38, 9) from cents, built from its 128-bit little-endian unscaled values."""
    unscaled = np.empty((cents.size, 2), dtype=np.int64)
    unscaled[:, 0] = cents * 10_000_000
    unscaled[:, 1] = np.where(cents < 0, -1, 0)
    valid = pa.py_buffer(np.packbits(cents != 0, bitorder="little"))
    return pa.Array.from_buffers(pa.decimal128(38, 9), cents.size, [valid, pa.py_buffer(unscaled)])


def _table(rng: np.random.Generator, e: _Events, persons: Persons) -> pa.Table:
    n = len(e.state)
    app = e.channel == CHANNELS.index("mobile_app")
    page = e.state == State.PAGE
    page_index = rng.integers(0, len(PAGES), n)
    traits = persons.traits.take(pa.array(np.where(e.state == State.IDENTIFY, e.person, 0)))
    event_properties, cents = properties(rng, e.state, app, page_index, traits)
    types, values = _identifiers(e, persons)
    name_keys = np.where(page & app, len(STATE_NAMES) + len(PAGES) + page_index % len(SCREENS), e.state)
    name_keys = np.where(page & ~app, len(STATE_NAMES) + page_index, name_keys)
    names = pa.array([*STATE_NAMES, *(p for p, _ in PAGES), *SCREENS])
    type_keys = np.where(page, np.where(app, 2, 1), np.where(e.state == State.IDENTIFY, 3, 0))
    contexts = pa.array(
        ["{}", APP_CONTEXT, *(f'{{"page": {{"path": "{p}", "title": "{t}"}}}}' for t, p in PAGES)]
    )
    context_keys = np.where(app, 1, np.where(page, 2 + page_index, 0))
    call_ended = e.state == State.CALL_ENDED
    texts = pa.array(["", *CallReasons.transcripts])
    received = e.timestamp + rng.integers(50_000, 2_000_000, n)
    return pa.table(
        {
            "tenant_id": pa.repeat(TENANT, n),
            "event_id": random_uuids(rng, n),
            "type": pa.array(["track", "page", "screen", "identify"]).take(type_keys),
            "name": names.take(name_keys),
            "channel": pa.array(CHANNELS).take(e.channel),
            "timestamp": pa.array(e.timestamp, pa.timestamp("us", tz="UTC")),
            "received_at": pa.array(received, pa.timestamp("us", tz="UTC")),
            "identifier_types": types,
            "identifier_values": values,
            "person_id": persons.ids.take(pa.array(e.person)),
            "properties": event_properties,
            "context": contexts.take(context_keys),
            "text": texts.take(np.where(call_ended, 1 + rng.integers(0, len(CallReasons.transcripts), n), 0)),
            "revenue": _revenue(cents),
            "revenue_currency": pa.array(["", "EUR"]).take((cents != 0).astype(np.int8)),
            "plan_violations": pa.repeat("[]", n),
        }
    )


def event_chunks(persons: Persons, count: int, seed: int, chunk: int) -> Iterator[pa.Table]:
    """`count` events of `persons`, in time order, as tables of at most `chunk` rows."""
    events = _events(persons, count, seed)
    for number, begin in enumerate(range(0, count, chunk)):
        rng = np.random.default_rng([seed, 2, number])
        yield _table(rng, events.take(np.arange(begin, min(count, begin + chunk))), persons)
