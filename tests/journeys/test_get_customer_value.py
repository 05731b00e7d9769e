"""GetCustomerValue over gRPC against the plain-Python reference (customer_value_reference.py), on generated
purchase logs: both modes, paging, identifiers, a merge, and the refusals."""

from __future__ import annotations

import random
import uuid
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import grpc
import pytest

from tests.breadth import extra, seeds
from tests.journeys.conftest import Journeys, field_violations, new_person, override
from tests.journeys.customer_value_reference import Expected, Purchase, Summary, reference
from wayline.common.paging import decode_page_token, encode_page_token
from wayline.common.timestamps import to_datetime, to_timestamp
from wayline.event.v1 import event_pb2
from wayline.journeys.v1 import analytics_pb2, customer_value_pb2
from wayline.journeys.v1 import journeys_service_pb2 as pb

START = datetime(2026, 5, 1, tzinfo=UTC)
END = datetime(2026, 8, 20, 15, 30, tzinfo=UTC)  # not midnight: T counts to the day holding the end
NANOS = Decimal(1_000_000_000)


def money(amount: Decimal, currency: str) -> event_pb2.Money:
    units = int(amount)
    return event_pb2.Money(currency_code=currency, units=units, nanos=int((amount - units) * NANOS))


def amount(value: event_pb2.Money) -> Decimal:
    return Decimal(value.units) + Decimal(value.nanos) / NANOS


def revenue_event(p: Purchase, *identifiers: tuple[str, str]) -> event_pb2.Event:
    """An event stored for `p.person`, with `revenue` in `p.currency`."""
    return event_pb2.Event(
        event_id=str(uuid.uuid4()),
        type=event_pb2.EVENT_TYPE_TRACK,
        name=p.name,
        channel=event_pb2.CHANNEL_WEB,
        timestamp=to_timestamp(p.at),
        received_at=to_timestamp(p.at),
        identifiers=[event_pb2.Identifier(type=t, value=v) for t, v in identifiers],
        person_id=p.person,
        revenue=money(p.amount, p.currency),
    )


def generated_log(rng: random.Random, persons: int = 40) -> list[Purchase]:
    """Purchases over random days (several on one day, same-day and later refunds, zero values, another
    currency, events before and after the range), with amounts that tie."""
    log: list[Purchase] = []
    first_day = START - timedelta(days=20)
    for _ in range(persons):
        person = new_person()
        for _ in range(rng.randint(1, 9)):
            day = first_day + timedelta(days=rng.randint(0, 130), seconds=rng.randint(0, 86_399))
            price = Decimal(rng.choice(["5", "10", "10", "20", "49.99", "120"]))
            for _ in range(rng.choice([1, 1, 1, 2, 3])):  # several purchases on one day
                log.append(Purchase(person, day + timedelta(minutes=rng.randint(0, 30)), price))
            kind = rng.random()
            if kind < 0.15:  # a refund the same day, sometimes of everything
                log.append(
                    Purchase(
                        person, day + timedelta(hours=1), -price * rng.choice([Decimal(1), Decimal("0.5")])
                    )
                )
            elif kind < 0.25:  # a refund days later
                log.append(Purchase(person, day + timedelta(days=rng.randint(1, 9)), -price))
            elif kind < 0.35:
                log.append(Purchase(person, day, Decimal(0)))
            elif kind < 0.45:
                log.append(Purchase(person, day, price, currency="USD"))
            elif kind < 0.5:
                log.append(Purchase(person, day, price, name="Subscription Renewed"))
    for _ in range(3):  # refunds or zero values only
        person = new_person()
        day = START + timedelta(days=rng.randint(0, 100))
        log.append(Purchase(person, day, Decimal(rng.choice([-15, 0]))))
    return log


def as_expected(value: customer_value_pb2.CustomerValue) -> Expected:
    """The response in the reference's terms."""
    summary = None
    if value.HasField("lifetime_summary"):
        s = value.lifetime_summary
        assert s.period_unit == customer_value_pb2.LIFETIME_PERIOD_UNIT_DAY
        summary = Summary(s.purchase_periods, s.frequency, s.recency, s.t, amount(s.monetary_value))
    return Expected(
        person_id=value.person_id,
        historic_value=amount(value.historic_value),
        purchase_count=value.purchase_count,
        average_order_value=amount(value.average_order_value)
        if value.HasField("average_order_value")
        else None,
        first_purchase_time=to_datetime(value.first_purchase_time)
        if value.HasField("first_purchase_time")
        else None,
        last_purchase_time=to_datetime(value.last_purchase_time)
        if value.HasField("last_purchase_time")
        else None,
        recency_days=value.recency_days if value.HasField("recency_days") else None,
        recency_score=value.recency_score,
        frequency_score=value.frequency_score,
        monetary_score=value.monetary_score,
        segment=customer_value_pb2.RfmSegment.Name(value.rfm_segment).removeprefix("RFM_SEGMENT_"),
        summary=summary,
    )


