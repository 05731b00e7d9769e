"""Text columns of generated journeys, built with Arrow's vectorised string kernels rather than per-row
Python: random ids, and each event's properties as JSON text (the form the journey store keeps)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bench.journeys_vocabulary import PAGES, SEARCH_TERMS, CallReasons, Catalog, State, campaigns

__all__ = ["join", "number_text", "properties", "random_hex", "random_uuids", "scatter"]

_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_UUID_DIGITS = np.r_[0:8, 9:13, 14:18, 19:23, 24:36]  # where the 32 hex digits go among 36 characters
_PAGE_PROPERTIES = pa.array([f'{{"path": "{path}"}}' for _, path in PAGES])


def _strings(matrix: np.ndarray) -> pa.Array:
    """Fixed-width ASCII rows (an (n, w) uint8 matrix) as an Arrow string array, without Python objects."""
    n, width = matrix.shape
    offsets = np.arange(n + 1, dtype=np.int32) * width
    return pa.Array.from_buffers(
        pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(matrix))]
    )


def _hex(random: np.ndarray) -> np.ndarray:
    out = np.empty((random.shape[0], random.shape[1] * 2), dtype=np.uint8)
    out[:, 0::2], out[:, 1::2] = _HEX[random >> 4], _HEX[random & 15]
    return out


def random_hex(rng: np.random.Generator, n: int, prefix: str, nbytes: int = 8) -> pa.Array:
    """n strings `prefix` + 2*nbytes random hex digits."""
    digits = _hex(rng.integers(0, 256, (n, nbytes), dtype=np.uint8))
    head = np.broadcast_to(np.frombuffer(prefix.encode(), dtype=np.uint8), (n, len(prefix)))
    return _strings(np.hstack([head, digits]))


def random_uuids(rng: np.random.Generator, n: int) -> pa.Array:
    """n random version-4 UUIDs in their canonical text form."""
    raw = rng.integers(0, 256, (n, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    out = np.full((n, 36), ord("-"), dtype=np.uint8)
    out[:, _UUID_DIGITS] = _hex(raw)
    return _strings(out)


def join(*parts: pa.Array | str) -> pa.Array:
    """Element-wise concatenation of string arrays and constant strings."""
    return pc.binary_join_element_wise(*parts, "")


def number_text(values: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(values), pa.string())


def money_text(cents: np.ndarray) -> pa.Array:
    """Non-negative cents as a JSON number with two decimals ("12.05")."""
    fraction = pc.utf8_lpad(number_text(cents % 100), 2, "0")
    return join(number_text(cents // 100), ".", fraction)


def scatter(count: int, parts: list[tuple[np.ndarray, pa.Array]]) -> pa.Array:
    """One array of `count` values from parts that each fill the positions in their index array."""
    order = np.concatenate([index for index, _ in parts])
    inverse = np.empty(count, dtype=np.int64)
    inverse[order] = np.arange(count)
    return pa.concat_arrays([values.cast(pa.string()) for _, values in parts]).take(pa.array(inverse))


def properties(
    rng: np.random.Generator, state: np.ndarray, app: np.ndarray, page: np.ndarray, traits: pa.Array
) -> tuple[pa.Array, np.ndarray]:
    """Each event's properties (JSON text) and revenue in cents (0 for none, negative for refunds), from its
    state, whether it happened in the app, its page (an index into PAGES) and its person's traits."""
    n = len(state)
    cents = np.zeros(n, dtype=np.int64)
    parts: list[tuple[np.ndarray, pa.Array]] = []
    web_page = np.flatnonzero((state == State.PAGE) & ~app)
    parts.append((web_page, _PAGE_PROPERTIES.take(page[web_page])))
    screen = np.flatnonzero((state == State.PAGE) & app)
    parts.append((screen, pa.repeat("{}", screen.size)))
    product = np.flatnonzero(np.isin(state, (State.PRODUCT_VIEWED, State.PRODUCT_ADDED)))
    parts.append((product, Catalog.properties.take(Catalog.draw(rng, product.size))))
    search = np.flatnonzero(state == State.SEARCHED)
    terms = pa.array([f'{{"query": "{t}"}}' for t in SEARCH_TERMS])
    parts.append((search, terms.take(rng.integers(0, len(SEARCH_TERMS), search.size))))
    checkout = np.flatnonzero(state == State.CHECKOUT_STARTED)
    value = (rng.lognormal(4.0, 0.7, checkout.size) * 100).astype(np.int64) + 500
    items = rng.integers(1, 6, checkout.size)
    parts.append((checkout, join('{"items": ', number_text(items), ', "value": ', money_text(value), "}")))
    for orders in (State.ORDER_COMPLETED, State.STORE_ORDER):
        index = np.flatnonzero(state == orders)
        total = (rng.lognormal(4.0, 0.7, index.size) * 100).astype(np.int64) + 500
        cents[index] = total
        pieces = ['{"order_id": "', random_hex(rng, index.size, "o-", 6), '", "items": ']
        pieces += [number_text(rng.integers(1, 6, index.size)), ', "total": ', money_text(total)]
        if orders is State.STORE_ORDER:
            pieces += [', "store": "store-', number_text(rng.integers(10, 40, index.size)), '"']
        parts.append((index, join(*pieces, "}")))
    refund = np.flatnonzero(state == State.ORDER_REFUNDED)
    amount = (rng.lognormal(3.5, 0.6, refund.size) * 100).astype(np.int64) + 100
    cents[refund] = -amount
    refund_fields = ['{"order_id": "', random_hex(rng, refund.size, "o-", 6), '", "total": ']
    parts.append((refund, join(*refund_fields, money_text(amount), "}")))
    campaign = np.flatnonzero((state >= State.EMAIL_DELIVERED) & (state <= State.SMS_CLICKED))
    parts.append((campaign, campaigns().take(rng.integers(0, 12, campaign.size))))
    calls = np.flatnonzero((state == State.CALL_STARTED) | (state == State.CALL_ENDED))
    parts.append((calls, CallReasons.properties.take(rng.integers(0, len(CallReasons.reasons), calls.size))))
    identify = np.flatnonzero(state == State.IDENTIFY)
    parts.append((identify, traits.take(identify)))
    return scatter(n, parts), cents
