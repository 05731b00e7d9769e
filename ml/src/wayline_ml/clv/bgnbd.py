"""BG/NBD: how many purchases a customer will make, and whether they are still a customer (Fader, Hardie and
Lee 2005, "Counting Your Customers the Easy Way", Marketing Science 24(2)).

While alive, a customer buys at rate lambda (Poisson); lambda varies across customers as Gamma(r, alpha).
After each repeat purchase they leave with probability p, which varies as Beta(a, b). The data are each
customer's lifetime summary: `frequency` x (repeat purchases), `recency` t_x (age at the last one) and `t`
(age now), in one unit of time (Wayline's summaries count days, so the parameters describe days: alpha
scales with the unit).

The log-likelihood, predictions and probability of being alive are the paper's equations (6), (10) and (13),
computed in log space so that large frequencies do not overflow. Parameters are fitted by maximum likelihood
in log-parameter space with L-BFGS-B; tests/ml/test_clv_reference.py holds the fit to the published one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.special import betaln, expit, gammaln, hyp2f1

from wayline_ml.clv.optimize import maximise

__all__ = [
    "BgNbdFit",
    "BgNbdParams",
    "expected_purchases",
    "fit_bgnbd",
    "log_likelihood",
    "probability_alive",
    "unconditional_expected_purchases",
]

Floats = npt.NDArray[np.float64]
ArrayLike = npt.ArrayLike


@dataclass(frozen=True, slots=True)
class BgNbdParams:
    """r and alpha: the Gamma heterogeneity of purchase rates; a and b: the Beta heterogeneity of drop-out."""

    r: float
    alpha: float
    a: float
    b: float


@dataclass(frozen=True, slots=True)
class BgNbdFit:
    params: BgNbdParams
    log_likelihood: float
    customers: int
    converged: bool
    iterations: int


def _arrays(*values: ArrayLike) -> tuple[Floats, ...]:
    return tuple(np.asarray(value, dtype=np.float64) for value in values)


def log_likelihood(params: BgNbdParams, frequency: ArrayLike, recency: ArrayLike, t: ArrayLike) -> Floats:
    """Each customer's log-likelihood (the paper's equation 6, in logs)."""
    x, t_x, big_t = _arrays(frequency, recency, t)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    common = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + betaln(a, b + x) - betaln(a, b)
    still_alive = -(r + x) * np.log(alpha + big_t)
    repeat = x > 0
    # Only repeat buyers can have left after their last purchase; b + x - 1 > 0 for them.
    left = np.full_like(x, -np.inf)
    left[repeat] = np.log(a) - np.log(b + x[repeat] - 1) - (r + x[repeat]) * np.log(alpha + t_x[repeat])
    result: Floats = common + np.logaddexp(still_alive, left)
    return result


def _log_odds_dead(params: BgNbdParams, x: Floats, t_x: Floats, big_t: Floats) -> Floats:
    """log(a/(b+x-1) · ((alpha+T)/(alpha+t_x))^(r+x)): the odds that a repeat buyer has left; -inf for
    x = 0."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    odds = np.full_like(x, -np.inf)
    repeat = x > 0
    xr = x[repeat]
    odds[repeat] = (
        np.log(a)
        - np.log(b + xr - 1)
        + (r + xr) * (np.log(alpha + big_t[repeat]) - np.log(alpha + t_x[repeat]))
    )
    return odds


def probability_alive(params: BgNbdParams, frequency: ArrayLike, recency: ArrayLike, t: ArrayLike) -> Floats:
    """P(alive | x, t_x, T) (the paper's equation 13): 1 for customers without a repeat purchase, since in
    BG/NBD a customer can only leave right after a purchase."""
    x, t_x, big_t = _arrays(frequency, recency, t)
    result: Floats = expit(-_log_odds_dead(params, x, t_x, big_t))
    return result


def expected_purchases(
    params: BgNbdParams, horizon: float, frequency: ArrayLike, recency: ArrayLike, t: ArrayLike
) -> Floats:
    """E[purchases in (T, T + horizon] | x, t_x, T] (the paper's equation 10)."""
    x, t_x, big_t = _arrays(frequency, recency, t)
    a, b = _off_the_poles(params.a, params.b)
    z = horizon / (params.alpha + big_t + horizon)
    numerator = (a + b + x - 1) / (a - 1) * (1 - _tail(params, a, b, x, z))
    result: Floats = numerator * expit(-_log_odds_dead(params, x, t_x, big_t))
    return np.maximum(result, 0.0)


