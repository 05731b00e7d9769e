"""The enabled plans of every tenant, compiled and kept in memory, so the hot path never waits on SQL.

The cache is a dict from tenant to that tenant's compiled plans; a tenant without an enabled plan is
simply absent, so checking its events costs one dict lookup. The dict is replaced whole (copy on write),
never mutated, so readers take no lock.

It stays fresh two ways. A write through this process reloads the tenant at once (`reload`), before the
write returns: "applies to events received after the call returns". Writes through other replicas are
picked up by `refresh`, which a background thread runs every `refresh_interval` seconds: it reads only the
(tenant, plan id, revision) of enabled plans and reloads the tenants whose set changed. A plan is compiled
once per revision: unchanged revisions keep their compiled form across reloads.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass

import structlog

from wayline_ingest.plans.checker import CompiledPlan, compile_plan
from wayline_ingest.plans.store import PlanStore

__all__ = ["PlanCache", "TenantPlans"]

log = structlog.get_logger("wayline.ingest.plans")


@dataclass(frozen=True)
class TenantPlans:
    """One tenant's enabled plans, by the channel they cover."""

    by_channel: Mapping[int, CompiledPlan]
    everywhere: CompiledPlan | None  # the plan without channels, if any
    plans: Mapping[str, CompiledPlan]  # by plan id

    def revisions(self) -> dict[str, int]:
        return {plan_id: plan.revision for plan_id, plan in self.plans.items()}

    def plan_for(self, channel: int) -> CompiledPlan | None:
        return self.by_channel.get(channel, self.everywhere)

    @classmethod
    def of(cls, compiled: list[CompiledPlan]) -> TenantPlans:
        by_channel: dict[int, CompiledPlan] = {}
        everywhere: CompiledPlan | None = None
        for plan in sorted(compiled, key=lambda p: p.plan_id):
            # The store refuses overlaps; should two plans ever cover a channel, the first id wins.
            if not plan.channels:
                everywhere = everywhere or plan
            for channel in plan.channels:
                by_channel.setdefault(channel, plan)
        return cls(by_channel=by_channel, everywhere=everywhere, plans={p.plan_id: p for p in compiled})


class PlanCache:
    """Compiled enabled plans by tenant, reloaded on local writes and polled for remote ones."""

    def __init__(self, store: PlanStore, *, refresh_interval: float = 1.0) -> None:
        self._store = store
        self._refresh_interval = refresh_interval
        self._tenants: dict[str, TenantPlans] = {}
        self._lock = threading.Lock()  # serialises writers of `_tenants`; readers need none
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.compilations = 0  # how many plan revisions were compiled, for tests and debugging

    def get(self, tenant: str) -> TenantPlans | None:
        """The tenant's enabled plans; None when it has none (the common case, one dict lookup)."""
        return self._tenants.get(tenant)

    def reload(self, tenant: str) -> None:
        """Read the tenant's enabled plans from the store now (after a write through this process)."""
        with self._lock:
            tenants = dict(self._tenants)
            self._load(tenants, tenant)
            self._tenants = tenants

    def refresh(self) -> None:
        """Reload every tenant whose enabled plans changed in the store since the last look."""
        with self._lock:
            versions = self._store.enabled_versions()
            tenants = dict(self._tenants)
            changed = [
                tenant
                for tenant in versions.keys() | tenants.keys()
                if versions.get(tenant, {}) != (tenants[tenant].revisions() if tenant in tenants else {})
            ]
            for tenant in changed:
                self._load(tenants, tenant)
            if changed:
                self._tenants = tenants

    def _load(self, tenants: dict[str, TenantPlans], tenant: str) -> None:
        previous = tenants.get(tenant)
        compiled: list[CompiledPlan] = []
        for plan in self._store.enabled_plans(tenant):
            known = previous.plans.get(plan.plan_id) if previous else None
            if known is None or known.revision != plan.revision:
                known = compile_plan(plan)
                self.compilations += 1
            compiled.append(known)
        if compiled:
            tenants[tenant] = TenantPlans.of(compiled)
        else:
            tenants.pop(tenant, None)

    def start(self) -> None:
        """Load every tenant's plans, then keep them fresh from a background thread."""
        self.refresh()
        if self._thread is None:
            self._stopping.clear()
            self._thread = threading.Thread(target=self._poll, name="ingest-tracking-plans", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _poll(self) -> None:
        while not self._stopping.wait(self._refresh_interval):
            try:
                self.refresh()
            except Exception:  # keep checking with the plans we have; the next poll retries
                log.exception("tracking_plans.refresh_failed")
