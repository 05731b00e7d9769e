"""GetCustomerValue and GetCustomerValueSummary: request → query, with every bad field reported; values →
response; the page token.

A bulk page token carries the keyset cursor (the last historic value and person id), the observation end the
first page used (so "until now" stays one instant across pages), and a digest of the tenant and of every
request field but `page_size` and `page_token`: a token presented with other parameters is refused.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation

from wayline.common.errors import FieldViolation, InvalidArgument
from wayline.common.paging import decode_page_token, encode_page_token, invalid_page_token, page_size
from wayline.common.timestamps import from_micros, to_micros, to_timestamp
from wayline.journeys.v1 import customer_value_pb2
from wayline.journeys.v1 import journeys_service_pb2 as pb
from wayline_journeys import analytics_converters
from wayline_journeys.analytics import Population
from wayline_journeys.converters import money
from wayline_journeys.customer_value import (
    MAX_PERSONS,
    VALUE_QUANTILES,
    PageCursor,
    PersonValue,
    RfmSegment,
    ValuePage,
    ValueSpec,
    ValueSummary,
    segment_summaries,
)
from wayline_journeys.events import is_time_us
from wayline_journeys.person_refs import PersonRef
from wayline_journeys.person_refs_converters import person_ref

__all__ = [
    "CURRENCY_CODE",
    "BulkQuery",
    "PersonsQuery",
    "customer_value_page_response",
    "customer_value_query",
    "customer_value_summary_query",
    "customer_value_summary_response",
    "customer_values_response",
    "next_page_token",
]

RPC = "GetCustomerValue"
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1_000
# ISO 4217 codes are three upper-case letters; the check is that shape (as ingest's for Money), not a list of
# codes in circulation, which would need a dependency and would refuse codes ingest already stored.
CURRENCY_CODE = re.compile(r"[A-Z]{3}")
_VALUE_LIMIT = Decimal(10) ** 29  # Decimal(38, 9), the store's historic_value: 29 digits before the point
_SEGMENTS = {s: customer_value_pb2.RfmSegment.Value(f"RFM_SEGMENT_{s.name}") for s in RfmSegment}
_SEGMENT_OF = {number: segment for segment, number in _SEGMENTS.items()}


@dataclass(frozen=True)
class PersonsQuery:
    spec: ValueSpec
    persons: tuple[PersonRef, ...]


@dataclass(frozen=True)
class BulkQuery:
    spec: ValueSpec
    population: Population
    after: PageCursor | None
    limit: int
    binding: str
    """The digest a page token of this listing must carry."""
    rfm_segments: tuple[RfmSegment, ...] = ()
    """Only purchasers in one of these segments; every segment when empty."""


def _binding(tenant: str, request: pb.GetCustomerValueRequest) -> str:
    bound = pb.GetCustomerValueRequest()
    bound.CopyFrom(request)
    bound.ClearField("page_size")
    bound.ClearField("page_token")
    digest = hashlib.sha256(tenant.encode() + b"\0" + bound.SerializeToString(deterministic=True))
    return digest.hexdigest()[:32]


def _cursor(token: str, binding: str) -> tuple[PageCursor, datetime]:
    """The cursor and observation end of a token this listing issued; INVALID_PAGE_TOKEN for anything else,
    a bound token included whose fields no page issues: an end outside Timestamp's range would overflow the
    datetime, a value that the store's Decimal(38, 9) cannot hold would fail the store's query."""
    fields = decode_page_token(token, RPC)
    person, end, historic = fields.get("p"), fields.get("e"), _historic_value(fields.get("v"))
    if fields.get("b") != binding or not isinstance(person, str) or not is_time_us(end) or historic is None:
        raise invalid_page_token(RPC)
    return PageCursor(historic, person), from_micros(end)


def _historic_value(value: object) -> Decimal | None:
    """A token's historic value, if it is the text of a value the store's Decimal(38, 9) holds."""
    try:
        found = Decimal(value) if isinstance(value, str) else None
    except InvalidOperation:
        return None
    if found is None or not found.is_finite() or abs(found) >= _VALUE_LIMIT:
        return None
    exponent = found.as_tuple().exponent
    return found if isinstance(exponent, int) and exponent >= -9 else None


def next_page_token(query: BulkQuery, page: ValuePage) -> str:
    """The token of the page after `page`; empty when `page` is the last."""
    if not page.more or not page.values:
        return ""
    last = page.values[-1]
    return encode_page_token(
        {
            "b": query.binding,
            "e": to_micros(query.spec.end),
            "v": str(last.historic_value),
            "p": last.person_id,
        }
    )


def _value_spec(
    request: pb.GetCustomerValueRequest | pb.GetCustomerValueSummaryRequest,
    now: datetime,
    violations: list[FieldViolation],
) -> ValueSpec:
    """The fields both RPCs share (currency, range, purchase names) as a spec; each bad one reported in
    `violations` (the spec is then not to be used). `now` ends a range without an end."""
    if not request.currency_code:
        violations.append(
            FieldViolation("currency_code", "an ISO 4217 code such as EUR is required", "REQUIRED")
        )
    elif not CURRENCY_CODE.fullmatch(request.currency_code):
        violations.append(
            FieldViolation(
                "currency_code", "an ISO 4217 code: three upper-case letters such as EUR", "INVALID"
            )
        )
    time_range = analytics_converters.time_range(request.time_range, "time_range", violations)
    if time_range.end is None and time_range.start is not None and time_range.start >= now:
        violations.append(
            FieldViolation(
                "time_range.start", "must be before now when the range has no end", "INVALID_RANGE"
            )
        )
    violations.extend(
        FieldViolation(f"purchase_event_names[{i}]", "must not be empty", "REQUIRED")
        for i, name in enumerate(request.purchase_event_names)
        if not name
    )
    return ValueSpec(
        currency=request.currency_code,
        end=time_range.end or now,
        start=time_range.start,
        event_names=tuple(request.purchase_event_names),
    )


def _population(
    request: pb.GetCustomerValueRequest | pb.GetCustomerValueSummaryRequest, violations: list[FieldViolation]
) -> Population:
    if not request.HasField("population"):
        return Population()
    return analytics_converters.population(request.population, "population", violations)


def customer_value_summary_query(
    request: pb.GetCustomerValueSummaryRequest, now: datetime
) -> tuple[ValueSpec, Population]:
    """Validate a summary request as GetCustomerValue's bulk mode validates the same fields."""
    violations: list[FieldViolation] = []
    spec = _value_spec(request, now, violations)
    population = _population(request, violations)
    if violations:
        raise InvalidArgument(
            "the customer value summary request is invalid; see the field violations", violations
        )
    return spec, population


