"""How identity cuts a backlog of erasures into store calls (erasers.py): every person once, in order, at most
`limit` a call, an erasure's identifiers with its first person only, and each erasure's deleted count the sum
of its persons' counts, even when its persons span calls."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wayline_identity.erasers import BATCH_LIMIT, PersonRequest, counts_per_erasure, plan_calls
from wayline_identity.erasure import ErasureWork


def _work(prefix: str, persons: int, *identifiers: tuple[str, str]) -> ErasureWork:
    return ErasureWork(tuple(f"{prefix}-{i}" for i in range(persons)), identifiers)


def test_an_erasure_larger_than_a_call_spans_calls_and_its_count_is_the_sum() -> None:
    small = _work("a", 3, ("user_id", "a"))
    large = _work("b", 2 * BATCH_LIMIT + 10, ("email", "b@x.y"), ("user_id", "b"))
    last = _work("c", 1, ("user_id", "c"))

    calls = plan_calls([small, large, last], BATCH_LIMIT)

    assert [len(call) for call in calls] == [BATCH_LIMIT, BATCH_LIMIT, 14]
    # The large erasure starts in the first call, fills the second and ends in the third, before `last`.
    assert [r.erasure for r in calls[0][:4]] == [0, 0, 0, 1]
    assert {r.erasure for r in calls[1]} == {1}
    assert [r.erasure for r in calls[2][-2:]] == [1, 2]
    flat = [r for call in calls for r in call]
    assert [r.person_id for r in flat] == [*small.person_ids, *large.person_ids, *last.person_ids]
    # Identifiers only with each erasure's first person.
    assert [(r.person_id, r.identifiers) for r in flat if r.identifiers] == [
        ("a-0", (("user_id", "a"),)),
        ("b-0", (("email", "b@x.y"), ("user_id", "b"))),
        ("c-0", (("user_id", "c"),)),
    ]

    # Each call answers one count per person, in its order (here: the person's position in the plan, mod 7).
    counts = [n % 7 for n in range(len(flat))]
    answers = [counts[:BATCH_LIMIT], counts[BATCH_LIMIT : 2 * BATCH_LIMIT], counts[2 * BATCH_LIMIT :]]
    totals = counts_per_erasure(3, calls, answers)

    assert totals == [sum(counts[:3]), sum(counts[3 : 3 + len(large.person_ids)]), counts[-1]]


def test_no_person_means_no_call() -> None:
    """A store refuses an empty batch; an erasure without persons deletes nothing there."""
    assert plan_calls([], BATCH_LIMIT) == []
    assert plan_calls([ErasureWork((), (("user_id", "u"),))], BATCH_LIMIT) == []
    assert counts_per_erasure(1, [], []) == [0]


def test_counts_that_do_not_match_the_requests_are_refused() -> None:
    """A store that answered fewer (or more) counts than it was asked did not confirm every person."""
    calls = plan_calls([_work("a", 2), _work("b", 1)], 2)

    with pytest.raises(ValueError, match="1 counts for 2 persons"):
        counts_per_erasure(2, calls, [[1], [1]])
    with pytest.raises(ValueError, match="1 answers for 2 calls"):
        counts_per_erasure(2, calls, [[1, 1]])


@given(
    persons=st.lists(st.integers(min_value=0, max_value=30), max_size=12),
    limit=st.integers(min_value=1, max_value=25),
)
def test_every_person_once_in_order_and_counts_map_back(persons: list[int], limit: int) -> None:
    works = [_work(f"e{i}", n, ("user_id", f"u{i}")) for i, n in enumerate(persons)]

    calls = plan_calls(works, limit)

    assert all(0 < len(call) <= limit for call in calls)
    flat = [r for call in calls for r in call]
    assert flat == [
        PersonRequest(i, person, work.identifiers if j == 0 else ())
        for i, work in enumerate(works)
        for j, person in enumerate(work.person_ids)
    ]
    # Every person deletes one event: each erasure's count is its number of persons.
    assert counts_per_erasure(len(works), calls, [[1] * len(call) for call in calls]) == persons
