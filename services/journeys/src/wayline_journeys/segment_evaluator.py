"""Keeps segment memberships current, incrementally, in a thread of its own (started with the service).

Every `refresh_seconds` a pass does, for every tenant with segments:
- a full evaluation of each segment that is new, whose condition changed, whose last full evaluation is older
  than `full_evaluation_seconds`, whose RFM ranks may have moved (on the window cadence), or whose lifecycle
  model changed; every segment is evaluated in full once after start (what happened while no evaluator ran);
- an evaluation of the persons stamped in `segment_dirty` since the last pass (events and overrides written,
  persons erased), and, every `window_check_seconds`, of the persons with an event whose timestamp crossed
  a trailing window's boundary (or came due) since the last check: windows that lapse with no event;
- segments referring to other segments go after them, with the persons whose memberships just changed.
When evaluating everyone was measured to cost less than evaluating the persons at hand (a small store, or a
burst of writes touching many persons), the pass evaluates everyone instead: the answer is the same.
Only differences leave ClickHouse; each becomes a change with the tenant's next sequence (strictly increasing,
one writer: this thread), written to the feed and then to the memberships.

Freshness: a pass at time N scans stamps from the previous pass's time minus `settle_seconds` (a margin for
inserts still committing and for clock skew between this process and ClickHouse), so after it every event
stored before N - settle is reflected: that is `data_as_of`. `windows_as_of` is the time of the last window
check. Deleting a segment takes its members out of every read at once (reads join the live definitions); the
next pass writes their exits. Run one evaluator per deployment: two would write each change twice.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import structlog

from wayline_journeys.conditions import Condition, InLifecycleStage
from wayline_journeys.errors import StoreUnavailable
from wayline_journeys.lifecycle import LifecycleModel
from wayline_journeys.segment_tracking import EvaluationStore, TrackedSegment, TrackedTenant, levels, windows
from wayline_journeys.segments import ChangeType, SegmentDefinition, SegmentState
from wayline_journeys.store.segment_evaluation import StatusRow, StoredChange

__all__ = ["SegmentEvaluator"]

log = structlog.get_logger("wayline.journeys.segments")

_CHUNK = 5_000  # persons per evaluation statement: bounded parameters, one statement for most passes


class SegmentEvaluator:
    """See the module docstring. `parse` turns a stored condition into a Condition (raising ValueError when
    it no longer converts); `lifecycle` gives a tenant's default lifecycle model."""

    def __init__(
        self,
        store: EvaluationStore,
        parse: Callable[[str], Condition],
        lifecycle: Callable[[str], LifecycleModel],
        *,
        refresh_seconds: float,
        window_check_seconds: float,
        full_evaluation_seconds: float,
        settle_seconds: float,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._parse = parse
        self._lifecycle = lifecycle
        self._refresh = refresh_seconds
        self._window_check = timedelta(seconds=window_check_seconds)
        self._full = timedelta(seconds=full_evaluation_seconds)
        self._settle = timedelta(seconds=settle_seconds)
        self._clock = clock
        self._tenants: dict[str, TrackedTenant] = {}
        self._started = False  # a first pass looks for members of segments deleted while none ran
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def note_persons(self, tenant: str, persons: Sequence[str]) -> None:
        """Evaluate the persons again at the next pass (an erasure writes no event to stamp them)."""
        self._store.mark_dirty(tenant, persons)
        self._wake.set()

    def wake(self) -> None:
        """Run the next pass now (a segment was created or changed)."""
        self._wake.set()

    def tick(self) -> None:
        """One pass over every tenant with segments."""
        now = self._clock()
        definitions = self._store.live_definitions()
        changes = self._sync(definitions)
        since = {t: s.scanned_at - self._settle for t, s in self._tenants.items() if s.scanned_at is not None}
        due = {
            t for t, s in self._tenants.items() if s.windows_at and now - s.windows_at >= self._window_check
        }
        crossings = {t: self._crossings(self._tenants[t], now) for t in due}
        dirty = self._store.dirty(since, crossings)
        statuses: list[StatusRow] = []
        for tenant_id, tenant in sorted(self._tenants.items()):
            try:
                self._pass(tenant_id, tenant, dirty.get(tenant_id, set()), now, tenant_id in due)
            except StoreUnavailable as exc:
                log.warning("journeys.segments_pass_failed", tenant=tenant_id, error=str(exc))
                continue
            except Exception:  # one tenant's defect (an unusable lifecycle model) must not stop the others
                log.exception("journeys.segments_pass_crashed", tenant=tenant_id)
                continue
            tenant.scanned_at = now
            if tenant_id in due or tenant.windows_at is None:
                tenant.windows_at = now
            statuses += self._statuses(tenant_id, tenant, now)
        self._store.write_status(statuses)
        for tenant_id, exits in changes.items():
            self._write(tenant_id, exits)

    def _sync(self, definitions: Sequence[SegmentDefinition]) -> dict[str, list[StoredChange]]:
        """Track the live definitions; the exits of members of segments no longer live."""
        by_tenant: dict[str, dict[str, SegmentDefinition]] = {}
        for d in definitions:
            by_tenant.setdefault(d.tenant, {})[d.segment_id] = d
        new = sorted(t for t in by_tenant if t not in self._tenants)
        heads = self._store.sequence_heads(new) if new else {}
        gone = False
        for tenant_id in sorted({*by_tenant, *self._tenants}):
            live = by_tenant.get(tenant_id, {})
            if tenant_id not in self._tenants:
                self._tenants[tenant_id] = TrackedTenant(sequence=heads.get(tenant_id, 0))
            tenant = self._tenants[tenant_id]
            for segment_id, tracked in list(tenant.segments.items()):
                if segment_id not in live or live[segment_id].uid != tracked.definition.uid:
                    del tenant.segments[segment_id]
                    gone = True
            for segment_id, d in live.items():
                known = tenant.segments.get(segment_id)
                if known is None or known.definition.condition_revision != d.condition_revision:
                    tenant.segments[segment_id] = self._track(d)
                else:
                    known.definition = d
            if not live:
                del self._tenants[tenant_id]
        exits: dict[str, list[StoredChange]] = {}
        if gone or not self._started:
            now = self._clock()
            for tenant_id, uid, segment_id, person in self._store.members_outside(
                [d.uid for d in definitions]
            ):
                change = StoredChange(0, uid, segment_id, person, ChangeType.EXITED, now)
                exits.setdefault(tenant_id, []).append(change)
            self._started = True
        return exits

    def _track(self, definition: SegmentDefinition) -> TrackedSegment:
        try:
            return TrackedSegment(definition, self._parse(definition.condition))
        except ValueError as exc:
            log.warning("journeys.segment_unusable", segment=definition.name, error=str(exc))
            return TrackedSegment(
                definition, None, definition.condition_revision, SegmentState.FAILED, error=str(exc)
            )

    def _crossings(self, tenant: TrackedTenant, now: datetime) -> list[tuple[datetime, datetime]]:
        assert tenant.windows_at is not None
        conditions = [s.condition for s in tenant.segments.values() if s.condition is not None]
        if tenant.model is not None:
            conditions += [c for _, c in tenant.model.definitions]
        return [(tenant.windows_at - w, now - w) for w in sorted(windows(conditions))]

    def _pass(
        self, tenant_id: str, tenant: TrackedTenant, dirty: set[str], now: datetime, windows_due: bool
    ) -> None:
        model_changed = False
        if any(s.uses(InLifecycleStage) for s in tenant.segments.values()):
            model = self._lifecycle(tenant_id)
            model_changed, tenant.model = model != tenant.model, model
        changed: set[str] = set()
        for group in levels(tenant.segments):
            usable = [s for s in group if s.condition is not None and s.state is not SegmentState.FAILED]
            full = [
                s
                for s in usable
                if s.evaluated != s.definition.condition_revision
                or s.full_at is None
                or now - s.full_at >= self._full
                or (windows_due and s.ranks)
                or (model_changed and s.uses(InLifecycleStage))
            ]
            partial = [s for s in usable if s not in full]
            persons = sorted(dirty | changed) if partial else []
            if persons and tenant.cheaper_in_full(len(persons)):
                full, partial, persons = usable, [], []
            started = time.monotonic()
            found = self._evaluate(tenant_id, tenant, full, now, None)
            if full:
                tenant.full_seconds = time.monotonic() - started
            started = time.monotonic()
            for start in range(0, len(persons), _CHUNK):
                found += self._evaluate(tenant_id, tenant, partial, now, persons[start : start + _CHUNK])
            if persons:
                tenant.person_seconds = (time.monotonic() - started) / len(persons)
            for s in full:
                if s.state is not SegmentState.FAILED:
                    s.evaluated, s.full_at, s.state = s.definition.condition_revision, now, SegmentState.READY
            self._write(tenant_id, found)
            changed |= {c.person_id for c in found}

    def _evaluate(
        self,
        tenant_id: str,
        tenant: TrackedTenant,
        segments: list[TrackedSegment],
        now: datetime,
        persons: list[str] | None,
    ) -> list[StoredChange]:
        """The changes of `segments` (for `persons`, or everyone); a segment whose evaluation fails for a
        reason other than the store being down is marked FAILED and left out."""
        if not segments:
            return []
        conditions = {s.definition.uid: s.condition for s in segments if s.condition is not None}
        try:
            rows = self._store.differences(tenant_id, conditions, tenant.model, now, persons)
        except StoreUnavailable:
            raise
        except Exception as exc:
            if len(segments) > 1:  # find the one that fails; the others go on
                return [c for s in segments for c in self._evaluate(tenant_id, tenant, [s], now, persons)]
            log.exception("journeys.segment_failed", tenant=tenant_id, segment=segments[0].definition.name)
            segments[0].state, segments[0].error = SegmentState.FAILED, f"the evaluation failed: {exc}"[:500]
            segments[0].evaluated = segments[0].definition.condition_revision
            return []
        by_uid = {s.definition.uid: s.definition.segment_id for s in segments}
        kind = {True: ChangeType.ENTERED, False: ChangeType.EXITED}
        return [StoredChange(0, uid, by_uid[uid], p, kind[e], now) for uid, p, e in sorted(rows)]

    def _write(self, tenant_id: str, changes: list[StoredChange]) -> None:
        if not changes:
            return
        tenant = self._tenants.get(tenant_id)
        if tenant is None:  # every segment of the tenant is gone
            tenant = self._tenants[tenant_id] = TrackedTenant(
                self._store.sequence_heads([tenant_id]).get(tenant_id, 0)
            )
        first = tenant.sequence + 1
        tenant.sequence += len(changes)  # used even if the write fails: a sequence is never given twice
        numbered = [
            StoredChange(first + i, c.segment_uid, c.segment_id, c.person_id, c.change_type, c.change_time)
            for i, c in enumerate(changes)
        ]
        self._store.write(tenant_id, numbered)

    def _statuses(self, tenant_id: str, tenant: TrackedTenant, now: datetime) -> list[StatusRow]:
        """The tenant's freshness (a row with no segment uid, every pass: its ready segments share it), and
        the row of each segment whose state changed."""
        rows = [StatusRow(tenant_id, "", 0, 0, now - self._settle, tenant.windows_at, None, "", now)]
        for s in tenant.segments.values():
            if s.evaluated != s.definition.condition_revision:
                continue  # not built yet: readers see BUILDING
            state = (s.evaluated, s.state, s.full_at, s.error)
            if state != s.written:
                rows.append(
                    StatusRow(
                        tenant_id,
                        s.definition.uid,
                        s.evaluated,
                        int(s.state),
                        None,
                        None,
                        s.full_at,
                        s.error,
                        now,
                    )
                )
                s.written = state
        return rows

    def start(self) -> None:
        if self._thread is None and self._refresh > 0:
            self._thread = threading.Thread(target=self._run, name="journeys-segments", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                self.tick()
            except StoreUnavailable as exc:
                log.warning("journeys.segments_pass_failed", error=str(exc))
            except Exception:
                log.exception("journeys.segments_pass_crashed")
            self._wake.wait(self._refresh)
