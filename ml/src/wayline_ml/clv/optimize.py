"""Maximum likelihood in log-parameter space, shared by BG/NBD and Gamma-Gamma.

Parameters are positive, so the optimiser works on their logarithms: unconstrained, and on one scale whether
alpha counts days or years. L-BFGS-B with numerical gradients is plenty for three or four parameters (each
likelihood evaluation is one vectorised pass over the customers). The bounds keep every parameter within
e^±15, so that data a model cannot describe (a handful of customers, nobody who came back) ends at a bound
instead of overflowing; `converged` says whether the optimiser stopped on its tolerance."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize

__all__ = ["LOG_BOUND", "Optimum", "maximise"]

LOG_BOUND = 15.0


@dataclass(frozen=True, slots=True)
class Optimum:
    x: npt.NDArray[np.float64]
    converged: bool
    iterations: int


def maximise(
    negative_mean_log_likelihood: Callable[[npt.NDArray[np.float64]], float],
    start: npt.NDArray[np.float64],
) -> Optimum:
    """The log-parameters minimising `negative_mean_log_likelihood` (the mean over customers, so that the
    tolerance does not depend on how many there are), from `start`."""

    def objective(log_params: npt.NDArray[np.float64]) -> float:
        # A trial step far out may overflow; it is answered as a very bad value, not warned about.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            value = negative_mean_log_likelihood(log_params)
        return value if np.isfinite(value) else 1e300

    result = minimize(
        objective,
        np.asarray(start, dtype=np.float64),
        method="L-BFGS-B",
        bounds=[(-LOG_BOUND, LOG_BOUND)] * len(start),
        options={"maxiter": 2000, "ftol": 1e-15, "gtol": 1e-10},
    )
    return Optimum(
        x=np.asarray(result.x, dtype=np.float64), converged=bool(result.success), iterations=result.nit
    )
