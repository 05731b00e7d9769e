"""Gamma-Gamma: what a customer's purchases are worth on average (Fader and Hardie 2013, "The Gamma-Gamma
Model of Monetary Value", after Colombo and Jiang 1999).

Each purchase is worth Gamma(p, nu); nu varies across customers as Gamma(q, gamma) (gamma is `v` here, as in
`lifetimes` and pymc-marketing). The data are the repeat buyers' frequency x and the mean value m of their x
repeat purchases; the first purchase is left out, as the model's authors do and as Wayline's lifetime
summary already does. The model assumes that value does not depend on frequency: `clv.model` reports their
correlation among repeat buyers so that a user can check.

q is kept above 1 during the fit (it is optimised as log(q - 1)), so that the population mean value
p·gamma/(q - 1), the expectation for a customer without a repeat purchase, exists.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.special import gammaln

from wayline_ml.clv.optimize import maximise

__all__ = ["GammaGammaFit", "GammaGammaParams", "expected_average_value", "fit_gamma_gamma", "log_likelihood"]

Floats = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class GammaGammaParams:
    """p: the shape of each purchase's value; q and v (gamma): the Gamma heterogeneity of its rate."""

    p: float
    q: float
    v: float

    @property
    def population_mean(self) -> float:
        """E[value of a purchase] across customers: p·gamma/(q - 1)."""
        return self.p * self.v / (self.q - 1)


@dataclass(frozen=True, slots=True)
class GammaGammaFit:
    params: GammaGammaParams
    log_likelihood: float
    customers: int
    converged: bool
    iterations: int


def log_likelihood(params: GammaGammaParams, frequency: npt.ArrayLike, monetary: npt.ArrayLike) -> Floats:
    """Each repeat buyer's log-likelihood of their mean value m over x purchases (the density of m)."""
    x = np.asarray(frequency, dtype=np.float64)
    m = np.asarray(monetary, dtype=np.float64)
    p, q, v = params.p, params.q, params.v
    px = p * x
    result: Floats = (
        gammaln(px + q)
        - gammaln(px)
        - gammaln(q)
        + q * np.log(v)
        + (px - 1) * np.log(m)
        + px * np.log(x)
        - (px + q) * np.log(x * m + v)
    )
    return result


def expected_average_value(
    params: GammaGammaParams, frequency: npt.ArrayLike, monetary: npt.ArrayLike
) -> Floats:
    """E[value of a future purchase | x, m]: p(gamma + x·m)/(p·x + q - 1), a weighted mean of the population
    mean and the customer's own, the customer's weight growing with x. With x = 0 it is the population mean
    whatever m is."""
    x = np.asarray(frequency, dtype=np.float64)
    m = np.where(x > 0, np.asarray(monetary, dtype=np.float64), 0.0)
    p, q, v = params.p, params.q, params.v
    result: Floats = p * (v + x * m) / (p * x + q - 1)
    return result


def fit_gamma_gamma(frequency: npt.ArrayLike, monetary: npt.ArrayLike) -> GammaGammaFit:
    """Maximum-likelihood Gamma-Gamma parameters from the repeat buyers among these customers (frequency > 0
    and a positive mean value); the others carry no information about value and are skipped."""
    x_all = np.asarray(frequency, dtype=np.float64)
    m_all = np.asarray(monetary, dtype=np.float64)
    keep = (x_all > 0) & (m_all > 0)
    x, m = x_all[keep], m_all[keep]
    if x.size < 2 or np.ptp(m) == 0:
        raise ValueError("Gamma-Gamma needs at least two repeat buyers whose mean values differ")

    def unpack(log_params: Floats) -> GammaGammaParams:
        return GammaGammaParams(
            p=float(np.exp(log_params[0])), q=1 + float(np.exp(log_params[1])), v=float(np.exp(log_params[2]))
        )

    def negative_mean(log_params: Floats) -> float:
        return -float(np.mean(log_likelihood(unpack(log_params), x, m)))

    # Start at p = 1, q = 2 and gamma such that the population mean equals the observed mean value.
    start = np.array([0.0, 0.0, np.log(float(m.mean()))])
    result = maximise(negative_mean, start)
    params = unpack(result.x)
    return GammaGammaFit(
        params=params,
        log_likelihood=float(np.sum(log_likelihood(params, x, m))),
        customers=int(x.size),
        converged=result.converged,
        iterations=result.iterations,
    )
