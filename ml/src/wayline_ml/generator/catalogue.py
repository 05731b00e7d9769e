"""The shop's products: three price bands, and which band a person browses depends on their value tier."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["Catalogue", "draw_catalogue"]

PER_BAND = 40
BAND_LOG_PRICE = ((2.8, 0.4), (4.3, 0.35), (5.8, 0.4))  # ~16, ~75, ~330 EUR
# P(band) by value tier (rows: low, mid, high).
BAND_P = np.array([[0.7, 0.25, 0.05], [0.3, 0.55, 0.15], [0.1, 0.4, 0.5]])


@dataclass(frozen=True)
class Catalogue:
    price: NDArray[np.float64]
    """The price of each sku in EUR; a sku is an index, band b holds [b * PER_BAND, (b + 1) * PER_BAND)."""

    def pick(self, rng: np.random.Generator, tier: NDArray[np.int8]) -> NDArray[np.int32]:
        """One sku per row, from a band drawn by the row's tier."""
        band = (rng.random(len(tier))[:, None] > np.cumsum(BAND_P[tier], axis=1)[:, :2]).sum(axis=1)
        sku: NDArray[np.int32] = (band * PER_BAND + rng.integers(0, PER_BAND, len(tier))).astype(np.int32)
        return sku


def draw_catalogue(rng: np.random.Generator) -> Catalogue:
    prices = [np.round(rng.lognormal(mean, sigma, PER_BAND), 2) for mean, sigma in BAND_LOG_PRICE]
    return Catalogue(price=np.maximum(np.concatenate(prices), 1.0))
