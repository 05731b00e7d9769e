"""Quotas on a hand-driven clock: token buckets per key and per tenant, inheritance, concurrency, pacing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.gateway.clock import FakeClock
from wayline.common.errors import ResourceExhausted
from wayline.common.quotas import TokenBucket
from wayline_gateway.admission import count_field
from wayline_gateway.model import Limits
from wayline_gateway.quotas import QuotaGate

DEFAULTS = Limits(
    requests_per_second=10.0,
    requests_burst=5,
    events_per_second=100.0,
    events_burst=200,
    max_concurrent_requests=3,
)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def gate(clock: FakeClock) -> QuotaGate:
    return QuotaGate(DEFAULTS, clock=clock.now, sleep=clock.sleep)


def admit_times(gate: QuotaGate, tenant: str, key: str = "", events: int = 0) -> int:
    """How many calls in a row pass before the first refusal (at most 1,000)."""
    for passed in range(1000):
        try:
            with gate.admit(tenant, key, events):
                pass
        except ResourceExhausted:
            return passed
    return 1000


def test_a_bucket_refills_at_its_rate_up_to_its_size() -> None:
    bucket = TokenBucket(rate=2.0, size=4.0, now=0.0)
    bucket.take(4)
    assert bucket.wait_for(1, now=0.0) == pytest.approx(0.5)
    assert bucket.wait_for(1, now=0.5) == 0.0
    assert bucket.wait_for(4, now=100.0) == 0.0  # refilled, but never above its size
    bucket.take(4)
    assert bucket.wait_for(1, now=100.0) == pytest.approx(0.5)


def test_calls_pass_up_to_the_burst_then_at_the_rate(gate: QuotaGate, clock: FakeClock) -> None:
    assert admit_times(gate, "acme") == 5
    with pytest.raises(ResourceExhausted) as refused, gate.admit("acme", ""):
        pass
    assert refused.value.quota_subject == "tenants/acme/quota"
    assert refused.value.metadata["limit"] == "requests_per_second"
    assert refused.value.retry_after == pytest.approx(0.1)
    clock.advance(0.1)
    assert admit_times(gate, "acme") == 1
    clock.advance(1.0)  # ten more tokens, but the bucket holds five
    assert admit_times(gate, "acme") == 5


def test_one_tenant_over_its_quota_does_not_slow_another(gate: QuotaGate) -> None:
    assert admit_times(gate, "acme") == 5
    assert admit_times(gate, "globex") == 5


def test_a_key_passes_its_own_limits_and_its_tenants(gate: QuotaGate) -> None:
    gate.refresh({("acme", "k1"): Limits(requests_burst=2), ("acme", ""): Limits(requests_burst=3)})
    assert admit_times(gate, "acme", "k1") == 2  # the key's burst
    with pytest.raises(ResourceExhausted) as refused, gate.admit("acme", "k1"):
        pass
    assert refused.value.quota_subject == "tenants/acme/apiKeys/k1/quota"
    assert admit_times(gate, "acme", "k2") == 1  # the tenant's burst of 3, two already spent by k1
    with pytest.raises(ResourceExhausted) as refused, gate.admit("acme", "k2"):
        pass
    assert refused.value.quota_subject == "tenants/acme/quota"


def test_a_refused_call_takes_nothing_from_the_other_bucket(gate: QuotaGate, clock: FakeClock) -> None:
    gate.refresh({("acme", "k1"): Limits(requests_burst=1), ("acme", ""): Limits(requests_burst=2)})
    assert admit_times(gate, "acme", "k1") == 1
    assert admit_times(gate, "acme", "k1") == 0  # refused by the key: the tenant's second token is kept
    assert admit_times(gate, "acme", "k2") == 1


def test_limits_are_inherited_key_from_tenant_from_defaults(gate: QuotaGate) -> None:
    gate.refresh({("acme", ""): Limits(events_per_second=50.0), ("acme", "k1"): Limits(requests_burst=1)})
    assert gate.limits("acme") == Limits(10.0, 5, 50.0, 200, 3)
    assert gate.limits("acme", "k1") == Limits(10.0, 1, 50.0, 200, 3)
    assert gate.limits("globex", "k9") == DEFAULTS


def test_a_batch_costs_one_token_per_event(gate: QuotaGate, clock: FakeClock) -> None:
    with gate.admit("acme", "", events=150):
        pass
    with pytest.raises(ResourceExhausted) as refused, gate.admit("acme", "", events=100):  # 50 left
        pass
    assert refused.value.metadata["limit"] == "events_per_second"
    assert refused.value.retry_after == pytest.approx(0.5)  # 50 more events at 100/s
    clock.advance(0.5)
    with gate.admit("acme", "", events=100):
        pass


def test_a_batch_above_the_burst_passes_a_full_bucket_and_leaves_it_in_debt(
    gate: QuotaGate, clock: FakeClock
) -> None:
    gate.refresh({("acme", ""): Limits(requests_burst=100)})
    with gate.admit("acme", "", events=500):  # burst 200: refused for ever otherwise
        pass
    clock.advance(2.0)  # 200 of the 300 owed repaid: still in debt
    assert admit_times(gate, "acme", events=1) == 0
    clock.advance(1.0625)  # debt repaid, and 6.25 events earned (a fraction exact in binary)
    assert admit_times(gate, "acme", events=1) == 6


def test_concurrency_counts_calls_in_progress_and_frees_their_place(
    gate: QuotaGate, clock: FakeClock
) -> None:
    gate.refresh({("acme", ""): Limits(requests_burst=100, requests_per_second=100.0)})
    with gate.admit("acme", ""), gate.admit("acme", ""), gate.admit("acme", ""):
        with pytest.raises(ResourceExhausted) as refused, gate.admit("acme", ""):
            pass
        assert refused.value.metadata["limit"] == "max_concurrent_requests"
        assert refused.value.retry_after is not None
        with gate.admit("globex", ""):  # another tenant is not held up
            pass
    with gate.admit("acme", ""):
        pass


def test_a_place_is_freed_when_the_call_fails(gate: QuotaGate) -> None:
    for _ in range(DEFAULTS.max_concurrent_requests or 0):
        with pytest.raises(RuntimeError), gate.admit("acme", ""):
            raise RuntimeError("the backend failed")
    with gate.admit("acme", ""):  # every place was given back
        pass


def test_a_stream_is_paced_to_its_quota_then_refused_past_the_wait(gate: QuotaGate, clock: FakeClock) -> None:
    gate.charge_events("acme", "", 200, max_wait=5.0)
    started = clock.now()
    gate.charge_events("acme", "", 100, max_wait=5.0)  # waits a second for 100 events at 100/s
    assert clock.now() - started == pytest.approx(1.0)
    with pytest.raises(ResourceExhausted):
        gate.charge_events("acme", "", 200, max_wait=0.5)


def test_lowered_limits_apply_to_buckets_already_made(gate: QuotaGate) -> None:
    assert admit_times(gate, "acme") == 5
    gate.refresh({("acme", ""): Limits(requests_burst=1, requests_per_second=1.0)})
    assert gate.limits("acme").requests_burst == 1
    assert admit_times(gate, "acme") == 0


def test_idle_subjects_are_forgotten_at_a_refresh_and_come_back_full(
    gate: QuotaGate, clock: FakeClock
) -> None:
    assert admit_times(gate, "acme", "key-1") == 5
    with gate.admit("globex", ""):
        gate.refresh({})
        assert len(gate) == 3  # acme's key and acme still refilling; globex has a call in flight
    clock.advance(0.3)  # acme's buckets hold 3 of 5
    gate.refresh({})
    assert len(gate) == 2  # globex's call ended with its buckets refilled: forgotten
    clock.advance(0.2)
    gate.refresh({})
    assert len(gate) == 0  # full again: a subject made now would be the same
    assert admit_times(gate, "acme", "key-1") == 5  # made again, full


def _field(number: int, payload: bytes) -> bytes:
    return bytes([number << 3 | 2, len(payload)]) + payload


def test_events_are_counted_on_the_wire_without_parsing_them() -> None:
    batch = _field(1, b"event-a") + _field(1, b"event-b") + bytes([2 << 3, 1]) + _field(1, b"")
    assert count_field(batch, 1) == 3
    # Field 2 as a varint is no message: the service's parser keeps it as an unknown field, not an event.
    assert count_field(batch, 2) == 0
    assert count_field(batch + _field(2, b"x"), 2) == 1
    assert count_field(b"", 1) == 0
    assert count_field(b"\x0a\x7f", 1) == 1  # torn: what could be read; the backend refuses the message
    assert count_field(b"\x0a", 1) == 0  # a tag without its length: nothing to count (as nginx's Lua)


_WIRE_FIELDS = st.lists(
    st.tuples(
        st.integers(1, 40),
        st.sampled_from([0, 1, 2, 5]),
        st.one_of(st.integers(0, 2**64 - 1), st.binary(max_size=300)),
    ),
    max_size=60,
)


def _wire(number: int, wire_type: int, value: int | bytes) -> bytes:
    def varint(n: int) -> bytes:
        out = bytearray()
        while n >= 0x80:
            out.append(n & 0x7F | 0x80)
            n >>= 7
        return bytes(out) + bytes([n])

    tag = varint(number << 3 | wire_type)
    if wire_type == 0:
        return tag + varint(value if isinstance(value, int) else len(value))
    if wire_type in {1, 5}:
        return tag + bytes(8 if wire_type == 1 else 4)
    payload = value if isinstance(value, bytes) else b"v" * (value % 300)
    return tag + varint(len(payload)) + payload


@given(fields=_WIRE_FIELDS, counted=st.integers(1, 40), cut=st.integers(0, 100))
def test_the_count_is_the_length_delimited_occurrences_whole_or_torn(
    fields: list[tuple[int, int, int | bytes]], counted: int, cut: int
) -> None:
    """Whole messages are counted by protobuf's parser, torn ones by the walk; both count exactly the
    field's length-delimited occurrences, and a torn message no more than its whole one."""
    whole = b"".join(_wire(*field) for field in fields)
    expected = sum(1 for number, wire_type, _ in fields if number == counted and wire_type == 2)
    assert count_field(whole, counted) == expected
    assert count_field(whole[: len(whole) * cut // 100], counted) <= expected


def test_a_short_call_is_charged_a_request_without_holding_a_place(gate: QuotaGate, clock: FakeClock) -> None:
    for _ in range(5):
        gate.charge_request("acme", "k1")
    with pytest.raises(ResourceExhausted) as refused:
        gate.charge_request("acme", "k1")
    assert refused.value.metadata["limit"] == "requests_per_second"
    assert admit_times(gate, "acme") == 0  # the tenant's bucket paid for the key's calls too
    clock.advance(0.1)
    gate.charge_request("acme", "k2")
