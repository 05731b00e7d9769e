"""GetCustomerValue written out plainly in Python, to compare the RPC with.

The lifetime summary follows the `lifetimes` library's `summary_data_from_transaction_data` (freq='D',
monetary_value_col set, include_first_transaction False) step by step: transactions are cut to their UTC
day, values of the same customer and day are summed, the first day of each customer is marked, frequency is
the count of days minus one, T and recency are day differences from the first day (to the observation end's
day, and to the last day), and monetary_value is the mean of the day values except the first, or 0. Before
that, our documented rule picks the days: only days whose net value is positive are transactions.

RFM: ntile(5) over the purchasers sorted from the worst value to the best, every member of a tie taking the
bucket of the tie's first position, FM = mean of F and M rounded half up, and the contract's grid.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

__all__ = ["Expected", "Purchase", "Summary", "quintiles", "reference", "segment"]


@dataclass(frozen=True)
class Purchase:
    """A revenue event as its current person sees it."""

    person: str
    at: datetime
    amount: Decimal
    currency: str = "EUR"
    name: str = "Order Completed"


@dataclass(frozen=True)
class Summary:
    purchase_periods: int
    frequency: int
    recency: int
    t: int
    monetary_value: Decimal


@dataclass(frozen=True)
class Expected:
    person_id: str
    historic_value: Decimal = Decimal(0)
    purchase_count: int = 0
    average_order_value: Decimal | None = None
    first_purchase_time: datetime | None = None
    last_purchase_time: datetime | None = None
    recency_days: int | None = None
    recency_score: int = 0
    frequency_score: int = 0
    monetary_score: int = 0
    segment: str = "NO_PURCHASE"
    summary: Summary | None = None


def _nanos(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.000000001"), rounding=ROUND_HALF_EVEN)


def lifetimes_summary(transactions: Sequence[tuple[date, Decimal]], observation_end: date) -> Summary:
    """`summary_data_from_transaction_data` for one customer, freq='D', on (day, value) transactions."""
    per_period: dict[date, Decimal] = defaultdict(Decimal)
    for day, value in transactions:
        if day <= observation_end:
            per_period[day] += value
    days = sorted(per_period)
    first, last = days[0], days[-1]
    repeat = [per_period[d] for d in days[1:]]
    return Summary(
        purchase_periods=len(days),
        frequency=len(days) - 1,
        recency=(last - first).days,
        t=(observation_end - first).days,
        monetary_value=_nanos(sum(repeat, Decimal(0)) / len(repeat)) if repeat else Decimal(0),
    )


def quintiles(values: dict[str, Decimal | int]) -> dict[str, int]:
    """Each key's ntile(5) bucket, ordered by increasing value, ties taking their first position's bucket."""
    n = len(values)
    sizes = [n // 5 + (1 if k < n % 5 else 0) for k in range(5)]
    bucket_of_position: list[int] = []
    for k, size in enumerate(sizes):
        bucket_of_position += [k + 1] * size
    return {
        key: bucket_of_position[sum(1 for v in values.values() if v < value)] for key, value in values.items()
    }


def segment(r: int, f: int, m: int) -> str:
    """The contract's R x FM grid, first listed range first."""
    fm = (f + m + 1) // 2
    if r in (4, 5) and fm in (4, 5):
        return "CHAMPIONS"
    if r in (3, 4, 5) and fm in (3, 4, 5):
        return "LOYAL_CUSTOMERS"
    if r in (4, 5) and fm in (2, 3):
        return "POTENTIAL_LOYALISTS"
    if r == 5 and fm == 1:
        return "NEW_CUSTOMERS"
    if r == 4 and fm == 1:
        return "PROMISING"
    if r == 3 and fm in (2, 3):
        return "NEED_ATTENTION"
    if r == 3 and fm == 1:
        return "ABOUT_TO_SLEEP"
    if r in (1, 2) and fm in (3, 4):
        return "AT_RISK"
    if r in (1, 2) and fm == 5:
        return "CANNOT_LOSE"
    if r in (1, 2) and fm == 2:
        return "HIBERNATING"
    if r in (1, 2) and fm == 1:
        return "LOST"
    raise AssertionError(f"no segment for R {r}, FM {fm}")


def reference(
    purchases: Iterable[Purchase],
    currency: str,
    end: datetime,
    start: datetime | None = None,
    names: Sequence[str] = (),
) -> dict[str, Expected]:
    """The expected value of every person with a counted event."""
    counted: dict[str, list[Purchase]] = defaultdict(list)
    for p in purchases:
        if (
            p.currency == currency
            and p.at < end
            and (start is None or p.at >= start)
            and (not names or p.name in names)
        ):
            counted[p.person].append(p)
    found: dict[str, Expected] = {}
    for person, events in counted.items():
        historic = sum((p.amount for p in events), Decimal(0))
        buys = [p for p in events if p.amount > 0]
        day_values: dict[date, Decimal] = defaultdict(Decimal)
        for p in events:
            day_values[p.at.date()] += p.amount  # the timestamps are UTC
        periods = [(day, value) for day, value in day_values.items() if value > 0]
        found[person] = Expected(
            person_id=person,
            historic_value=historic,
            purchase_count=len(buys),
            average_order_value=_nanos(historic / len(buys)) if buys else None,
            first_purchase_time=min(p.at for p in buys) if buys else None,
            last_purchase_time=max(p.at for p in buys) if buys else None,
            recency_days=(end - max(p.at for p in buys)) // timedelta(days=1) if buys else None,
            summary=lifetimes_summary(periods, end.date()) if periods else None,
        )
    purchasers = {k: v for k, v in found.items() if v.purchase_count}
    r = quintiles({k: -(v.recency_days or 0) for k, v in purchasers.items()})
    f = quintiles({k: v.purchase_count for k, v in purchasers.items()})
    m = quintiles({k: v.historic_value for k, v in purchasers.items()})
    for k, v in purchasers.items():
        found[k] = Expected(
            **{
                **v.__dict__,
                "recency_score": r[k],
                "frequency_score": f[k],
                "monetary_score": m[k],
                "segment": segment(r[k], f[k], m[k]),
            }
        )
    return found
