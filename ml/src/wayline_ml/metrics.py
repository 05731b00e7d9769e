"""How good the response model's probabilities are: ranking (AUC), fit (log loss), calibration (reliability
bins and expected calibration error). AUC and log loss come from scikit-learn; ECE is the bin-weighted mean of
|observed rate - mean prediction| over equal-width bins, which scikit-learn's `calibration_curve` does not
return with the bin counts that weighting needs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from sklearn.metrics import log_loss, roc_auc_score

__all__ = ["CalibrationBin", "ClassifierMetrics", "classifier_metrics"]


@dataclass(frozen=True, slots=True)
class CalibrationBin:
    low: float
    high: float
    rows: int
    mean_predicted: float
    observed_rate: float


@dataclass(frozen=True, slots=True)
class ClassifierMetrics:
    rows: int
    base_rate: float
    auc: float
    log_loss: float
    expected_calibration_error: float
    bins: tuple[CalibrationBin, ...]


def classifier_metrics(
    labels: npt.NDArray[np.integer], predicted: npt.NDArray[np.floating], n_bins: int = 10
) -> ClassifierMetrics:
    """AUC, log loss and calibration of `predicted` probabilities against 0/1 `labels`."""
    y = labels.astype(np.int64)
    p = predicted.astype(np.float64)
    if y.min() == y.max():
        raise ValueError("AUC needs both a converted and an unconverted row among the held-out rows")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, n_bins - 1)
    bins: list[CalibrationBin] = []
    ece = 0.0
    for b in range(n_bins):
        members = which == b
        count = int(members.sum())
        if count == 0:
            continue
        mean_p, rate = float(p[members].mean()), float(y[members].mean())
        ece += count / len(p) * abs(rate - mean_p)
        bins.append(CalibrationBin(float(edges[b]), float(edges[b + 1]), count, mean_p, rate))
    return ClassifierMetrics(
        rows=len(p),
        base_rate=float(y.mean()),
        auc=float(roc_auc_score(y, p)),
        log_loss=float(log_loss(y, p, labels=[0, 1])),
        expected_calibration_error=ece,
        bins=tuple(bins),
    )
