"""QueryFunnel and ListFunnelPersons over gRPC against the plain-Python reference (funnel_reference.py), on
generated event logs: every order, exclusions, gaps, steps of several events, event filters, breakdowns with
each attribution, histograms and samples; paging; a merge; the refusals."""

from __future__ import annotations

import random
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.protobuf import duration_pb2, struct_pb2

from tests.breadth import seeds
from tests.journeys.conftest import Journeys, field_violations, new_person, override
from tests.journeys.event_log import Ev, to_pb
from tests.journeys.funnel_reference import Exclusion, Expected, Match, Spec, Step, expected, units
from tests.journeys.segments_support import (
    assert_segments_overlap,
    built_segments,
    count,
    delete_all_segments,
)
from wayline.common.timestamps import to_timestamp
from wayline.event.v1 import event_pb2
from wayline.journeys.v1 import analytics_pb2, funnel_pb2
from wayline.journeys.v1 import journeys_service_pb2 as pb
from wayline_journeys.funnels import automatic_bounds

T0 = datetime(2026, 9, 1, 8, 0, tzinfo=UTC)
MINUTE, HOUR, DAY = 60_000_000, 3_600_000_000, 86_400_000_000
NAMES = ("A", "A", "B", "B", "C", "D", "X", "N")
CHANNELS = ("web", "email", "mobile_app")
PLANS = ("free", "pro", 3, None)


def _log(seed: int, persons: int = 36) -> list[Ev]:
    """Persons with 2 to 12 events over about three days: bursts minutes apart, some hours apart, a few
    exact ties; plans on some events and on identify events (the person's trait)."""
    rng = random.Random(seed)
    log: list[Ev] = []
    for p in range(persons):
        person = f"p{seed:02d}-{p:03d}"
        at = T0 + timedelta(minutes=rng.randint(0, 36 * 60))
        for _ in range(rng.randint(2, 12)):
            roll = rng.random()
            if roll >= 0.12:  # else an exact tie with the previous event, ordered by event id
                minutes = rng.randint(1, 50) if roll < 0.7 else rng.randint(60, 1800)
                at += timedelta(minutes=minutes, microseconds=rng.randint(0, 999_999))
            plan = rng.choice(PLANS)
            properties: dict[str, Any] = {} if plan is None else {"plan": plan}
            event_id = str(uuid.UUID(int=rng.getrandbits(128)))
            if rng.random() < 0.08:
                log.append(Ev(person, at, event_id, "identify", "", rng.choice(CHANNELS), "", properties))
            else:
                log.append(
                    Ev(person, at, event_id, "track", rng.choice(NAMES), rng.choice(CHANNELS), "", properties)
                )
    return log


def _match(rng: random.Random, names: str = "ABCD") -> Match:
    roll = rng.random()
    channels = tuple(rng.sample(CHANNELS, rng.randint(1, 2))) if roll < 0.25 else ()
    prop = ("plan", rng.choice(("free", "pro", 3))) if 0.25 <= roll < 0.35 else None
    return Match(rng.choice(names), channels, prop)


def _spec(rng: random.Random, order: str) -> Spec:
    n = rng.randint(2, 4)
    window = rng.choice((2 * HOUR, 6 * HOUR, DAY, 3 * DAY))
    steps = []
    for i in range(n):
        matches = tuple(_match(rng) for _ in range(1 if rng.random() < 0.6 else rng.randint(2, 3)))
        low, high = 0, None
        if order != "any" and i and rng.random() < 0.4:
            low = rng.choice((0, 5 * MINUTE, 30 * MINUTE))
            high = rng.choice((None, 40 * MINUTE, 3 * HOUR, 2 * DAY))
        steps.append(Step(matches, low, high))
    exclusions = []
    if order != "any" and rng.random() < 0.5:
        for _ in range(rng.randint(1, 2)):
            f = rng.randint(0, n - 2)
            exclusions.append(Exclusion((_match(rng, "XN"),), f, rng.randint(f + 1, n - 1)))
    start = end = None
    if rng.random() < 0.6:
        start = round((T0 + timedelta(hours=rng.randint(0, 24))).timestamp() * 1_000_000)
        end = start + rng.choice((6 * HOUR, DAY, 2 * DAY))
    breakdown = rng.choice(("", "", "channel", "properties.plan", "person.plan"))
    return Spec(
        steps=tuple(steps),
        order=order,
        window_us=window,
        exclusions=tuple(exclusions),
        start_us=start,
        end_us=end,
        channels=tuple(rng.sample(CHANNELS, 2)) if rng.random() < 0.2 else (),
        prop_filter=("plan", "pro") if rng.random() < 0.1 else None,
        breakdown=breakdown,
        attribution=rng.choice(("first_step", "last_step", "each_step")),
        limit=rng.choice((1, 2, 10)),
        sample=rng.choice((0, 3, 100)),
        bounds_us=rng.choice(((), (10 * MINUTE, HOUR, 5 * HOUR))),
    )


