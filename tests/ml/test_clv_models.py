"""Properties of the BG/NBD and Gamma-Gamma predictions that hold for any parameters and customers, a fit
that recovers the parameters customers were drawn with, and fits refused on data that cannot support one."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.breadth import examples
from wayline_ml.clv import LifetimeSummaries, bgnbd, fit, gamma_gamma, predict
from wayline_ml.clv.bgnbd import BgNbdParams
from wayline_ml.clv.gamma_gamma import GammaGammaParams
from wayline_ml.clv.simulate import simulate

positive = st.floats(min_value=0.05, max_value=20.0)
params = st.builds(
    BgNbdParams, r=positive, alpha=st.floats(min_value=0.5, max_value=200.0), a=positive, b=positive
)


@st.composite
def customers(draw: st.DrawFn) -> tuple[float, float, float]:
    """(frequency, recency, t) as a lifetime summary can hold them: whole days, recency 0 without repeats."""
    t = draw(st.integers(min_value=0, max_value=730))
    frequency = draw(st.integers(min_value=0, max_value=max(t, 0)))
    recency = 0 if frequency == 0 else draw(st.integers(min_value=1, max_value=t))
    return float(frequency), float(recency), float(t)


@given(params, customers())
def test_probability_alive_is_a_probability_and_one_without_repeat_purchases(
    p: BgNbdParams, customer: tuple[float, float, float]
) -> None:
    x, t_x, t = customer
    alive = bgnbd.probability_alive(p, [x], [t_x], [t])[0]
    assert 0.0 <= alive <= 1.0
    if x == 0:
        assert alive == 1.0


@given(params, customers())
# Found by a fresh-clone run: a = r and no repeat purchase put c - a - b at -1, where scipy's 2F1 is NaN.
@example(
    BgNbdParams(r=0.4658443146237239, alpha=0.5, a=0.4658443146237239, b=3.7733433706384214), (0.0, 0.0, 0.0)
)
def test_expected_purchases_are_finite_and_grow_with_the_horizon(
    p: BgNbdParams, customer: tuple[float, float, float]
) -> None:
    x, t_x, t = customer
    within = [bgnbd.expected_purchases(p, h, [x], [t_x], [t])[0] for h in (0, 30, 90, 365)]
    assert np.all(np.isfinite(within))
    assert within[0] == pytest.approx(0.0, abs=1e-9)
    assert within == sorted(within) or np.allclose(within, sorted(within), rtol=1e-9, atol=1e-9)


@given(params, st.integers(min_value=1, max_value=200), st.integers(min_value=1, max_value=365))
def test_more_repeat_purchases_up_to_now_mean_more_expected_purchases(
    p: BgNbdParams, frequency: int, t: int
) -> None:
    # Two customers of the same age who both bought today: the one who bought more often buys more.
    fewer = bgnbd.expected_purchases(p, 90, [frequency], [t], [t])[0]
    more = bgnbd.expected_purchases(p, 90, [frequency + 1], [t], [t])[0]
    assert more >= fewer * (1 - 1e-9)


@given(params, st.integers(min_value=1, max_value=50), st.integers(min_value=2, max_value=365), st.data())
def test_a_more_recent_last_purchase_means_more_alive_and_more_purchases(
    p: BgNbdParams, frequency: int, t: int, data: st.DataObject
) -> None:
    earlier = data.draw(st.integers(min_value=1, max_value=t - 1))
    later = data.draw(st.integers(min_value=earlier + 1, max_value=t))
    alive = bgnbd.probability_alive(p, [frequency] * 2, [earlier, later], [t] * 2)
    purchases = bgnbd.expected_purchases(p, 90, [frequency] * 2, [earlier, later], [t] * 2)
    assert alive[1] >= alive[0]
    assert purchases[1] >= purchases[0] * (1 - 1e-9)


@given(params, st.floats(min_value=1.0, max_value=1000.0))
# Found by this test: scipy's 2F1 answers inf near z = 1 when c - a - b is a negative integer (here -1).
@example(BgNbdParams(r=2.0, alpha=0.5, a=2.0, b=0.05), 244.0)
def test_a_new_customer_is_expected_to_buy_what_bgnbd_expects_of_anyone_just_acquired(
    p: BgNbdParams, horizon: float
) -> None:
    # The conditional expectation at x = t_x = T = 0 (equation 10, in whichever transformed form is finite)
    # is the unconditional E[X(t)] of the paper's equation 9 (computed in its own form).
    conditional = bgnbd.expected_purchases(p, horizon, [0.0], [0.0], [0.0])[0]
    unconditional = bgnbd.unconditional_expected_purchases(p, horizon)
    assert conditional == pytest.approx(float(unconditional), rel=1e-6, abs=1e-9)


def test_expected_purchases_stay_finite_for_daily_buyers_over_years() -> None:
    # Over 5 years, a customer who bought on 1,400 of 1,500 days takes the hypergeometric term past what
    # doubles hold in its written form ((tiny)*(huge)); its Euler-transformed form gives the number.
    p = BgNbdParams(r=0.24, alpha=31.0, a=0.79, b=2.43)
    horizons = [365, 1825]
    expected = [bgnbd.expected_purchases(p, h, [1400], [1499], [1500])[0] for h in horizons]
    assert np.all(np.isfinite(expected))
    assert 250 < expected[0] < 365  # buying on nearly every day, and going on at almost that rate
    assert expected[0] < expected[1] < 1825


@pytest.mark.parametrize(
    "p",
    [BgNbdParams(r=0.24, alpha=31.0, a=0.79, b=2.43), BgNbdParams(r=0.55, alpha=26.4, a=490.0, b=1132.0)],
    ids=["cdnow-like", "a-and-b-in-the-hundreds"],
)
def test_expected_purchases_are_smooth_where_the_computation_changes_form(p: BgNbdParams) -> None:
    # Equation 10 over a range of frequencies, with dropout rare and common: no jump, no drop.
    frequency = np.arange(0, 1500, dtype=np.float64)
    expected = bgnbd.expected_purchases(p, 365, frequency, np.full(1500, 1500.0), np.full(1500, 1500.0))
    assert np.all(np.isfinite(expected))
    assert np.all(np.diff(expected) >= -1e-9 * expected[1:])
    assert np.max(np.diff(expected)) < 1.0  # one more past purchase never adds a whole expected one


@given(
    st.builds(GammaGammaParams, p=positive, q=st.floats(min_value=1.1, max_value=20.0), v=positive),
    st.integers(min_value=0, max_value=500),
    st.floats(min_value=0.01, max_value=10_000.0),
)
def test_expected_order_value_lies_between_the_population_mean_and_the_customers_own(
    p: GammaGammaParams, frequency: int, mean_value: float
) -> None:
    expected = gamma_gamma.expected_average_value(p, [frequency], [mean_value])[0]
    low, high = sorted((p.population_mean, mean_value if frequency else p.population_mean))
    assert low * (1 - 1e-9) <= expected <= high * (1 + 1e-9)


def test_the_fit_recovers_the_parameters_customers_were_drawn_with() -> None:
    truth = BgNbdParams(r=0.5, alpha=20.0, a=0.8, b=2.5)
    value = GammaGammaParams(p=6.0, q=4.0, v=20.0)
    shop = simulate(6000, 365, truth, value, seed=1)
    model = fit(shop.summaries())
    fitted, fitted_value = model.transactions.params, model.value.params
    assert fitted.r == pytest.approx(truth.r, rel=0.15)
    assert fitted.alpha == pytest.approx(truth.alpha, rel=0.15)
    assert fitted.a / (fitted.a + fitted.b) == pytest.approx(truth.a / (truth.a + truth.b), rel=0.15)
    assert fitted_value.population_mean == pytest.approx(value.population_mean, rel=0.1)


@settings(max_examples=examples(25), deadline=None)
@given(st.integers(min_value=0, max_value=10_000))
def test_predictions_are_finite_on_small_simulated_shops(seed: int) -> None:
    shop = simulate(60, 120, BgNbdParams(0.5, 20.0, 0.8, 2.5), GammaGammaParams(6.0, 4.0, 20.0), seed=seed)
    summaries = shop.summaries()
    if summaries.repeat_buyers < 2:
        return
    predictions = predict(fit(summaries), summaries)
    for values in (*predictions.expected_purchases.values(), *predictions.expected_value.values()):
        assert np.all(np.isfinite(values))
        assert np.all(values >= 0)
    assert np.all((predictions.probability_alive >= 0) & (predictions.probability_alive <= 1))


def test_fit_refuses_customers_without_two_repeat_buyers() -> None:
    one_repeat = LifetimeSummaries.of([0, 3, 0], [0, 10, 0], [20, 30, 5], [0, 12.5, 0])
    with pytest.raises(ValueError, match="two repeat buyers"):
        fit(one_repeat)


def test_fit_refuses_impossible_summaries() -> None:
    with pytest.raises(ValueError, match="recency"):
        bgnbd.fit_bgnbd([1, 2], [5, 40], [10, 30])  # a last purchase after the end
