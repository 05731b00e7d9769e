"""The kit's quotas: the event-pacing header the gateway's data plane passes with a stream, and the pacing
ingest does to it (ADR 106), on a clock the test moves by hand."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.gateway.clock import FakeClock
from wayline.common.errors import ResourceExhausted
from wayline.common.quotas import (
    EventLimit,
    EventPacer,
    EventPacing,
    format_event_pacing,
    parse_event_pacing,
)

QUOTA = "tenants/acme/quota"
KEY_QUOTA = "tenants/acme/apiKeys/k1/quota"

positive = st.floats(min_value=1e-3, max_value=1e9, allow_nan=False, allow_infinity=False)
quota_names = st.from_regex(r"tenants/[a-z0-9-]{1,12}(/apiKeys/[a-z0-9]{1,8})?/quota", fullmatch=True)


@given(
    st.floats(min_value=0, max_value=3600, allow_nan=False),
    st.lists(st.builds(EventLimit, quota_names, positive, positive), max_size=2),
)
def test_the_header_reads_back_what_was_written(max_wait: float, limits: list[EventLimit]) -> None:
    pacing = EventPacing(max_wait, tuple(limits))
    assert parse_event_pacing(format_event_pacing(pacing)) == pacing


def test_the_data_planes_rendering_is_read() -> None:
    """What wayline_edge.lua writes (`%.17g` numbers, the key's quota then the tenant's)."""
    read = parse_event_pacing(f"5 {KEY_QUOTA} 0.001 3 {QUOTA} 1000 5000")
    assert read == EventPacing(5.0, (EventLimit(KEY_QUOTA, 0.001, 3.0), EventLimit(QUOTA, 1000.0, 5000.0)))


@pytest.mark.parametrize(
    "value",
    [
        "",
        "five",
        f"5 {QUOTA} 10",  # a limit without its burst
        f"5 {QUOTA} ten 3",
        f"5 {QUOTA} 0 3",  # a rate of nothing would wait for ever
        f"5 {QUOTA} 10 -1",
        f"5 {QUOTA} inf 3",  # unlimited is said by leaving the quota out
        f"nan {QUOTA} 10 3",
        f"-1 {QUOTA} 10 3",
    ],
)
def test_a_header_not_in_the_format_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match=r"\S"):
        parse_event_pacing(value)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def pacer(clock: FakeClock) -> EventPacer:
    return EventPacer(clock=clock.now, sleep=clock.sleep)


def test_a_stream_passes_its_burst_then_waits_for_each_message_at_the_rate(
    pacer: EventPacer, clock: FakeClock
) -> None:
    pacing = EventPacing(5.0, (EventLimit(QUOTA, 100.0, 50.0),))
    pacer.open(pacing)
    started = clock.now()
    pacer.charge(pacing, 50)
    assert clock.now() == started  # the burst: no wait
    pacer.charge(pacing, 20)
    assert clock.now() - started == pytest.approx(0.2)  # 20 events at 100 a second
    pacer.charge(pacing, 100)  # bigger than the burst: waits for a full bucket, then debt
    assert clock.now() - started == pytest.approx(0.7)
    pacer.charge(pacing, 10)  # the debt of 50 and these 10
    assert clock.now() - started == pytest.approx(1.3)


def test_a_message_that_would_wait_too_long_is_refused_with_the_slowest_quota(
    pacer: EventPacer, clock: FakeClock
) -> None:
    pacing = EventPacing(0.5, (EventLimit(KEY_QUOTA, 10.0, 10.0), EventLimit(QUOTA, 1000.0, 1000.0)))
    pacer.open(pacing)
    pacer.charge(pacing, 10)
    before = clock.now()
    with pytest.raises(ResourceExhausted) as refused:
        pacer.charge(pacing, 10)  # the key's bucket needs a second
    assert clock.now() == before  # refused at once, not after waiting what it could
    assert refused.value.quota_subject == KEY_QUOTA
    assert refused.value.metadata == {"quota": KEY_QUOTA, "limit": "events_per_second"}
    assert refused.value.retry_after == pytest.approx(1.0)
    clock.advance(1.0)
    pacer.charge(pacing, 10)  # nothing was taken by the refusal


def test_streams_of_one_quota_share_its_bucket_and_take_its_newest_limits(
    pacer: EventPacer, clock: FakeClock
) -> None:
    first = EventPacing(5.0, (EventLimit(QUOTA, 10.0, 10.0),))
    other_tenant = EventPacing(5.0, (EventLimit("tenants/globex/quota", 10.0, 10.0),))
    pacer.open(first)
    pacer.open(other_tenant)
    pacer.charge(first, 10)
    pacer.charge(other_tenant, 10)  # another tenant's bucket: no wait
    assert clock.now() == 1000.0
    second = EventPacing(5.0, (EventLimit(QUOTA, 100.0, 10.0),))  # the limit was raised
    pacer.open(second)
    pacer.charge(second, 10)  # the first stream emptied the bucket; it refills at 100/s now
    assert clock.now() == pytest.approx(1000.1)
    pacer.charge(first, 10)  # the first stream pays into the same bucket, at its new rate
    assert clock.now() == pytest.approx(1000.2)


def test_a_bucket_left_full_and_unused_is_forgotten_and_one_in_use_is_kept(clock: FakeClock) -> None:
    pacer = EventPacer(clock=clock.now, sleep=clock.sleep, forget_after=60.0)
    idle = EventPacing(5.0, (EventLimit("tenants/idle/quota", 10.0, 10.0),))
    busy = EventPacing(5.0, (EventLimit(QUOTA, 10.0, 10.0),))
    pacer.open(idle)
    pacer.open(busy)
    pacer.charge(idle, 10)
    clock.advance(30.0)
    pacer.charge(busy, 10)  # busy's bucket is empty now; idle's refilled long ago
    clock.advance(31.0)
    pacer.charge(busy, 0)  # the sweep: idle's full and unasked for 61 s, busy's asked for just now
    assert len(pacer) == 1
    pacer.open(idle)  # a stream of the forgotten quota finds a full bucket, as it would have
    pacer.charge(idle, 10)
    assert clock.now() == 1061.0
    pacer.charge(busy, 10)  # busy's bucket kept what it held: 10 refilled in 31 s
    assert clock.now() == 1061.0
    pacer.charge(busy, 10)  # and nothing more: it waits a second, the bucket kept, not replaced by a full one
    assert clock.now() == pytest.approx(1062.0)


def test_a_stream_without_limits_is_not_paced(pacer: EventPacer, clock: FakeClock) -> None:
    pacer.charge(EventPacing(0.0, ()), 10**6)
    assert clock.now() == 1000.0