def request(**fields: object) -> pb.GetCustomerValueRequest:
    found = pb.GetCustomerValueRequest(**{"currency_code": "EUR", **fields})  # type: ignore[arg-type]
    if "time_range" not in fields:
        found.time_range.start.CopyFrom(to_timestamp(START))
        found.time_range.end.CopyFrom(to_timestamp(END))
    return found


def value_of(journeys: Journeys, call: pb.GetCustomerValueRequest) -> pb.GetCustomerValueResponse:
    response: pb.GetCustomerValueResponse = journeys.stub.GetCustomerValue(
        call, metadata=journeys.metadata, timeout=30
    )
    return response


def bulk(journeys: Journeys, call: pb.GetCustomerValueRequest) -> list[pb.GetCustomerValueResponse]:
    pages = []
    while True:
        pages.append(value_of(journeys, call))
        if not pages[-1].next_page_token:
            return pages
        call.page_token = pages[-1].next_page_token


def on_pro_plan(journeys: Journeys, persons: list[str]) -> analytics_pb2.Population:
    """Puts `persons` on the pro plan (an identify event's trait); the population of its persons."""
    for person in persons:
        identify = revenue_event(Purchase(person, START, Decimal(0)))
        identify.type = event_pb2.EVENT_TYPE_IDENTIFY
        identify.ClearField("revenue")
        identify.properties.update({"plan": "pro"})
        journeys.write(identify)
    plan_is_pro = analytics_pb2.PropertyFilter(
        property="person.plan", operator=analytics_pb2.FILTER_OPERATOR_EQUALS
    )
    plan_is_pro.values.add().string_value = "pro"
    return analytics_pb2.Population(person_filters=[plan_is_pro])


def refs(*person_ids: str) -> list[event_pb2.PersonRef]:
    return [event_pb2.PersonRef(person_id=p) for p in person_ids]


@pytest.mark.parametrize("seed", seeds(1, 2, 3))
def test_get_customer_value_per_person_matches_the_reference(journeys: Journeys, seed: int) -> None:
    log = generated_log(random.Random(seed))
    log.append(Purchase(log[0].person, START, Decimal(1)))  # exactly at the start: counted
    log.append(Purchase(log[0].person, END, Decimal(1)))  # exactly at the end: not counted
    journeys.write(*(revenue_event(p) for p in log))
    expected = reference(log, "EUR", END, START)
    persons = [*sorted({p.person for p in log}), new_person()]

    values = value_of(journeys, request(persons=refs(*persons))).values

    assert [as_expected(v) for v in values] == [expected.get(p) or Expected(p) for p in persons]
    if not extra(seed):  # the fixed seeds' logs give segments and repeat purchases
        assert {e.segment for e in expected.values()} - {"NO_PURCHASE"}
        assert any(e.summary and e.summary.frequency > 1 for e in expected.values())


def test_get_customer_value_bulk_pages_every_purchaser_once_by_decreasing_value(journeys: Journeys) -> None:
    log = generated_log(random.Random(7), persons=45)
    journeys.write(*(revenue_event(p) for p in log))
    expected = reference(log, "EUR", END, START)
    purchasers = sorted(
        (e for e in expected.values() if e.purchase_count), key=lambda e: (-e.historic_value, e.person_id)
    )

    pages = bulk(journeys, request(page_size=7))

    assert [as_expected(v) for page in pages for v in page.values] == purchasers
    assert [len(p.values) for p in pages[:-1]] == [7] * (len(pages) - 1)
    assert {p.total_size for p in pages} == {len(purchasers)}


