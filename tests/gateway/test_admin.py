"""Tenants, keys and quotas through the domain (admin.py) on SQLite and PostgreSQL: the rules of each change
and who may make it."""

from __future__ import annotations

import pytest

from tests.gateway.clock import FakeClock
from tests.gateway.conftest import OPERATOR, admin_of
from wayline.common.auth import Caller
from wayline.common.errors import (
    Aborted,
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from wayline_gateway.admin import Admin
from wayline_gateway.keys import digest
from wayline_gateway.model import KeyState, Limits, TenantState
from wayline_gateway.store.admin_store import AdminStore

HOUR = 3600 * 1_000_000


def test_the_operator_creates_tenants_and_lists_them_in_pages(admin: Admin, operator: Caller) -> None:
    for tenant_id in ("acme", "globex", "initech"):
        created = admin.create_tenant(operator, tenant_id, tenant_id.title())
        assert created.state is TenantState.ACTIVE
    generated = admin.create_tenant(operator, "", "Nameless")
    assert generated.tenant_id.startswith("tenant-")
    seen, token = [], ""
    while True:
        page, token, total = admin.list_tenants(operator, 2, token)
        seen += [t.tenant_id for t in page]
        assert total == 5  # with the operator tenant
        if not token:
            break
    assert seen == sorted(seen)
    assert set(seen) == {OPERATOR, "acme", "globex", "initech", generated.tenant_id}


@pytest.mark.parametrize("bad", ["A-corp", "ab", "-abc", "abc-", "a" * 64, "has_underscore", "tenants/x"])
def test_tenant_ids_must_be_lower_kebab_case(admin: Admin, operator: Caller, bad: str) -> None:
    with pytest.raises(InvalidArgument) as invalid:
        admin.create_tenant(operator, bad, "")
    assert invalid.value.violations[0].field == "tenant_id"


def test_a_tenant_id_is_never_given_twice_even_after_deletion(admin: Admin, operator: Caller) -> None:
    admin.create_tenant(operator, "acme", "")
    with pytest.raises(AlreadyExists):
        admin.create_tenant(operator, "acme", "")
    admin.update_tenant(operator, "tenants/acme", ["state"], "", TenantState.SUSPENDED, "")
    admin.delete_tenant(operator, "tenants/acme")
    with pytest.raises(AlreadyExists):
        admin.create_tenant(operator, "acme", "")


def test_only_the_operator_manages_tenants(admin: Admin, operator: Caller) -> None:
    admin.create_tenant(operator, "acme", "")
    acme = admin_of("acme")
    for attempt in (
        lambda: admin.create_tenant(acme, "evil", ""),
        lambda: admin.list_tenants(acme, 0, ""),
        lambda: admin.update_tenant(acme, "tenants/acme", ["display_name"], "x", None, ""),
        lambda: admin.delete_tenant(acme, "tenants/acme"),
    ):
        with pytest.raises(PermissionDenied) as denied:
            attempt()
        assert denied.value.reason == "OPERATOR_ONLY"
    assert admin.get_tenant(acme, "tenants/acme").tenant_id == "acme"  # its own tenant it may read


def test_a_tenant_admin_never_reaches_another_tenant(admin: Admin, operator: Caller) -> None:
    admin.create_tenant(operator, "acme", "")
    globex = admin.create_tenant(operator, "globex", "")
    key = admin.create_key(operator, globex.name, "ci", ["write"], None).key
    acme = admin_of("acme")
    for attempt in (
        lambda: admin.get_tenant(acme, "tenants/globex"),
        lambda: admin.create_key(acme, "tenants/globex", "", ["read"], None),
        lambda: admin.list_keys(acme, "tenants/globex", 0, "", True),
        lambda: admin.revoke_key(acme, key.name),
        lambda: admin.rotate_key(acme, key.name, None),
        lambda: admin.get_quota(acme, "tenants/globex/quota"),
        lambda: admin.update_quota(acme, f"{key.name}/quota", Limits(requests_burst=1), [], ""),
    ):
        with pytest.raises(PermissionDenied) as denied:
            attempt()
        assert denied.value.reason == "OTHER_TENANT"


def test_updates_are_conditional_on_the_etag(admin: Admin, operator: Caller) -> None:
    tenant = admin.create_tenant(operator, "acme", "Acme")
    renamed = admin.update_tenant(
        operator, tenant.name, ["display_name"], "Acme Corp", None, str(tenant.version)
    )
    assert renamed.display_name == "Acme Corp"
    assert renamed.state is TenantState.ACTIVE
    with pytest.raises(Aborted):
        admin.update_tenant(operator, tenant.name, ["display_name"], "Stale", None, str(tenant.version))
    with pytest.raises(InvalidArgument):  # a digit of no number (`str.isdigit` alone took it, int() did not)
        admin.update_tenant(operator, tenant.name, ["display_name"], "Other", None, "\u00b2")
    with pytest.raises(InvalidArgument):
        admin.update_tenant(operator, tenant.name, [], "", None, "")
    with pytest.raises(InvalidArgument):
        admin.update_tenant(operator, tenant.name, ["create_time"], "", None, "")


def test_deleting_needs_a_suspended_tenant_other_than_the_operator(admin: Admin, operator: Caller) -> None:
    admin.create_tenant(operator, "acme", "")
    with pytest.raises(FailedPrecondition) as active:
        admin.delete_tenant(operator, "tenants/acme")
    assert active.value.reason == "TENANT_NOT_SUSPENDED"
    with pytest.raises(FailedPrecondition) as operator_tenant:
        admin.update_tenant(operator, f"tenants/{OPERATOR}", ["state"], "", TenantState.SUSPENDED, "")
    assert operator_tenant.value.reason == "OPERATOR_TENANT"
    with pytest.raises(FailedPrecondition):
        admin.delete_tenant(operator, f"tenants/{OPERATOR}")
    admin.create_key(operator, "tenants/acme", "", ["read"], None)
    admin.update_tenant(operator, "tenants/acme", ["state"], "", TenantState.SUSPENDED, "")
    admin.delete_tenant(operator, "tenants/acme")
    with pytest.raises(NotFound):
        admin.get_tenant(operator, "tenants/acme")


def test_a_key_is_stored_by_digest_and_shown_once(admin: Admin, operator: Caller, store: AdminStore) -> None:
    admin.create_tenant(operator, "acme", "")
    new = admin.create_key(operator, "tenants/acme", "web", ["write", "read"], None)
    assert new.secret.startswith("wl_live_")
    assert len(new.secret) > 40
    assert new.key.key_prefix == new.secret[:12]
    found = store.key_by_digest(digest(new.secret))
    assert found is not None
    assert found[0].name == new.key.name
    assert found[1] is TenantState.ACTIVE
    assert new.secret not in repr(found)
    listed, _, _ = admin.list_keys(operator, "tenants/acme", 0, "", False)
    assert [k.name for k in listed] == [new.key.name]


@pytest.mark.parametrize("scopes", [[], ["internal"], ["read", "owner"]])
def test_keys_hold_only_grantable_scopes(admin: Admin, operator: Caller, scopes: list[str]) -> None:
    admin.create_tenant(operator, "acme", "")
    with pytest.raises(InvalidArgument):
        admin.create_key(operator, "tenants/acme", "", scopes, None)


def test_keys_list_newest_first_in_pages_and_hide_inactive_ones(
    admin: Admin, operator: Caller, wall: FakeClock
) -> None:
    admin.create_tenant(operator, "acme", "")
    names = []
    for n in range(5):
        names.append(admin.create_key(operator, "tenants/acme", f"k{n}", ["read"], None).key.name)
        wall.advance(1_000_000)
    admin.revoke_key(operator, names[0])
    seen, token = [], ""
    while True:
        page, token, total = admin.list_keys(operator, "tenants/acme", 2, token, False)
        assert total == 4
        seen += [k.name for k in page]
        if not token:
            break
    assert seen == names[:0:-1]
    everything, _, total = admin.list_keys(operator, "tenants/acme", 10, "", True)
    assert total == 5
    assert [k.name for k in everything] == names[::-1]
    first_page_token = admin.list_keys(operator, "tenants/acme", 2, "", False)[1]
    with pytest.raises(InvalidArgument):  # a token is bound to its parameters
        admin.list_keys(operator, "tenants/acme", 2, first_page_token, True)


def test_revoking_the_last_admin_key_one_holds_is_refused(admin: Admin, operator: Caller) -> None:
    admin.create_tenant(operator, "acme", "")
    own = admin.create_key(operator, "tenants/acme", "admin", ["admin"], None).key
    me = admin_of("acme", own.key_id)
    with pytest.raises(FailedPrecondition) as refused:
        admin.revoke_key(me, own.name)
    assert refused.value.reason == "LAST_ADMIN_KEY"
    admin.create_key(me, "tenants/acme", "second admin", ["admin"], None)
    revoked = admin.revoke_key(me, own.name)
    assert revoked.state(0) is KeyState.REVOKED
    assert admin.revoke_key(operator, own.name).revoke_time == revoked.revoke_time  # idempotent
    with pytest.raises(NotFound):
        admin.revoke_key(operator, "tenants/acme/apiKeys/nope")


def test_rotation_keeps_the_old_key_for_the_overlap_then_expires_it(
    admin: Admin, operator: Caller, wall: FakeClock
) -> None:
    admin.create_tenant(operator, "acme", "")
    old = admin.create_key(operator, "tenants/acme", "backend", ["write"], None).key
    admin.update_quota(operator, f"{old.name}/quota", Limits(events_per_second=5.0), [], "")
    new, previous = admin.rotate_key(operator, old.name, overlap_seconds=3600)
    now = int(wall.now())
    assert new.key.scopes == old.scopes
    assert new.key.display_name == "backend"
    assert new.key.rotated_from == old.key_id
    assert previous.rotated_to == new.key.key_id
    assert previous.state(now) is KeyState.EXPIRING
    assert previous.expire_time == now + HOUR
    assert previous.state(now + HOUR) is KeyState.EXPIRED
    assert admin.get_quota(operator, f"{new.key.name}/quota").effective.events_per_second == 5.0
    with pytest.raises(FailedPrecondition) as again:
        admin.rotate_key(operator, old.name, None)
    assert again.value.reason == "API_KEY_NOT_ACTIVE"
    _, at_once = admin.rotate_key(operator, new.key.name, overlap_seconds=0)
    assert at_once.state(now) is KeyState.REVOKED
    with pytest.raises(InvalidArgument):
        admin.rotate_key(operator, old.name, overlap_seconds=31 * 86400)


def test_quotas_inherit_and_update_by_mask_with_an_etag(admin: Admin, operator: Caller) -> None:
    admin.create_tenant(operator, "acme", "")
    key = admin.create_key(operator, "tenants/acme", "", ["write"], None).key
    fresh = admin.get_quota(operator, "tenants/acme/quota")
    assert fresh.record is None
    assert fresh.effective == Limits(100.0, 200, 1000.0, 2000, 10)
    tenant = admin.update_quota(
        operator, "tenants/acme/quota", Limits(events_per_second=50.0, requests_burst=7), [], ""
    )
    assert tenant.record is not None
    assert tenant.record.limits == Limits(requests_burst=7, events_per_second=50.0)
    only_rate = admin.update_quota(
        operator,
        "tenants/acme/quota",
        Limits(events_per_second=60.0, requests_burst=1),
        ["limits.events_per_second"],
        str(tenant.record.version),
    )
    assert only_rate.effective == Limits(100.0, 7, 60.0, 2000, 10)  # the burst was not in the mask
    with pytest.raises(Aborted):
        admin.update_quota(operator, "tenants/acme/quota", Limits(), [], str(tenant.record.version))
    key_quota = admin.update_quota(
        admin_of("acme"), f"{key.name}/quota", Limits(max_concurrent_requests=2), [], ""
    )
    assert key_quota.effective == Limits(100.0, 7, 60.0, 2000, 2)
    with pytest.raises(PermissionDenied):  # a tenant's own admin may not raise its tenant's limits
        admin.update_quota(admin_of("acme"), "tenants/acme/quota", Limits(requests_burst=10**6), [], "")
    for bad, paths in (
        (Limits(requests_burst=0), []),
        (Limits(events_per_second=-1.0), []),
        (Limits(), ["burst"]),
    ):
        with pytest.raises(InvalidArgument):
            admin.update_quota(operator, "tenants/acme/quota", bad, paths, "")
    with pytest.raises(NotFound):
        admin.get_quota(operator, "tenants/acme/apiKeys/nope/quota")
    with pytest.raises(InvalidArgument):
        admin.get_quota(operator, "tenants/acme")
