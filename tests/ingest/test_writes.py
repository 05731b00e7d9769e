"""The forwarder's writes to a sink: big runs of events in several calls under the message limit."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tests.events import make_event
from wayline_ingest.forwarder import chunks
from wayline_ingest.sinks.grpc import events_request


@given(sizes=st.lists(st.integers(min_value=0, max_value=3000), max_size=40), limit=st.integers(1024, 8192))
def test_writes_are_chunked_in_order_under_the_limit(sizes: list[int], limit: int) -> None:
    events = []
    for i, size in enumerate(sizes):
        event = make_event(f"u{i}")
        event.text = "x" * size
        events.append(event.SerializeToString())
    runs = chunks(events, limit)
    assert [e for run in runs for e in run] == events  # every event once, in order
    for run in runs:
        assert len(run) == 1 or len(events_request(run)) <= limit
