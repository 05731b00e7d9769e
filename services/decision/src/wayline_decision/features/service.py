"""The online feature service: one online state per tenant, fed by ObserveEvents and identity's override feed,
read by Decide — from the state when it can answer exactly, else from journeys within the caller's budget,
else the spec's defaults, and the read says which (FeatureOrigin). Free of gRPC: journeys is reached through
`JourneysFeatures` (journeys_client.py is the gRPC side).

When the state is exact for a person. The state only knows the events consumed since a spec was registered
(`since_us`, the spec's coverage start); journeys keeps every event. So a person's online values are exact
for a spec when journeys holds no event of theirs received before the spec's coverage start: the person is
then *clean* from that time. The service asks journeys once per person and coverage start (a COUNT of every
event at that time, off the read path, on a small pool) and remembers the answer; until it has one, and for a
person found with earlier history (*dirty*), reads go to journeys. The question is asked only once
`settle_after_us` has passed since the coverage start, the delivery lag the state already assumes of every
sink: before that, journeys may not hold an event yet that the state will never see.

Person merges move the merged person's state into the survivor's (a clean survivor stays clean only if the
merged person was clean too); identifier-scoped overrides (unmerges, splits) and cancelled merges cannot be
applied to folded slots, so every person they touch is marked dirty (journeys answers for them); an erasure
forgets the person, and for `ERASED_KEPT_S` after it leaves out the person's events still in flight (ingest
resolved them just before the erasure; identity gives the person's identifiers a new id from then on).

Tenants to follow: identity's erasures wait for this service's acknowledgement of the override feed
(consumer `decision`), so it follows every tenant it was given anything of (ADR 76). `remember` records a
tenant the first time an RPC brings one to this process (ObserveEvents, Decide, Feedback): in process, in
the change log before the RPC answers, so a restart follows every tenant again, even one of which it keeps
nothing. With a shared state (Redis) the tenants this replica holds are added to the state's set of tenants
within a second (`share_tenants`, from the runtime's upkeep thread, off the RPCs' path: Redis may be slow to
refuse), and every tenant of the set is followed, so a new replica follows the tenants the others fed.

Locking: each tenant's state has a lock of its own, held for one state operation (a read is tens of
microseconds), so tenants never wait for each other and Decide's reads wait at most for one ObserveEvents
batch of their tenant. Journeys is never called under a lock. Every change to a tenant (events consumed,
spec registered, overrides applied, horizon advanced) is handed to the `ChangeLog` under that tenant's lock,
so the log's order is the order the state saw (persistence.py replays it after a restart).
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable, Collection, Iterable, Sequence, Sized
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import structlog
from opentelemetry import metrics

from wayline.event.v1 import event_pb2
from wayline.identity.v1 import person_override_pb2
from wayline.journeys.v1 import feature_pb2
from wayline_decision.errors import FeatureStateUnavailable
from wayline_decision.features.event_converter import observed_event
from wayline_decision.features.model import CompiledSpec, FeatureValue
from wayline_decision.features.reader import FeatureOrigin, FeatureRead
from wayline_decision.features.spec_compiler import compile_spec
from wayline_decision.features.state import OnlineFeatureState, OutsideRetention

if TYPE_CHECKING:
    from wayline_decision.serving.loaded import ServingModel

__all__ = [
    "ERASED_KEPT_S",
    "ChangeLog",
    "JourneysFailed",
    "JourneysFeatures",
    "OnlineFeatures",
    "TenantDocument",
]

log = structlog.get_logger("wayline.decision.features")

_NEVER = -(2**63)
_VERIFY_TIMEOUT_S = 30.0
_CHUNK = 16
"""Events consumed under one hold of the tenant's lock (about 15 µs each)."""
ERASED_KEPT_S = 3600.0
"""How long an erased person's events are left out: ingest reuses a resolution while its cache holds it (a
second or two of a busy spool), so an event resolved just before the erasure arrives soon after it."""

TenantDocument = dict[str, Any]


