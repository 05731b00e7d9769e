"""CheckContact over real sockets, on both engines: each rule allowing and forbidding (frequency caps per
channel, purpose and window; quiet hours across midnight and across DST changes, in the person's time zone;
consent missing, given and withdrawn; channel preference), the retry times, the preferred channel, and the
request's validation. CheckContact records nothing."""

from __future__ import annotations

import grpc
import pytest

from tests.orchestrator.conftest import Auth
from tests.orchestrator.helpers import (
    EMAIL,
    MARKETING,
    PUSH,
    SERVICE,
    SMS,
    TRANSACTIONAL,
    Stub,
    at,
    blocks,
    cap,
    check,
    days,
    event,
    observe,
    record,
    set_policy,
)
from tests.rpc_errors import reason, violations
from wayline.event.v1 import event_pb2
from wayline.orchestrator.v1 import contact_pb2
from wayline.orchestrator.v1 import contact_policy_pb2 as policy_pb
from wayline.orchestrator.v1 import orchestrator_service_pb2 as pb

PERSON = "person-1"


def quiet(start: str, end: str, zone: str = "Europe/Paris", **fields: object) -> policy_pb.ContactPolicy:
    minutes = [int(t[:2]) * 60 + int(t[3:]) for t in (start, end)]
    rule = policy_pb.QuietHours(
        start_minute=minutes[0],
        end_minute=minutes[1],
        default_time_zone=zone,
        **fields,  # type: ignore[arg-type]
    )
    return policy_pb.ContactPolicy(quiet_hours=[rule])


def test_check_contact_without_a_policy_allows_everything(stub: Stub, tenant: Auth) -> None:
    record(stub, tenant, PERSON, at("2026-03-02T10:00"))
    answer = check(
        stub,
        tenant,
        PERSON,
        at("2026-03-02T23:00"),
        (EMAIL, MARKETING),
        (SMS, policy_pb.CONTACT_PURPOSE_UNSPECIFIED),
    )
    assert [r.allowed for r in answer.results] == [True, True]
    assert [r.check.channel for r in answer.results] == [EMAIL, SMS]  # in request order
    assert answer.preferred_channel == event_pb2.CHANNEL_UNSPECIFIED


def test_check_contact_channel_cap_counts_its_channel_and_purposes_in_its_window(
    stub: Stub, tenant: Auth
) -> None:
    set_policy(stub, tenant, policy_pb.ContactPolicy(frequency_caps=[cap(2, days(7), EMAIL, (MARKETING,))]))
    record(stub, tenant, PERSON, at("2026-03-01T09:00"))
    record(stub, tenant, PERSON, at("2026-03-03T09:00"))
    record(stub, tenant, PERSON, at("2026-03-03T10:00"), channel=SMS)  # another channel: not counted
    record(stub, tenant, PERSON, at("2026-03-03T11:00"), purpose=SERVICE)  # another purpose: not counted
    answer = check(
        stub,
        tenant,
        PERSON,
        at("2026-03-04T09:00"),
        (EMAIL, MARKETING),
        (EMAIL, policy_pb.CONTACT_PURPOSE_UNSPECIFIED),
        (SMS, MARKETING),
        (EMAIL, SERVICE),
    )
    email, unspecified, sms, service = answer.results
    assert blocks(email) == [("FREQUENCY_CAP", "frequency_caps[0]")]
    assert email.violations[0].description == "2 of 2 email contacts in the last 7 days"
    # The oldest contact leaves the window 7 days after it was made: one slot is free again then.
    assert email.violations[0].retry_time == at("2026-03-08T09:00")
    assert email.next_allowed_time == at("2026-03-08T09:00")
    assert not unspecified.allowed  # an unset purpose is marketing
    assert sms.allowed
    assert service.allowed
    assert check(stub, tenant, PERSON, at("2026-03-08T09:00"), (EMAIL, MARKETING)).results[0].allowed
    assert not check(stub, tenant, PERSON, at("2026-03-08T08:59"), (EMAIL, MARKETING)).results[0].allowed


