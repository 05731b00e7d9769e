"""A generated population's decisions as a training table, with features the journey shows at decision time.

Stand-in for the point-in-time training export from the journey store (the feature spec, issue 10 item 2):
the features are computed here from the generated events, strictly before each decision's time, and from
nothing a real journey would not show (the latent traits stay hidden). They are the behaviours the traits
drive: browsing and buying on each channel, carts and abandoned carts, order value, reactions to earlier
emails and pushes, support contacts and their tone (what sentiment enrichment gives a real journey).

Counts and sums in a trailing window use one sorted key per event (person, time), so each feature is two
`searchsorted` calls over all decisions at once: no Python loop per decision.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from wayline_ml.feature_spec import declared_spec
from wayline_ml.generator.population import Population
from wayline_ml.generator.texts import TEXT_POSITIVE
from wayline_ml.generator.vocabulary import ACTIONS, Channel, Kind
from wayline_ml.train import TrainedModels
from wayline_ml.training_table import FeatureSchema, TrainingTable, ValueType

__all__ = ["FEATURES", "TruePolicyValues", "training_table", "true_policy_values"]

_DAY_US = 86_400_000_000
_WINDOW_DAYS = 30
_TIME_BITS = 44  # µs since the population's first event: ~203 days fit; persons take the bits above

FEATURES = FeatureSchema(
    declared_spec(
        "generated-journeys",
        "0",
        (
            ("had_cart", ValueType.BOOL),
            ("cart_value", ValueType.FLOAT),
            ("web_events_30d", ValueType.INT),
            ("app_events_30d", ValueType.INT),
            ("product_views_30d", ValueType.INT),
            ("adds_30d", ValueType.INT),
            ("orders", ValueType.INT),
            ("revenue", ValueType.FLOAT),
            ("days_since_order", ValueType.FLOAT),
            ("emails_engaged_30d", ValueType.INT),
            ("pushes_opened_30d", ValueType.INT),
            ("support_contacts", ValueType.INT),
            ("negative_texts", ValueType.INT),
            ("mean_viewed_price", ValueType.FLOAT),
        ),
    )
)


class _Keyed:
    """The events a mask selects, ordered by (person, time), for window counts and sums at many points."""

    def __init__(self, person: NDArray[np.int64], time: NDArray[np.int64], values: NDArray[np.float64]):
        keys = (person << _TIME_BITS) | time
        order = np.argsort(keys, kind="stable")
        self.keys = keys[order]
        self.cumulative = np.concatenate([[0.0], np.cumsum(values[order])])

    def between(
        self, person: NDArray[np.int64], start: NDArray[np.int64], end: NDArray[np.int64]
    ) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """Per point: how many selected events of `person` fall in [start, end), and the sum of their
        values."""
        low = np.searchsorted(self.keys, (person << _TIME_BITS) | np.maximum(start, 0), side="left")
        high = np.searchsorted(self.keys, (person << _TIME_BITS) | end, side="left")
        return (high - low).astype(np.int64), self.cumulative[high] - self.cumulative[low]

    def last_before(self, person: NDArray[np.int64], end: NDArray[np.int64]) -> NDArray[np.int64]:
        """Per point: the time of `person`'s last selected event before `end`; -1 when none."""
        high = np.searchsorted(self.keys, (person << _TIME_BITS) | end, side="left")
        previous = self.keys[np.maximum(high - 1, 0)] if len(self.keys) else np.zeros_like(person)
        same = (high > 0) & ((previous >> _TIME_BITS) == person)
        return np.where(same, previous & ((1 << _TIME_BITS) - 1), -1)


