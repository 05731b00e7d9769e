"""Historic customer value, RFM and the customer-lifetime model summary (GetCustomerValue).

What counts (the contract's CustomerValue and CustomerLifetimeSummary say it in full):
- the **counted events** of a person are their events in [start, end) whose revenue is in `currency` (and
  whose name is one of `event_names`, when given), read as their current person;
- a **purchase** has a positive revenue, a **refund** a negative one; zero-value events count in neither;
  `historic_value` is the sum of every counted revenue (refunds subtract);
- a **purchase period** is a UTC calendar day whose net revenue (the sum of that day's counted revenue) is
  positive; `frequency` = periods - 1, `recency` = days from the first period to the last, `t` = days from the
  first period to the day holding `end`, `monetary_value` = the mean value of the periods after the first
  (the `lifetimes` library's `summary_data_from_transaction_data`, `freq='D'`, on those days);
- the **RFM scores** rank each purchaser among the tenant's purchasers by quintile: `ntile(5)` over the
  purchasers ordered from the worst value to the best, ties taking the quintile of the first position of
  their tie; FM = (F + M + 1) // 2; the segment is the first row of `RFM_GRID` holding (R, FM).

The per-person computation is SQL (`store/customer_value.py`, reusable by segments); this module holds the
query and result types, the grid, and the small arithmetic the response needs. No protobuf.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from enum import Enum
from typing import Protocol

from wayline_journeys.analytics import Population
from wayline_journeys.person_refs import IdentifierResolver, PersonRef, resolve_persons

__all__ = [
    "MAX_PERSONS",
    "RFM_GRID",
    "VALUE_QUANTILES",
    "CellSummary",
    "CustomerValueStore",
    "LifetimeSummary",
    "PageCursor",
    "PersonValue",
    "RfmSegment",
    "SegmentSummary",
    "ValuePage",
    "ValueSpec",
    "ValueSummary",
    "fm_score",
    "grid_segment",
    "mean",
    "rfm_segment",
    "segment_summaries",
    "values_of_persons",
]

MAX_PERSONS = 1_000
VALUE_QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1.0)
"""The levels GetCustomerValueSummary gives the historic value at (the contract lists them)."""
_NANO = Decimal("1e-9")


class RfmSegment(Enum):
    """The contract's RfmSegment, by the names SQL returns."""

    CHAMPIONS = "champions"
    LOYAL_CUSTOMERS = "loyal_customers"
    POTENTIAL_LOYALISTS = "potential_loyalists"
    NEW_CUSTOMERS = "new_customers"
    PROMISING = "promising"
    NEED_ATTENTION = "need_attention"
    ABOUT_TO_SLEEP = "about_to_sleep"
    AT_RISK = "at_risk"
    CANNOT_LOSE = "cannot_lose"
    HIBERNATING = "hibernating"
    LOST = "lost"
    NO_PURCHASE = "no_purchase"


# The R x FM grid of the contract's RfmSegment comments: (segment, R scores, FM scores), tried in order, the
# first row holding (R, FM) wins. The order resolves the contract's overlaps (R 3-5 with FM 3 is loyal).
RFM_GRID: tuple[tuple[RfmSegment, tuple[int, ...], tuple[int, ...]], ...] = (
    (RfmSegment.CHAMPIONS, (4, 5), (4, 5)),
    (RfmSegment.LOYAL_CUSTOMERS, (3, 4, 5), (3, 4, 5)),
    (RfmSegment.POTENTIAL_LOYALISTS, (4, 5), (2, 3)),
    (RfmSegment.NEW_CUSTOMERS, (5,), (1,)),
    (RfmSegment.PROMISING, (4,), (1,)),
    (RfmSegment.NEED_ATTENTION, (3,), (2, 3)),
    (RfmSegment.ABOUT_TO_SLEEP, (3,), (1,)),
    (RfmSegment.AT_RISK, (1, 2), (3, 4)),
    (RfmSegment.CANNOT_LOSE, (1, 2), (5,)),
    (RfmSegment.HIBERNATING, (1, 2), (2,)),
    (RfmSegment.LOST, (1, 2), (1,)),
)


def fm_score(frequency_score: int, monetary_score: int) -> int:
    """The combined FM score: the mean of F and M, rounded half up."""
    return (frequency_score + monetary_score + 1) // 2


def rfm_segment(recency_score: int, frequency_score: int, monetary_score: int) -> RfmSegment:
    """The segment of three scores from 1 to 5; NO_PURCHASE when there are none (scores 0)."""
    return grid_segment(recency_score, fm_score(frequency_score, monetary_score))


def grid_segment(recency_score: int, fm: int) -> RfmSegment:
    """The segment of RFM_GRID's cell (R, FM); NO_PURCHASE outside the grid (scores 0)."""
    for segment, recency, combined in RFM_GRID:
        if recency_score in recency and fm in combined:
            return segment
    return RfmSegment.NO_PURCHASE


