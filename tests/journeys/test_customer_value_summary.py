"""GetCustomerValueSummary over gRPC against the plain-Python reference (customer_value_reference.py) on
generated purchase logs, and against GetCustomerValue's bulk listing of the same request: purchasers, value,
purchases, per RFM segment and grid cell, quantiles; a population; no purchaser; refusals; tenants."""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import grpc
import pytest

from tests.breadth import seeds
from tests.journeys.conftest import Journeys, field_violations, new_person
from tests.journeys.customer_value_reference import Expected, Purchase, reference
from tests.journeys.test_get_customer_value import (
    END,
    START,
    amount,
    bulk,
    generated_log,
    on_pro_plan,
    request,
    revenue_event,
)
from wayline.common.timestamps import to_datetime, to_timestamp
from wayline.event.v1 import event_pb2
from wayline.journeys.v1 import analytics_pb2, customer_value_pb2
from wayline.journeys.v1 import journeys_service_pb2 as pb

LEVELS = [0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1.0]


def summary_request(**fields: object) -> pb.GetCustomerValueSummaryRequest:
    found = pb.GetCustomerValueSummaryRequest(**{"currency_code": "EUR", **fields})  # type: ignore[arg-type]
    if "time_range" not in fields:
        found.time_range.start.CopyFrom(to_timestamp(START))
        found.time_range.end.CopyFrom(to_timestamp(END))
    return found


def summary_of(
    journeys: Journeys, call: pb.GetCustomerValueSummaryRequest
) -> pb.GetCustomerValueSummaryResponse:
    response: pb.GetCustomerValueSummaryResponse = journeys.stub.GetCustomerValueSummary(
        call, metadata=journeys.metadata, timeout=30
    )
    return response


def segment_name(value: customer_value_pb2.RfmSegment.ValueType) -> str:
    return customer_value_pb2.RfmSegment.Name(value).removeprefix("RFM_SEGMENT_")


