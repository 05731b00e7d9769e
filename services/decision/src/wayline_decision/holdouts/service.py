"""Get and update a tenant's holdout config (by field mask, conditional on an etag), and the per-tenant
cache Decide reads it through: a decision must not pay a SQL round trip, and a change may take the cache's
TTL to reach every replica (seconds, stated in the setting's description)."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Sequence

from wayline.common.errors import FieldViolation
from wayline.common.timestamps import now_us
from wayline_decision.errors import HoldoutConfigInvalid, HoldoutEtagMismatch
from wayline_decision.holdouts.model import HoldoutConfig
from wayline_decision.holdouts.rules import holdout_violations
from wayline_decision.holdouts.store import HoldoutStore

__all__ = ["HOLDOUT_MASK_PATHS", "Holdouts"]

HOLDOUT_MASK_PATHS: tuple[str, ...] = ("groups",)


class Holdouts:
    def __init__(
        self,
        store: HoldoutStore,
        cache_seconds: float,
        clock: Callable[[], int] = now_us,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._monotonic = monotonic
        self._cache: dict[str, tuple[float, HoldoutConfig]] = {}
        self._lock = threading.Lock()

    def get(self, tenant: str) -> HoldoutConfig:
        """The stored config, read from the store (GetHoldoutConfig answers what is stored, not cached)."""
        config = self._store.get(tenant)
        self._remember(tenant, config)
        return config

    def current(self, tenant: str) -> HoldoutConfig:
        """The config Decide follows: cached for `cache_seconds` per tenant."""
        cached = self._cache.get(tenant)  # a dict read is atomic; the lock only orders writers
        if cached is not None and self._monotonic() < cached[0]:
            return cached[1]
        return self.get(tenant)

    def _remember(self, tenant: str, config: HoldoutConfig) -> None:
        with self._lock:
            self._cache[tenant] = (self._monotonic() + self._cache_seconds, config)

    def update(self, tenant: str, changes: HoldoutConfig, paths: Sequence[str], etag: str) -> HoldoutConfig:
        unknown = [
            FieldViolation(f"update_mask.paths[{i}]", f"{path!r} is not a writable field of HoldoutConfig")
            for i, path in enumerate(paths)
            if path not in HOLDOUT_MASK_PATHS
        ]
        if unknown:
            raise HoldoutConfigInvalid(unknown)
        problems = holdout_violations(changes)
        if problems:
            raise HoldoutConfigInvalid(problems)
        current = self._store.get(tenant)
        if etag and etag != current.etag:
            raise HoldoutEtagMismatch()
        if changes.groups == current.groups:
            return current  # nothing changes: no new version
        updated = dataclasses.replace(
            current, groups=changes.groups, version=current.version + 1, update_time=self._clock()
        )
        if not self._store.put(tenant, updated, current.version):
            raise HoldoutEtagMismatch()  # changed between the read and the write
        self._remember(tenant, updated)
        return updated