def mean(total: Decimal, count: int) -> Decimal:
    """`total / count` rounded half to even to the nano (Money's precision)."""
    return (total / count).quantize(_NANO, rounding=ROUND_HALF_EVEN)


@dataclass(frozen=True)
class ValueSpec:
    """Which events count: the tenant's events with revenue in `currency`, with a name in `event_names` (any
    name when empty), and a timestamp in [start, end). `end` is always set: the request's end, or the time of
    the request when the range has none. This is all the per-person SQL needs."""

    currency: str
    end: datetime
    start: datetime | None = None
    event_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class LifetimeSummary:
    """The `lifetimes` summary of one person, in days; see the module docstring."""

    purchase_periods: int
    frequency: int
    recency: int
    t: int
    repeat_value: Decimal
    """The summed value of the purchase periods after the first."""

    @property
    def monetary_value(self) -> Decimal:
        return mean(self.repeat_value, self.frequency) if self.frequency else Decimal(0)


@dataclass(frozen=True)
class PersonValue:
    """One person's value. `person_id` is empty for an identifier no event carries."""

    person_id: str
    historic_value: Decimal = Decimal(0)
    purchase_count: int = 0
    first_purchase_time: datetime | None = None
    last_purchase_time: datetime | None = None
    recency_days: int | None = None
    recency_score: int = 0
    frequency_score: int = 0
    monetary_score: int = 0
    segment: RfmSegment = RfmSegment.NO_PURCHASE
    lifetime: LifetimeSummary | None = None

    @property
    def average_order_value(self) -> Decimal | None:
        return mean(self.historic_value, self.purchase_count) if self.purchase_count else None


@dataclass(frozen=True)
class PageCursor:
    """Bulk pages run by decreasing historic value, then increasing person id; a page resumes after this."""

    historic_value: Decimal
    person_id: str


@dataclass(frozen=True)
class ValuePage:
    values: list[PersonValue]
    total_size: int
    more: bool


@dataclass(frozen=True)
class CellSummary:
    """The purchasers of one cell of the RFM grid: recency score by FM score, each 1 to 5."""

    recency_score: int
    fm_score: int
    persons: int
    historic_value: Decimal
    purchase_count: int
    recency_days: int
    """Their days since their last purchase, summed (for the segments' means)."""

    @property
    def segment(self) -> RfmSegment:
        return grid_segment(self.recency_score, self.fm_score)


@dataclass(frozen=True)
class SegmentSummary:
    segment: RfmSegment
    persons: int
    historic_value: Decimal
    purchase_count: int
    average_recency_days: float


@dataclass(frozen=True)
class ValueSummary:
    """A population's purchasers, summarised. `quantiles` holds the historic value at each level of
    VALUE_QUANTILES, empty without purchasers."""

    purchasers: int
    historic_value: Decimal
    purchase_count: int
    cells: list[CellSummary]
    quantiles: list[Decimal]


def segment_summaries(cells: Sequence[CellSummary]) -> list[SegmentSummary]:
    """The cells gathered by their segment, in RfmSegment's order; segments without a purchaser left out."""
    found = []
    for segment in RfmSegment:
        mine = [c for c in cells if c.segment is segment]
        persons = sum(c.persons for c in mine)
        if persons:
            found.append(
                SegmentSummary(
                    segment,
                    persons,
                    sum((c.historic_value for c in mine), Decimal(0)),
                    sum(c.purchase_count for c in mine),
                    sum(c.recency_days for c in mine) / persons,
                )
            )
    return found


class CustomerValueStore(IdentifierResolver, Protocol):
    def values(self, tenant: str, spec: ValueSpec, person_ids: Sequence[str]) -> dict[str, PersonValue]:
        """The value of each of `person_ids` that has a counted event (the others are missing)."""
        ...

    def page(
        self,
        tenant: str,
        spec: ValueSpec,
        population: Population,
        after: PageCursor | None,
        limit: int,
        *,
        rfm_segments: Sequence[RfmSegment] = (),
    ) -> ValuePage:
        """Up to `limit` purchasers of `population` after `after`, by decreasing historic value; only those in
        one of `rfm_segments` when it is not empty."""
        ...

    def summary(self, tenant: str, spec: ValueSpec, population: Population) -> ValueSummary:
        """The purchasers of `population` summarised: per cell of the RFM grid, and overall."""
        ...


def values_of_persons(
    store: CustomerValueStore, tenant: str, spec: ValueSpec, refs: Sequence[PersonRef]
) -> list[PersonValue]:
    """One value per ref, in order: identifiers resolve to the current person of the latest event carrying
    them; persons without counted events get zeros (and NO_PURCHASE)."""
    person_ids = resolve_persons(store, tenant, refs)
    found = store.values(tenant, spec, sorted({p for p in person_ids if p}))
    return [found.get(p) or PersonValue(person_id=p) for p in person_ids]
