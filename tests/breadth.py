"""How widely the generated-data tests look: the seeds of the tests that compare a read model or a state with
its reference, and the examples of the hypothesis tests.

CI runs each at a sample (its fixed seeds; the examples each test names, for the "wayline" profile's 100).
`make test-deep` asks for more: WAYLINE_TEST_EXTRA_SEEDS more seeds for every seeded test, and the
"wayline-deep" hypothesis profile, by whose max_examples `examples` scales every test's own count. A wider run
finds the rare cases a sample misses (on 2026-12-06: a quiet-hours retry inside the next period, a flow's
local-time wait an hour late, a funnel's tie order). WAYLINE_TEST_FIRST_SEED (10,000 or more) starts the extra
seeds elsewhere, so a second wide run is not the first one again.
"""

from __future__ import annotations

import os

from hypothesis import settings

__all__ = ["examples", "extra", "seeds"]

_EXTRA_SEEDS = int(os.environ.get("WAYLINE_TEST_EXTRA_SEEDS") or 0)
# Above every fixed seed; WAYLINE_TEST_FIRST_SEED moves the extra seeds, so a wide run can look at new ones.
_FIRST_EXTRA = max(10_000, int(os.environ.get("WAYLINE_TEST_FIRST_SEED") or 0))
# The "wayline" profile's max_examples (hypothesis' default), for which the tests' counts are written.
_PROFILE_BASE = 100


def seeds(*fixed: int) -> list[int]:
    """`fixed`, then the extra seeds the run asks for."""
    return [*fixed, *range(_FIRST_EXTRA, _FIRST_EXTRA + _EXTRA_SEEDS)]


def extra(seed: int) -> bool:
    """Whether `seed` is an extra one. A test checks that its fixed seeds draw the case it is about (a path
    for every variant, a membership that changes); an extra seed may draw a case without it: no failure."""
    return seed >= _FIRST_EXTRA


def examples(count: int) -> int:
    """A hypothesis test's examples: `count` under the "wayline" profile, as many times more as the loaded
    profile asks (50 times under "wayline-deep")."""
    return max(1, count * settings().max_examples // _PROFILE_BASE)