def test_check_contact_overall_cap_counts_every_channel_but_not_transactional(
    stub: Stub, tenant: Auth
) -> None:
    set_policy(stub, tenant, policy_pb.ContactPolicy(frequency_caps=[cap(3, days(1))]))
    record(stub, tenant, PERSON, at("2026-03-02T08:00"), channel=EMAIL)
    record(stub, tenant, PERSON, at("2026-03-02T09:00"), channel=SMS, purpose=SERVICE)
    record(stub, tenant, PERSON, at("2026-03-02T10:00"), channel=PUSH, purpose=TRANSACTIONAL)
    assert check(stub, tenant, PERSON, at("2026-03-02T12:00"), (PUSH, MARKETING)).results[0].allowed
    record(stub, tenant, PERSON, at("2026-03-02T11:00"), channel=PUSH)
    push, receipt = check(
        stub, tenant, PERSON, at("2026-03-02T12:00"), (PUSH, MARKETING), (EMAIL, TRANSACTIONAL)
    ).results
    assert blocks(push) == [("FREQUENCY_CAP", "frequency_caps[0]")]
    assert push.violations[0].description == "3 of 3 contacts in the last 1 day"
    assert receipt.allowed  # transactional contacts are exempt unless a cap names them
    set_policy(
        stub, tenant, policy_pb.ContactPolicy(frequency_caps=[cap(1, days(1), purposes=(TRANSACTIONAL,))])
    )
    assert not check(stub, tenant, PERSON, at("2026-03-02T12:00"), (EMAIL, TRANSACTIONAL)).results[0].allowed


def test_check_contact_follows_a_cap_window_that_grows_and_shrinks_between_checks(
    stub: Stub, tenant: Auth
) -> None:
    """A check reads the history in the same statement as the policy, over the window the tenant's last check
    needed: a policy whose caps now reach further back must still count every contact in its window, and
    one that reaches less far must not count the older ones."""
    record(stub, tenant, PERSON, at("2026-03-01T09:00"))
    record(stub, tenant, PERSON, at("2026-03-09T09:00"))
    when = at("2026-03-10T09:00")
    set_policy(stub, tenant, policy_pb.ContactPolicy(frequency_caps=[cap(2, days(2), EMAIL)]))
    assert check(stub, tenant, PERSON, when, (EMAIL, MARKETING)).results[0].allowed  # 1 contact in 2 days
    set_policy(stub, tenant, policy_pb.ContactPolicy(frequency_caps=[cap(2, days(30), EMAIL)]))
    (grown,) = check(stub, tenant, PERSON, when, (EMAIL, MARKETING)).results
    assert grown.violations[0].description == "2 of 2 email contacts in the last 30 days"
    set_policy(stub, tenant, policy_pb.ContactPolicy(frequency_caps=[cap(2, days(2), EMAIL)]))
    assert check(stub, tenant, PERSON, when, (EMAIL, MARKETING)).results[0].allowed


def test_check_contact_reports_every_violation_and_the_latest_retry_time(stub: Stub, tenant: Auth) -> None:
    policy = quiet("21:00", "08:00", "UTC")
    policy.frequency_caps.append(cap(1, days(1)))
    set_policy(stub, tenant, policy)
    record(stub, tenant, PERSON, at("2026-03-02T20:00"))
    result = check(stub, tenant, PERSON, at("2026-03-02T22:00"), (EMAIL, MARKETING)).results[0]
    assert blocks(result) == [("FREQUENCY_CAP", "frequency_caps[0]"), ("QUIET_HOURS", "quiet_hours[0]")]
    assert result.next_allowed_time == at("2026-03-03T20:00")  # the cap frees later than the night ends