def _channel(name: str) -> event_pb2.Channel.ValueType:
    return event_pb2.Channel.Value(f"CHANNEL_{name.upper()}")


def _value(value: Any) -> struct_pb2.Value:
    return (
        struct_pb2.Value(string_value=value)
        if isinstance(value, str)
        else struct_pb2.Value(number_value=value)
    )


def _equals(key: str, value: Any) -> analytics_pb2.PropertyFilter:
    return analytics_pb2.PropertyFilter(
        property=f"properties.{key}", operator=analytics_pb2.FILTER_OPERATOR_EQUALS, values=[_value(value)]
    )


def _matcher(m: Match) -> analytics_pb2.EventMatcher:
    found = analytics_pb2.EventMatcher(event_name=m.name, channels=[_channel(c) for c in m.channels])
    if m.prop is not None:
        found.property_filters.append(_equals(*m.prop))
    return found


def _duration(micros: int) -> duration_pb2.Duration:
    found = duration_pb2.Duration()
    found.FromMicroseconds(micros)
    return found


def _request(spec: Spec) -> pb.QueryFunnelRequest:
    request = pb.QueryFunnelRequest(
        order={
            "ordered": funnel_pb2.FUNNEL_ORDER_ORDERED,
            "strict": funnel_pb2.FUNNEL_ORDER_STRICT,
            "any": funnel_pb2.FUNNEL_ORDER_ANY,
        }[spec.order],
        conversion_window=_duration(spec.window_us),
        person_sample_size=spec.sample,
        channels=[_channel(c) for c in spec.channels],
        breakdown_attribution=funnel_pb2.FunnelBreakdownAttribution.Value(
            f"FUNNEL_BREAKDOWN_ATTRIBUTION_{spec.attribution.upper()}"
        ),
        time_to_convert_bucket_bounds=[_duration(b) for b in spec.bounds_us],
    )
    for i, step in enumerate(spec.steps):
        found = funnel_pb2.FunnelStep(
            event=_matcher(step.matches[0]), any_of=[_matcher(m) for m in step.matches[1:]], label=f"s{i}"
        )
        if step.min_gap_us:
            found.min_gap_from_previous.CopyFrom(_duration(step.min_gap_us))
        if step.max_gap_us is not None:
            found.max_gap_from_previous.CopyFrom(_duration(step.max_gap_us))
        request.steps.append(found)
    for x in spec.exclusions:
        request.exclusions.append(
            funnel_pb2.FunnelExclusion(event=_matcher(x.matches[0]), from_step=x.from_step, to_step=x.to_step)
        )
    if spec.start_us is not None and spec.end_us is not None:
        request.time_range.start.FromMicroseconds(spec.start_us)
        request.time_range.end.FromMicroseconds(spec.end_us)
    if spec.prop_filter is not None:
        request.event_filters.append(_equals(*spec.prop_filter))
    if spec.breakdown == "channel":
        request.breakdown.dimension = analytics_pb2.BREAKDOWN_DIMENSION_CHANNEL
    elif spec.breakdown == "segment":
        request.breakdown.dimension = analytics_pb2.BREAKDOWN_DIMENSION_SEGMENT
        request.breakdown.segments.extend(name for name, _ in spec.segments)
    elif spec.breakdown:
        request.breakdown.dimension = analytics_pb2.BREAKDOWN_DIMENSION_PROPERTY
        request.breakdown.property = spec.breakdown
    request.breakdown.limit = spec.limit
    return request


