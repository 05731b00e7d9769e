"""The true effect of each action on each person: the ground truth a next-best-action model has to learn.

A decision's conversion probability is `sigmoid(base + uplift[action])`; the base depends on the context
(an abandoned cart) and the person's tier, the uplift on the person's latent traits, so each action works for
somebody and none for everybody: discounts move price-sensitive people, call-backs high-value ones, push
app-affine ones, email reminders inbox readers; casual people are best left alone. What a conversion is worth
also depends on the action (a discount gives 10% away, free shipping and a call-back cost a fixed amount), so
the best action by expected value differs by segment (tests/ml/test_generator.py measures it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from wayline_ml.generator.people import People
from wayline_ml.generator.vocabulary import ACTIONS, Action

__all__ = ["TrueResponse", "true_response"]

SHIPPING_COST = 4.9
CALL_BACK_COST = 5.0


@dataclass(frozen=True)
class TrueResponse:
    """Per decision (rows) and action (columns, in Action order)."""

    p_convert: NDArray[np.float64]
    """The probability that the person converts (orders) after the action."""
    value: NDArray[np.float64]
    """What a conversion is worth to the business after the action's cost (0 when they do not convert)."""

    @property
    def expected_value(self) -> NDArray[np.float64]:
        return self.p_convert * self.value


def _sigmoid(x: NDArray[np.float64]) -> NDArray[np.float64]:
    return 1.0 / (1.0 + np.exp(-x))


def true_response(
    people: People, person: NDArray[np.int64], had_cart: NDArray[np.bool_], amount: NDArray[np.float64]
) -> TrueResponse:
    """The true response of `person[i]` in a context with an abandoned cart (`had_cart[i]`) whose order would
    be worth `amount[i]` before the action's cost."""
    ps = people.price_sensitivity[person]
    app = people.app_affinity[person]
    mail = people.email_affinity[person]
    tier = people.value_tier[person].astype(np.float64)
    high, mid, low = tier == 2, tier == 1, tier == 0
    cart = had_cart.astype(np.float64)
    base = -2.0 + 1.0 * cart + 0.35 * tier
    uplift = np.zeros((len(person), len(ACTIONS)))
    uplift[:, Action.DISCOUNT_10] = 2.4 * ps - 1.0
    uplift[:, Action.FREE_SHIPPING] = 1.2 * ps + 0.6 * cart * low - 0.7
    uplift[:, Action.EMAIL_REMINDER] = 2.2 * mail - 0.8
    uplift[:, Action.PUSH_REMINDER] = 2.4 * app - 0.9
    uplift[:, Action.CALL_BACK] = 1.3 * high + 0.5 * mid * cart - 0.6
    value = np.repeat(amount[:, None], len(ACTIONS), axis=1)
    value[:, Action.DISCOUNT_10] *= 0.9
    value[:, Action.FREE_SHIPPING] -= SHIPPING_COST
    value[:, Action.CALL_BACK] -= CALL_BACK_COST
    return TrueResponse(p_convert=_sigmoid(base[:, None] + uplift), value=np.maximum(value, 0.0))