@pytest.mark.parametrize(
    ("when", "retry"),
    [
        ("2026-01-15T22:30", "2026-01-16T07:00"),  # 23:30 in Paris: the period ends tomorrow at 08:00 (CET)
        ("2026-01-15T06:30", "2026-01-15T07:00"),  # 07:30 in Paris: it ends this morning
        ("2026-01-15T20:00", "2026-01-16T07:00"),  # 21:00 in Paris: the first quiet minute
    ],
)
def test_check_contact_quiet_hours_span_midnight_in_the_policy_zone(
    stub: Stub, tenant: Auth, when: str, retry: str
) -> None:
    set_policy(stub, tenant, quiet("21:00", "08:00"))
    result = check(stub, tenant, PERSON, at(when), (EMAIL, MARKETING)).results[0]
    assert blocks(result) == [("QUIET_HOURS", "quiet_hours[0]")]
    assert result.violations[0].retry_time == at(retry)
    assert "Europe/Paris" in result.violations[0].description


@pytest.mark.parametrize("when", ["2026-01-15T07:00", "2026-01-15T12:00", "2026-01-15T19:59"])
def test_check_contact_outside_quiet_hours_is_allowed(stub: Stub, tenant: Auth, when: str) -> None:
    set_policy(stub, tenant, quiet("21:00", "08:00"))
    assert check(stub, tenant, PERSON, at(when), (EMAIL, MARKETING)).results[0].allowed


@pytest.mark.parametrize(
    ("when", "retry"),
    [
        # The night of 28-29 March 2026 Paris moves from UTC+1 to UTC+2: 08:00 local is 06:00 UTC.
        ("2026-03-28T21:00", "2026-03-29T06:00"),
        # The night of 24-25 October 2026 it moves back: 08:00 local is 07:00 UTC.
        ("2026-10-24T20:00", "2026-10-25T07:00"),
    ],
)
def test_check_contact_quiet_hours_end_at_local_time_across_a_dst_change(
    stub: Stub, tenant: Auth, when: str, retry: str
) -> None:
    set_policy(stub, tenant, quiet("21:00", "08:00"))
    result = check(stub, tenant, PERSON, at(when), (EMAIL, MARKETING)).results[0]
    assert result.violations[0].retry_time == at(retry)


def test_check_contact_quiet_hours_use_the_persons_latest_time_zone(stub: Stub, tenant: Auth) -> None:
    set_policy(stub, tenant, quiet("21:00", "08:00"))
    noon = at("2026-01-15T12:00")  # 13:00 in Paris, 07:00 in New York
    assert check(stub, tenant, PERSON, noon, (EMAIL, MARKETING)).results[0].allowed
    observe(stub, tenant, event(PERSON, "Page Viewed", at("2026-01-10T00:00"), timezone="America/New_York"))
    result = check(stub, tenant, PERSON, noon, (EMAIL, MARKETING)).results[0]
    assert blocks(result) == [("QUIET_HOURS", "quiet_hours[0]")]
    assert result.violations[0].retry_time == at("2026-01-15T13:00")
    # An older event with another zone does not replace the latest one; an unknown zone is ignored, also one
    # that ZoneInfo refuses with an OSError (a directory of the tz database, a name too long for a file).
    observe(
        stub,
        tenant,
        event(PERSON, "Page Viewed", at("2026-01-01T00:00"), timezone="Europe/Paris"),
        event(PERSON, "Page Viewed", at("2026-01-11T00:00"), timezone="Not/AZone"),
        event(PERSON, "Page Viewed", at("2026-01-12T00:00"), timezone="America"),
        event(PERSON, "Page Viewed", at("2026-01-13T00:00"), timezone="x" * 300),
    )
    assert not check(stub, tenant, PERSON, noon, (EMAIL, MARKETING)).results[0].allowed


def test_check_contact_quiet_hours_scope_and_suppress(stub: Stub, tenant: Auth) -> None:
    set_policy(
        stub,
        tenant,
        quiet("21:00", "08:00", "UTC", channels=[SMS], action=policy_pb.QUIET_HOURS_ACTION_SUPPRESS),
    )
    night = at("2026-01-15T23:00")
    sms, email, receipt = check(
        stub, tenant, PERSON, night, (SMS, MARKETING), (EMAIL, MARKETING), (SMS, TRANSACTIONAL)
    ).results
    assert blocks(sms) == [("QUIET_HOURS", "quiet_hours[0]")]
    assert not sms.violations[0].HasField("retry_time")  # suppressed: no time suggested
    assert not sms.HasField("next_allowed_time")
    assert email.allowed  # another channel
    assert receipt.allowed  # transactional: exempt unless the rule names it