def _micros(value: duration_pb2.Duration) -> float:
    return value.seconds * 1e6 + value.nanos / 1e3


def _check(spec: Spec, response: pb.QueryFunnelResponse, wanted: list[Expected], context: str) -> None:
    n = len(spec.steps)
    bounds = spec.bounds_us or automatic_bounds(spec.window_us)
    if not wanted:
        assert len(response.series) == 1, context
        assert all(s.count == 0 for s in response.series[0].steps), context
        return
    got_keys = [
        (s.breakdown_value.value, s.breakdown_value.other, s.breakdown_value.missing) for s in response.series
    ]
    assert got_keys == [w.key for w in wanted], context
    for series, want in zip(response.series, wanted, strict=True):
        where = f"{context} series {want.key}"
        counts = [len(r) for r in want.reached]
        assert [s.count for s in series.steps] == counts, where
        assert [s.drop_off_count for s in series.steps] == [0] + [
            counts[i - 1] - counts[i] for i in range(1, n)
        ]
        for i, step in enumerate(series.steps):
            at = f"{where} step {i}"
            assert list(step.converted_person_sample) == sorted(want.reached[i])[: spec.sample], at
            assert list(step.dropped_person_sample) == sorted(want.dropped[i])[: spec.sample], at
            if i == 0:
                assert step.conversion_rate == 1.0, at
                assert not step.time_to_convert_histogram, at
                continue
            assert step.conversion_rate == pytest.approx(counts[i] / counts[i - 1] if counts[i - 1] else 0.0)
            times = want.step_times[i]
            assert [b.count for b in step.time_to_convert_histogram] == times.histogram(bounds), at
            _check_times(
                step.HasField("average_time_to_convert"), step.average_time_to_convert, times.mean(), at
            )
            _check_times(
                step.HasField("median_time_to_convert"), step.median_time_to_convert, times.median(), at
            )
        assert [b.count for b in series.conversion_time_histogram] == want.conversion.histogram(bounds), where
        _check_times(
            series.HasField("average_conversion_time"),
            series.average_conversion_time,
            want.conversion.mean(),
            where,
        )
        _check_times(
            series.HasField("median_conversion_time"),
            series.median_conversion_time,
            want.conversion.median(),
            where,
        )


def _check_times(present: bool, got: duration_pb2.Duration, want: float | None, where: str) -> None:
    assert present == (want is not None), where
    if want is not None:
        assert abs(_micros(got) - want) <= 1.0, where


def _query(journeys: Journeys, request: pb.QueryFunnelRequest) -> pb.QueryFunnelResponse:
    response: pb.QueryFunnelResponse = journeys.stub.QueryFunnel(
        request, metadata=journeys.metadata, timeout=60
    )
    return response


@pytest.mark.parametrize("seed", seeds(1, 2))
def test_query_funnel_matches_the_reference(journeys: Journeys, seed: int) -> None:
    log = _log(seed)
    journeys.write(*(to_pb(e) for e in log))
    rng = random.Random(1000 + seed)
    for round_ in range(24):
        spec = _spec(rng, ("ordered", "strict", "any")[round_ % 3])
        context = f"seed {seed} round {round_}: {spec}"
        _check(spec, _query(journeys, _request(spec)), expected(spec, units(spec, log)), context)


def _persons(journeys: Journeys, request: pb.ListFunnelPersonsRequest) -> list[list[str]]:
    """Every page of `request`'s persons."""
    pages: list[list[str]] = []
    while True:
        response: pb.ListFunnelPersonsResponse = journeys.stub.ListFunnelPersons(
            request, metadata=journeys.metadata, timeout=60
        )
        pages.append(list(response.person_ids))
        if not response.next_page_token:
            return pages
        request.page_token = response.next_page_token


