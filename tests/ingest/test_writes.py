"""Ingest's writes to journeys: big batches in several calls under the message limit."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tests.events import make_event
from wayline_ingest.servicer import _chunks


@given(sizes=st.lists(st.integers(min_value=0, max_value=3000), max_size=40), limit=st.integers(1024, 8192))
def test_writes_are_chunked_in_order_under_the_limit(sizes: list[int], limit: int) -> None:
    events = []
    for i, size in enumerate(sizes):
        event = make_event(f"u{i}")
        event.text = "x" * size
        events.append(event)
    chunks = _chunks(events, limit)
    assert [e for chunk in chunks for e in chunk] == events  # every event once, in order
    for chunk in chunks:
        assert len(chunk) == 1 or sum(e.ByteSize() + 8 for e in chunk) <= limit