def test_get_customer_value_bulk_lists_a_population_scored_among_every_purchaser(journeys: Journeys) -> None:
    log = generated_log(random.Random(5), persons=30)
    journeys.write(*(revenue_event(p) for p in log))
    expected = reference(log, "EUR", END, START)
    pro = sorted({p.person for p in log})[::3]
    population = on_pro_plan(journeys, pro)

    pages = bulk(journeys, request(population=population, page_size=3))

    listed = sorted(
        (e for p, e in expected.items() if p in pro and e.purchase_count),
        key=lambda e: (-e.historic_value, e.person_id),
    )
    assert [as_expected(v) for page in pages for v in page.values] == listed  # scores among all purchasers
    assert {p.total_size for p in pages} == {len(listed)}


def test_get_customer_value_bulk_lists_the_customers_of_chosen_rfm_segments(journeys: Journeys) -> None:
    log = generated_log(random.Random(13), persons=60)
    journeys.write(*(revenue_event(p) for p in log))
    expected = reference(log, "EUR", END, START)
    counts = Counter(e.segment for e in expected.values() if e.purchase_count)
    chosen = [segment for segment, _ in counts.most_common(2)]
    numbers = [customer_value_pb2.RfmSegment.Value(f"RFM_SEGMENT_{s}") for s in chosen]

    pages = bulk(journeys, request(rfm_segments=[*numbers, numbers[0]], page_size=4))  # a repeat is harmless

    listed = sorted(
        (e for e in expected.values() if e.purchase_count and e.segment in chosen),
        key=lambda e: (-e.historic_value, e.person_id),
    )
    assert [as_expected(v) for page in pages for v in page.values] == listed  # scores among all purchasers
    assert {p.total_size for p in pages} == {counts[chosen[0]] + counts[chosen[1]]}
    nobody = bulk(journeys, request(rfm_segments=[customer_value_pb2.RFM_SEGMENT_NO_PURCHASE]))
    assert (list(nobody[0].values), nobody[0].total_size) == ([], 0)
    # A page token is bound to the segments asked for.
    first = value_of(journeys, request(rfm_segments=numbers[:1], page_size=1))
    assert first.next_page_token
    with pytest.raises(grpc.RpcError) as caught:
        value_of(journeys, request(rfm_segments=numbers[1:], page_size=1, page_token=first.next_page_token))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_get_customer_value_counts_only_named_purchase_events(journeys: Journeys) -> None:
    log = generated_log(random.Random(11), persons=25)
    journeys.write(*(revenue_event(p) for p in log))
    names = ["Subscription Renewed"]

    pages = bulk(journeys, request(purchase_event_names=names, page_size=1000))

    expected = reference(log, "EUR", END, START, names)
    listed = sorted(
        (e for e in expected.values() if e.purchase_count), key=lambda e: (-e.historic_value, e.person_id)
    )
    assert [as_expected(v) for v in pages[0].values] == listed
    assert len(pages) == 1


def test_get_customer_value_with_no_end_measures_to_now_on_every_page(journeys: Journeys) -> None:
    now = datetime.now(UTC)
    log = [Purchase(new_person(), now - timedelta(days=d, hours=1), Decimal(10 + d)) for d in range(5)]
    journeys.write(*(revenue_event(p) for p in log))
    call = pb.GetCustomerValueRequest(currency_code="EUR", page_size=2)

    pages = bulk(journeys, call)

    values = [v for page in pages for v in page.values]
    assert [v.person_id for v in values] == [p.person for p in reversed(log)]
    assert [v.recency_days for v in values] == [4, 3, 2, 1, 0]  # to the first page's now, on every page
    assert [v.lifetime_summary.t - v.recency_days for v in values] in (
        [0] * 5,
        [1] * 5,
    )  # now's day, or after


def test_get_customer_value_resolves_identifiers_to_their_current_person(journeys: Journeys) -> None:
    alice, bob, carol = new_person(), new_person(), new_person()
    at = START + timedelta(days=3)
    journeys.write(
        revenue_event(Purchase(alice, at, Decimal("19.90")), ("email", "a@example.com")),
        revenue_event(Purchase(bob, at + timedelta(days=1), Decimal(5)), ("device_id", "d-1")),
        # The device moved to carol later: the identifier names the person of its latest event.
        revenue_event(Purchase(carol, at + timedelta(days=2), Decimal(7)), ("device_id", "d-1")),
    )
    asked = [
        event_pb2.PersonRef(identifier=event_pb2.Identifier(type="email", value="a@example.com")),
        event_pb2.PersonRef(identifier=event_pb2.Identifier(type="device_id", value="d-1")),
        event_pb2.PersonRef(identifier=event_pb2.Identifier(type="email", value="nobody@example.com")),
        event_pb2.PersonRef(person_id=alice),
    ]

    values = value_of(journeys, request(persons=asked)).values

    assert [v.person_id for v in values] == [alice, carol, "", alice]
    assert [amount(v.historic_value) for v in values] == [Decimal("19.90"), Decimal(7), 0, Decimal("19.90")]
    assert values[2].rfm_segment == customer_value_pb2.RFM_SEGMENT_NO_PURCHASE


