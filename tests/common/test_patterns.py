"""Tenants' patterns in RE2 (ADR 72): refused with RE2's reason, searched in linear time, and a stored pattern
RE2 refuses holds for nothing instead of raising on every value."""

from __future__ import annotations

import time

import pytest

from wayline.common.patterns import pattern_problem, searcher


@pytest.mark.parametrize("pattern", [r"(a)\1", r"(?=a)b", r"(?<=a)b", r"(?>a+)", "(unclosed"])
def test_what_re2_refuses_is_named_with_its_reason(pattern: str) -> None:
    problem = pattern_problem(pattern)
    assert problem is not None
    assert problem.startswith("not an RE2 pattern: ")


def test_a_search_finds_the_pattern_anywhere_in_linear_time() -> None:
    search = searcher("^(a+)+$", "test.pattern_not_re2")
    assert search("aaaa")
    assert not search("xaaaa")
    assert searcher("news", "test.pattern_not_re2")("the newsletter")
    started = time.perf_counter()
    assert not search("a" * 50_000 + "!")  # exponential in Python's `re`
    assert time.perf_counter() - started < 1.0


def test_a_stored_pattern_re2_refuses_holds_for_nothing() -> None:
    search = searcher(r"(a)\1", "test.pattern_not_re2")
    assert not search("aa")
    assert searcher(r"(a)\1", "test.pattern_not_re2") is search  # compiled (or refused) once