def unconditional_expected_purchases(params: BgNbdParams, horizon: ArrayLike) -> Floats:
    """E[X(t)] for a customer just acquired (the paper's equation 9): what a new customer is expected to buy
    in their first `horizon` after the first purchase."""
    (t,) = _arrays(horizon)
    alpha, a, b = params.alpha, params.a, params.b
    a, b = _off_the_poles(a, b)
    z = t / (alpha + t)
    # (alpha/(alpha+t))^r * 2F1(r, b; a+b-1; z): the tail at x = T = 0, with its fallback to Euler's form
    # where scipy's 2F1 gives up (it answers inf near z = 1 when c - a - b is a negative integer).
    tail = _tail(params, a, b, np.zeros_like(t), z)
    result: Floats = (a + b - 1) / (a - 1) * (1 - tail)
    return result


def _off_the_poles(a: float, b: float) -> tuple[float, float]:
    """a = 1 and, for a customer without repeat purchases, a + b = 1 are removable singularities of
    equations 9 and 10 (a factor 0 meets a pole of 2F1); a fitted model does not land on them, a test might.
    A nudge of 1e-9 moves the result by about as much, relatively."""
    if abs(a - 1) < 1e-9:
        a += 2e-9
    if abs(a + b - 1) < 1e-9:
        b += 2e-9
    return a, b


def _tail(params: BgNbdParams, a: float, b: float, x: Floats, z: Floats) -> Floats:
    """((alpha+T)/(alpha+T+t))^(r+x) * 2F1(r+x, b+x; a+b+x-1; z), where z = t/(alpha+T+t).

    As written it is (tiny)*(huge) when a customer has bought very often over a horizon of years: the power
    underflows to 0 and 2F1 overflows, beyond (r+x)*log((alpha+T+t)/(alpha+T)) ~ 700. There Euler's
    transformation gives the same number as (1-z)^(a-1) * 2F1(a+b-1-r, a-1; a+b+x-1; z), with the power of
    a instead. The written form stays first: Euler's meets the same trouble when a is in the hundreds, which
    a fit on a few customers reaches. (Pfaff's transformation, to z/(z-1), is finite more often but scipy's
    2F1 is inaccurate there, so it is not used.)
    """
    r, c = params.r, a + b + x - 1
    log_shrink = np.log1p(-z)
    with np.errstate(invalid="ignore", over="ignore", under="ignore"):
        tail = np.asarray(np.exp((r + x) * log_shrink) * hyp2f1(r + x, b + x, c, z), dtype=np.float64)
        bad = ~np.isfinite(tail)
        if bad.any():
            euler = np.exp((a - 1) * log_shrink[bad]) * hyp2f1(a + b - 1 - r, a - 1, c[bad], z[bad])
            tail[bad] = euler
        still = ~np.isfinite(tail)
        if still.any():
            # c - (r+x) - (b+x) = a - 1 - r - x a negative integer (a = r, x = 0) near z = 1: scipy's 2F1 is
            # NaN in both forms there. The tail is continuous in a, so step off it as _off_the_poles does
            # (a nudge of 1e-9 moves the result by about as much, relatively).
            nudged, xs = a + 2e-9, x[still]
            tail[still] = np.exp((r + xs) * log_shrink[still]) * hyp2f1(
                r + xs, b + xs, nudged + b + xs - 1, z[still]
            )
    return tail


def fit_bgnbd(frequency: ArrayLike, recency: ArrayLike, t: ArrayLike) -> BgNbdFit:
    """Maximum-likelihood BG/NBD parameters for these customers."""
    x, t_x, big_t = _arrays(frequency, recency, t)
    if x.size == 0:
        raise ValueError("BG/NBD needs at least one customer")
    if np.any(x < 0) or np.any(t_x < 0) or np.any(t_x > big_t) or np.any((x == 0) & (t_x != 0)):
        raise ValueError("each customer needs 0 <= recency <= t, and recency 0 when frequency is 0")

    def negative_mean(log_params: Floats) -> float:
        params = BgNbdParams(*np.exp(log_params))
        return -float(np.mean(log_likelihood(params, x, t_x, big_t)))

    # Start at r = a = b = 1 and alpha at the mean age, a purchase rate of about one per customer lifetime.
    start = np.log([1.0, max(float(big_t.mean()), 1e-3), 1.0, 1.0])
    result = maximise(negative_mean, start)
    params = BgNbdParams(*(float(v) for v in np.exp(result.x)))
    return BgNbdFit(
        params=params,
        log_likelihood=float(np.sum(log_likelihood(params, x, t_x, big_t))),
        customers=int(x.size),
        converged=result.converged,
        iterations=result.iterations,
    )
