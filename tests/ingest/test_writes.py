"""The forwarder's writes to a sink: big runs of events in several calls under the message limit."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tests.events import make_event
from wayline_ingest.forwarder import MAX_WRITE_EVENTS, chunks
from wayline_ingest.sinks.grpc import events_request


@given(
    sizes=st.lists(st.integers(min_value=0, max_value=3000), max_size=40),
    limit=st.integers(1024, 8192),
    most=st.integers(1, 8),
)
def test_writes_are_chunked_in_order_under_the_limits(sizes: list[int], limit: int, most: int) -> None:
    events = []
    for i, size in enumerate(sizes):
        event = make_event(f"u{i}")
        event.text = "x" * size
        events.append(event.SerializeToString())
    runs = chunks(events, limit, most)
    assert [e for run in runs for e in run] == events  # every event once, in order
    for run in runs:
        assert len(run) == 1 or len(events_request(run)) <= limit
        assert len(run) <= most


def test_a_full_write_of_small_events_goes_in_calls_the_sinks_take() -> None:
    """WriteEvents and both ObserveEvents take at most 10,000 events a call: 1 MiB of 60-byte events holds
    more, and a sink would refuse the whole call (INVALID_ARGUMENT) and the events would be parked."""
    events = [b"e" * 54] * 25_000  # what a small serialised event weighs
    runs = chunks(events, 1 << 20)
    assert [len(run) for run in runs] == [MAX_WRITE_EVENTS, MAX_WRITE_EVENTS, 5_000]