def test_get_customer_value_after_a_merge_combines_both_persons_purchases(journeys: Journeys) -> None:
    kept, merged = new_person(), new_person()
    log = [
        Purchase(kept, START + timedelta(days=1, hours=2), Decimal(30)),
        Purchase(merged, START + timedelta(days=1, hours=5), Decimal(12)),  # the same day as kept's
        Purchase(merged, START + timedelta(days=9), Decimal(8)),
        Purchase(kept, START + timedelta(days=20), Decimal(4)),
        *(Purchase(new_person(), START + timedelta(days=d), Decimal(9 * d)) for d in range(1, 8)),
    ]
    journeys.write(*(revenue_event(p) for p in log))
    before = value_of(journeys, request(persons=refs(kept, merged))).values
    journeys.apply(override(merged, kept, 1))

    values = value_of(journeys, request(persons=refs(kept, merged))).values

    as_merged = [Purchase(kept if p.person == merged else p.person, p.at, p.amount) for p in log]
    assert [as_expected(v) for v in values] == [
        reference(as_merged, "EUR", END, START)[kept],
        Expected(merged),
    ]
    assert [as_expected(v) for v in before] == [reference(log, "EUR", END, START)[p] for p in (kept, merged)]
    assert values[0].purchase_count == 4
    assert amount(values[0].historic_value) == 54
    assert values[0].lifetime_summary.purchase_periods == 3  # two persons' purchases on one day: one period


def test_get_customer_value_of_history_before_1970(journeys: Journeys) -> None:
    """Imported purchases across 1970's new year: ClickHouse's Date starts in 1970 (a 1969 purchase day was
    dated in 2149), so purchase days are Date32 (ADR 87) and the summary matches the reference."""
    shift = datetime(1969, 11, 1, tzinfo=UTC) - START
    log = [replace(p, at=p.at + shift) for p in generated_log(random.Random(4))]
    journeys.write(*(revenue_event(p) for p in log))
    start, end = START + shift, END + shift
    expected = reference(log, "EUR", end, start)
    persons = sorted({p.person for p in log})
    call = request(persons=refs(*persons))
    call.time_range.start.CopyFrom(to_timestamp(start))
    call.time_range.end.CopyFrom(to_timestamp(end))

    values = value_of(journeys, call).values

    assert [as_expected(v) for v in values] == [expected.get(p) or Expected(p) for p in persons]
    firsts = [e.first_purchase_time for e in expected.values() if e.first_purchase_time]
    assert min(firsts).year == 1969
    assert any(e.summary and e.summary.recency > 0 for e in expected.values())


def test_get_customer_value_lifetime_summary_of_a_known_log(journeys: Journeys) -> None:
    """By hand: days 0 (10 + 5 - 5), 0 again, 3 (7), 10 (refund only), 12 (8 - 8 net 0), 14 (zero only)."""
    person = new_person()
    day = datetime(2026, 7, 1, 8, tzinfo=UTC)
    amounts = [
        (0, "10"),
        (0, "5"),
        (0, "-5"),
        (3, "7"),
        (10, "-3"),
        (12, "8"),
        (12, "-8"),
        (14, "0"),
        (16, "2.5"),
    ]
    journeys.write(
        *(revenue_event(Purchase(person, day + timedelta(days=d), Decimal(a))) for d, a in amounts)
    )

    value = value_of(journeys, request(persons=refs(person))).values[0]

    end_day = END.date()
    assert value.lifetime_summary == customer_value_pb2.CustomerLifetimeSummary(
        period_unit=customer_value_pb2.LIFETIME_PERIOD_UNIT_DAY,
        purchase_periods=3,  # days 0, 3 and 16
        frequency=2,
        recency=16,
        t=(end_day - day.date()).days,
        monetary_value=money(Decimal("4.75"), "EUR"),  # (7 + 2.5) / 2
    )
    assert value.purchase_count == 5
    assert amount(value.historic_value) == Decimal("16.5")
    assert amount(value.average_order_value) == Decimal("3.3")


