"""How a split's variant compares with its control: the conversion rates' relative lift, the two-sided
p-value of a two-proportion z-test (pooled variance) and the 95% confidence interval of the difference of
rates (unpooled variance), as A/B testing tools report them. Free of gRPC and of any statistics library: the
normal distribution's tail is `math.erfc`, exact to double precision, so scipy is not worth its weight here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["ALPHA", "MIN_OUTCOMES", "Comparison", "compare", "two_sided_p_value"]

ALPHA = 0.05
"""The significance level: 95% confidence."""
MIN_OUTCOMES = 5
"""Conversions and non-conversions each group needs before the normal approximation is trusted."""
_Z_95 = 1.959963984540054  # the standard normal's 97.5% quantile


@dataclass(frozen=True)
class Comparison:
    rate: float
    lift: float  # (rate - control's) / control's; 0 when the control's rate is 0
    p_value: float
    significant: bool
    difference_low: float
    difference_high: float


def two_sided_p_value(z: float) -> float:
    """P(|Z| >= |z|) for a standard normal Z."""
    return math.erfc(abs(z) / math.sqrt(2.0))


def _rate(converted: int, entered: int) -> float:
    return converted / entered if entered else 0.0


def compare(converted: int, entered: int, control_converted: int, control_entered: int) -> Comparison:
    """A variant (`converted` of `entered`) against its control."""
    rate, control = _rate(converted, entered), _rate(control_converted, control_entered)
    if not entered or not control_entered:
        return Comparison(rate, 0.0, 1.0, False, 0.0, 0.0)
    lift = (rate - control) / control if control else 0.0
    pooled = (converted + control_converted) / (entered + control_entered)
    pooled_error = math.sqrt(pooled * (1.0 - pooled) * (1.0 / entered + 1.0 / control_entered))
    p_value = two_sided_p_value((rate - control) / pooled_error) if pooled_error else 1.0
    large_enough = all(
        n >= MIN_OUTCOMES
        for n in (converted, entered - converted, control_converted, control_entered - control_converted)
    )
    error = math.sqrt(rate * (1.0 - rate) / entered + control * (1.0 - control) / control_entered)
    difference = rate - control
    return Comparison(
        rate=rate,
        lift=lift,
        p_value=p_value,
        significant=p_value < ALPHA and large_enough,
        difference_low=difference - _Z_95 * error,
        difference_high=difference + _Z_95 * error,
    )