def expected_summary(purchasers: list[Expected]) -> dict[str, object]:
    """The summary of `purchasers` computed plainly: what the response must say, in its shape."""
    cells: dict[tuple[int, int], list[Expected]] = defaultdict(list)
    segments: dict[str, list[Expected]] = defaultdict(list)
    for e in purchasers:
        cells[(e.recency_score, (e.frequency_score + e.monetary_score + 1) // 2)].append(e)
        segments[e.segment].append(e)
    order = [segment_name(v) for v in customer_value_pb2.RfmSegment.values()]
    values = sorted(e.historic_value for e in purchasers)
    return {
        "purchasers": len(purchasers),
        "historic_value": sum((e.historic_value for e in purchasers), Decimal(0)),
        "purchase_count": sum(e.purchase_count for e in purchasers),
        "segments": [
            (
                name,
                len(members),
                sum((m.historic_value for m in members), Decimal(0)),
                sum(m.purchase_count for m in members),
                sum(m.recency_days or 0 for m in members) / len(members),
            )
            for name in order
            if (members := segments.get(name))
        ],
        "cells": [
            (r, fm, members[0].segment, len(members), sum((m.historic_value for m in members), Decimal(0)))
            for (r, fm), members in sorted(cells.items())
        ],
        "quantiles": [values[min(int(q * len(values)), len(values) - 1)] for q in LEVELS] if values else [],
    }


def as_summary(response: pb.GetCustomerValueSummaryResponse) -> dict[str, object]:
    assert {
        m.currency_code for m in [response.historic_value, *(q.value for q in response.value_quantiles)]
    } == {"EUR"}
    assert [q.quantile for q in response.value_quantiles] in ([], LEVELS)
    return {
        "purchasers": response.purchasers,
        "historic_value": amount(response.historic_value),
        "purchase_count": response.purchase_count,
        "segments": [
            (
                segment_name(s.segment),
                s.persons,
                amount(s.historic_value),
                s.purchase_count,
                pytest.approx(s.average_recency_days),
            )
            for s in response.segments
        ],
        "cells": [
            (c.recency_score, c.fm_score, segment_name(c.segment), c.persons, amount(c.historic_value))
            for c in response.cells
        ],
        "quantiles": [amount(q.value) for q in response.value_quantiles],
    }


@pytest.mark.parametrize("seed", seeds(1, 2))
def test_the_summary_matches_the_reference_per_segment_cell_and_quantile(
    journeys: Journeys, seed: int
) -> None:
    log = generated_log(random.Random(seed), persons=60)
    journeys.write(*(revenue_event(p) for p in log))
    purchasers = [e for e in reference(log, "EUR", END, START).values() if e.purchase_count]

    response = summary_of(journeys, summary_request())

    assert as_summary(response) == expected_summary(purchasers)
    assert len(response.segments) >= 4, "the log gives several segments"
    assert to_datetime(response.end_time) == END
    # The same purchasers as GetCustomerValue lists for the same request.
    assert response.purchasers == bulk(journeys, request(page_size=1000))[0].total_size


def test_the_summary_of_a_population_keeps_the_scores_its_members_hold_tenant_wide(
    journeys: Journeys,
) -> None:
    log = generated_log(random.Random(5), persons=40)
    journeys.write(*(revenue_event(p) for p in log))
    expected = reference(log, "EUR", END, START)
    pro = sorted({p.person for p in log})[::3]
    population = on_pro_plan(journeys, pro)

    response = summary_of(journeys, summary_request(population=population))

    nobody = summary_request(population=analytics_pb2.Population(segments=["segments/no-such-segment"]))
    assert summary_of(journeys, nobody).purchasers == 0  # a segment that does not exist selects no one
    members = [e for p, e in expected.items() if p in pro and e.purchase_count]
    assert 0 < len(members) < len([e for e in expected.values() if e.purchase_count])
    assert as_summary(response) == expected_summary(members)


def test_the_summary_counts_only_named_purchase_events(journeys: Journeys) -> None:
    log = generated_log(random.Random(11), persons=30)
    journeys.write(*(revenue_event(p) for p in log))
    names = ["Subscription Renewed"]

    response = summary_of(journeys, summary_request(purchase_event_names=names))

    purchasers = [e for e in reference(log, "EUR", END, START, names).values() if e.purchase_count]
    assert purchasers
    assert as_summary(response) == expected_summary(purchasers)


def test_a_summary_without_purchasers_says_so(journeys: Journeys) -> None:
    person = new_person()
    journeys.write(
        revenue_event(Purchase(person, START + timedelta(days=1), Decimal(-15))),  # a refund only
        revenue_event(Purchase(person, START + timedelta(days=2), Decimal(30), currency="USD")),
    )

    response = summary_of(journeys, summary_request())

    assert (response.purchasers, response.purchase_count) == (0, 0)
    assert response.historic_value == event_pb2.Money(currency_code="EUR")
    assert (list(response.segments), list(response.cells), list(response.value_quantiles)) == ([], [], [])
    assert summary_of(journeys, summary_request(currency_code="USD")).purchasers == 1


def test_a_summary_with_no_end_measures_recency_to_now(journeys: Journeys) -> None:
    now = datetime.now(UTC)
    log = [Purchase(new_person(), now - timedelta(days=d, hours=1), Decimal(10 + d)) for d in range(4)]
    journeys.write(*(revenue_event(p) for p in log))

    response = summary_of(journeys, pb.GetCustomerValueSummaryRequest(currency_code="EUR"))

    assert now <= to_datetime(response.end_time) <= datetime.now(UTC)
    assert response.purchasers == 4
    assert sum(s.average_recency_days * s.persons for s in response.segments) == pytest.approx(0 + 1 + 2 + 3)


def test_a_tenant_summarises_only_its_own_purchasers(journeys: Journeys) -> None:
    other = journeys.for_tenant(f"tenant-{uuid.uuid4().hex[:10]}")
    journeys.write(revenue_event(Purchase(new_person(), START + timedelta(days=3), Decimal(40))))
    other.write(revenue_event(Purchase(new_person(), START + timedelta(days=4), Decimal(7))))

    mine, theirs = summary_of(journeys, summary_request()), summary_of(other, summary_request())

    assert (mine.purchasers, amount(mine.historic_value)) == (1, Decimal(40))
    assert (theirs.purchasers, amount(theirs.historic_value)) == (1, Decimal(7))


def test_the_summary_refuses_invalid_requests(journeys: Journeys) -> None:
    bad = pb.GetCustomerValueSummaryRequest(
        currency_code="euro", purchase_event_names=["Order Completed", ""]
    )
    bad.population.person_filters.add(property="plan", operator=analytics_pb2.FILTER_OPERATOR_EQUALS)
    bad.time_range.start.CopyFrom(to_timestamp(END))
    bad.time_range.end.CopyFrom(to_timestamp(START))

    with pytest.raises(grpc.RpcError) as caught:
        summary_of(journeys, bad)

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(caught.value) == {
        "currency_code": "INVALID",
        "purchase_event_names[1]": "REQUIRED",
        "time_range": "INVALID_RANGE",
        "population.person_filters[0].property": "INVALID",  # not a person. path
        "population.person_filters[0].values": "INVALID",  # EQUALS without a value
    }
    with pytest.raises(grpc.RpcError) as missing:
        summary_of(journeys, pb.GetCustomerValueSummaryRequest())
    assert field_violations(missing.value) == {"currency_code": "REQUIRED"}