class JourneysFailed(Exception):
    """Journeys did not answer in time (`deadline`), could not be reached (`unavailable`), or refused the
    call (`refused`)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class JourneysFeatures(Protocol):
    def values(
        self, tenant: str, spec: feature_pb2.FeatureSpec, person_id: str, as_of_us: int, timeout_s: float
    ) -> list[FeatureValue]:
        """The person's values at `as_of_us`, in spec order; JourneysFailed when journeys does not answer."""
        ...

    def holds_events_before(self, tenant: str, person_id: str, before_us: int, timeout_s: float) -> bool: ...


class SharedTenants(Protocol):
    """The tenants of a state shared by several replicas, kept with it (factory.FeatureStates)."""

    def remember(self, tenants: Collection[str]) -> None:
        """Add `tenants` (FeatureStateUnavailable when the shared state does not answer)."""
        ...

    def remembered(self) -> set[str]:
        """Every tenant any replica added (FeatureStateUnavailable when the shared state does not answer)."""
        ...


class ChangeLog(Protocol):
    def append(self, tenant: str, kind: str, data: Any) -> int:
        """Record one change (written in order, under the tenant's lock); its sequence number."""
        ...

    def sync(self, seq: int) -> None:
        """Make the changes up to `seq` durable (called outside the tenant's lock, before acknowledging)."""
        ...


@dataclass
class _Spec:
    message: feature_pb2.FeatureSpec
    compiled: CompiledSpec
    since_us: int
    """Every event received from then on reaches the state for this spec."""


@dataclass
class _Tenant:
    state: OnlineFeatureState
    lock: threading.Lock = field(default_factory=threading.Lock)
    specs: dict[tuple[str, str], _Spec] = field(default_factory=dict)
    clean: dict[str, int] = field(default_factory=dict)
    """person → C: journeys holds no event of the person received before C."""
    dirty: dict[str, int] = field(default_factory=dict)
    """person → C: journeys holds events of the person received before C (_NEVER: the state's copy of the
    person is wrong for good, after an unmerge or split)."""
    merged: dict[str, str] = field(default_factory=dict)
    """merged person → survivor, to know whom a cancelled merge touches."""
    erased: dict[str, float] = field(default_factory=dict)
    """erased person → when the erasure was applied (the clock's seconds): their events still in flight are
    left out."""
    cursor: int = 0
    """The highest override feed version applied."""
    seq: int = 0
    """The change log's sequence number of the last change applied."""
    epoch: int = 0
    """Bumped by every override applied: a verification started before one is discarded."""
    verifying: set[tuple[str, int]] = field(default_factory=set)


class _Instruments:
    def __init__(self, meter: metrics.Meter, persons: Callable[[], int]) -> None:
        self.reads = meter.create_counter(
            "wayline.decision.features.reads",
            unit="{read}",
            description="Feature reads by origin (online, journeys, defaults) and, for the others, why the "
            "online state did not answer (unverified, dirty, outside_retention, new_spec, state_unavailable) "
            "and why journeys did not (deadline, unavailable, refused).",
        )
        self.fallback_ms = meter.create_histogram(
            "wayline.decision.features.fallback.duration",
            unit="ms",
            description="Time spent asking journeys for a read the online state could not answer.",
        )
        self.events = meter.create_counter(
            "wayline.decision.features.events", unit="{event}", description="Events ObserveEvents consumed."
        )

        def observe_persons(options: metrics.CallbackOptions) -> Iterable[metrics.Observation]:
            yield metrics.Observation(persons())

        meter.create_observable_gauge(
            "wayline.decision.features.persons",
            callbacks=[observe_persons],
            unit="{person}",
            description="Persons held by the in-process online state, every tenant together.",
        )