def test_list_funnel_persons_pages_every_number(journeys: Journeys) -> None:
    log = _log(7, persons=48)
    journeys.write(*(to_pb(e) for e in log))
    spec = Spec(
        steps=(Step((Match("A"),)), Step((Match("B"), Match("C"))), Step((Match("D"),))),
        window_us=3 * DAY,
        exclusions=(Exclusion((Match("X"),), 1, 2),),
        breakdown="channel",
        attribution="each_step",
        limit=2,
    )
    wanted = expected(spec, units(spec, log))
    outcome = {
        "converted": funnel_pb2.FUNNEL_PERSONS_OUTCOME_CONVERTED,
        "dropped": funnel_pb2.FUNNEL_PERSONS_OUTCOME_DROPPED,
    }
    everyone = {p for w in wanted for step in w.reached for p in step}
    assert len(everyone) > 10
    assert any(w.key[1] for w in wanted)
    for step in (1, 2):
        for kind in ("converted", "dropped"):
            request = pb.ListFunnelPersonsRequest(
                funnel=_request(spec), step_index=step, outcome=outcome[kind], page_size=3
            )
            pages = _persons(journeys, request)
            lists = [w.reached[step] if kind == "converted" else w.dropped[step] for w in wanted]
            assert [p for page in pages for p in page] == sorted({p for found in lists for p in found}), (
                step,
                kind,
            )
            assert all(len(page) <= 3 for page in pages)
            assert all(pages[:-1])
            for series, found in zip(wanted, lists, strict=True):
                request = pb.ListFunnelPersonsRequest(
                    funnel=_request(spec),
                    step_index=step,
                    outcome=outcome[kind],
                    page_size=4,
                    breakdown_value=analytics_pb2.BreakdownValue(
                        value=series.key[0], other=series.key[1], missing=series.key[2]
                    ),
                )
                assert [p for page in _persons(journeys, request) for p in page] == sorted(set(found)), (
                    step,
                    kind,
                    series.key,
                )


def test_list_funnel_persons_refuses_a_token_of_another_request(journeys: Journeys) -> None:
    journeys.write(*(to_pb(e) for e in _log(8, persons=12)))
    spec = Spec(steps=(Step((Match("A"),)), Step((Match("B"),))), window_us=3 * DAY)
    request = pb.ListFunnelPersonsRequest(funnel=_request(spec), step_index=0, page_size=1)
    response = journeys.stub.ListFunnelPersons(request, metadata=journeys.metadata, timeout=60)
    assert response.next_page_token
    other = pb.ListFunnelPersonsRequest(
        funnel=_request(spec), step_index=1, page_size=1, page_token=response.next_page_token
    )
    with pytest.raises(grpc.RpcError) as failure:
        journeys.stub.ListFunnelPersons(other, metadata=journeys.metadata, timeout=60)
    assert failure.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(failure.value) == {"page_token": "INVALID"}


def _event(
    person: str, name: str, minute: int, channel: str = "web", *identifiers: tuple[str, str]
) -> event_pb2.Event:
    at = T0 + timedelta(minutes=minute)
    return event_pb2.Event(
        event_id=str(uuid.uuid4()),
        type=event_pb2.EVENT_TYPE_TRACK,
        name=name,
        channel=_channel(channel),
        timestamp=to_timestamp(at),
        received_at=to_timestamp(at),
        person_id=person,
        identifiers=[event_pb2.Identifier(type=t, value=v) for t, v in identifiers],
    )


def _counts(response: pb.QueryFunnelResponse) -> list[int]:
    assert len(response.series) == 1
    return [s.count for s in response.series[0].steps]


def test_query_funnel_follows_a_merge(journeys: Journeys) -> None:
    """A person who viewed anonymously and bought after logging in is one converted person once identity
    merges the two."""
    anonymous, known = new_person(), new_person()
    journeys.write(
        _event(anonymous, "Viewed", 0, "web", ("anonymous_id", "a-1")),
        _event(known, "Bought", 30, "mobile_app", ("user_id", "u-1")),
    )
    spec = Spec(steps=(Step((Match("Viewed"),)), Step((Match("Bought"),))), window_us=DAY)
    assert _counts(_query(journeys, _request(spec))) == [1, 0]
    journeys.apply(override(anonymous, known, 1))
    response = _query(journeys, _request(spec))
    assert _counts(response) == [1, 1]
    assert _micros(response.series[0].steps[1].average_time_to_convert) == 30 * MINUTE
    request = pb.ListFunnelPersonsRequest(funnel=_request(spec), step_index=1)
    assert _persons(journeys, request) == [[known]]


