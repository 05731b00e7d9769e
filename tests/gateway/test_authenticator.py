"""The authenticator over a real store: revocation, suspension, expiry and rotation take effect on another
replica within the cache time and on the replica that made the change at once; uses are recorded."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from tests.gateway.clock import FakeClock
from tests.gateway.conftest import DEFAULTS, OPERATOR
from wayline.common.auth import Caller
from wayline.common.errors import PermissionDenied, Unauthenticated
from wayline_gateway.admin import Admin
from wayline_gateway.keys import ApiKeyAuthenticator
from wayline_gateway.model import ApiKeyRecord, TenantState
from wayline_gateway.store.admin_store import AdminStore

TRACK = "/wayline.ingest.v1.IngestService/Track"
SCOPES = {TRACK: "write"}
CACHE_SECONDS = 5.0


def bearer(secret: str) -> dict[str, str]:
    return {"authorization": f"Bearer {secret}"}


@pytest.fixture
def monotonic() -> FakeClock:
    return FakeClock()


def replica(store: AdminStore, monotonic: FakeClock, wall: FakeClock) -> ApiKeyAuthenticator:
    return ApiKeyAuthenticator(
        SCOPES,
        lookup=store.key_by_digest,
        cache_seconds=CACHE_SECONDS,
        clock=monotonic.now,
        wall_clock=lambda: int(wall.now()),
    )


def test_revocation_reaches_another_replica_within_the_cache_time(
    admin: Admin, operator: Caller, store: AdminStore, monotonic: FakeClock, wall: FakeClock
) -> None:
    admin.create_tenant(operator, "acme", "")
    new = admin.create_key(operator, "tenants/acme", "", ["write"], None)
    other = replica(store, monotonic, wall)
    assert other.authenticate(TRACK, bearer(new.secret)).tenant == "acme"
    admin.revoke_key(operator, new.key.name)  # on this replica
    monotonic.advance(CACHE_SECONDS - 0.1)
    assert other.authenticate(TRACK, bearer(new.secret)).tenant == "acme"  # still cached there
    monotonic.advance(0.2)
    with pytest.raises(Unauthenticated) as refused:
        other.authenticate(TRACK, bearer(new.secret))
    assert refused.value.reason == "API_KEY_REVOKED"


def test_the_replica_that_changes_a_key_forgets_it_at_once(
    store: AdminStore, operator: Caller, monotonic: FakeClock, wall: FakeClock
) -> None:
    authenticator = replica(store, monotonic, wall)
    admin = Admin(store, OPERATOR, DEFAULTS, clock=lambda: int(wall.now()), on_change=authenticator.forget)
    admin.ensure_operator_tenant()
    admin.create_tenant(operator, "acme", "")
    new = admin.create_key(operator, "tenants/acme", "", ["write"], None)
    assert authenticator.authenticate(TRACK, bearer(new.secret)).principal == new.key.name
    admin.update_tenant(operator, "tenants/acme", ["state"], "", TenantState.SUSPENDED, "")
    with pytest.raises(PermissionDenied) as suspended:
        authenticator.authenticate(TRACK, bearer(new.secret))
    assert suspended.value.reason == "TENANT_SUSPENDED"
    admin.update_tenant(operator, "tenants/acme", ["state"], "", TenantState.ACTIVE, "")
    assert authenticator.authenticate(TRACK, bearer(new.secret)).tenant == "acme"


def test_a_lookup_under_way_when_a_key_is_revoked_does_not_keep_it_alive(
    store: AdminStore, operator: Caller, monotonic: FakeClock, wall: FakeClock
) -> None:
    """The revocation commits, and `forget` runs, between the store read of a lookup and its return: what that
    lookup read must not be kept, or the revoked key works here for the whole cache time."""
    revoke_during_the_read: list[Callable[[], object]] = []

    def lookup(key_digest: str) -> tuple[ApiKeyRecord, TenantState] | None:
        found = store.key_by_digest(key_digest)
        while revoke_during_the_read:
            revoke_during_the_read.pop()()
        return found

    authenticator = ApiKeyAuthenticator(
        SCOPES,
        lookup=lookup,
        cache_seconds=60.0,
        clock=monotonic.now,
        wall_clock=lambda: int(wall.now()),
    )
    admin = Admin(store, OPERATOR, DEFAULTS, clock=lambda: int(wall.now()), on_change=authenticator.forget)
    admin.ensure_operator_tenant()
    admin.create_tenant(operator, "acme", "")
    new = admin.create_key(operator, "tenants/acme", "", ["write"], None)
    revoke_during_the_read.append(lambda: admin.revoke_key(operator, new.key.name))
    # The racing request itself read the key before the revocation: it may pass (it was concurrent with it).
    assert authenticator.authenticate(TRACK, bearer(new.secret)).tenant == "acme"
    assert not revoke_during_the_read
    with pytest.raises(Unauthenticated) as refused:
        authenticator.authenticate(TRACK, bearer(new.secret))  # no time has passed: the store is read again
    assert refused.value.reason == "API_KEY_REVOKED"


def test_a_lookup_racing_a_revocation_on_another_thread_does_not_keep_the_key_alive(
    store: AdminStore, operator: Caller, monotonic: FakeClock, wall: FakeClock
) -> None:
    """The same race with real threads: the lookup is held after its read until the revocation committed."""
    read, release = threading.Event(), threading.Event()
    hold = threading.Event()

    def lookup(key_digest: str) -> tuple[ApiKeyRecord, TenantState] | None:
        found = store.key_by_digest(key_digest)
        if hold.is_set():
            read.set()
            assert release.wait(5)
        return found

    authenticator = ApiKeyAuthenticator(
        SCOPES, lookup=lookup, cache_seconds=60.0, clock=monotonic.now, wall_clock=lambda: int(wall.now())
    )
    admin = Admin(store, OPERATOR, DEFAULTS, clock=lambda: int(wall.now()), on_change=authenticator.forget)
    admin.ensure_operator_tenant()
    admin.create_tenant(operator, "acme", "")
    new = admin.create_key(operator, "tenants/acme", "", ["write"], None)
    hold.set()
    racing = threading.Thread(target=lambda: authenticator.authenticate(TRACK, bearer(new.secret)))
    racing.start()
    assert read.wait(5)
    hold.clear()
    admin.revoke_key(operator, new.key.name)  # forget() runs while the read is on its way back
    release.set()
    racing.join(5)
    assert not racing.is_alive()
    with pytest.raises(Unauthenticated) as refused:
        authenticator.authenticate(TRACK, bearer(new.secret))
    assert refused.value.reason == "API_KEY_REVOKED"


def test_a_rotated_key_works_until_the_overlap_ends(
    admin: Admin, operator: Caller, store: AdminStore, monotonic: FakeClock, wall: FakeClock
) -> None:
    authenticator = replica(store, monotonic, wall)
    admin.create_tenant(operator, "acme", "")
    old = admin.create_key(operator, "tenants/acme", "", ["write"], None)
    new, _ = admin.rotate_key(operator, old.key.name, overlap_seconds=60)
    assert authenticator.authenticate(TRACK, bearer(old.secret)).tenant == "acme"
    assert authenticator.authenticate(TRACK, bearer(new.secret)).tenant == "acme"
    wall.advance(61 * 1_000_000)
    with pytest.raises(Unauthenticated) as expired:
        authenticator.authenticate(TRACK, bearer(old.secret))  # cached, but its expiry is checked every time
    assert expired.value.reason == "API_KEY_EXPIRED"
    assert authenticator.authenticate(TRACK, bearer(new.secret)).tenant == "acme"


def test_unknown_keys_are_refused_and_cached_too(
    store: AdminStore, monotonic: FakeClock, wall: FakeClock
) -> None:
    lookups: list[str] = []

    def counting(key_digest: str) -> object:
        lookups.append(key_digest)
        return store.key_by_digest(key_digest)

    authenticator = ApiKeyAuthenticator(SCOPES, lookup=counting, clock=monotonic.now)  # type: ignore[arg-type]
    for _ in range(3):
        with pytest.raises(Unauthenticated) as refused:
            authenticator.authenticate(TRACK, bearer("wl_live_guessed"))
        assert refused.value.reason == "API_KEY_INVALID"
    assert len(lookups) == 1


def test_uses_are_recorded_to_the_minute(
    admin: Admin, operator: Caller, store: AdminStore, monotonic: FakeClock, wall: FakeClock
) -> None:
    authenticator = replica(store, monotonic, wall)
    admin.create_tenant(operator, "acme", "")
    new = admin.create_key(operator, "tenants/acme", "", ["write"], None)
    authenticator.authenticate(TRACK, bearer(new.secret))
    store.record_uses(authenticator.take_uses())
    used = store.key("acme", new.key.key_id).last_use_time
    assert used is not None
    assert used % 60_000_000 == 0
    assert 0 <= wall.now() - used < 60_000_000
    assert authenticator.take_uses() == {}
