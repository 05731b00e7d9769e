"""The split statistics against values worked by hand (a textbook two-proportion z-test): 120 of 1,000
against a control's 100 of 1,000 pools to p = 0.11, so SE = sqrt(0.11 * 0.89 * (2 / 1000)) = 0.0139929,
z = 0.02 / SE = 1.42930 and the two-sided p = 0.152918; unpooled SE = sqrt(0.12 * 0.88 / 1000 + 0.1 * 0.9 /
1000) = 0.0139857, so the 95% interval is 0.02 -/+ 1.959964 * SE = [-0.007411, 0.047411]."""

from __future__ import annotations

import pytest

from wayline_orchestrator.flows.significance import compare, two_sided_p_value


def test_two_sided_p_value_of_known_quantiles() -> None:
    assert two_sided_p_value(1.959963984540054) == pytest.approx(0.05, abs=1e-9)
    assert two_sided_p_value(-2.5758293035489) == pytest.approx(0.01, abs=1e-9)
    assert two_sided_p_value(0.0) == 1.0


def test_compare_matches_the_worked_example() -> None:
    found = compare(120, 1000, 100, 1000)
    assert found.rate == pytest.approx(0.12, abs=1e-12)
    assert found.lift == pytest.approx(0.2, abs=1e-9)
    assert found.p_value == pytest.approx(0.152918, abs=1e-6)
    assert not found.significant
    assert found.difference_low == pytest.approx(-0.007411, abs=1e-6)
    assert found.difference_high == pytest.approx(0.047411, abs=1e-6)


def test_compare_finds_a_significant_difference() -> None:
    # 200/1000 vs 150/1000: pooled p = 0.175, z = 0.05 / sqrt(0.175 * 0.825 * 0.002) = 2.942449.
    found = compare(200, 1000, 150, 1000)
    assert found.p_value == pytest.approx(0.003256, abs=1e-6)
    assert found.significant
    assert found.lift == pytest.approx(1 / 3, abs=1e-9)
    assert found.difference_low == pytest.approx(0.016767, abs=1e-6)
    assert found.difference_high == pytest.approx(0.083233, abs=1e-6)


@pytest.mark.parametrize(
    ("converted", "entered", "control_converted", "control_entered"),
    [(4, 10, 40, 1000), (30, 40, 1, 100), (600, 1000, 996, 1000)],
)
def test_compare_is_not_significant_with_too_few_outcomes(
    converted: int, entered: int, control_converted: int, control_entered: int
) -> None:
    """p < 0.05 in each case, but a group has fewer than 5 conversions or non-conversions."""
    found = compare(converted, entered, control_converted, control_entered)
    assert found.p_value < 0.05
    assert not found.significant


def test_compare_with_an_empty_group_says_nothing() -> None:
    for found in (compare(0, 0, 5, 10), compare(5, 10, 0, 0)):
        assert (found.p_value, found.significant, found.difference_low, found.difference_high) == (
            1.0,
            False,
            0.0,
            0.0,
        )
        assert found.lift == 0.0
