"""Who is held out: a stable hash of a group's salt and the person, in basis points.

SHA-256 rather than Python's `hash` (salted per process) or a fast non-cryptographic hash: the assignment
must be the same on every replica, across restarts and in offline analysis (any language can recompute it),
and one SHA-256 of a short string costs about a microsecond, nothing against a decision's budget.
"""

from __future__ import annotations

import hashlib

from wayline_decision.holdouts.model import HoldoutConfig, HoldoutGroup

__all__ = ["BASIS_POINTS", "bucket", "holdout_for"]

BASIS_POINTS = 10_000


def bucket(salt: str, person_key: str) -> int:
    """The person's bucket for a salt, 0 to 9,999: the first 8 bytes of SHA-256(salt, 0x00, person) as a
    big-endian integer, modulo 10,000 (the NUL keeps `("ab", "c")` and `("a", "bc")` apart)."""
    digest = hashlib.sha256(f"{salt}\x00{person_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BASIS_POINTS


def holdout_for(config: HoldoutConfig, person_key: str, model_id: str, placement: str) -> HoldoutGroup | None:
    """The first enabled group that applies to the model and placement and holds the person, if any."""
    for group in config.groups:
        if group.applies_to(model_id, placement) and bucket(group.salt, person_key) < round(
            group.percent * 100
        ):
            return group
    return None