def consent(person: str, when: str, channel: str, purpose: str, granted: object) -> event_pb2.Event:
    return event(person, "Consent Updated", at(when), channel=channel, purpose=purpose, granted=granted)


def test_check_contact_opt_in_needs_the_latest_consent_granted(stub: Stub, tenant: Auth) -> None:
    set_policy(
        stub,
        tenant,
        policy_pb.ContactPolicy(
            consent_rules=[
                policy_pb.ConsentRule(channel=EMAIL, purpose=MARKETING, mode=policy_pb.CONSENT_MODE_OPT_IN)
            ]
        ),
    )
    when = at("2026-03-02T10:00")
    email, sms = check(stub, tenant, PERSON, when, (EMAIL, MARKETING), (SMS, MARKETING)).results
    assert blocks(email) == [("NO_CONSENT", "consent_rules[0]")]
    assert not email.violations[0].HasField("retry_time")
    assert sms.allowed  # no rule for sms: consent is not checked
    observe(stub, tenant, consent(PERSON, "2026-03-01T00:00", "email", "marketing", True))
    assert check(stub, tenant, PERSON, when, (EMAIL, MARKETING)).results[0].allowed
    # Withdrawn for every channel later: the latest statement that covers the contact wins.
    observe(stub, tenant, consent(PERSON, "2026-03-01T12:00", "all", "all", "false"))
    result = check(stub, tenant, PERSON, when, (EMAIL, MARKETING)).results[0]
    assert blocks(result) == [("NO_CONSENT", "consent_rules[0]")]
    assert "withdrew" in result.violations[0].description
    # A late-arriving older grant changes nothing; a newer one does.
    observe(stub, tenant, consent(PERSON, "2026-02-01T00:00", "email", "marketing", True))
    assert not check(stub, tenant, PERSON, when, (EMAIL, MARKETING)).results[0].allowed
    observe(stub, tenant, consent(PERSON, "2026-03-01T18:00", "email", "all", True))
    assert check(stub, tenant, PERSON, when, (EMAIL, MARKETING)).results[0].allowed
    # Another person's consent is theirs alone.
    assert not check(stub, tenant, "person-2", when, (EMAIL, MARKETING)).results[0].allowed


def test_check_contact_applies_the_most_specific_consent_rule(stub: Stub, tenant: Auth) -> None:
    set_policy(
        stub,
        tenant,
        policy_pb.ContactPolicy(
            consent_rules=[
                policy_pb.ConsentRule(mode=policy_pb.CONSENT_MODE_NOT_REQUIRED),
                policy_pb.ConsentRule(channel=SMS, mode=policy_pb.CONSENT_MODE_OPT_OUT),
                policy_pb.ConsentRule(purpose=MARKETING, mode=policy_pb.CONSENT_MODE_OPT_IN),
                policy_pb.ConsentRule(channel=PUSH, purpose=SERVICE, mode=policy_pb.CONSENT_MODE_OPT_IN),
            ]
        ),
    )
    when = at("2026-03-02T10:00")
    results = check(
        stub, tenant, PERSON, when, (EMAIL, MARKETING), (SMS, MARKETING), (EMAIL, SERVICE), (PUSH, SERVICE)
    ).results
    assert [blocks(r) for r in results] == [
        [("NO_CONSENT", "consent_rules[2]")],  # purpose rule: opt-in
        [],  # channel rule beats the purpose rule: opt-out, nothing withdrawn
        [],  # only the catch-all applies: not required
        [("NO_CONSENT", "consent_rules[3]")],  # channel and purpose: opt-in
    ]
    observe(stub, tenant, consent(PERSON, "2026-03-01T00:00", "sms", "marketing", False))
    assert blocks(check(stub, tenant, PERSON, when, (SMS, MARKETING)).results[0]) == [
        ("NO_CONSENT", "consent_rules[1]")
    ]


