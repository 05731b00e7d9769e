"""Customers drawn from the BG/NBD and Gamma-Gamma stories themselves, for tests that check a fit recovers
the parameters it was given and for the demo's shop: each customer is acquired at a random day, buys at
their rate lambda ~ Gamma(r, alpha) until they leave (probability p ~ Beta(a, b) after each repeat purchase),
and each purchase is worth Gamma(p, nu) with nu ~ Gamma(q, gamma). Seeded: the same seed gives the same
customers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from wayline_ml.clv.bgnbd import BgNbdParams
from wayline_ml.clv.gamma_gamma import GammaGammaParams
from wayline_ml.clv.model import LifetimeSummaries

__all__ = ["SimulatedShop", "simulate"]


@dataclass(frozen=True)
class SimulatedShop:
    """Every purchase: its customer, its time (days after the period starts) and its value."""

    days: float
    customer: npt.NDArray[np.int64]
    time: npt.NDArray[np.float64]
    value: npt.NDArray[np.float64]
    customers: int

    def summaries(self) -> LifetimeSummaries:
        """The customers' lifetime summaries at the end of the period, in continuous days."""
        frequency = np.zeros(self.customers)
        recency = np.zeros(self.customers)
        t = np.zeros(self.customers)
        monetary = np.zeros(self.customers)
        for c in range(self.customers):
            mine = self.customer == c
            times, values = self.time[mine], self.value[mine]
            first = times[0]
            frequency[c] = len(times) - 1
            recency[c] = times[-1] - first
            t[c] = self.days - first
            monetary[c] = values[1:].mean() if len(times) > 1 else 0.0
        return LifetimeSummaries(frequency, recency, t, monetary)


def simulate(
    customers: int,
    days: float,
    transactions: BgNbdParams,
    value: GammaGammaParams,
    *,
    seed: int = 0,
    acquired_within: float | None = None,
) -> SimulatedShop:
    """`customers` acquired uniformly within the first `acquired_within` days (default: the first half of
    the period), observed until `days`."""
    rng = np.random.default_rng(seed)
    window = days / 2 if acquired_within is None else acquired_within
    rates = rng.gamma(transactions.r, 1 / transactions.alpha, customers)
    leave = rng.beta(transactions.a, transactions.b, customers)
    value_rates = rng.gamma(value.q, 1 / value.v, customers)
    starts = rng.uniform(0, window, customers)
    who: list[int] = []
    when: list[float] = []
    for c in range(customers):
        at = float(starts[c])
        who.append(c)
        when.append(at)
        # The first purchase starts the clock; a customer may leave only after a repeat purchase.
        while (at := at + rng.exponential(1 / rates[c])) < days:
            who.append(c)
            when.append(at)
            if rng.random() < leave[c]:
                break
    customer = np.asarray(who, dtype=np.int64)
    worth = rng.gamma(value.p, 1 / value_rates[customer])
    return SimulatedShop(
        days=days, customer=customer, time=np.asarray(when), value=worth, customers=customers
    )
