"""Attempts with exponential backoff and full jitter (AWS's "Exponential Backoff And Jitter"): the n-th
retry waits a uniform random time in [0, min(max_backoff, initial_backoff * 2^(n-1))], or the receiver's
Retry-After (capped by max_backoff) when it gave one. Only transient failures are retried."""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from wayline_orchestrator.connectors.model import Attempt, Outcome, RetryPolicy, Status

__all__ = ["backoff", "next_wait", "with_retries"]


def backoff(policy: RetryPolicy, retry: int, rng: random.Random | None = None) -> float:
    """The wait before retry number `retry` (1 for the first retry), in seconds."""
    ceiling = min(policy.max_backoff, policy.initial_backoff * 2 ** (retry - 1))
    return (rng or random).uniform(0.0, ceiling)


def next_wait(
    policy: RetryPolicy, retry: int, retry_after: float | None, rng: random.Random | None = None
) -> float:
    """The wait before retry number `retry`: the receiver's Retry-After capped by max_backoff when it gave
    one, else the jittered backoff."""
    if retry_after is not None:
        return min(max(retry_after, 0.0), policy.max_backoff)
    return backoff(policy, retry, rng)


def with_retries(
    attempt: Callable[[int], Attempt],
    policy: RetryPolicy,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
) -> Outcome:
    """Call `attempt(n)` (n from 1) until it delivers, fails permanently, or the attempts run out."""
    started = time.monotonic()
    n = 0
    while True:
        n += 1
        result = attempt(n)
        if result.status is not Status.TRANSIENT or n >= policy.max_attempts:
            return Outcome(
                status=result.status,
                attempts=n,
                response_code=result.response_code,
                error=result.error,
                duration=time.monotonic() - started,
            )
        sleep(next_wait(policy, n, result.retry_after, rng))