def customer_value_summary_response(
    spec: ValueSpec, summary: ValueSummary
) -> pb.GetCustomerValueSummaryResponse:
    currency = spec.currency
    return pb.GetCustomerValueSummaryResponse(
        purchasers=summary.purchasers,
        historic_value=money(summary.historic_value, currency),
        purchase_count=summary.purchase_count,
        segments=[
            customer_value_pb2.RfmSegmentSummary(
                segment=_SEGMENTS[s.segment],
                persons=s.persons,
                historic_value=money(s.historic_value, currency),
                purchase_count=s.purchase_count,
                average_recency_days=s.average_recency_days,
            )
            for s in segment_summaries(summary.cells)
        ],
        cells=[
            customer_value_pb2.RfmCellSummary(
                recency_score=c.recency_score,
                fm_score=c.fm_score,
                segment=_SEGMENTS[c.segment],
                persons=c.persons,
                historic_value=money(c.historic_value, currency),
            )
            for c in summary.cells
        ],
        value_quantiles=[
            customer_value_pb2.ValueQuantile(quantile=level, value=money(value, currency))
            for level, value in zip(
                VALUE_QUANTILES if summary.quantiles else (), summary.quantiles, strict=True
            )
        ],
        end_time=to_timestamp(spec.end),
    )


