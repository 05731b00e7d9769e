"""The RFM grid and the rounding of customer_value.py, checked without a server."""

from __future__ import annotations

from decimal import Decimal

from tests.journeys.customer_value_reference import segment
from wayline_journeys.customer_value import RfmSegment, fm_score, mean, rfm_segment

SCORES = range(1, 6)


def test_rfm_segment_matches_the_contract_grid_for_every_score() -> None:
    found = {(r, f, m): rfm_segment(r, f, m) for r in SCORES for f in SCORES for m in SCORES}
    assert {k: v.name for k, v in found.items()} == {(r, f, m): segment(r, f, m) for r, f, m in found}
    assert set(found.values()) == set(RfmSegment) - {RfmSegment.NO_PURCHASE}


def test_rfm_segment_without_scores_is_no_purchase() -> None:
    assert rfm_segment(0, 0, 0) is RfmSegment.NO_PURCHASE


def test_fm_score_rounds_half_up() -> None:
    assert [fm_score(f, m) for f, m in [(1, 1), (1, 2), (2, 3), (4, 5), (5, 5)]] == [1, 2, 3, 5, 5]


def test_mean_rounds_half_to_even_to_the_nano() -> None:
    assert mean(Decimal("0.000000001"), 2) == Decimal(0)
    assert mean(Decimal("0.000000003"), 2) == Decimal("0.000000002")
    assert mean(Decimal(10), 3) == Decimal("3.333333333")
    assert mean(Decimal(-10), 3) == Decimal("-3.333333333")