def test_query_funnel_follows_a_split_by_identifier(journeys: Journeys) -> None:
    """An identifier-scoped override moves only the events carrying that identifier: a shared device's views
    leave the person who bought, who then converts from their own view only, and nobody is counted twice."""
    person, other = new_person(), new_person()
    journeys.write(
        _event(person, "Viewed", 0, "web", ("device_id", "shared")),
        _event(person, "Viewed", 10, "web", ("user_id", "u-1")),
        _event(person, "Bought", 20, "web", ("user_id", "u-1")),
        _event(person, "Viewed", 30, "web", ("device_id", "shared"), ("cookie", "c-1")),
    )
    spec = Spec(steps=(Step((Match("Viewed"),)), Step((Match("Bought"),))), window_us=DAY)
    response = _query(journeys, _request(spec))
    assert _counts(response) == [1, 1]
    assert _micros(response.series[0].steps[1].average_time_to_convert) == 20 * MINUTE
    journeys.apply(override(person, other, 1, ("device_id", "shared")))
    response = _query(journeys, _request(spec))
    assert _counts(response) == [2, 1]
    assert _micros(response.series[0].steps[1].average_time_to_convert) == 10 * MINUTE
    request = pb.ListFunnelPersonsRequest(funnel=_request(spec), step_index=1)
    assert _persons(journeys, request) == [[person]]
    request = pb.ListFunnelPersonsRequest(
        funnel=_request(spec), step_index=1, outcome=funnel_pb2.FUNNEL_PERSONS_OUTCOME_DROPPED
    )
    assert _persons(journeys, request) == [[other]]


def test_query_funnel_strict_ignores_filtered_out_events(journeys: Journeys) -> None:
    person = new_person()
    journeys.write(_event(person, "A", 0), _event(person, "Newsletter", 1, "email"), _event(person, "B", 2))
    spec = Spec(steps=(Step((Match("A"),)), Step((Match("B"),))), order="strict", window_us=HOUR)
    assert _counts(_query(journeys, _request(spec))) == [1, 0]
    assert _counts(_query(journeys, _request(Spec(**{**spec.__dict__, "channels": ("web",)})))) == [1, 1]


def test_query_funnel_removes_persons_with_only_excluded_attempts(journeys: Journeys) -> None:
    excluded, retried = new_person(), new_person()
    journeys.write(
        _event(excluded, "A", 0), _event(excluded, "X", 1), _event(excluded, "B", 2),
        _event(retried, "A", 0), _event(retried, "X", 1), _event(retried, "A", 2), _event(retried, "B", 3),
    )  # fmt: skip
    spec = Spec(
        steps=(Step((Match("A"),)), Step((Match("B"),))),
        window_us=HOUR,
        exclusions=(Exclusion((Match("X"),), 0, 1),),
    )
    response = _query(journeys, _request(spec))
    assert _counts(response) == [1, 1]
    assert _micros(response.series[0].steps[1].median_time_to_convert) == MINUTE  # from the second start


def _ids_in_text_order_not_uuid_order() -> tuple[str, str]:
    """Two event ids whose text sorts the first before the second, while ClickHouse's UUID order (the last 8
    bytes compared first) sorts them the other way."""
    first, second = uuid.uuid4().hex, uuid.uuid4().hex
    first = "0" + first[1:16] + "f" + first[17:]
    second = "f" + second[1:16] + "0" + second[17:]
    return str(uuid.UUID(first)), str(uuid.UUID(second))


def test_query_funnel_orders_events_of_one_microsecond_as_the_timeline_does(journeys: Journeys) -> None:
    """Events at one time come in the order of their ids' text in every read: a strict A then B converts
    exactly for the person whose timeline lists A before B."""
    in_order, reversed_ = new_person(), new_person()
    for person, (a_id, b_id) in (
        (in_order, _ids_in_text_order_not_uuid_order()),
        (reversed_, _ids_in_text_order_not_uuid_order()[::-1]),
    ):
        a, b = _event(person, "A", 0), _event(person, "B", 0)
        a.event_id, b.event_id = a_id, b_id
        journeys.write(b, a)
    assert [e.name for e in journeys.timeline(in_order)] == ["A", "B"]
    assert [e.name for e in journeys.timeline(reversed_)] == ["B", "A"]
    spec = Spec(steps=(Step((Match("A"),)), Step((Match("B"),))), order="strict", window_us=HOUR)
    assert _counts(_query(journeys, _request(spec))) == [2, 1]
    request = pb.ListFunnelPersonsRequest(funnel=_request(spec), step_index=1)
    assert _persons(journeys, request) == [[in_order]]


