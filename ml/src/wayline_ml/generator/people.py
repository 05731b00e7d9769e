"""Persons and their latent traits, drawn as arrays: a persona segment first, then traits from the
segment's distributions, so that segments differ clearly but people within one still vary."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from wayline_ml.generator.config import GeneratorConfig
from wayline_ml.generator.vocabulary import Segment

__all__ = ["People", "draw_people"]

SEGMENT_WEIGHTS = np.array([0.25, 0.15, 0.2, 0.2, 0.2])
# Beta(a, b) of price sensitivity, app and email affinity per segment (rows in Segment order).
PRICE_BETA = np.array([[8, 2], [1.5, 8], [2, 4], [2, 4], [2, 4]], dtype=float)
APP_BETA = np.array([[2, 5], [2, 5], [8, 2], [2, 5], [2, 5]], dtype=float)
EMAIL_BETA = np.array([[2, 5], [2, 5], [2, 5], [8, 2], [2, 5]], dtype=float)
# P(value tier = low, mid, high) per segment.
TIER_P = np.array(
    [[0.6, 0.35, 0.05], [0.0, 0.3, 0.7], [0.45, 0.4, 0.15], [0.45, 0.4, 0.15], [0.45, 0.4, 0.15]]
)
DEVICES_P = np.array([0.45, 0.4, 0.15])  # one, two or three devices
FRENCH_SHARE = 0.4


@dataclass(frozen=True)
class People:
    """One row per person (index = person), plus one row per device.

    The person's devices are `device_start[p] : device_start[p] + n_devices[p]` in the device arrays.
    """

    segment: NDArray[np.int8]
    """The persona archetype (Segment)."""
    french: NDArray[np.bool_]
    """Speaks French (locale fr-FR); English (en-GB) otherwise. Their support texts are in that language."""
    price_sensitivity: NDArray[np.float64]
    """In [0, 1]: how much a discount moves them, and how often they abandon a cart."""
    value_tier: NDArray[np.int8]
    """0 low, 1 mid, 2 high: what they browse and spend."""
    app_affinity: NDArray[np.float64]
    """In [0, 1]: how much they use the app and answer push."""
    email_affinity: NDArray[np.float64]
    """In [0, 1]: how much email brings them back."""
    satisfaction: NDArray[np.float64]
    """Standard normal: the tone of their support texts and whether they become advocates."""
    activity: NDArray[np.float64]
    """Their mean sessions per day."""
    identify_after: NDArray[np.int32]
    """The session rank from which they are logged in, unless a checkout makes them log in earlier."""
    device_start: NDArray[np.int64]
    """Index of the person's first device."""
    n_devices: NDArray[np.int8]
    """How many devices (browsers or app installs) they use: 1 to 3."""
    device_app: NDArray[np.bool_]
    """Per device: an app install (mobile_app channel) rather than a browser (web)."""
    device_person: NDArray[np.int64]
    """Per device: its person."""

    def __len__(self) -> int:
        return len(self.segment)


def _beta(
    rng: np.random.Generator, params: NDArray[np.float64], segment: NDArray[np.int8]
) -> NDArray[np.float64]:
    drawn: NDArray[np.float64] = rng.beta(params[segment, 0], params[segment, 1])
    return drawn


def draw_people(config: GeneratorConfig, rng: np.random.Generator) -> People:
    n = config.people
    segment = rng.choice(len(Segment), size=n, p=SEGMENT_WEIGHTS).astype(np.int8)
    tier_u = rng.random(n)
    value_tier = (tier_u[:, None] > np.cumsum(TIER_P[segment], axis=1)[:, :2]).sum(axis=1).astype(np.int8)
    app_affinity = _beta(rng, APP_BETA, segment)
    n_devices = (rng.choice(3, size=n, p=DEVICES_P) + 1).astype(np.int8)
    device_person = np.repeat(np.arange(n, dtype=np.int64), n_devices)
    device_start = np.concatenate(([0], np.cumsum(n_devices)[:-1])).astype(np.int64)
    # An app-affine person's devices are mostly app installs, everyone else's mostly browsers.
    device_app = rng.random(len(device_person)) < 0.15 + 0.7 * app_affinity[device_person]
    return People(
        segment=segment,
        french=rng.random(n) < FRENCH_SHARE,
        price_sensitivity=_beta(rng, PRICE_BETA, segment),
        value_tier=value_tier,
        app_affinity=app_affinity,
        email_affinity=_beta(rng, EMAIL_BETA, segment),
        satisfaction=rng.standard_normal(n),
        activity=rng.gamma(2.0, config.sessions_per_day / 2.0, size=n),
        identify_after=rng.geometric(0.35, size=n).astype(np.int32) - 1,
        device_start=device_start,
        n_devices=n_devices,
        device_app=device_app,
        device_person=device_person,
    )
