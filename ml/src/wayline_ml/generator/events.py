"""Generated events as columns: one numpy array per field, one row per event, in time order.

The generator appends blocks of rows to an `EventSink` (one block per vectorised step, every column given or
defaulted) and builds `Events` once at the end, so no Python object exists per event until an adapter asks
for protobufs. Identifiers are implied: an event carries its device's anonymous id when `device >= 0`, the
person's user id when `identified`, their email (with the noise `email_variant` says) when
`email_variant >= 0`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["EventSink", "Events", "uuid_strings"]


@dataclass(frozen=True)
class Events:
    """One row per event, sorted by time (ties in the order they were generated)."""

    event_id: NDArray[np.uint8]
    """(n, 16): the UUIDv4 bytes of each event, drawn from the seed (uuid_strings formats them)."""
    person: NDArray[np.int64]
    device: NDArray[np.int64]
    """The device (index into People's device arrays), -1 for events without one (email, store, call)."""
    identified: NDArray[np.bool_]
    """Carries the person's user id: they were logged in (or known to the channel) then."""
    email_variant: NDArray[np.int8]
    """-1: no email; else how the email is written (0 as is, 1 Capitalised, 2 UPPER, 3 padded with spaces)."""
    kind: NDArray[np.int8]
    """What happened (vocabulary.Kind)."""
    channel: NDArray[np.int8]
    """Where (vocabulary.Channel)."""
    time_us: NDArray[np.int64]
    """When, in µs since the epoch."""
    session: NDArray[np.int64]
    """The session it belongs to, -1 for actions and their responses."""
    stage: NDArray[np.int8]
    """The person's latent lifecycle stage (vocabulary.Stage) when the session began."""
    sku: NDArray[np.int32]
    """The product, -1 when none."""
    price: NDArray[np.float64]
    """The product's price (NaN when none)."""
    cart_value: NDArray[np.float64]
    """The cart's value for cart and checkout events (NaN otherwise)."""
    revenue: NDArray[np.float64]
    """The order's amount in EUR for Order Completed (NaN otherwise)."""
    text: NDArray[np.int32]
    """Index into texts.TEXTS for chats, calls and reviews, -1 otherwise."""
    action: NDArray[np.int8]
    """For action events and the orders answering them: the action (vocabulary.Action), -1 otherwise."""
    decision: NDArray[np.int64]
    """For decisions, action events and the orders answering them: the decision's row in the log, -1
    otherwise."""
    propensity: NDArray[np.float64]
    """For decisions: the logging policy's probability of the action it chose (NaN otherwise)."""

    def __len__(self) -> int:
        return len(self.person)


# Every column but event_id, with its dtype and the value of rows that do not set it.
COLUMNS: dict[str, tuple[type[Any], Any]] = {
    "person": (np.int64, -1),
    "device": (np.int64, -1),
    "identified": (np.bool_, False),
    "email_variant": (np.int8, -1),
    "kind": (np.int8, -1),
    "channel": (np.int8, -1),
    "time_us": (np.int64, 0),
    "session": (np.int64, -1),
    "stage": (np.int8, 0),
    "sku": (np.int32, -1),
    "price": (np.float64, np.nan),
    "cart_value": (np.float64, np.nan),
    "revenue": (np.float64, np.nan),
    "text": (np.int32, -1),
    "action": (np.int8, -1),
    "decision": (np.int64, -1),
    "propensity": (np.float64, np.nan),
}
assert set(COLUMNS) | {"event_id"} == {f.name for f in fields(Events)}


class EventSink:
    """Collects blocks of rows; `build` sorts them by time and draws their ids."""

    def __init__(self) -> None:
        self._blocks: dict[str, list[NDArray[Any]]] = {name: [] for name in COLUMNS}

    def add(self, rows: int, **columns: Any) -> None:
        """Append `rows` rows; each column is an array of that length or one value for all, unset ones
        take their default."""
        if rows == 0:
            return
        unknown = set(columns) - set(COLUMNS)
        if unknown:
            raise TypeError(f"unknown event columns: {sorted(unknown)}")
        for name, (dtype, default) in COLUMNS.items():
            value = np.asarray(columns.get(name, default), dtype=dtype)
            self._blocks[name].append(np.broadcast_to(value, (rows,)))

    def build(self, rng: np.random.Generator) -> Events:
        if not self._blocks["person"]:
            columns = {name: np.zeros(0, dtype=dtype) for name, (dtype, _) in COLUMNS.items()}
        else:
            columns = {name: np.concatenate(blocks) for name, blocks in self._blocks.items()}
        order = np.argsort(columns["time_us"], kind="stable")
        columns = {name: column[order] for name, column in columns.items()}
        return Events(event_id=_uuid4(rng, len(order)), **columns)


def _uuid4(rng: np.random.Generator, n: int) -> NDArray[np.uint8]:
    raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40  # version 4
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80  # RFC 4122 variant
    return raw


_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_DIGITS = np.array([i for i in range(36) if i not in (8, 13, 18, 23)])


def uuid_strings(raw: NDArray[np.uint8]) -> NDArray[np.str_]:
    """The canonical text of (n, 16) UUID bytes, vectorised (str(uuid.UUID) one by one is ~50x slower)."""
    hexed = np.empty((len(raw), 32), dtype=np.uint8)
    hexed[:, 0::2] = _HEX[raw >> 4]
    hexed[:, 1::2] = _HEX[raw & 0x0F]
    text = np.full((len(raw), 36), ord("-"), dtype=np.uint8)
    text[:, _DIGITS] = hexed
    return np.ascontiguousarray(text).view("S36").ravel().astype(np.str_)
