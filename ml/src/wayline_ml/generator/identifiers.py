"""How generated persons and devices are named, in one place for every adapter: `<ns>-u<person>` user ids,
`<ns>-d<device>` anonymous ids, `<ns>.p<person>@example.com` emails written with the noise real forms
produce (capitalised, upper case, padded with spaces), which identity's normalisation has to undo."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["anonymous_id", "anonymous_ids", "email", "emails", "user_id", "user_ids"]


def user_id(prefix: str, person: int) -> str:
    return f"{prefix}-u{person}"


def anonymous_id(prefix: str, device: int) -> str:
    return f"{prefix}-d{device}"


def _noisy(address: str, variant: int) -> str:
    if variant == 1:
        return address.capitalize()
    if variant == 2:
        return address.upper()
    if variant == 3:
        return f"  {address} "
    return address


def email(prefix: str, person: int, variant: int = 0) -> str:
    return _noisy(f"{prefix}.p{person}@example.com", variant)


def _numbered(head: str, numbers: NDArray[np.int64], tail: str = "") -> NDArray[np.str_]:
    return np.char.add(np.char.add(head, numbers.astype(np.str_)), tail)


def user_ids(prefix: str, persons: NDArray[np.int64]) -> NDArray[np.str_]:
    return _numbered(f"{prefix}-u", persons)


def anonymous_ids(prefix: str, devices: NDArray[np.int64]) -> NDArray[np.str_]:
    return _numbered(f"{prefix}-d", devices)


def emails(prefix: str, persons: NDArray[np.int64], variants: NDArray[np.int8]) -> NDArray[np.str_]:
    """The vectorised `email`; rows with a variant outside 0-3 get the address as is."""
    addresses = _numbered(f"{prefix}.p", persons, "@example.com")
    out = addresses.astype(object)
    for variant in (1, 2, 3):
        rows = variants == variant
        out[rows] = [_noisy(str(a), variant) for a in addresses[rows]]
    return out.astype(np.str_)