def test_check_contact_enforces_the_stated_channel_preference(stub: Stub, tenant: Auth) -> None:
    preference = policy_pb.ChannelPreferencePolicy(enforce=True, default_order=[PUSH, EMAIL, SMS])
    set_policy(
        stub,
        tenant,
        policy_pb.ContactPolicy(channel_preference=preference, frequency_caps=[cap(1, days(1), PUSH)]),
    )
    when = at("2026-03-02T10:00")
    record(stub, tenant, PERSON, at("2026-03-02T09:00"), channel=PUSH)
    # No stated preference: the first allowed channel of the default order (push is capped).
    answer = check(stub, tenant, PERSON, when, (SMS, MARKETING), (EMAIL, MARKETING), (PUSH, MARKETING))
    assert [r.allowed for r in answer.results] == [True, True, False]
    assert answer.preferred_channel == EMAIL
    observe(stub, tenant, event(PERSON, "Channel Preference Updated", at("2026-03-01T00:00"), channel="sms"))
    answer = check(stub, tenant, PERSON, when, (SMS, MARKETING), (EMAIL, MARKETING), (EMAIL, TRANSACTIONAL))
    assert [blocks(r) for r in answer.results] == [[], [("CHANNEL_PREFERENCE", "channel_preference")], []]
    assert answer.preferred_channel == SMS
    set_policy(stub, tenant, policy_pb.ContactPolicy(), "channel_preference.enforce")
    answer = check(stub, tenant, PERSON, when, (EMAIL, MARKETING))
    assert answer.results[0].allowed  # stated but not enforced
    assert answer.preferred_channel == SMS


def test_check_contact_records_nothing(stub: Stub, tenant: Auth) -> None:
    for _ in range(3):
        check(stub, tenant, PERSON, at("2026-03-02T10:00"), (EMAIL, MARKETING))
    listed = stub.ListContacts(pb.ListContactsRequest(person_id=PERSON), metadata=tenant, timeout=10)
    assert listed.total_size == 0


def test_check_contact_refuses_malformed_requests(stub: Stub, tenant: Auth) -> None:
    def refused(request: pb.CheckContactRequest) -> grpc.RpcError:
        with pytest.raises(grpc.RpcError) as error:
            stub.CheckContact(request, metadata=tenant, timeout=10)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert reason(error.value) == "CONTACT_REQUEST_INVALID"
        return error.value

    email = contact_pb2.ContactCheck(channel=EMAIL)
    assert set(violations(refused(pb.CheckContactRequest(checks=[email])))) == {"person_id"}
    assert set(violations(refused(pb.CheckContactRequest(person_id=PERSON)))) == {"checks"}
    assert set(violations(refused(pb.CheckContactRequest(person_id=PERSON, checks=[email] * 51)))) == {
        "checks"
    }
    unset = pb.CheckContactRequest(
        person_id=PERSON, checks=[email, contact_pb2.ContactCheck(purpose=MARKETING)]
    )
    assert set(violations(refused(unset))) == {"checks[1].channel"}
    unknown_purpose = contact_pb2.ContactCheck(channel=EMAIL)
    unknown_purpose.purpose = 77  # type: ignore[assignment]
    unknown = pb.CheckContactRequest(person_id=PERSON, checks=[unknown_purpose])
    assert set(violations(refused(unknown))) == {"checks[0].purpose"}


def test_observe_events_refuses_events_without_id_or_person(stub: Stub, tenant: Auth) -> None:
    good = event(PERSON, "Page Viewed", at("2026-03-01T00:00"))
    anonymous = event("", "Page Viewed", at("2026-03-01T00:00"))
    with pytest.raises(grpc.RpcError) as error:
        observe(stub, tenant, good, anonymous)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(violations(error.value)) == {"events[1].person_id"}
    # Unreadable consent statements are skipped, not refused; the batch is observed.
    unreadable = event(PERSON, "Consent Updated", at("2026-03-01T00:00"), channel="pigeon", granted=True)
    assert observe(stub, tenant, good, unreadable) == 2
