"""The gateway's cache of read answers: ages, memory bound, one computation per key at a time."""

from __future__ import annotations

import threading
import time

import pytest

from wayline_gateway.http.answer_cache import AnswerCache, max_stale


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def key(name: str) -> tuple[str, str, bytes]:
    return ("tenant-a", "/wayline.journeys.v1.JourneyService/QueryPaths", name.encode())


def test_an_answer_is_served_only_within_the_age_the_caller_accepts() -> None:
    clock = Clock()
    cache = AnswerCache(1 << 20, refresh_after=60, clock=clock, wall_clock=lambda: 5.0)
    assert cache.lookup(key("a"), 600) is None
    computed = cache.compute(key("a"), lambda: b"answer")
    assert (computed.answer, computed.age, computed.computed_at) == (b"answer", 0.0, 5.0)
    clock.now += 90
    held = cache.lookup(key("a"), 600)
    assert held is not None
    assert (held.answer, held.age) == (b"answer", 90)
    assert cache.needs_refresh(held)
    assert cache.lookup(key("a"), 89) is None
    assert cache.lookup(("tenant-b", key("a")[1], key("a")[2]), 600) is None  # another tenant's key


def test_a_young_answer_needs_no_refresh() -> None:
    clock = Clock()
    cache = AnswerCache(1 << 20, refresh_after=60, clock=clock)
    cache.compute(key("a"), lambda: b"x")
    clock.now += 59
    held = cache.lookup(key("a"), 600)
    assert held is not None
    assert not cache.needs_refresh(held)


def test_memory_stays_bounded_and_the_least_recently_used_goes_first() -> None:
    cache = AnswerCache(300, refresh_after=60)
    for name in ("a", "b"):
        cache.compute(key(name), lambda: b"x" * 100)
    assert cache.lookup(key("a"), 10) is not None  # a is now the most recently used
    cache.compute(key("c"), lambda: b"x" * 100)
    assert cache.lookup(key("b"), 10) is None
    assert cache.lookup(key("a"), 10) is not None
    assert cache.lookup(key("c"), 10) is not None
    assert cache.size_bytes <= 300
    huge = cache.compute(key("huge"), lambda: b"x" * 1000)
    assert huge.answer == b"x" * 1000  # answered, never kept
    assert cache.lookup(key("huge"), 10) is None
    assert cache.lookup(key("a"), 10) is not None


def test_identical_requests_that_miss_start_one_computation() -> None:
    cache = AnswerCache(1 << 20, refresh_after=60)
    started, release = threading.Event(), threading.Event()
    runs: list[int] = []

    def slow() -> bytes:
        runs.append(1)
        started.set()
        release.wait(5)
        return b"answer"

    answers: list[bytes] = []
    first = threading.Thread(target=lambda: answers.append(cache.compute(key("a"), slow).answer))
    first.start()
    started.wait(5)
    assert cache.refreshing(key("a"))
    second = threading.Thread(target=lambda: answers.append(cache.compute(key("a"), slow).answer))
    second.start()
    time.sleep(0.05)
    release.set()
    first.join(5)
    second.join(5)
    assert answers == [b"answer", b"answer"]
    assert len(runs) == 1
    assert not cache.refreshing(key("a"))


def test_a_failed_computation_is_shared_and_not_kept() -> None:
    cache = AnswerCache(1 << 20, refresh_after=60)
    with pytest.raises(RuntimeError, match="backend down"):
        cache.compute(key("a"), lambda: (_ for _ in ()).throw(RuntimeError("backend down")))
    assert cache.lookup(key("a"), 600) is None
    assert not cache.refreshing(key("a"))
    assert cache.compute(key("a"), lambda: b"ok").answer == b"ok"


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("", None),
        ("no-cache", None),
        ("max-stale=600", 600.0),
        ("no-transform, max-stale=30", 30.0),
        ("max-stale", float("inf")),
        ("max-stale=abc", None),
        ("MAX-STALE=5", 5.0),
    ],
)
def test_the_accepted_age_is_read_from_cache_control(header: str, seconds: float | None) -> None:
    assert max_stale(header) == seconds
