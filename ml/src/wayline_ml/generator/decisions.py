"""Decisions: at a decision time an action is chosen by a logging policy, with the probability it had of
being chosen (its propensity), and the person's true response to it is drawn.

This log stands in for the decision service's own decision log until issue 11 lands one: it has what
off-policy evaluation needs (inverse propensity weighting divides each logged reward by its propensity), and
the ground truth no real log has (every action's true conversion probability and value), so an evaluation
can also be checked against the truth.

The logging policy is epsilon-greedy around a fixed rule (a discount for an abandoned cart, an email
reminder otherwise): with probability epsilon the action is uniform over the eligible actions. Every eligible
action thus has a propensity of at least epsilon / |eligible|, which keeps inverse propensity weights bounded.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
from numpy.typing import NDArray

from wayline_ml.generator.effects import true_response
from wayline_ml.generator.people import People
from wayline_ml.generator.vocabulary import ACTIONS, Action

__all__ = ["Decisions", "decide"]

AMOUNT_LOG_MEAN = np.array([3.4, 4.4, 5.6])  # the value of an order without a cart, by tier: ~30, 80, 270


@dataclass(frozen=True)
class Decisions:
    """One row per decision; the (D, A) matrices have one column per action, in Action order."""

    person: NDArray[np.int64]
    time_us: NDArray[np.int64]
    """When the decision was taken, in µs since the epoch (a few minutes after the session ended)."""
    session: NDArray[np.int64]
    """The session whose end triggered the decision."""
    had_cart: NDArray[np.bool_]
    """The session ended with an abandoned cart."""
    cart_value: NDArray[np.float64]
    """The abandoned cart's value (0 without one)."""
    amount: NDArray[np.float64]
    """What the order would be worth before the action's cost: the cart, or a draw by the person's tier."""
    eligible: NDArray[np.bool_]
    """(D, A): the actions the decision could choose (push needs an app; call-back a cart or high tier)."""
    propensities: NDArray[np.float64]
    """(D, A): the logging policy's probability of each action (0 for ineligible ones; rows sum to 1)."""
    action: NDArray[np.int8]
    """The action chosen (Action)."""
    propensity: NDArray[np.float64]
    """The chosen action's propensity."""
    converted: NDArray[np.bool_]
    """The person ordered in response."""
    value: NDArray[np.float64]
    """The value of the response (0 unless converted)."""
    p_convert: NDArray[np.float64]
    """(D, A): the true conversion probability of every action (ground truth; no real log has it)."""
    true_value: NDArray[np.float64]
    """(D, A): the true value of a conversion after every action."""

    def __len__(self) -> int:
        return len(self.person)

    @property
    def expected_value(self) -> NDArray[np.float64]:
        """(D, A): the true expected value of every action, `p_convert * true_value`."""
        return self.p_convert * self.true_value

    @classmethod
    def concatenate(cls, parts: list[Decisions]) -> Decisions:
        """One log of several, in order; `parts` must not be empty."""
        return cls(**{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)})


def _eligible(people: People, person: NDArray[np.int64], had_cart: NDArray[np.bool_]) -> NDArray[np.bool_]:
    has_app = np.add.reduceat(people.device_app, people.device_start)[person] > 0
    eligible = np.ones((len(person), len(ACTIONS)), dtype=bool)
    eligible[:, Action.PUSH_REMINDER] = has_app
    eligible[:, Action.CALL_BACK] = had_cart | (people.value_tier[person] == 2)
    return eligible


def _logging_policy(
    eligible: NDArray[np.bool_], had_cart: NDArray[np.bool_], epsilon: float
) -> NDArray[np.float64]:
    greedy = np.where(had_cart, Action.DISCOUNT_10, Action.EMAIL_REMINDER)
    propensities: NDArray[np.float64] = epsilon * eligible / eligible.sum(axis=1, keepdims=True)
    propensities[np.arange(len(greedy)), greedy] += 1.0 - epsilon
    return propensities


def decide(  # noqa: PLR0917 - the round's arrays, passed explicitly
    people: People,
    person: NDArray[np.int64],
    time_us: NDArray[np.int64],
    session: NDArray[np.int64],
    cart_value: NDArray[np.float64],
    rng: np.random.Generator,
    epsilon: float,
) -> Decisions:
    """Decide for each row: eligibility, the logging policy's choice and propensity, the true response."""
    had_cart = cart_value > 0
    tier = people.value_tier[person]
    drawn = np.round(rng.lognormal(AMOUNT_LOG_MEAN[tier], 0.5), 2)
    amount = np.where(had_cart, cart_value, drawn)
    eligible = _eligible(people, person, had_cart)
    propensities = _logging_policy(eligible, had_cart, epsilon)
    cumulative = np.cumsum(propensities, axis=1)
    u = rng.random(len(person)) * cumulative[:, -1]
    action = np.argmax(cumulative > u[:, None], axis=1).astype(np.int8)
    rows = np.arange(len(person))
    truth = true_response(people, person, had_cart, amount)
    converted = rng.random(len(person)) < truth.p_convert[rows, action]
    return Decisions(
        person=person,
        time_us=time_us,
        session=session,
        had_cart=had_cart,
        cart_value=cart_value,
        amount=amount,
        eligible=eligible,
        propensities=propensities,
        action=action,
        propensity=propensities[rows, action],
        converted=converted,
        value=np.where(converted, np.round(truth.value[rows, action], 2), 0.0),
        p_convert=truth.p_convert,
        true_value=truth.value,
    )