def _refused(journeys: Journeys, request: pb.QueryFunnelRequest) -> dict[str, str]:
    with pytest.raises(grpc.RpcError) as failure:
        journeys.stub.QueryFunnel(request, metadata=journeys.metadata, timeout=10)
    assert failure.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    return field_violations(failure.value)


def test_query_funnel_names_enums_and_times_the_contract_does_not_define(journeys: Journeys) -> None:
    """Were INTERNAL: the conversion of an unknown enum number or a time past year 9999 raised."""
    two = (Step((Match("A"),)), Step((Match("B"),)))
    request = _request(Spec(steps=two))
    request.channels.append(99)  # type: ignore[arg-type]
    request.steps[0].event.event_type = 42  # type: ignore[assignment]
    request.steps[1].event.channels.append(77)  # type: ignore[arg-type]
    request.time_range.end.seconds = 2**62
    assert _refused(journeys, request) == {
        "channels": "INVALID",
        "steps[0].event.event_type": "INVALID",
        "steps[1].event.channels": "INVALID",
        "time_range.end": "OUT_OF_RANGE",
    }


def test_query_funnel_reports_every_bad_field(journeys: Journeys) -> None:
    two = (Step((Match("A"),)), Step((Match("B"),)))
    assert _refused(journeys, _request(Spec(steps=two[:1]))) == {"steps": "OUT_OF_RANGE"}
    assert "steps" in _refused(journeys, _request(Spec(steps=two * 11)))
    request = _request(Spec(steps=two, window_us=366 * DAY, sample=101))
    request.steps[1].min_gap_from_previous.CopyFrom(_duration(2 * HOUR))
    request.steps[1].max_gap_from_previous.CopyFrom(_duration(HOUR))
    request.steps.append(funnel_pb2.FunnelStep(label="nothing"))
    request.exclusions.append(funnel_pb2.FunnelExclusion(event=_matcher(Match("X")), from_step=2, to_step=1))
    request.exclusions.append(funnel_pb2.FunnelExclusion(event=_matcher(Match("X")), from_step=0, to_step=3))
    request.time_to_convert_bucket_bounds.extend([_duration(HOUR), _duration(MINUTE)])
    request.event_filters.append(
        analytics_pb2.PropertyFilter(property="person.plan", operator=analytics_pb2.FILTER_OPERATOR_IS_SET)
    )
    request.channels.append(event_pb2.CHANNEL_UNSPECIFIED)
    assert _refused(journeys, request) == {
        "conversion_window": "OUT_OF_RANGE",
        "person_sample_size": "OUT_OF_RANGE",
        "steps[1].min_gap_from_previous": "INVALID_RANGE",
        "steps[2].event": "REQUIRED",
        "exclusions[0].from_step": "OUT_OF_RANGE",
        "exclusions[0].to_step": "OUT_OF_RANGE",
        "exclusions[1].to_step": "OUT_OF_RANGE",
        "time_to_convert_bucket_bounds": "INVALID_RANGE",
        "event_filters[0].property": "INVALID",
        "channels": "INVALID",
    }
    request = _request(Spec(steps=two, order="any", exclusions=(Exclusion((Match("X"),), 0, 1),)))
    request.steps[1].max_gap_from_previous.CopyFrom(_duration(HOUR))
    assert _refused(journeys, request) == {
        "exclusions": "INVALID",
        "steps[1].max_gap_from_previous": "INVALID",
    }
    persons = pb.ListFunnelPersonsRequest(
        funnel=_request(Spec(steps=two)), step_index=0, outcome=funnel_pb2.FUNNEL_PERSONS_OUTCOME_DROPPED
    )
    with pytest.raises(grpc.RpcError) as failure:
        journeys.stub.ListFunnelPersons(persons, metadata=journeys.metadata, timeout=10)
    assert field_violations(failure.value) == {"step_index": "INVALID"}


