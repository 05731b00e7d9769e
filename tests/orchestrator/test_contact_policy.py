"""GetContactPolicy and UpdateContactPolicy over real sockets, on both engines: the empty policy, updates by
field mask (repeated fields replaced whole, sub-fields of channel_preference), etags, field violations with
their paths, and tenants kept apart."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from tests.orchestrator.conftest import Auth, as_tenant
from tests.orchestrator.helpers import EMAIL, MARKETING, SMS, Stub, cap, days, set_policy
from tests.rpc_errors import reason, violations
from wayline.event.v1 import event_pb2
from wayline.orchestrator.v1 import contact_policy_pb2 as policy_pb
from wayline.orchestrator.v1 import orchestrator_service_pb2 as pb

FULL = policy_pb.ContactPolicy(
    frequency_caps=[cap(3, days(7), EMAIL, (MARKETING,)), cap(5, days(7))],
    quiet_hours=[
        policy_pb.QuietHours(
            channels=[SMS],
            start_minute=21 * 60,
            end_minute=8 * 60,
            default_time_zone="Europe/Paris",
            action=policy_pb.QUIET_HOURS_ACTION_SUPPRESS,
        )
    ],
    consent_rules=[
        policy_pb.ConsentRule(channel=EMAIL, purpose=MARKETING, mode=policy_pb.CONSENT_MODE_OPT_IN),
        policy_pb.ConsentRule(mode=policy_pb.CONSENT_MODE_OPT_OUT),
    ],
    channel_preference=policy_pb.ChannelPreferencePolicy(enforce=True, default_order=[EMAIL, SMS]),
)


def get(stub: Stub, auth: Auth) -> policy_pb.ContactPolicy:
    return stub.GetContactPolicy(pb.GetContactPolicyRequest(), metadata=auth, timeout=10).contact_policy


def refused_update(stub: Stub, auth: Auth, policy: policy_pb.ContactPolicy, *paths: str) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as error:
        set_policy(stub, auth, policy, *paths)
    return error.value


def test_get_contact_policy_is_empty_until_set(stub: Stub, tenant: Auth) -> None:
    policy = get(stub, tenant)
    assert policy == policy_pb.ContactPolicy(channel_preference=policy_pb.ChannelPreferencePolicy(), etag="0")


def test_update_contact_policy_stores_every_field_and_bumps_the_revision(stub: Stub, tenant: Auth) -> None:
    stored = set_policy(stub, tenant, FULL)
    assert stored.revision == 1
    assert stored.etag == "1"
    assert stored.update_time.seconds > 0
    for name in ("frequency_caps", "quiet_hours", "consent_rules", "channel_preference"):
        assert getattr(stored, name) == getattr(FULL, name), name
    assert get(stub, tenant) == stored
    # Unset enums come back as the defaults the contract names.
    bare = set_policy(
        stub,
        tenant,
        policy_pb.ContactPolicy(
            quiet_hours=[policy_pb.QuietHours(start_minute=0, end_minute=60)],
            consent_rules=[policy_pb.ConsentRule(channel=EMAIL)],
        ),
        "quiet_hours",
        "consent_rules",
    )
    assert bare.quiet_hours[0].action == policy_pb.QUIET_HOURS_ACTION_DEFER
    assert bare.consent_rules[0].mode == policy_pb.CONSENT_MODE_OPT_IN
    assert list(bare.frequency_caps) == list(FULL.frequency_caps)  # not in the mask: kept


def test_update_contact_policy_mask_replaces_only_the_named_fields(stub: Stub, tenant: Auth) -> None:
    set_policy(stub, tenant, FULL)
    changed = set_policy(
        stub,
        tenant,
        policy_pb.ContactPolicy(
            frequency_caps=[cap(1, days(1))],
            channel_preference=policy_pb.ChannelPreferencePolicy(enforce=False, default_order=[SMS]),
        ),
        "frequency_caps",
        "channel_preference.enforce",
    )
    assert list(changed.frequency_caps) == [cap(1, days(1))]  # replaced whole
    assert changed.channel_preference.enforce is False
    assert list(changed.channel_preference.default_order) == [EMAIL, SMS]  # not in the mask
    assert list(changed.quiet_hours) == list(FULL.quiet_hours)
    assert changed.revision == 2


def test_update_contact_policy_with_a_stale_etag_is_aborted(stub: Stub, tenant: Auth) -> None:
    first = set_policy(stub, tenant, FULL)
    set_policy(stub, tenant, policy_pb.ContactPolicy(frequency_caps=[cap(2, days(1))]), "frequency_caps")
    stale = policy_pb.ContactPolicy(frequency_caps=[cap(9, days(1))], etag=first.etag)
    error = refused_update(stub, tenant, stale, "frequency_caps")
    assert error.code() == grpc.StatusCode.ABORTED
    assert reason(error) == "ETAG_MISMATCH"
    current = get(stub, tenant)
    assert current.frequency_caps[0].max_contacts == 2
    fresh = policy_pb.ContactPolicy(frequency_caps=[cap(9, days(1))], etag=current.etag)
    assert set_policy(stub, tenant, fresh, "frequency_caps").revision == 3


def test_update_contact_policy_reports_every_invalid_field(stub: Stub, tenant: Auth) -> None:
    bad = policy_pb.ContactPolicy(
        frequency_caps=[cap(0, days(7)), cap(3, days(0))],
        quiet_hours=[
            policy_pb.QuietHours(start_minute=1440, end_minute=-1, default_time_zone="Mars/Olympus"),
            policy_pb.QuietHours(start_minute=60, end_minute=60, channels=[event_pb2.CHANNEL_UNSPECIFIED]),
        ],
        consent_rules=[policy_pb.ConsentRule(channel=EMAIL), policy_pb.ConsentRule(channel=EMAIL)],
        channel_preference=policy_pb.ChannelPreferencePolicy(default_order=[EMAIL, EMAIL]),
    )
    error = refused_update(stub, tenant, bad)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert reason(error) == "CONTACT_POLICY_INVALID"
    assert set(violations(error)) == {
        "contact_policy.frequency_caps[0].max_contacts",
        "contact_policy.frequency_caps[1].window",
        "contact_policy.quiet_hours[0].start_minute",
        "contact_policy.quiet_hours[0].end_minute",
        "contact_policy.quiet_hours[0].default_time_zone",
        "contact_policy.quiet_hours[1].end_minute",
        "contact_policy.quiet_hours[1].channels[0]",
        "contact_policy.consent_rules[0]",
        "contact_policy.consent_rules[1]",
        "contact_policy.channel_preference.default_order[1]",
    }
    assert "Mars/Olympus" in violations(error)["contact_policy.quiet_hours[0].default_time_zone"]
    assert get(stub, tenant).revision == 0  # nothing stored


@pytest.mark.parametrize("zone", ["America", "x" * 300, "Europe/../Paris"], ids=["directory", "long", "path"])
def test_update_contact_policy_refuses_a_time_zone_that_zoneinfo_cannot_open(
    stub: Stub, tenant: Auth, zone: str
) -> None:
    """ZoneInfo raises OSError for these (a directory of the tz database, a name too long for a file) or
    ValueError: each is the caller's error, never INTERNAL."""
    bad = policy_pb.ContactPolicy(
        quiet_hours=[policy_pb.QuietHours(start_minute=60, end_minute=120, default_time_zone=zone)]
    )
    error = refused_update(stub, tenant, bad)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(violations(error)) == {"contact_policy.quiet_hours[0].default_time_zone"}


def test_update_contact_policy_refuses_unknown_mask_paths_and_enum_numbers(stub: Stub, tenant: Auth) -> None:
    error = refused_update(stub, tenant, FULL, "frequency_caps", "revision")
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(violations(error)) == {"update_mask.paths[1]"}
    unknown = cap(1, days(1))
    unknown.channel = 999  # type: ignore[assignment]
    bad_channel = policy_pb.ContactPolicy(frequency_caps=[unknown])
    error = refused_update(stub, tenant, bad_channel, "frequency_caps")
    assert set(violations(error)) == {"contact_policy.frequency_caps[0].channel"}


def test_contact_policies_are_per_tenant(stub: Stub, tenant: Auth) -> None:
    set_policy(stub, tenant, FULL)
    other = as_tenant("someone-else-" + tenant[1][1])
    assert get(stub, other).revision == 0
    request = pb.UpdateContactPolicyRequest(contact_policy=FULL, update_mask=FieldMask())
    assert stub.UpdateContactPolicy(request, metadata=other, timeout=10).contact_policy.revision == 1
    assert get(stub, tenant).revision == 1
