"""Deploy, change traffic, roll back; and keep this replica serving what the traffic table says.

A change is made in three steps: the versions it needs are loaded and warmed up (any failure refuses the
change with MODEL_LOAD_FAILED and leaves the live traffic as it was), the new traffic is written on
condition that the row is still at the generation the change was made against (otherwise the change is
applied again to what another admin or replica wrote), and this replica's table is swapped. Other replicas
see the new generation on their next poll (`sync`) and load and swap the same way; a version they fail to
load leaves them serving what they served, and is retried.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from enum import StrEnum

import structlog

from wayline.common.timestamps import now_us
from wayline_decision.errors import ModelLoadFailed, ModelNotFound, ModelVersionNotFound, TrafficConflict
from wayline_decision.packages import MODEL_ID_PATTERN
from wayline_decision.registry import ModelRegistry
from wayline_decision.serving.judge import JudgePolicy
from wayline_decision.serving.loaded import ServingModel
from wayline_decision.serving.loader import VersionLoader
from wayline_decision.serving.routing import Deployment
from wayline_decision.serving.server import ModelServer
from wayline_decision.serving.traffic import (
    CanaryEvaluation,
    DeployMode,
    Traffic,
    TrafficChange,
    canary_run,
    conclude_canary,
    deploy,
    rollback,
    set_traffic,
)
from wayline_decision.serving.traffic_store import TrafficStore

__all__ = ["ModelLifecycle", "VersionState"]

log = structlog.get_logger("wayline.decision.serving")

_ATTEMPTS = 5  # changes racing on one model before the caller is told to retry


class VersionState(StrEnum):
    """A version's state on this replica (the contract's ModelVersionState)."""

    REGISTERED = "registered"
    LOADED = "loaded"
    FAILED = "failed"


class ModelLifecycle:
    def __init__(
        self,
        registry: ModelRegistry,
        store: TrafficStore,
        loader: VersionLoader,
        server: ModelServer,
        clock_us: Callable[[], int] = now_us,
    ) -> None:
        self._registry = registry
        self._store = store
        self._loader = loader
        self._server = server
        self._clock_us = clock_us

    def deploy(
        self,
        tenant: str,
        model_id: str,
        version: str,
        mode: DeployMode,
        canary_percent: int,
        *,
        judgement: JudgePolicy | None = None,
    ) -> Traffic:
        return self._change(
            tenant, model_id, lambda current: deploy(current, version, mode, canary_percent, judgement)
        )

    def set_traffic(self, tenant: str, model_id: str, change: TrafficChange) -> Traffic:
        return self._change(tenant, model_id, lambda current: set_traffic(current, change))

    def rollback(self, tenant: str, model_id: str, version: str) -> Traffic:
        return self._change(tenant, model_id, lambda current: rollback(current, version))

    def conclude_canary(
        self, tenant: str, model_id: str, judged: Traffic, evaluation: CanaryEvaluation
    ) -> Traffic | None:
        """Apply the judge's decisive verdict on the canary run of `judged` (promote it, or drop it) with the
        same conditional write as any change; the new traffic, or None when that run was already over (the
        change of another replica or an admin won), so of replicas judging at once exactly one acts."""
        traffic, written = self._apply(
            tenant, model_id, lambda current: conclude_canary(current, judged, evaluation)
        )
        return traffic if written else None

    def record_evaluation(
        self, tenant: str, model_id: str, judged: Traffic, evaluation: CanaryEvaluation
    ) -> bool:
        """Keep an undecided evaluation on the traffic it judged (not a change: no new generation, nothing
        to load); False when the traffic changed since."""
        return self._store.record_evaluation(tenant, model_id, judged.generation, evaluation)

    def traffic(self, tenant: str, model_id: str) -> Traffic:
        return self._store.get(tenant, model_id)

    def everything(self) -> dict[tuple[str, str], Traffic]:
        """(tenant, model id) → traffic, for every tenant."""
        return self._store.everything()

    def _require_model(self, tenant: str, model_id: str) -> None:
        if not MODEL_ID_PATTERN.fullmatch(model_id) or not self._registry.versions(tenant, model_id):
            raise ModelNotFound(f"models/{model_id}")

    def _change(self, tenant: str, model_id: str, rule: Callable[[Traffic], Traffic]) -> Traffic:
        return self._apply(tenant, model_id, rule)[0]

    def _apply(self, tenant: str, model_id: str, rule: Callable[[Traffic], Traffic]) -> tuple[Traffic, bool]:
        """The traffic after `rule`, and whether this call wrote it."""
        self._require_model(tenant, model_id)
        for _ in range(_ATTEMPTS):
            current = self._store.get(tenant, model_id)
            now_us = self._clock_us()
            proposed = canary_run(current, rule(current), now_us)
            if proposed == current:  # nothing changes: make sure this replica serves it, write nothing
                self._install(tenant, current, strict=True)
                return current, False
            for version in proposed.versions():
                self._loader.registered(tenant, model_id, version)  # NOT_FOUND before any load
            new = replace(proposed, generation=current.generation + 1, update_time_us=now_us)
            deployment = self._deployment(tenant, new, strict=True)
            if self._store.replace(tenant, new, current.generation):
                self._server.install(tenant, deployment)
                self._prune()
                log.info(
                    "model.traffic_changed",
                    tenant=tenant,
                    model=model_id,
                    generation=new.generation,
                    stable=new.stable_version,
                    canary=new.canary_version,
                    canary_basis_points=new.canary_basis_points,
                    shadow=new.shadow_version,
                )
                return new, True
        raise TrafficConflict(model_id)

    def _deployment(self, tenant: str, traffic: Traffic, *, strict: bool) -> Deployment:
        """The traffic with its versions loaded. `strict` (a change an admin asked for): any version that
        fails to load refuses it. Otherwise (following another replica's change): what fails is None."""
        loaded: dict[str, ServingModel | None] = {}
        for version in traffic.versions():
            try:
                loaded[version] = self._loader.load(tenant, traffic.model_id, version, retry_failed=strict)
            except ModelLoadFailed:
                if strict:
                    raise
                loaded[version] = None
        registered = self._loader.registered(tenant, traffic.model_id, traffic.stable_version)
        manifest = registered.manifest
        return Deployment(
            traffic=traffic,
            stable=loaded[traffic.stable_version],
            canary=loaded.get(traffic.canary_version) if traffic.canary_version else None,
            shadow=loaded.get(traffic.shadow_version) if traffic.shadow_version else None,
            previous=self._previous(tenant, traffic),
            channels=frozenset(manifest.channels),
            placements=frozenset(manifest.placements),
        )

    def _previous(self, tenant: str, traffic: Traffic) -> ServingModel | None:
        """The rollback target, loaded when it can be (a rollback is then only a swap); it never holds up
        a change: if it does not load, a rollback loads it then, or reports why it cannot."""
        previous = traffic.previous_stable_version
        if not previous or previous in traffic.versions():
            return None
        try:
            return self._loader.load(tenant, traffic.model_id, previous, retry_failed=False)
        except (ModelLoadFailed, ModelVersionNotFound):
            return None

    def _install(self, tenant: str, traffic: Traffic, *, strict: bool) -> None:
        installed = self._server.deployment(tenant, traffic.model_id)
        if (
            installed is not None
            and installed.traffic.generation >= traffic.generation
            and installed.complete
        ):
            return
        deployment = self._deployment(tenant, traffic, strict=strict)
        if deployment.stable is None and installed is not None and installed.stable is not None:
            # The new stable version does not load here: keep serving what we served, retry next poll.
            return
        self._server.install(tenant, deployment)

    def sync(self) -> None:
        """Load and swap in every traffic this replica does not serve yet (at start, then on each poll).
        One model's trouble does not stop the others'; the registry or the database being down raises."""
        for (tenant, model_id), traffic in sorted(self._store.everything().items()):
            if not traffic.deployed:
                continue
            try:
                self._install(tenant, traffic, strict=False)
            except ModelVersionNotFound:
                log.error("model.deployed_version_missing", tenant=tenant, model=model_id)
        self._prune()

    def version_state(self, tenant: str, model_id: str, version: str) -> tuple[VersionState, str]:
        """Whether this replica serves the version (LOADED), failed to load it (FAILED, with why), or
        neither (REGISTERED)."""
        deployment = self._server.deployment(tenant, model_id)
        if deployment is not None and any(m.version == version for m in deployment.models()):
            return VersionState.LOADED, ""
        why = self._loader.failure((tenant, model_id, version))
        if why is not None:
            return VersionState.FAILED, why
        return VersionState.REGISTERED, ""

    def traffic_of(self, tenant: str) -> dict[str, Traffic]:
        return self._store.of_tenant(tenant)

    def _prune(self) -> None:
        self._loader.retain(
            (tenant, model.model_id, model.version)
            for (tenant, _), deployment in self._server.deployments().items()
            for model in deployment.held()
        )
