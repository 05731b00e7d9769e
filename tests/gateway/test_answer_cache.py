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


class Gone(Exception):
    """What the bridge's `gone` accepts: the thing asked for is no longer there (NOT_FOUND, ...)."""


def _raise(error: Exception) -> bytes:
    raise error


def test_a_new_computation_saying_gone_drops_the_kept_answer() -> None:
    cache = AnswerCache(1 << 20, refresh_after=60)
    cache.compute(key("a"), lambda: b"profile")
    cache.compute(key("b"), lambda: b"other")
    with pytest.raises(RuntimeError):  # an outage says nothing about the answer: it stays
        cache.compute(key("a"), lambda: _raise(RuntimeError("down")), gone=lambda e: isinstance(e, Gone))
    assert cache.lookup(key("a"), 600) is not None
    with pytest.raises(Gone):
        cache.compute(key("a"), lambda: _raise(Gone()), gone=lambda e: isinstance(e, Gone))
    assert cache.lookup(key("a"), 600) is None
    assert cache.lookup(key("b"), 600) is not None
    assert cache.size_bytes == len(b"other") + len(b"b")


def test_forgetting_a_tenant_drops_its_answers_only() -> None:
    cache = AnswerCache(1 << 20, refresh_after=60)
    other = ("tenant-b", key("a")[1], key("a")[2])
    cache.compute(key("a"), lambda: b"erased person")
    cache.compute(other, lambda: b"kept")
    assert cache.tenants() == {"tenant-a", "tenant-b"}
    cache.forget_tenant("tenant-a")
    assert cache.lookup(key("a"), 600) is None
    assert cache.lookup(other, 600) is not None
    assert cache.tenants() == {"tenant-b"}
    assert cache.size_bytes == len(b"kept") + len(key("a")[2])
    cache.compute(key("a"), lambda: b"new")  # later answers are kept again
    held = cache.lookup(key("a"), 600)
    assert held is not None
    assert held.answer == b"new"


def test_an_answer_read_before_the_tenant_was_forgotten_is_neither_kept_nor_shared() -> None:
    """The erasure commits while a computation is on its way back: its caller gets it (they asked before),
    but it is not kept, and a caller arriving after the erasure computes anew instead of joining it."""
    cache = AnswerCache(1 << 20, refresh_after=60)
    started, release = threading.Event(), threading.Event()

    def before_the_erasure() -> bytes:
        started.set()
        assert release.wait(5)
        return b"erased person"

    answers: list[bytes] = []
    first = threading.Thread(
        target=lambda: answers.append(cache.compute(key("a"), before_the_erasure).answer)
    )
    first.start()
    assert started.wait(5)
    cache.forget_tenant("tenant-a")
    after = cache.compute(key("a"), lambda: b"gone")  # does not wait for the computation under way
    assert after.answer == b"gone"
    release.set()
    first.join(5)
    assert answers == [b"erased person"]
    held = cache.lookup(key("a"), 600)
    assert held is not None
    assert held.answer == b"gone"  # the older computation, finishing last, did not replace it
    assert not cache.refreshing(key("a"))


def test_an_answer_finished_after_its_tenant_was_forgotten_is_not_kept() -> None:
    cache = AnswerCache(1 << 20, refresh_after=60)

    def erased_meanwhile() -> bytes:
        cache.forget_tenant("tenant-a")  # the erasure commits while the read is on its way back
        return b"erased person"

    assert cache.compute(key("a"), erased_meanwhile).answer == b"erased person"
    assert cache.lookup(key("a"), 600) is None
    assert cache.size_bytes == 0


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("", None),
        ("no-cache", None),
        ("max-stale=600", 600.0),
        ("no-transform, max-stale=30", 30.0),
        ("max-stale", float("inf")),
        ("max-stale=abc", None),
        ("max-stale=\u00b2", None),  # `str.isdigit`, but no number
        ("MAX-STALE=5", 5.0),
    ],
)
def test_the_accepted_age_is_read_from_cache_control(header: str, seconds: float | None) -> None:
    assert max_stale(header) == seconds
