"""What a generated population holds, in a few numbers a person can check at a glance."""

from __future__ import annotations

import numpy as np

from wayline_ml.generator.population import Population
from wayline_ml.generator.vocabulary import Kind

__all__ = ["summarize"]


def summarize(population: Population) -> dict[str, float]:
    """Counts and rates, in the order a summary table shows them."""
    e, d, people = population.events, population.decisions, population.people
    orders = e.kind == Kind.ORDER
    return {
        "persons": len(people),
        "devices": len(people.device_person),
        "sessions": int(population.schedule.count.sum()),
        "events": len(e),
        "identify events": int((e.kind == Kind.IDENTIFY).sum()),
        "orders": int(orders.sum()),
        "revenue (EUR)": round(float(np.nansum(e.revenue)), 2),
        "support texts": int((e.text >= 0).sum()),
        "decisions": len(d),
        "decision conversion rate": round(float(d.converted.mean()), 4) if len(d) else 0.0,
    }