class OnlineFeatures:
    """FeatureReader and ModelLoadListener of the decision service (see the module's docstring)."""

    def __init__(
        self,
        new_state: Callable[[str], OnlineFeatureState],
        journeys: JourneysFeatures,
        *,
        settle_after_us: int,
        changes: ChangeLog | None = None,
        shared_tenants: SharedTenants | None = None,
        clock: Callable[[], float] = time.time,
        verify_workers: int = 2,
        meter: metrics.Meter | None = None,
    ) -> None:
        self._new_state = new_state
        self._journeys = journeys
        self._settle_after_us = settle_after_us
        self._changes = changes
        self._shared_tenants = shared_tenants
        self._clock = clock
        self._tenants: dict[str, _Tenant] = {}
        self._remembered: set[str] = set()
        """Tenants recorded as to follow, as far as this process knows (`remember`)."""
        self._shared: set[str] = set()
        """Tenants this process added to the shared state's set (`share_tenants`)."""
        self._tenants_lock = threading.Lock()
        self._verifier = ThreadPoolExecutor(verify_workers, thread_name_prefix="features-verify")
        self._metrics = _Instruments(meter or metrics.get_meter("wayline.decision"), self.person_count)

    # --- ModelLoadListener ----------------------------------------------------------------------------

    def loaded(self, model: ServingModel) -> None:
        """Register `model.spec` for `model.tenant` (a spec already registered keeps its coverage start)."""
        self._register_if_available(model.tenant, model.manifest.feature_spec)

    def _register_if_available(self, tenant: str, message: feature_pb2.FeatureSpec) -> None:
        """`register`, unless the shared state (Redis) is unavailable: the version still loads and serves
        (its reads go to journeys, reason new_spec), and its next read registers the spec again."""
        try:
            self.register(tenant, message)
        except FeatureStateUnavailable as error:
            log.warning("features.register_failed", tenant=tenant, spec=message.name, error=str(error))

    def register(self, tenant: str, message: feature_pb2.FeatureSpec, since_us: int | None = None) -> None:
        """Keep the state of a loaded version's spec (checked when the version was uploaded: `stored`, so that
        one registered before the RE2 check keeps its pattern, holding for no event, ADR 78)."""
        compiled = compile_spec(message, "feature_spec.", stored=True)
        t = self._tenant(tenant)
        with t.lock:
            if compiled.key in t.specs:
                return
            since = self._now_us() if since_us is None else since_us
            self._register(t, message, compiled, since)
            self._log(t, tenant, "spec", {"spec": _text(message), "since_us": since})

    def _register(
        self, t: _Tenant, message: feature_pb2.FeatureSpec, compiled: CompiledSpec, since: int
    ) -> None:
        t.state.register(compiled)
        spec = feature_pb2.FeatureSpec()
        spec.CopyFrom(message)
        t.specs[compiled.key] = _Spec(spec, compiled, since)

    # --- ObserveEvents --------------------------------------------------------------------------------

    def observe(self, tenant: str, events: Sequence[event_pb2.Event]) -> int:
        """Consume the events (identity resolved) into the tenant's state, idempotently by event id; the
        number processed (copies included, and those of erased persons, left out). The change is logged
        before this returns."""
        given = len(events)
        t = self._tenant(tenant)
        if t.erased:
            events = [e for e in events if e.person_id not in t.erased]
        observed = [observed_event(e) for e in events]
        texts = [_text(e) for e in events] if self._changes is not None else []
        seq = 0
        # The lock is taken per chunk, so that a read waits for a few events, never for a whole batch.
        for start in range(0, len(observed), _CHUNK):
            with t.lock:
                for event in observed[start : start + _CHUNK]:
                    t.state.observe(event)
                seq = self._log(t, tenant, "events", texts[start : start + _CHUNK])
            # Hand the GIL over: a read woken by the release would otherwise wait for the interpreter's
            # switch interval (5 ms) while this thread takes the lock again for the next chunk.
            time.sleep(0)
        if self._changes is not None:
            self._changes.sync(seq)
        self._metrics.events.add(len(observed))
        return given

    # --- FeatureReader --------------------------------------------------------------------------------

    def read(self, model: ServingModel, person_id: str, as_of_us: int, budget_s: float) -> FeatureRead:
        return self.read_spec(
            model.tenant, model.manifest.feature_spec, model.spec, person_id, as_of_us, budget_s=budget_s
        )

    def read_spec(
        self,
        tenant: str,
        message: feature_pb2.FeatureSpec,
        compiled: CompiledSpec,
        person_id: str,
        as_of_us: int,
        *,
        budget_s: float,
    ) -> FeatureRead:
        """`read` for a spec given directly: online when exact, else journeys within `budget_s`, else the
        defaults."""
        t = self._tenant(tenant)
        verify_from: int | None = None
        with t.lock:
            spec = t.specs.get(compiled.key)
            if spec is None:
                reason = "new_spec"
            else:
                clean = t.clean.get(person_id, _NEVER)
                if clean >= spec.since_us:
                    try:
                        values = t.state.values(compiled, person_id, as_of_us)
                    except OutsideRetention:
                        reason = "outside_retention"
                    except FeatureStateUnavailable:  # Redis down or slow: journeys answers meanwhile
                        reason = "state_unavailable"
                    else:
                        self._metrics.reads.add(1, {"origin": "online"})
                        return FeatureRead(values, FeatureOrigin.ONLINE)
                elif t.dirty.get(person_id, 2**63) <= spec.since_us:
                    reason = "dirty"
                else:
                    reason = "unverified"
                    verify_from = spec.since_us
        if spec is None:
            self._register_if_available(tenant, message)
        elif verify_from is not None:
            self._verify_later(tenant, t, person_id, verify_from)
        return self._fallback(
            tenant, message, compiled, person_id, as_of_us, budget_s=budget_s, reason=reason
        )

    def _fallback(
        self,
        tenant: str,
        message: feature_pb2.FeatureSpec,
        compiled: CompiledSpec,
        person_id: str,
        as_of_us: int,
        *,
        budget_s: float,
        reason: str,
    ) -> FeatureRead:
        started = time.perf_counter()
        try:
            values = self._journeys.values(tenant, message, person_id, as_of_us, budget_s)
        except JourneysFailed as error:  # late, down or refusing: the read must still answer
            why = error.reason
            self._metrics.fallback_ms.record((time.perf_counter() - started) * 1000, {"outcome": why})
            self._metrics.reads.add(1, {"origin": "defaults", "reason": reason, "journeys": why})
            return FeatureRead([f.default for f in compiled.features], FeatureOrigin.DEFAULTS)
        self._metrics.fallback_ms.record((time.perf_counter() - started) * 1000, {"outcome": "ok"})
        self._metrics.reads.add(1, {"origin": "journeys", "reason": reason})
        return FeatureRead(values, FeatureOrigin.JOURNEYS)

    # --- whether the state holds a person's whole history ---------------------------------------------

    def _verify_later(self, tenant: str, t: _Tenant, person_id: str, since_us: int) -> None:
        if self._now_us() < since_us + self._settle_after_us:
            return  # journeys may still be missing events received before since_us: ask later
        key = (person_id, since_us)
        with t.lock:
            if key in t.verifying:
                return
            t.verifying.add(key)
            epoch = t.epoch
        try:
            self._verifier.submit(self._verify, tenant, t, person_id, since_us, epoch)
        except RuntimeError:  # shutting down
            with t.lock:
                t.verifying.discard(key)

    def _verify(self, tenant: str, t: _Tenant, person_id: str, since_us: int, epoch: int) -> None:
        try:
            earlier = self._journeys.holds_events_before(tenant, person_id, since_us, _VERIFY_TIMEOUT_S)
        except JourneysFailed as error:
            log.warning("features.verify_failed", tenant=tenant, error=str(error))
            earlier = None
        with t.lock:
            t.verifying.discard((person_id, since_us))
            if earlier is None or t.epoch != epoch:
                return  # asked again on a later read
            if earlier:
                t.dirty[person_id] = min(t.dirty.get(person_id, 2**63), since_us)
            elif t.dirty.get(person_id, 2**63) > since_us:
                t.clean[person_id] = max(t.clean.get(person_id, _NEVER), since_us)

    def wait_for_verifications(self, timeout_s: float) -> bool:
        """True once no verification is in flight (tests and shutdown)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._tenants_lock:
                tenants = list(self._tenants.values())
            if not any(t.verifying for t in tenants):
                return True
            time.sleep(0.01)
        return False

    # --- identity's override feed ---------------------------------------------------------------------

    def remember(self, tenant: str) -> None:
        """Follow `tenant`'s override feed from now on and after a restart (see the module's docstring),
        recorded once per process. When the change log cannot be written (a full disk) the tenant is
        followed while this process runs and the next call tries again: Decide must still answer."""
        if tenant in self._remembered:
            return
        t = self._tenant(tenant)
        try:
            with t.lock:
                seq = self._log(t, tenant, "tenant", None)
            if self._changes is not None:
                self._changes.sync(seq)
        except OSError as error:
            log.warning("features.tenant_not_recorded", tenant=tenant, error=str(error))
            return
        self._remembered.add(tenant)

    def share_tenants(self) -> None:
        """With a shared state, add the tenants this replica holds that it has not added yet to the state's
        set of tenants (again on the next call when the state does not answer)."""
        if self._shared_tenants is None:
            return
        new = {name for name, _ in self.tenants()} - self._shared
        if not new:
            return
        try:
            self._shared_tenants.remember(sorted(new))
        except FeatureStateUnavailable as error:
            log.warning("features.tenants_not_shared", tenants=len(new), error=str(error))
            return
        self._shared |= new

    def tenant_names(self) -> list[str]:
        """The tenants whose override feed to follow: every tenant this process holds or remembered and,
        with a shared state, every tenant of its set (when it answers)."""
        names = {name for name, _ in self.tenants()}
        if self._shared_tenants is not None:
            try:
                names |= self._shared_tenants.remembered()
            except FeatureStateUnavailable as error:  # read again on the next poll
                log.warning("features.shared_tenants_unavailable", error=str(error))
        return sorted(names)

    def cursor(self, tenant: str) -> int:
        return self._tenant(tenant).cursor

    def apply_overrides(self, tenant: str, overrides: Sequence[person_override_pb2.PersonOverride]) -> None:
        """Apply a page of identity's override feed (by increasing version) to the tenant's state."""
        t = self._tenant(tenant)
        with t.lock:
            for override in overrides:
                if override.version > t.cursor:
                    self._apply(t, override)
            seq = self._log(t, tenant, "overrides", [_text(o) for o in overrides])
        if self._changes is not None:
            self._changes.sync(seq)

    def _apply(self, t: _Tenant, override: person_override_pb2.PersonOverride) -> None:
        person, survivor = override.person_id, override.override_person_id
        t.epoch += 1
        # The cursor moves once the state took the override: a shared state that is unavailable raises, and
        # the follower asks for the override again on its next poll.
        self._apply_to_state(t, override, person, survivor)
        if override.erased:
            now = self._clock()
            t.erased = {p: at for p, at in t.erased.items() if at > now - ERASED_KEPT_S}
            t.erased[person] = now
        t.cursor = override.version

    @staticmethod
    def _apply_to_state(
        t: _Tenant, override: person_override_pb2.PersonOverride, person: str, survivor: str
    ) -> None:
        if override.erased:
            t.state.forget(person)
            for kept in (t.clean, t.dirty, t.merged):
                kept.pop(person, None)
        elif override.HasField("identifier"):
            _spoil(t, person)  # some of the person's events belong to another now: slots cannot split
            _spoil(t, survivor)
        elif survivor != person:
            t.state.merge(person, survivor)
            t.merged[person] = survivor
            clean, dirty = t.clean.pop(person, None), t.dirty.pop(person, None)
            if clean is None:
                t.clean.pop(survivor, None)  # the merged person's history is not known: ask again
            elif survivor in t.clean:
                t.clean[survivor] = min(t.clean[survivor], clean)
            if dirty is not None:
                t.dirty[survivor] = min(t.dirty.get(survivor, 2**63), dirty)
        else:  # a merge cancelled: the survivor's state holds events that are not its own any more
            _spoil(t, person)
            earlier = t.merged.pop(person, None)
            if earlier is not None:
                _spoil(t, earlier)

    # --- the clock ------------------------------------------------------------------------------------

    def advance(self) -> None:
        """Move every tenant's settle horizon with the clock (periodically)."""
        now = self._now_us()
        for name, t in self.tenants():
            with t.lock:
                t.state.advance(now)
                self._log(t, name, "advance", now)

    # --- persistence (persistence.py) ----------------------------------------------------------------

    def tenants(self) -> list[tuple[str, _Tenant]]:
        with self._tenants_lock:
            return sorted(self._tenants.items())

    def export(self, freeze: Callable[[OnlineFeatureState], Any]) -> dict[str, TenantDocument]:
        """Each tenant as plain data, consistent with the change log up to its `seq`, its state as `freeze`
        gives it under the tenant's lock (a detached copy, cheap; written out after the lock is released)."""
        documents = {}
        for name, t in self.tenants():
            with t.lock:
                documents[name] = {
                    "seq": t.seq,
                    "specs": [
                        {"spec": _text(s.message), "since_us": s.since_us}
                        for s in t.specs.values()  # registration order: the state's slot order
                    ],
                    "clean": dict(t.clean),
                    "dirty": dict(t.dirty),
                    "merged": dict(t.merged),
                    "erased": dict(t.erased),
                    "cursor": t.cursor,
                    "state": freeze(t.state),
                }
        return documents

    def restore(
        self,
        documents: dict[str, TenantDocument],
        load_state: Callable[[OnlineFeatureState, Any], None],
        changes: Iterable[tuple[int, str, str, Any]],
    ) -> int:
        """Rebuild the tenants from a snapshot's documents, then replay the changes logged after each
        tenant's snapshot; the number of changes replayed. Only on a service nothing has used yet."""
        if self._tenants:
            raise RuntimeError("restore needs an empty feature service")
        for name, document in documents.items():
            t = self._tenant(name)
            for found in document["specs"]:
                message = feature_pb2.FeatureSpec.FromString(base64.b64decode(found["spec"]))
                self._register(
                    t, message, compile_spec(message, "feature_spec.", stored=True), int(found["since_us"])
                )
            load_state(t.state, document["state"])
            t.clean = {k: int(v) for k, v in document["clean"].items()}
            t.dirty = {k: int(v) for k, v in document["dirty"].items()}
            t.merged = dict(document["merged"])
            t.erased = {k: float(v) for k, v in document.get("erased", {}).items()}  # absent before ADR 94
            t.cursor = int(document["cursor"])
            t.seq = int(document["seq"])
        replayed = 0
        for seq, name, kind, data in changes:
            t = self._tenant(name)
            if seq <= t.seq:
                continue
            with t.lock:
                self._replay(t, kind, data)
                t.seq = seq
            replayed += 1
        self._remembered.update(self._tenants)  # each is in the snapshot or the change log already
        return replayed

    def _replay(self, t: _Tenant, kind: str, data: Any) -> None:
        if kind == "events":
            for text in data:
                t.state.observe(observed_event(event_pb2.Event.FromString(base64.b64decode(text))))
        elif kind == "spec":
            message = feature_pb2.FeatureSpec.FromString(base64.b64decode(data["spec"]))
            compiled = compile_spec(message, "feature_spec.", stored=True)
            if compiled.key not in t.specs:
                self._register(t, message, compiled, int(data["since_us"]))
        elif kind == "overrides":
            for text in data:
                override = person_override_pb2.PersonOverride.FromString(base64.b64decode(text))
                if override.version > t.cursor:
                    self._apply(t, override)
        elif kind == "advance":
            t.state.advance(int(data))
        elif kind == "tenant":
            pass  # remembered: the tenant exists again, so it is followed
        else:
            raise ValueError(f"unknown change kind {kind!r} in the feature change log")

    # --- helpers --------------------------------------------------------------------------------------

    def person_count(self) -> int:
        return sum(len(t.state) for _, t in self.tenants() if isinstance(t.state, Sized))

    def close(self) -> None:
        self._verifier.shutdown(wait=False, cancel_futures=True)

    def _tenant(self, tenant: str) -> _Tenant:
        found = self._tenants.get(tenant)
        if found is None:
            with self._tenants_lock:
                found = self._tenants.get(tenant)
                if found is None:
                    found = self._tenants[tenant] = _Tenant(self._new_state(tenant))
        return found

    def _log(self, t: _Tenant, tenant: str, kind: str, data: Any) -> int:
        if self._changes is not None:
            t.seq = self._changes.append(tenant, kind, data)
        return t.seq

    def _now_us(self) -> int:
        return int(self._clock() * 1_000_000)


def _text(message: Any) -> str:
    """A protobuf message as the change log and snapshots keep it: its wire bytes in base64."""
    return base64.b64encode(message.SerializeToString()).decode("ascii")


def _spoil(t: _Tenant, person: str) -> None:
    t.clean.pop(person, None)
    t.dirty[person] = _NEVER