def _segments(journeys: Journeys, log: list[Ev]) -> tuple[tuple[str, frozenset[str]], ...]:
    """Three segments built on `log` (two that share persons, one without members) and a name that is no
    segment, each with its current members."""
    found = built_segments(
        journeys, ("did-c", count("C")), ("did-a-twice", count("A", 2)), ("did-never", count("Z"))
    )
    assert_segments_overlap(found, {e.person for e in log})
    assert not found[2][1], found
    return (*found, ("segments/no-such-segment", frozenset()))


def test_query_funnel_breaks_down_by_segment_membership(journeys: Journeys) -> None:
    """A person in several segments counts in each, a person in none in the `missing` series; every listed
    segment keeps its series whatever the limit; persons page per series."""
    log = _log(3)
    journeys.write(*(to_pb(e) for e in log))
    try:
        segments = _segments(journeys, log)
        rng = random.Random(1003)
        for round_ in range(9):
            spec = replace(
                _spec(rng, ("ordered", "strict", "any")[round_ % 3]),
                breakdown="segment",
                segments=segments,
                limit=1,
            )
            wanted = expected(spec, units(spec, log))
            _check(spec, _query(journeys, _request(spec)), wanted, f"round {round_}: {spec}")
        spec = Spec(steps=(Step((Match("A"),)), Step((Match("B"), Match("C")))), window_us=3 * DAY)
        spec = replace(spec, breakdown="segment", segments=segments, limit=1)
        wanted = expected(spec, units(spec, log))
        keys = {w.key for w in wanted}
        assert {
            ("segments/did-c", False, False),
            ("segments/did-a-twice", False, False),
            ("", False, True),
        } <= keys
        for series in wanted:
            request = pb.ListFunnelPersonsRequest(
                funnel=_request(spec),
                step_index=1,
                outcome=funnel_pb2.FUNNEL_PERSONS_OUTCOME_DROPPED,
                page_size=5,
                breakdown_value=analytics_pb2.BreakdownValue(
                    value=series.key[0], other=series.key[1], missing=series.key[2]
                ),
            )
            assert [p for page in _persons(journeys, request) for p in page] == sorted(series.dropped[1]), (
                series.key
            )
    finally:
        delete_all_segments(journeys)


def test_query_funnel_refuses_a_bad_breakdown_by_segment(journeys: Journeys) -> None:
    request = _request(Spec(steps=(Step((Match("A"),)), Step((Match("B"),)))))
    request.breakdown.dimension = analytics_pb2.BREAKDOWN_DIMENSION_SEGMENT
    assert _refused(journeys, request) == {"breakdown.segments": "OUT_OF_RANGE"}
    request.breakdown.segments.extend(["segments/buyers", "buyers", "segments/buyers"])
    assert _refused(journeys, request) == {
        "breakdown.segments[1]": "INVALID",
        "breakdown.segments[2]": "DUPLICATE",
    }
    request.breakdown.segments[:] = [f"segments/s-{i:02d}" for i in range(21)]
    assert _refused(journeys, request) == {"breakdown.segments": "OUT_OF_RANGE"}


def test_query_funnel_refuses_a_regex_re2_cannot_compile(journeys: Journeys) -> None:
    """RE2 refuses lookaheads that Python's re takes: the caller learns which regex, not an INTERNAL. (RE2
    compiles it when a stored value meets it, so the events carry the property.)"""
    person = new_person()
    first, second = _event(person, "A", 0), _event(person, "B", 1)
    for event in (first, second):
        event.properties.update({"plan": "pro"})
    journeys.write(first, second)
    request = _request(Spec(steps=(Step((Match("A"),)), Step((Match("B"),))), window_us=HOUR))
    request.event_filters.append(
        analytics_pb2.PropertyFilter(
            property="properties.plan",
            operator=analytics_pb2.FILTER_OPERATOR_MATCHES_REGEX,
            values=[struct_pb2.Value(string_value="(?=pro)")],
        )
    )
    with pytest.raises(grpc.RpcError) as failure:
        journeys.stub.QueryFunnel(request, metadata=journeys.metadata, timeout=10)
    assert failure.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "not a valid RE2 regular expression" in (failure.value.details() or "")
