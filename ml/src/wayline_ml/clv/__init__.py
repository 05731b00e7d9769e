"""Predicted customer value: BG/NBD (purchases, P(alive)) and Gamma-Gamma (value per purchase) fitted on the
journeys service's lifetime summaries, in numpy and scipy (ADR 19).

- `bgnbd`, `gamma_gamma`: each model's likelihood, fit and predictions, on arrays;
- `model`: both together, `fit(summaries)` and `predict(model, summaries, horizons)`;
- `simulate`: customers drawn from the models, for tests and the demo;
- `store`: lifetime summaries read in bulk from JourneyService.GetCustomerValue, and a person's identifier
  from IdentityService, through the gateway;
- `traits`: the predictions as identify events, sent through ingest with ids fixed by the fit;
- `run`: the whole job that `wayline ml clv` runs.
"""

from wayline_ml.clv.model import (
    MODEL,
    ClvModel,
    ClvPredictions,
    LifetimeSummaries,
    fit,
    frequency_value_correlation,
    predict,
)

__all__ = [
    "MODEL",
    "ClvModel",
    "ClvPredictions",
    "LifetimeSummaries",
    "fit",
    "frequency_value_correlation",
    "predict",
]