def training_table(population: Population) -> TrainingTable:
    """The population's logged decisions, in time order, with FEATURES as of each decision's time."""
    events, decisions = population.events, population.decisions
    origin = int(np.concatenate([events.time_us, decisions.time_us]).min(initial=np.iinfo(np.int64).max))
    e_time = events.time_us - origin
    d_time = decisions.time_us - origin
    if max(int(e_time.max(initial=0)), int(d_time.max(initial=0))) >= 1 << _TIME_BITS:
        raise ValueError("the population spans more than ~200 days; generate shorter periods")
    person = decisions.person
    since = d_time - _WINDOW_DAYS * _DAY_US
    ever = np.zeros_like(d_time)
    ones = np.ones(len(e_time))

    def counted(
        mask: NDArray[np.bool_], start: NDArray[np.int64], values: NDArray[np.float64] = ones
    ) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        return _Keyed(events.person[mask], e_time[mask], values[mask]).between(person, start, d_time)

    kind, channel = events.kind, events.channel
    orders = kind == Kind.ORDER
    order_count, revenue = counted(orders, ever, np.nan_to_num(events.revenue))
    last_order = _Keyed(events.person[orders], e_time[orders], ones[orders]).last_before(person, d_time)
    views = kind == Kind.PRODUCT
    view_count, viewed_price = counted(views, since, np.nan_to_num(events.price))
    texts = events.text >= 0
    negative = np.zeros(len(e_time), dtype=np.bool_)
    negative[texts] = ~TEXT_POSITIVE[events.text[texts]]
    columns = [
        decisions.had_cart.astype(np.float64),
        np.where(decisions.had_cart, decisions.cart_value, np.nan),
        counted(channel == Channel.WEB, since)[0],
        counted(channel == Channel.MOBILE_APP, since)[0],
        view_count,
        counted(kind == Kind.ADDED, since)[0],
        order_count,
        revenue,
        np.where(last_order >= 0, (d_time - last_order) / _DAY_US, np.nan),
        counted((kind == Kind.EMAIL_OPENED) | (kind == Kind.EMAIL_CLICKED), since)[0],
        counted(kind == Kind.PUSH_OPENED, since)[0],
        counted((kind == Kind.CHAT) | (kind == Kind.CALL), ever)[0],
        counted(negative, ever)[0],
        np.where(view_count > 0, viewed_price / np.maximum(view_count, 1), np.nan),
    ]
    order = np.argsort(decisions.time_us, kind="stable")
    features = np.column_stack(columns).astype(np.float32)[order]
    actions = ACTIONS
    return TrainingTable(
        schema=FEATURES,
        actions=actions,
        features=features,
        person_id=np.array([f"{population.config.prefix}-p{p}" for p in person[order]]),
        decision_time_us=decisions.time_us[order].astype(np.int64),
        action=np.array(actions)[decisions.action[order].astype(np.int64)],
        propensity=decisions.propensity[order].astype(np.float64),
        converted=decisions.converted[order].astype(np.int8),
        value=np.where(decisions.converted[order], decisions.value[order], 0.0).astype(np.float64),
    )


@dataclass(frozen=True)
class TruePolicyValues:
    """Mean true expected value per held-out decision (the generator's ground truth, not an estimate)."""

    learned: float
    random: float  # uniform over the eligible actions
    best_single: float  # the best one action, where eligible (doing nothing elsewhere)
    best_single_action: str
    oracle: float  # the best eligible action for every decision


def true_policy_values(
    population: Population, models: TrainedModels, table: TrainingTable
) -> TruePolicyValues:
    """Judge `models` (trained on `training_table(population)`) on its held-out decisions against what each
    action truly would have earned. Like the decision service, the learned policy ranks eligible actions
    only."""
    decisions = population.decisions
    order = np.argsort(decisions.time_us, kind="stable")
    holdout = models.split.holdout(table)
    rows = order[len(table) - len(holdout) :]
    truth = (decisions.p_convert * decisions.true_value)[rows]
    eligible = decisions.eligible[rows]
    predicted = np.where(eligible, models.score(holdout.features).expected_value, -np.inf)
    learned = float(truth[np.arange(len(rows)), np.argmax(predicted, axis=1)].mean())
    random = float((np.where(eligible, truth, 0.0).sum(axis=1) / eligible.sum(axis=1)).mean())
    singles = [
        float(np.where(eligible[:, a], truth[:, a], truth[:, 0]).mean()) for a in range(truth.shape[1])
    ]
    best = int(np.argmax(singles))
    oracle = float(np.where(eligible, truth, -np.inf).max(axis=1).mean())
    return TruePolicyValues(learned, random, singles[best], ACTIONS[best], oracle)
