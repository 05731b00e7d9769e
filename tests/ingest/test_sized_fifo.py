"""SizedFifo: the newest entries within a byte budget and a count, the oldest evicted first."""

from __future__ import annotations

from wayline_ingest.sized_fifo import SizedFifo


def test_evict_drops_the_oldest_until_the_bytes_fit() -> None:
    fifo: SizedFifo[int, str] = SizedFifo(max_bytes=10)
    for key in range(4):
        fifo.put(key, f"v{key}", 4)
    fifo.evict()
    assert [fifo.get(key) for key in range(4)] == [None, None, "v2", "v3"]


def test_evict_keeps_within_the_count() -> None:
    fifo: SizedFifo[int, str] = SizedFifo(max_bytes=1000, max_entries=2)
    for key in range(3):
        fifo.put(key, f"v{key}", 1)
    fifo.evict()
    assert [fifo.get(key) for key in range(3)] == [None, "v1", "v2"]


def test_putting_a_key_again_replaces_it_in_its_old_place() -> None:
    fifo: SizedFifo[str, int] = SizedFifo(max_bytes=10)
    fifo.put("a", 1, 4)
    fifo.put("b", 2, 4)
    fifo.put("a", 3, 2)  # still the oldest, now 2 bytes: 6 in all
    fifo.evict()
    assert (fifo.get("a"), fifo.get("b")) == (3, 2)
    fifo.put("c", 4, 4)  # 10 in all: fits
    fifo.evict()
    assert (fifo.get("a"), fifo.get("b"), fifo.get("c")) == (3, 2, 4)
    fifo.put("d", 5, 1)  # 11: the oldest, "a", goes first
    fifo.evict()
    assert (fifo.get("a"), fifo.get("b"), fifo.get("d")) == (None, 2, 5)


def test_an_entry_larger_than_the_budget_is_not_kept() -> None:
    fifo: SizedFifo[int, str] = SizedFifo(max_bytes=10)
    fifo.put(1, "huge", 50)
    fifo.evict()
    assert fifo.get(1) is None


def test_keep_newest_keeps_the_last_entry_even_when_it_alone_passes_the_budget() -> None:
    fifo: SizedFifo[int, str] = SizedFifo(max_bytes=10, keep_newest=True)
    fifo.put(1, "small", 3)
    fifo.put(2, "huge", 50)
    fifo.evict()
    assert (fifo.get(1), fifo.get(2)) == (None, "huge")
    fifo.put(3, "next", 3)  # the huge one is now the oldest, and goes
    fifo.evict()
    assert (fifo.get(2), fifo.get(3)) == (None, "next")
