"""The online feature state the settings choose (WAYLINE_DECISION_FEATURE_STATE): one state per tenant, in
this process (the embedded default, one replica) or in Redis (several replicas share it). The feature
service calls `open_feature_state(settings)` once and asks it for each tenant's state. With Redis it also
keeps the set of the state's tenants there (SharedTenants), so that every replica, a new one too, follows
identity's override feed for each (ADR 76)."""

from __future__ import annotations

import threading
from collections.abc import Collection
from typing import cast

import redis

from wayline_decision.errors import FeatureStateUnavailable
from wayline_decision.features.redis_codec import TENANTS_KEY
from wayline_decision.features.redis_state import RedisFeatureState
from wayline_decision.features.state import DEFAULT_SETTLE_AFTER_US, InProcessFeatureState
from wayline_decision.settings import DecisionSettings

__all__ = ["FeatureStates", "open_feature_state"]

# A read is on Decide's path: a Redis that does not answer within this is treated as down (the caller falls
# back to journeys or the defaults) rather than holding the request.
_SOCKET_TIMEOUT_S = 0.5
_CONNECT_TIMEOUT_S = 2.0

TenantState = InProcessFeatureState | RedisFeatureState


class FeatureStates:
    """Each tenant's OnlineFeatureState, made on first use; the Redis states share one connection pool."""

    def __init__(self, client: redis.Redis | None, settle_after_us: int = DEFAULT_SETTLE_AFTER_US) -> None:
        self._client = client
        self._settle_after_us = settle_after_us
        self._states: dict[str, TenantState] = {}
        self._lock = threading.Lock()

    @property
    def shared(self) -> bool:
        """True when the state is in Redis, shared with the other replicas."""
        return self._client is not None

    def for_tenant(self, tenant: str) -> TenantState:
        state = self._states.get(tenant)
        if state is None:
            with self._lock:
                state = self._states.get(tenant)
                if state is None:
                    state = self._states[tenant] = (
                        InProcessFeatureState(self._settle_after_us)
                        if self._client is None
                        else RedisFeatureState(self._client, tenant, self._settle_after_us)
                    )
        return state

    def remember(self, tenants: Collection[str]) -> None:
        """Add `tenants` to the shared state's tenants (SharedTenants); in process, nothing to share."""
        if self._client is not None and tenants:
            try:
                self._client.sadd(TENANTS_KEY, *tenants)
            except redis.RedisError as error:
                raise FeatureStateUnavailable(str(error) or type(error).__name__) from error

    def remembered(self) -> set[str]:
        """Every tenant any replica added to the shared state; in process, none."""
        if self._client is None:
            return set()
        try:
            members = cast(set[bytes], self._client.smembers(TENANTS_KEY))
        except redis.RedisError as error:
            raise FeatureStateUnavailable(str(error) or type(error).__name__) from error
        return {member.decode() for member in members}

    def advance(self, now_us: int) -> None:
        """Move every tenant's horizon with the clock (see InProcessFeatureState.advance)."""
        for state in list(self._states.values()):
            state.advance(now_us)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


def open_feature_state(
    settings: DecisionSettings, settle_after_us: int = DEFAULT_SETTLE_AFTER_US
) -> FeatureStates:
    """The tenants' feature states of the configured kind. Nothing is sent to Redis until a state is used."""
    if settings.feature_state == "in_process":
        return FeatureStates(None, settle_after_us)
    assert settings.redis_url is not None  # the settings refuse `redis` without a URL
    client = redis.Redis.from_url(
        settings.redis_url.get_secret_value(),
        socket_timeout=_SOCKET_TIMEOUT_S,
        socket_connect_timeout=_CONNECT_TIMEOUT_S,
        health_check_interval=30,
    )
    return FeatureStates(client, settle_after_us)