def test_get_customer_value_refuses_invalid_requests(journeys: Journeys) -> None:
    bad = pb.GetCustomerValueRequest(
        currency_code="eur",
        persons=[event_pb2.PersonRef(), event_pb2.PersonRef(identifier=event_pb2.Identifier(type="email"))],
        purchase_event_names=[""],
        page_token="x",
        rfm_segments=[customer_value_pb2.RFM_SEGMENT_UNSPECIFIED],
    )
    bad.population.CopyFrom(analytics_pb2.Population())
    bad.time_range.start.CopyFrom(to_timestamp(END))
    bad.time_range.end.CopyFrom(to_timestamp(START))
    with pytest.raises(grpc.RpcError) as caught:
        value_of(journeys, bad)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(caught.value) == {
        "currency_code": "INVALID",
        "persons[0]": "REQUIRED",
        "persons[1].identifier": "REQUIRED",
        "purchase_event_names[0]": "REQUIRED",
        "time_range": "INVALID_RANGE",
        "population": "INVALID",
        "page_token": "INVALID",
        "rfm_segments": "INVALID",  # bulk mode only
        "rfm_segments[0]": "INVALID",
    }
    cases: list[tuple[dict[str, Any], tuple[str, str]]] = [
        ({"currency_code": ""}, ("currency_code", "REQUIRED")),
        ({"currency_code": "EURO"}, ("currency_code", "INVALID")),
        ({"page_size": -1}, ("page_size", "OUT_OF_RANGE")),
        ({"persons": refs(*["p"] * 1001)}, ("persons", "TOO_MANY")),
    ]
    for fields, violation in cases:
        with pytest.raises(grpc.RpcError) as caught:
            value_of(journeys, request(**fields))
        assert field_violations(caught.value) == dict([violation])
    assert len(value_of(journeys, request(persons=refs(*["p"] * 1000))).values) == 1000


def test_get_customer_value_refuses_a_page_token_of_another_query(journeys: Journeys) -> None:
    journeys.write(
        *(revenue_event(Purchase(new_person(), START + timedelta(days=d), Decimal(d + 1))) for d in range(3))
    )
    token = value_of(journeys, request(page_size=1)).next_page_token
    assert token
    assert len(value_of(journeys, request(page_size=2, page_token=token)).values) == 2  # page_size may change
    for other in [
        request(page_size=1, page_token=token, currency_code="USD"),
        request(page_size=1, page_token=token, purchase_event_names=["Order Completed"]),
        request(page_size=1, page_token="e30"),  # {}
        request(page_size=1, page_token=token[:-2]),
    ]:
        with pytest.raises(grpc.RpcError) as caught:
            value_of(journeys, other)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert field_violations(caught.value) == {"page_token": "INVALID"}
    with pytest.raises(grpc.RpcError) as caught:
        value_of(journeys.for_tenant(f"{journeys.tenant}-b"), request(page_size=1, page_token=token))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize(
    "fields",
    [
        {"e": 2**62},  # micros past year 9999: the datetime overflowed (INTERNAL)
        {"e": -(2**62)},
        {"e": True},
        {"v": "NaN"},
        {"v": "1e30"},  # more than the store's Decimal(38, 9) holds
        {"v": "0.0000000001"},
    ],
    ids=["end-late", "end-early", "end-bool", "value-nan", "value-huge", "value-too-fine"],
)
def test_get_customer_value_refuses_a_bound_token_with_fields_no_page_issues(
    journeys: Journeys, fields: dict[str, object]
) -> None:
    journeys.write(
        *(revenue_event(Purchase(new_person(), START + timedelta(days=d), Decimal(d + 1))) for d in range(2))
    )
    token = value_of(journeys, request(page_size=1)).next_page_token
    forged = encode_page_token({**decode_page_token(token, "GetCustomerValue"), **fields})  # still bound
    with pytest.raises(grpc.RpcError) as caught:
        value_of(journeys, request(page_size=1, page_token=forged))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(caught.value) == {"page_token": "INVALID"}


def test_get_customer_value_of_an_unknown_segment_lists_no_one(journeys: Journeys) -> None:
    call = request(population=analytics_pb2.Population(segments=["segments/nobody-here"]))
    assert list(value_of(journeys, call).values) == []
