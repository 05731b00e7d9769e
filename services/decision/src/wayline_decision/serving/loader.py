"""Loads registered versions for serving, once each: the package checked again, its graphs in sessions,
warmed up, and every ModelLoadListener told before the version can take traffic.

Loads are cached by tenant, model, version and package digest (a version's content never changes), and
concurrent loads of one version wait for the first. A failed load is remembered with its reason, for
GetModel's FAILED state and so that the background poller retries it only every `retry_seconds`; an
explicit deployment always tries again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog

from wayline_decision.errors import ModelLoadFailed, ModelVersionNotFound, PackageInvalid
from wayline_decision.metrics import DecisionMetrics
from wayline_decision.packages import PackageId
from wayline_decision.registry import ModelRegistry, RegisteredVersion
from wayline_decision.serving.loaded import MicroBatching, ServingModel, load_version
from wayline_decision.serving.route import ModelLoadListener
from wayline_decision.validation import ValidationLimits

__all__ = ["VersionKey", "VersionLoader"]

log = structlog.get_logger("wayline.decision.serving")

VersionKey = tuple[str, str, str]  # (tenant, model id, version)


@dataclass(frozen=True, slots=True)
class _Failure:
    digest: str
    why: str
    at: float


class VersionLoader:
    def __init__(
        self,
        registry: ModelRegistry,
        limits: ValidationLimits,
        listeners: Sequence[ModelLoadListener] = (),
        *,
        retry_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        batching: MicroBatching | None = None,
        metrics: DecisionMetrics | None = None,
    ) -> None:
        self._registry = registry
        self._metrics = metrics
        self._batching = batching
        self._limits = limits
        self._listeners = list(listeners)
        self._retry_seconds = retry_seconds
        self._clock = clock
        self._loaded: dict[VersionKey, ServingModel] = {}
        self._failed: dict[VersionKey, _Failure] = {}
        self._loading: dict[VersionKey, threading.Lock] = {}
        self._lock = threading.Lock()

    def add_listener(self, listener: ModelLoadListener) -> None:
        """Told of every version loaded from now on (and of those loaded already, at once)."""
        with self._lock:
            self._listeners.append(listener)
            loaded = list(self._loaded.values())
        for model in loaded:
            listener.loaded(model)

    def registered(self, tenant: str, model_id: str, version: str) -> RegisteredVersion:
        """The registered version; ModelVersionNotFound when the registry does not hold it."""
        found = self._registry.find(tenant, PackageId(model_id, version))
        if found is None:
            raise ModelVersionNotFound(model_id, version)
        return found

    def failure(self, key: VersionKey) -> str | None:
        """Why the version last failed to load here, unless it has loaded since."""
        failed = self._failed.get(key)
        return failed.why if failed is not None else None

    def load(self, tenant: str, model_id: str, version: str, *, retry_failed: bool = True) -> ServingModel:
        """The loaded version. ModelVersionNotFound, ModelLoadFailed (also, without `retry_failed`, while a
        failure is recent), RegistryUnavailable."""
        key = (tenant, model_id, version)
        registered = self.registered(tenant, model_id, version)
        with self._lock:
            model = self._loaded.get(key)
            if model is not None and model.digest == registered.digest:
                return model
            gate = self._loading.setdefault(key, threading.Lock())
        with gate:
            with self._lock:
                model = self._loaded.get(key)
                failed = self._failed.get(key)
            if model is not None and model.digest == registered.digest:
                return model
            recent = failed is not None and self._clock() - failed.at < self._retry_seconds
            if failed is not None and failed.digest == registered.digest and recent and not retry_failed:
                raise ModelLoadFailed(model_id, version, failed.why)
            return self._load(key, registered)

    def _load(self, key: VersionKey, registered: RegisteredVersion) -> ServingModel:
        tenant, model_id, version = key
        started = time.perf_counter()
        try:
            model = load_version(
                tenant, registered, Path(registered.location), self._limits, batching=self._batching
            )
            for listener in list(self._listeners):
                listener.loaded(model)
        except Exception as error:
            why = error.message if isinstance(error, PackageInvalid) else f"{type(error).__name__}: {error}"
            with self._lock:
                self._failed[key] = _Failure(registered.digest, why, self._clock())
            log.warning("model.load_failed", tenant=tenant, model=model_id, version=version, error=why)
            if self._metrics is not None:
                self._metrics.loaded(model_id, failed=True)
            raise ModelLoadFailed(model_id, version, why) from error
        with self._lock:
            self._loaded[key] = model
            self._failed.pop(key, None)
        if self._metrics is not None:
            self._metrics.loaded(model_id, failed=False)
        log.info(
            "model.loaded",
            tenant=tenant,
            model=model_id,
            version=version,
            load_ms=round((time.perf_counter() - started) * 1000, 1),
        )
        return model

    def retain(self, keys: Iterable[VersionKey]) -> None:
        """Forget every loaded version but `keys` (those the installed traffic references). Decisions
        holding a dropped version finish with it; it is freed after them."""
        keep = set(keys)
        with self._lock:
            for key in [k for k in self._loaded if k not in keep]:
                log.info("model.unloaded", tenant=key[0], model=key[1], version=key[2])
                # Batching stops (decisions still holding the version score alone); sessions free with it.
                self._loaded.pop(key).close()
            for key in [k for k in self._loading if k not in keep]:
                del self._loading[key]
