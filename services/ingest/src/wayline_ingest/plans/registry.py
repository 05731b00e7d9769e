"""TrackingPlans: the one object ingest holds for tracking plans, for the RPCs and for the hot path.

Writes validate, persist through the store and reload the tenant's compiled plans before returning, so a
plan applies to the very next event this replica receives (other replicas follow within the cache's
refresh interval). `check` is what the pipeline calls for every event; it touches memory only.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection
from dataclasses import replace
from datetime import UTC, datetime

from opentelemetry import metrics

from wayline.common.errors import FieldViolation, InvalidArgument
from wayline.event.v1 import event_pb2
from wayline_ingest.plans.cache import PlanCache
from wayline_ingest.plans.checker import evaluate
from wayline_ingest.plans.errors import EtagMismatch, TrackingPlanNotFound
from wayline_ingest.plans.metrics import PlanMetrics
from wayline_ingest.plans.model import WRITABLE_FIELDS, PlanPage, PlanSpec, PlanVerdict, TrackingPlan
from wayline_ingest.plans.rules import plan_id_problem, validate_spec
from wayline_ingest.plans.store import PlanStore

__all__ = ["TrackingPlans"]


def _now() -> datetime:
    return datetime.now(UTC)


def _new_id() -> str:
    return f"plan-{uuid.uuid4().hex[:12]}"


class TrackingPlans:
    """Tenants' tracking plans: create, read, update, and check events against them.

    Call `start()` once the store is reachable (it creates the table and loads the plans; it raises
    UNAVAILABLE while the store is down, so it can run as the service's retried start step) and `stop()` at
    shutdown. The database itself belongs to the caller.
    """

    def __init__(
        self,
        store: PlanStore,
        *,
        meter: metrics.Meter | None = None,
        clock: Callable[[], datetime] = _now,
        refresh_interval: float = 1.0,
    ) -> None:
        self._store = store
        self._cache = PlanCache(store, refresh_interval=refresh_interval)
        self._metrics = PlanMetrics(meter)
        self._clock = clock

    def start(self) -> None:
        self._store.create_tables()
        self._cache.start()

    def stop(self) -> None:
        self._cache.stop()

    def refresh(self) -> None:
        """Pick up changes made through other replicas now (the background thread does it every interval)."""
        self._cache.refresh()

    @property
    def compilations(self) -> int:
        """How many plan revisions this process compiled so far."""
        return self._cache.compilations

    def covers_tenant(self, tenant: str) -> bool:
        """Whether the tenant has an enabled plan: asked once per call, so calls of tenants without plans
        skip the per-event check."""
        return self._cache.get(tenant) is not None

    def check(self, tenant: str, event: event_pb2.Event) -> PlanVerdict | None:
        """The verdict of the plan covering `event`, or None when no plan covers it or it conforms."""
        plans = self._cache.get(tenant)
        if plans is None:
            return None
        plan = plans.plan_for(event.channel)
        if plan is None:
            return None
        violations, label = evaluate(plan, event)
        if not violations:
            return None
        self._metrics.violations(tenant, plan.name, label, plan.mode, len(violations))
        return PlanVerdict(plan=plan.name, mode=plan.mode, violations=violations)

    def create(self, tenant: str, spec: PlanSpec, plan_id: str = "") -> TrackingPlan:
        """Store a new plan at revision 1; the id is generated when empty."""
        violations = validate_spec(spec)
        problem = plan_id_problem(plan_id) if plan_id else None
        if problem is not None:
            violations.insert(0, _violation("tracking_plan_id", problem))
        if violations:
            raise InvalidArgument("the tracking plan is invalid; see the field violations", violations)
        now = self._clock().astimezone(UTC)
        plan = TrackingPlan(
            tenant=tenant,
            plan_id=plan_id or _new_id(),
            spec=spec,
            revision=1,
            create_time=now,
            update_time=now,
        )
        self._store.insert(plan)
        self._cache.reload(tenant)
        return plan

    def get(self, tenant: str, plan_id: str) -> TrackingPlan:
        plan = self._store.get(tenant, plan_id)
        if plan is None:
            raise _not_found(plan_id)
        return plan

    def list(self, tenant: str, page_size: int, after: str | None = None) -> PlanPage:
        """One page of the tenant's plans by id, starting after the id `after`."""
        return self._store.page(tenant, after, page_size)

    def update(
        self,
        tenant: str,
        plan_id: str,
        spec: PlanSpec,
        fields: Collection[str] = WRITABLE_FIELDS,
        etag: str = "",
    ) -> TrackingPlan:
        """Replace the `fields` of the plan with those of `spec` as a new revision.

        With `etag`, only if the plan still has that etag (ABORTED otherwise).
        """
        unknown = set(fields) - WRITABLE_FIELDS
        if unknown:
            raise ValueError(f"not writable fields: {sorted(unknown)}")
        violations = validate_spec(spec, fields=fields)
        if violations:
            raise InvalidArgument("the tracking plan is invalid; see the field violations", violations)

        def change(current: TrackingPlan) -> TrackingPlan:
            if etag and etag != current.etag:
                raise EtagMismatch(
                    f"{current.name} changed since it was read (revision {current.revision} now); read it "
                    "again and retry",
                    metadata={"name": current.name},
                )
            return replace(
                current,
                spec=replace(current.spec, **{f: getattr(spec, f) for f in fields}),
                revision=current.revision + 1,
                update_time=max(self._clock().astimezone(UTC), current.update_time),
            )

        updated = self._store.update(tenant, plan_id, change)
        if updated is None:
            raise _not_found(plan_id)
        self._cache.reload(tenant)
        return updated


def _violation(field: str, description: str) -> FieldViolation:
    return FieldViolation(field, description, "INVALID")


def _not_found(plan_id: str) -> TrackingPlanNotFound:
    name = f"trackingPlans/{plan_id}"
    return TrackingPlanNotFound(f"tracking plan {name} does not exist", metadata={"name": name})
