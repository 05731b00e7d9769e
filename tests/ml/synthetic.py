"""A seeded synthetic training table with a planted heterogeneous effect, for tests and benchmarks until the
journey generator lands.

Each row is a different customer (so held-out rows are held-out customers) who got one uniformly random
action (propensity 1/k, as a logging policy that explores would). Which action converts best depends on the
customer: `price_sensitivity` high → `discount_10`, `value_tier` high → `call_back`, `app_affinity` high (with
the app installed) → `push_reminder`; `email_newsletter` is a weak uniform nudge. A policy that reads the
features can therefore beat every single action, which is what the policy tests assert.
"""

from __future__ import annotations

import numpy as np

from wayline_ml.feature_spec import declared_spec
from wayline_ml.training_table import FeatureSchema, TrainingTable, ValueType

ACTIONS = ("email_newsletter", "discount_10", "call_back", "push_reminder")
START_US = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z
BASE_FEATURES: tuple[tuple[str, str] | tuple[str, str, tuple[str, ...]], ...] = (
    ("price_sensitivity", ValueType.FLOAT),
    ("value_tier", ValueType.CATEGORY, ("low", "mid", "high")),
    ("app_affinity", ValueType.FLOAT),
    ("has_app", ValueType.BOOL),
    ("sessions_30d", ValueType.INT),
)


def schema(noise_features: int = 1) -> FeatureSchema:
    noise = tuple((f"noise_{i}", ValueType.FLOAT) for i in range(noise_features))
    return FeatureSchema(declared_spec("synthetic", "1", BASE_FEATURES + noise))


def make_table(rows: int = 6000, *, seed: int = 0, noise_features: int = 1) -> TrainingTable:
    """`rows` logged decisions, one per customer, sorted by time, about 3 a minute."""
    rng = np.random.default_rng(seed)
    price = rng.uniform(0, 1, rows)
    tier = rng.integers(0, 3, rows).astype(np.float64)
    affinity = rng.uniform(0, 1, rows)
    has_app = (rng.uniform(0, 1, rows) < 0.7).astype(np.float64)
    sessions = rng.poisson(3, rows).astype(np.float64)
    noise = rng.normal(size=(rows, noise_features))
    action = rng.integers(0, len(ACTIONS), rows)

    # Missing values (NaN) where a real feature would be unknown: no sessions tracked, no app signal.
    sessions[rng.uniform(0, 1, rows) < 0.05] = np.nan
    affinity_seen = np.where(rng.uniform(0, 1, rows) < 0.05, np.nan, affinity)

    effect = np.stack(
        [
            np.full(rows, 0.2),  # email_newsletter: a small nudge for everyone
            3.5 * price - 1.5,  # discount_10: only the price-sensitive respond
            1.6 * tier - 1.4,  # call_back: the high tier responds
            3.5 * affinity * has_app - 1.5,  # push_reminder: app users who like the app
        ],
        axis=1,
    )
    logit = -1.6 + 0.08 * np.nan_to_num(sessions, nan=0.0) + effect[np.arange(rows), action]
    converted = (rng.uniform(0, 1, rows) < 1 / (1 + np.exp(-logit))).astype(np.int8)
    basket = 40.0 + 30.0 * tier + rng.gamma(4.0, 5.0, rows)
    basket = np.where(action == 1, basket * 0.9, basket)  # the discount costs a tenth of the basket
    value = np.where(converted == 1, np.round(basket, 2), 0.0)

    features = np.column_stack([price, tier, affinity_seen, has_app, sessions, noise]).astype(np.float32)
    times = START_US + np.cumsum(rng.integers(1, 40_000_000, rows)).astype(np.int64)
    return TrainingTable(
        schema=schema(noise_features),
        actions=ACTIONS,
        features=features,
        person_id=np.array([f"p{seed}-{i}" for i in range(rows)]),
        decision_time_us=times,
        action=np.array(ACTIONS)[action],
        propensity=np.full(rows, 1 / len(ACTIONS)),
        converted=converted,
        value=value,
    ).validate()