def customer_value_query(
    tenant: str, request: pb.GetCustomerValueRequest, now: datetime
) -> PersonsQuery | BulkQuery:
    """Validate a request (INVALID_ARGUMENT names each bad field; FAILED_PRECONDITION for a population naming
    a segment) and turn it into a query. `now` ends a range without an end."""
    violations: list[FieldViolation] = []
    spec = _value_spec(request, now, violations)
    if request.page_size < 0:
        violations.append(FieldViolation("page_size", "must be 0 (the default) or positive", "OUT_OF_RANGE"))
    persons: list[PersonRef] = []
    if len(request.persons) > MAX_PERSONS:
        violations.append(
            FieldViolation(
                "persons", f"at most {MAX_PERSONS} persons, got {len(request.persons)}", "TOO_MANY"
            )
        )
    else:
        persons = [person_ref(r, f"persons[{i}]", violations) for i, r in enumerate(request.persons)]
    if request.persons and request.HasField("population"):
        violations.append(
            FieldViolation("population", "applies in bulk mode only: leave it unset with persons")
        )
    if request.persons and request.page_token:
        violations.append(
            FieldViolation("page_token", "applies in bulk mode only: leave it empty with persons")
        )
    if request.persons and request.rfm_segments:
        violations.append(
            FieldViolation("rfm_segments", "applies in bulk mode only: leave it empty with persons")
        )
    violations.extend(
        FieldViolation(f"rfm_segments[{i}]", "an RFM segment such as RFM_SEGMENT_AT_RISK", "INVALID")
        for i, number in enumerate(request.rfm_segments)
        if number not in _SEGMENT_OF
    )
    population = _population(request, violations)
    if violations:
        raise InvalidArgument("the customer value request is invalid; see the field violations", violations)
    if request.persons:
        return PersonsQuery(spec, tuple(persons))
    binding = _binding(tenant, request)
    after = None
    if request.page_token:
        after, end = _cursor(request.page_token, binding)
        spec = ValueSpec(spec.currency, end, spec.start, spec.event_names)
    limit = page_size(request.page_size, default=DEFAULT_PAGE_SIZE, maximum=MAX_PAGE_SIZE)
    chosen = tuple(dict.fromkeys(_SEGMENT_OF[number] for number in request.rfm_segments))
    return BulkQuery(spec, population, after, limit, binding, chosen)


def _value_pb(value: PersonValue, currency: str) -> customer_value_pb2.CustomerValue:
    found = customer_value_pb2.CustomerValue(
        person_id=value.person_id,
        historic_value=money(value.historic_value, currency),
        purchase_count=value.purchase_count,
        recency_score=value.recency_score,
        frequency_score=value.frequency_score,
        monetary_score=value.monetary_score,
        rfm_segment=_SEGMENTS[value.segment],
    )
    if value.average_order_value is not None:
        found.average_order_value.CopyFrom(money(value.average_order_value, currency))
    if value.first_purchase_time is not None:
        found.first_purchase_time.CopyFrom(to_timestamp(value.first_purchase_time))
    if value.last_purchase_time is not None:
        found.last_purchase_time.CopyFrom(to_timestamp(value.last_purchase_time))
    if value.recency_days is not None:
        found.recency_days = value.recency_days
    if value.lifetime is not None:
        found.lifetime_summary.CopyFrom(
            customer_value_pb2.CustomerLifetimeSummary(
                period_unit=customer_value_pb2.LIFETIME_PERIOD_UNIT_DAY,
                purchase_periods=value.lifetime.purchase_periods,
                frequency=value.lifetime.frequency,
                recency=value.lifetime.recency,
                t=value.lifetime.t,
                monetary_value=money(value.lifetime.monetary_value, currency),
            )
        )
    return found


def customer_values_response(query: PersonsQuery, values: list[PersonValue]) -> pb.GetCustomerValueResponse:
    return pb.GetCustomerValueResponse(values=[_value_pb(v, query.spec.currency) for v in values])


def customer_value_page_response(query: BulkQuery, page: ValuePage) -> pb.GetCustomerValueResponse:
    return pb.GetCustomerValueResponse(
        values=[_value_pb(v, query.spec.currency) for v in page.values],
        next_page_token=next_page_token(query, page),
        total_size=page.total_size,
    )
