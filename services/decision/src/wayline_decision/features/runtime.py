"""The online feature service as the decision service runs it: each tenant's state as the settings choose it
(factory.py: in this process, or in Redis shared by the replicas), journeys and identity channels, the
snapshot and change log, the override follower, and a thread that moves the settle horizon with the clock
and writes periodic snapshots. `start` restores (before the server turns SERVING); `stop` (SIGTERM) writes
a last snapshot.

With the Redis state, Redis is the durable store of the state (run it with appendonly and fsync,
docs/decision.md): the replica keeps no change log, its snapshots hold only its own bookkeeping
(persistence.py), the upkeep advances the states directly, off the tenants' locks (a Redis state is
thread-safe, and its advance scans the tenant's keys), and every second adds the tenants this replica met to
Redis's set of tenants, which every replica's override follower follows (ADR 76)."""

from __future__ import annotations

import threading
import time

import structlog

from wayline.common.clients import internal_channel
from wayline.identity.v1 import identity_service_pb2 as identity_pb
from wayline.journeys.v1 import journeys_service_pb2 as journeys_pb
from wayline_decision.features.factory import open_feature_state
from wayline_decision.features.journeys_client import JourneysClient
from wayline_decision.features.overrides import IdentityOverrideFeed, OverrideFollower
from wayline_decision.features.persistence import FeatureFiles
from wayline_decision.features.service import OnlineFeatures
from wayline_decision.settings import DecisionSettings

__all__ = ["FeatureRuntime"]

log = structlog.get_logger("wayline.decision.features")


class FeatureRuntime:
    def __init__(self, settings: DecisionSettings) -> None:
        token = settings.require_internal_token()
        journeys_channel = internal_channel(
            settings.journeys_address,
            internal_token=token,
            services=[journeys_pb.DESCRIPTOR.services_by_name["JourneyService"]],
            max_message_bytes=settings.max_message_bytes,
            tls=settings.channel_tls(),
        )
        self.journeys = JourneysClient(journeys_channel)
        settle_after_us = int(settings.features_settle_after_seconds * 1_000_000)
        self.states = open_feature_state(settings, settle_after_us)
        shared = self.states.shared
        self.files = FeatureFiles(settings.features_path, fsync=settings.features_fsync, shared=shared)
        self.features = OnlineFeatures(
            self.states.for_tenant,
            self.journeys,
            settle_after_us=settle_after_us,
            changes=None if shared else self.files,  # a shared state is not replayed from one replica's log
            shared_tenants=self.states if shared else None,
        )
        self.fallback_budget_s = settings.features_fallback_budget_ms / 1000
        self.follower: OverrideFollower | None = None
        if settings.identity_address and settings.override_poll_seconds > 0:
            identity_channel = internal_channel(
                settings.identity_address,
                internal_token=token,
                services=[identity_pb.DESCRIPTOR.services_by_name["IdentityService"]],
                max_message_bytes=settings.max_message_bytes,
                tls=settings.channel_tls(),
            )
            self.follower = OverrideFollower(
                IdentityOverrideFeed(identity_channel),
                self.features,
                poll_seconds=settings.override_poll_seconds,
            )
        self._snapshot_seconds = settings.features_snapshot_seconds
        self._advance_seconds = settings.features_advance_seconds
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = False

    def start(self) -> None:
        if not self._started:
            self.files.open(self.features)
            self._started = True
        if self.follower is not None:
            self.follower.start()
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="decision-features-upkeep", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(30)
        if self.follower is not None:
            self.follower.stop()
        self.features.share_tenants()
        if self._started:
            self.files.snapshot(self.features)  # the next start replays nothing
            self.files.close()
        self.features.close()
        self.journeys.close()
        self.states.close()

    def _run(self) -> None:
        since_snapshot = since_advance = 0.0
        step = min(self._snapshot_seconds, self._advance_seconds, 1.0)
        while not self._stopping.wait(step):
            since_snapshot += step
            since_advance += step
            try:
                self.features.share_tenants()  # with Redis: the tenants met since, for every replica
                if since_advance >= self._advance_seconds:
                    since_advance = 0.0
                    self._advance()
                if since_snapshot >= self._snapshot_seconds:
                    since_snapshot = 0.0
                    self.files.snapshot(self.features)
            except Exception:  # a full disk must not end the upkeep: the next round tries again
                log.exception("features.upkeep_failed")

    def _advance(self) -> None:
        if self.states.shared:
            self.states.advance(int(time.time() * 1_000_000))
        else:  # in process: under each tenant's lock, and logged
            self.features.advance()
