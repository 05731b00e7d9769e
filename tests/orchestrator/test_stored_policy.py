"""A contact policy stored before UpdateContactPolicy limited a cap's window to 366 days (it took any positive
Duration until 2026-12) keeps working, over real sockets on SQLite and PostgreSQL: the window counts as 366
days in CheckContact, RecordContact with `enforce_policy` and GetContactPolicy, the policy is logged once
(`orchestrator.contacts.cap_window_over_limit`), and an update that does not write the caps goes through
(storing the window as it counts). A new window over 366 days stays refused.

Before: a window past ~292,000 years made `time - window` overflow the ledger's 64-bit columns, so every
CheckContact of the tenant (Decide's path) and every enforced RecordContact answered INTERNAL; a window of
10,000 years answered retry times past year 9999, which no Timestamp holds."""

from __future__ import annotations

import uuid

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.timestamp_pb2 import Timestamp
from structlog.testing import capture_logs

from tests.orchestrator.conftest import Auth
from tests.orchestrator.helpers import (
    DAY,
    EMAIL,
    MARKETING,
    Stub,
    at,
    blocks,
    cap,
    check,
    days,
    record,
    set_policy,
)
from tests.orchestrator.running import Running
from tests.rpc_errors import violations
from wayline.common.server import Server
from wayline.orchestrator.v1 import contact_policy_pb2 as policy_pb
from wayline.orchestrator.v1 import orchestrator_service_pb2 as pb
from wayline_orchestrator.contacts import ContactPolicy, FrequencyCap
from wayline_orchestrator.contacts.store import ContactStore

NOW = at("2026-03-02T10:00")
LIMIT = 366 * DAY
# Windows UpdateContactPolicy stored before the limit: just over it, Duration's longest, and past what the
# ledger's microseconds can subtract from a time (the overflow every CheckContact hit).
LONG_WINDOWS = {"400 days": 400 * DAY, "10,000 years": 315_576_000_000, "2^62 seconds": 2**62}


@pytest.fixture(scope="module")
def orchestrator(running: Running) -> Server:
    return running.server


def _days_before(days_back: int) -> Timestamp:
    return Timestamp(seconds=NOW.seconds - days_back * DAY)


def _store_policy(running: Running, auth: Auth, window_seconds: int) -> None:
    """The tenant's policy, one email a window, written straight into the ledger's store, as
    UpdateContactPolicy wrote it before windows were limited."""
    tenant = dict(auth)["x-wayline-tenant"]
    long_cap = FrequencyCap(channel="CHANNEL_EMAIL", max_contacts=1, window_us=window_seconds * 1_000_000)
    policy = ContactPolicy(frequency_caps=(long_cap,), revision=1, update_time=NOW.seconds * 1_000_000)
    assert ContactStore(running.db).put_policy(tenant, policy, 0)


@pytest.mark.parametrize("window", list(LONG_WINDOWS.values()), ids=list(LONG_WINDOWS))
def test_a_stored_window_over_366_days_counts_as_366_days(
    running: Running, stub: Stub, tenant: Auth, window: int
) -> None:
    _store_policy(running, tenant, window)
    record(stub, tenant, "p1", _days_before(400))  # outside 366 days, inside the stored window
    record(stub, tenant, "p1", _days_before(300))

    answer = check(stub, tenant, "p1", NOW, (EMAIL, MARKETING))
    result = answer.results[0]
    assert blocks(result) == [("FREQUENCY_CAP", "frequency_caps[0]")]
    assert result.violations[0].description == "1 of 1 email contacts in the last 366 days"
    assert result.violations[0].retry_time.seconds == _days_before(300).seconds + LIMIT

    enforced = record(stub, tenant, "p1", NOW, enforce=True)
    assert not enforced.recorded
    assert [v.description for v in enforced.violations] == ["1 of 1 email contacts in the last 366 days"]

    shown = stub.GetContactPolicy(pb.GetContactPolicyRequest(), metadata=tenant, timeout=10).contact_policy
    assert shown.frequency_caps[0].window == Duration(seconds=LIMIT)


def test_an_update_that_leaves_the_caps_keeps_them_as_they_count(
    running: Running, stub: Stub, tenant: Auth
) -> None:
    _store_policy(running, tenant, 2**62)
    quiet = policy_pb.ContactPolicy(
        quiet_hours=[policy_pb.QuietHours(start_minute=22 * 60, end_minute=8 * 60)]
    )
    updated = set_policy(stub, tenant, quiet, "quiet_hours")  # was refused, naming the caps it did not write
    assert updated.frequency_caps[0].window == Duration(seconds=LIMIT)
    assert len(updated.quiet_hours) == 1

    # A new window over the limit is refused, as any write of the caps is.
    longer = policy_pb.ContactPolicy(frequency_caps=[cap(1, days(367), EMAIL)])
    request = pb.UpdateContactPolicyRequest(
        contact_policy=longer, update_mask=FieldMask(paths=["frequency_caps"])
    )
    with pytest.raises(grpc.RpcError) as refused:
        stub.UpdateContactPolicy(request, metadata=tenant, timeout=10)
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert set(violations(refused.value)) == {"contact_policy.frequency_caps[0].window"}


def test_a_stored_window_over_366_days_is_logged_once_per_policy(
    running: Running, stub: Stub, tenant: Auth
) -> None:
    _store_policy(running, tenant, 400 * DAY)
    person = f"p-{uuid.uuid4().hex[:8]}"
    with capture_logs() as logged:
        for _ in range(3):
            check(stub, tenant, person, NOW, (EMAIL, MARKETING))
            record(stub, tenant, person, NOW, enforce=True)
        stub.GetContactPolicy(pb.GetContactPolicyRequest(), metadata=tenant, timeout=10)
    name = dict(tenant)["x-wayline-tenant"]
    warnings = [
        entry
        for entry in logged
        if entry["event"] == "orchestrator.contacts.cap_window_over_limit" and entry.get("tenant") == name
    ]
    assert len(warnings) == 1
    assert warnings[0]["log_level"] == "warning"
    assert warnings[0]["caps"] == {"frequency_caps[0]": "400 days"}
    assert warnings[0]["counted_as"] == "366 days"
