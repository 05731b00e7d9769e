"""ExportTrainingSet over gRPC against the plain-Python reference (features_reference.py) on generated event
logs: features, labels and splits of listed observations, the parity with GetProfileFeatures, point-in-time
correctness and reproducibility under late events, streaming thousands of rows in batches, generated
observations (snapshots, anchors, population, sample rate, max rows), the row limit, and the refusals."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import json_format

from tests.journeys import features_reference as ref
from tests.journeys.conftest import Journeys, field_violations
from tests.journeys.features_data import (
    BADLY_TYPED,
    DAY,
    FEATURES,
    GOLD,
    HOUR,
    PURCHASE_7D,
    SPEC,
    assert_same,
    at,
    base_us,
    by_person,
    duration,
    expected_values,
    is_name,
    merged_log,
    micros,
    named,
    python,
    random_log,
    to_pb,
)
from wayline.common.errors import InvalidArgument, ResourceExhausted
from wayline.event.v1 import event_pb2
from wayline.journeys.v1 import analytics_pb2, feature_pb2, training_set_pb2
from wayline.journeys.v1 import journeys_service_pb2 as pb
from wayline_journeys.store.client import connect_clickhouse
from wayline_journeys.store.features import ClickHouseFeatures
from wayline_journeys.training_set import export_training_set
from wayline_journeys.training_set_converters import training_set_query

Observation = training_set_pb2.Observation
Sampling = training_set_pb2.ObservationSampling
Label = training_set_pb2.LabelDefinition


def rows_of(messages: list[pb.ExportTrainingSetResponse]) -> list[training_set_pb2.TrainingRow]:
    """The rows, after checking the stream's shape: one schema, row batches, one summary."""
    assert messages[0].WhichOneof("part") == "schema"
    assert messages[-1].WhichOneof("part") == "summary"
    assert all(m.WhichOneof("part") == "rows" for m in messages[1:-1])
    return [r for m in messages[1:-1] for r in m.rows.rows]


def observed(rows: list[training_set_pb2.TrainingRow]) -> list[tuple[str, int]]:
    return [(r.person_id, micros(r.observation_time)) for r in rows]


@pytest.mark.parametrize(
    ("label", "reference_label"),
    [
        (PURCHASE_7D, ref.Label("binary", 7 * DAY, is_name("Purchased"))),
        (
            Label(kind=training_set_pb2.LABEL_KIND_COUNT, horizon=duration(3 * DAY)),
            ref.Label("count", 3 * DAY),
        ),
        (
            Label(
                kind=training_set_pb2.LABEL_KIND_SUM, property="properties.amount", horizon=duration(10 * DAY)
            ),
            ref.Label("sum", 10 * DAY, path="properties.amount"),
        ),
    ],
)
def test_export_training_set_matches_the_reference_and_get_profile_features(
    journeys: Journeys, label: training_set_pb2.LabelDefinition, reference_label: ref.Label
) -> None:
    events, start = merged_log(journeys, seed=23)
    persons = by_person(events)
    rng = random.Random(9)
    cut_off = start + 55 * DAY
    times = [start + 10 * DAY, start + 30 * DAY, start + 53 * DAY]
    observations = [
        Observation(person_id=p, observation_time=at(t))
        for p in [*persons, "nobody"]
        for t in [*times, start + rng.randint(0, 50 * DAY)]
    ]
    request = pb.ExportTrainingSetRequest(
        spec=SPEC,
        label=label,
        observations=observations,
        validation_fraction=0.2,
        test_fraction=0.1,
        batch_size=25,
        data_as_of=at(cut_off),
    )
    messages = journeys.export_training_set(request)
    schema, summary, rows = messages[0].schema, messages[-1].summary, rows_of(messages)
    assert list(schema.feature_names) == [f.name for f in FEATURES]
    assert (schema.spec_name, schema.spec_version, micros(schema.data_as_of)) == ("churn", "3", cut_off)
    complete = [o for o in observations if micros(o.observation_time) + reference_label.horizon_us <= cut_off]
    assert len(rows) == summary.row_count == len(complete)
    assert summary.incomplete_label_count == len(observations) - len(complete)
    assert summary.incomplete_label_count > 0
    assert all(len(m.rows.rows) <= 25 for m in messages[1:-1])
    positives = 0
    for row, o in zip(rows, complete, strict=True):
        t = micros(o.observation_time)
        assert (row.person_id, micros(row.observation_time)) == (o.person_id, t)
        mine = persons.get(o.person_id, [])
        got = [python(v) for v in row.feature_values]
        assert_same(got, expected_values(mine, o.person_id, t, cut_off), o)
        want = ref.label(reference_label, mine, o.person_id, t, cut_off)
        assert ref.same(python(row.label), want), (o, python(row.label), want)
        positives += want is True
        split = ref.split(o.person_id, 0.2, 0.1)
        assert training_set_pb2.TrainingSplit.Name(row.split) == f"TRAINING_SPLIT_{split}"
    assert summary.positive_label_count == positives
    splits = {training_set_pb2.TrainingSplit.Name(r.split) for r in rows}
    assert splits >= {"TRAINING_SPLIT_TRAIN", "TRAINING_SPLIT_VALIDATION"}
    # The online path computes the very same values: GetProfileFeatures at t is the row observed at t.
    for row in rng.sample(rows, 6):
        person = event_pb2.PersonRef(person_id=row.person_id)
        asked = pb.GetProfileFeaturesRequest(person=person, spec=SPEC, as_of=row.observation_time)
        vector = journeys.profile_features(asked).features
        assert [vector.values[f.name] for f in FEATURES] == list(row.feature_values)


def _event(person: str, name: str, ts: int, rs: int) -> ref.Ev:
    return ref.Ev(person, str(uuid.uuid4()), name, "web", ts, rs)


def test_export_training_set_is_point_in_time_and_reproducible(journeys: Journeys) -> None:
    start = base_us()
    person, t = str(uuid.uuid4()), start + 10 * DAY
    log = [
        _event(person, "Checkout", t - HOUR, t - HOUR + 1),  # counts
        _event(person, "Checkout", t - 3 * HOUR, t - 1),  # received just before t: counts
        _event(person, "Checkout", t, t - 1),  # at the observation time (received earlier): not before it
        _event(person, "Checkout", t - 2 * HOUR, t),  # received at the observation time: too late
    ]
    journeys.write(*map(to_pb, log))
    count = feature_pb2.FeatureDefinition(name="checkouts", aggregation=feature_pb2.FEATURE_AGGREGATION_COUNT)
    spec = feature_pb2.FeatureSpec(features=[count])
    at_t = pb.GetProfileFeaturesRequest(person=event_pb2.PersonRef(person_id=person), spec=spec, as_of=at(t))
    assert python(journeys.profile_features(at_t).features.values["checkouts"]) == 2
    cut_off = at(start + 20 * DAY)
    observations = [Observation(person_id=person, observation_time=at(m)) for m in (t, start + 40 * DAY)]
    labelled = pb.ExportTrainingSetRequest(
        spec=spec, label=PURCHASE_7D, observations=observations[:1], data_as_of=cut_off
    )
    scoring = pb.ExportTrainingSetRequest(spec=spec, observations=observations, data_as_of=cut_off)
    first_labelled, first_scoring = (
        journeys.export_training_set(labelled),
        journeys.export_training_set(scoring),
    )
    assert python(rows_of(first_labelled)[0].label) is False
    assert [python(r.feature_values[0]) for r in rows_of(first_scoring)] == [
        2,
        4,
    ]  # after the cut-off: as of it
    # Late events arrive after the first export: a purchase inside the label horizon and a checkout before
    # the second observation, both received after the cut-off (and before the second observation).
    late = start + 30 * DAY
    journeys.write(
        to_pb(_event(person, "Purchased", t + DAY, late)), to_pb(_event(person, "Checkout", t + DAY, late))
    )
    assert journeys.export_training_set(labelled) == first_labelled
    assert journeys.export_training_set(scoring) == first_scoring
    # Without the cut-off they count, so the reruns above were held by it.
    labelled.ClearField("data_as_of")
    scoring.ClearField("data_as_of")
    assert python(rows_of(journeys.export_training_set(labelled))[0].label) is True
    assert [python(r.feature_values[0]) for r in rows_of(journeys.export_training_set(scoring))] == [2, 6]
    assert python(journeys.profile_features(at_t).features.values["checkouts"]) == 2


def test_export_training_set_streams_thousands_of_rows_in_batches(journeys: Journeys) -> None:
    start = base_us()
    log = random_log(random.Random(31), 60, start, max_events=12)
    journeys.write(*map(to_pb, log))
    persons = by_person(log)
    times = [start + i * 12 * HOUR for i in range(100)]
    observations = [Observation(person_id=p, observation_time=at(t)) for t in times for p in persons]
    assert len(observations) == 6_000  # more than one store statement's chunk of 5,000
    request = pb.ExportTrainingSetRequest(spec=SPEC, observations=observations, batch_size=1_000)
    messages = journeys.export_training_set(request)
    rows = rows_of(messages)
    assert [len(m.rows.rows) for m in messages[1:-1]] == [1_000] * 6
    assert messages[-1].summary.row_count == 6_000
    assert messages[-1].summary.incomplete_label_count == 0
    cut_off = micros(messages[0].schema.data_as_of)
    for row, o in zip(rows, observations, strict=True):
        assert (row.person_id, row.observation_time) == (o.person_id, o.observation_time)
        assert not row.HasField("label")
        assert row.split == training_set_pb2.TRAINING_SPLIT_UNSPECIFIED
        t = micros(o.observation_time)
        got = [python(v) for v in row.feature_values]
        assert_same(got, expected_values(persons[o.person_id], o.person_id, t, cut_off), o)


def _identify(person: str, ts: int, rs: int, tier: str) -> ref.Ev:
    return ref.Ev(person, str(uuid.uuid4()), "", "web", ts, rs, "identify", {"tier": tier})


def _sampled_person(rng: random.Random) -> str:
    while not ref.sampled(person := str(uuid.UUID(int=rng.getrandbits(128))), 0.6):
        pass
    return person


def _log_with_tiers(rng: random.Random, start: int) -> list[ref.Ev]:
    """A random log; half the persons are gold from the start, some of them changed later in an event
    received after the cut-off (start + 50 days); three sampled gold persons whose first event is at
    start + 20 days (a snapshot time), or received then."""
    log = random_log(rng, 40, start, max_events=15)
    for person in sorted({e.person for e in log})[:20]:
        log.append(_identify(person, start, start, "gold"))
        if rng.random() < 0.4:
            log.append(_identify(person, start + DAY, start + 58 * DAY, "silver"))
    moment = start + 20 * DAY
    for ts, rs in ((moment, moment), (moment - 1, moment), (moment, moment - 1)):
        log.append(_identify(_sampled_person(rng), ts, rs, "gold"))
    return log


def _gold(events: list[ref.Ev], cut_off: int) -> bool:
    """The latest tier received before the cut-off is gold."""
    tiers = [e for e in events if e.type == "identify" and "tier" in e.properties and e.rs < cut_off]
    return bool(tiers) and max(tiers, key=lambda e: e.ts).properties["tier"] == "gold"


def test_export_training_set_samples_snapshots_and_anchors(journeys: Journeys) -> None:
    start = base_us()
    log = _log_with_tiers(random.Random(47), start)
    journeys.write(*map(to_pb, log))
    cut_off = start + 50 * DAY
    spec = feature_pb2.FeatureSpec(features=[SPEC.features[0]])
    times = [start + 5 * DAY, start + 20 * DAY, start + 45 * DAY]
    snapshot = Sampling(observation_times=[at(t) for t in times], sample_rate=0.6, population=GOLD)
    messages = journeys.export_training_set(
        pb.ExportTrainingSetRequest(spec=spec, label=PURCHASE_7D, sampling=snapshot, data_as_of=at(cut_off))
    )
    gold = {p for p, mine in by_person(log).items() if _gold(mine, cut_off)}
    everyone = ref.snapshot_observations([e for e in log if e.person in gold], times, cut_off, 0.6)
    want = [o for o in everyone if o[1] + 7 * DAY <= cut_off]
    assert observed(rows_of(messages)) == want
    assert len(want) > 5
    assert messages[-1].summary.incomplete_label_count == len(everyone) - len(want)
    assert {p for p, _ in everyone} < gold  # the sample dropped some persons
    range_ = event_pb2.TimeRange(start=at(start + 10 * DAY), end=at(start + 60 * DAY))
    anchors = Sampling(anchor_event=named("Checkout"), anchor_time_range=range_, max_rows=40)
    messages = journeys.export_training_set(
        pb.ExportTrainingSetRequest(spec=spec, label=PURCHASE_7D, sampling=anchors, data_as_of=at(cut_off))
    )
    everyone = ref.anchor_observations(
        log, is_name("Checkout"), start + 10 * DAY, start + 60 * DAY, cut_off, 1
    )
    want = [o for o in everyone if o[1] + 7 * DAY <= cut_off]
    rows = rows_of(messages)
    assert len(want) > 40
    assert observed(rows) == want[:40]
    assert messages[-1].summary.row_count == 40
    for row, (person, t) in zip(rows, want, strict=False):  # the anchor itself is not in its features' past
        assert python(row.feature_values[0]) == ref.feature(FEATURES[0].reference, log, person, t, cut_off)


OBSERVED = [Observation(person_id="p", observation_time=at(base_us()))]
FUTURE = at(int((datetime.now(UTC) + timedelta(days=1)).timestamp() * 1_000_000))
PERSON_FILTER = analytics_pb2.EventMatcher(property_filters=GOLD.person_filters)
BINARY, SUM = training_set_pb2.LABEL_KIND_BINARY, training_set_pb2.LABEL_KIND_SUM


def exporting(**fields: Any) -> pb.ExportTrainingSetRequest:
    """A valid request (the spec, one observation) with `fields` set or replaced."""
    return pb.ExportTrainingSetRequest(**{"spec": SPEC, "observations": OBSERVED, **fields})


def sampling(**fields: Any) -> pb.ExportTrainingSetRequest:
    return pb.ExportTrainingSetRequest(spec=SPEC, sampling=Sampling(**fields))


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (exporting(observations=[]), "observations"),
        (exporting(sampling=Sampling(max_rows=1)), "observations"),
        (pb.ExportTrainingSetRequest(observations=OBSERVED), "spec"),
        (exporting(observations=[Observation(person_id="p")]), "observations[0].observation_time"),
        (exporting(observations=[Observation(observation_time=FUTURE)]), "observations[0].person_id"),
        (exporting(label=Label(kind=BINARY)), "label.horizon"),
        (exporting(label=Label(horizon=duration(DAY))), "label.kind"),
        (exporting(label=Label(kind=SUM, horizon=duration(DAY))), "label.property"),
        (exporting(label=Label(kind=BINARY, horizon=duration(DAY), event=PERSON_FILTER)), "label.event"),
        (exporting(validation_fraction=0.7, test_fraction=0.4), "test_fraction"),
        (exporting(validation_fraction=-0.1), "validation_fraction"),
        (exporting(batch_size=10_001), "batch_size"),
        (exporting(data_as_of=FUTURE), "data_as_of"),
        (sampling(sample_rate=0.5), "sampling"),
        (sampling(observation_times=[FUTURE], sample_rate=1.5), "sampling.sample_rate"),
        (sampling(observation_times=[FUTURE], max_rows=-1), "sampling.max_rows"),
        (sampling(anchor_event=PERSON_FILTER), "sampling.anchor_event.property_filters[0].property"),
        (exporting(spec=feature_pb2.FeatureSpec(features=[feature_pb2.FeatureDefinition(name="x")])), "spec"),
    ],
)
def test_export_training_set_refuses_invalid_requests(
    journeys: Journeys, request_: pb.ExportTrainingSetRequest, field: str
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        journeys.export_training_set(request_)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert any(path.startswith(field) for path in field_violations(caught.value)), field_violations(
        caught.value
    )


@pytest.mark.parametrize(("spec", "field"), BADLY_TYPED)
def test_export_training_set_refuses_badly_typed_features(
    journeys: Journeys, spec: feature_pb2.FeatureSpec, field: str
) -> None:
    """The typing rules of GetProfileFeatures' specs, with the field paths of this request's spec."""
    with pytest.raises(grpc.RpcError) as caught:
        journeys.export_training_set(exporting(spec=spec))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert list(field_violations(caught.value)) == [f"spec.{field}"]


ANCHOR = named("Offer Sent")
PAST = [at(base_us())]


def reading(*paths: str) -> training_set_pb2.ObservationSampling:
    """Anchor-event sampling reading `paths` from each anchor."""
    return Sampling(anchor_event=ANCHOR, anchor_properties=paths)


@pytest.mark.parametrize(
    ("sampling_", "field"),
    [
        (Sampling(observation_times=PAST, anchor_properties=["properties.a"]), "sampling.anchor_properties"),
        (reading(*(f"properties.p{i}" for i in range(51))), "sampling.anchor_properties"),
        (reading("properties.a", "person.tier"), "sampling.anchor_properties[1]"),
        (reading("name", "revenue", "name"), "sampling.anchor_properties[2]"),
        (reading("plan"), "sampling.anchor_properties[0]"),
        (reading("properties"), "sampling.anchor_properties[0]"),
        (reading("person_id", "context.page"), "sampling.anchor_properties[0]"),
        (reading("properties.a", ""), "sampling.anchor_properties[1]"),
    ],
)  # fmt: skip
def test_export_training_set_refuses_invalid_anchor_properties(
    journeys: Journeys, sampling_: training_set_pb2.ObservationSampling, field: str
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        journeys.export_training_set(pb.ExportTrainingSetRequest(spec=SPEC, sampling=sampling_))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert list(field_violations(caught.value)) == [field]


def test_export_training_set_takes_fifty_anchor_properties() -> None:
    fifty = reading(*(f"properties.p{i}" for i in range(50)))
    query = training_set_query("t", pb.ExportTrainingSetRequest(spec=SPEC, sampling=fifty), datetime.now(UTC))
    assert query.sampling is not None
    assert query.sampling.anchor_properties == tuple(fifty.anchor_properties)


def _offer(person: str, ts: int, channel: str, properties: dict[str, Any], **fields: Any) -> ref.Ev:
    return ref.Ev(person, str(uuid.uuid4()), "Offer Sent", channel, ts, ts, "track", properties, **fields)


# Each anchor property as its JSON value stored (a Struct by path), from event paths of every kind: nested
# properties, objects, lists, a stored null, a missing path, the context (proto names, stored camelCase) and
# the event's own fields, as filters read them.
PATHS = [
    "properties.action",
    "properties.propensity",
    "properties.seats",
    "properties.accepted",
    "properties.meta",
    "properties.meta.arms",
    "properties.meta.note",
    "properties.absent",
    "context.user_agent",
    "name",
    "type",
    "channel",
    "revenue",
]


def test_export_training_set_returns_each_anchors_id_and_properties(journeys: Journeys) -> None:
    start = base_us()
    first, second = sorted(str(uuid.uuid4()) for _ in range(2))
    meta = {"arms": [1, "b", None, {"k": True}], "note": None}
    offers = [
        _offer(
            first, start + DAY, "email", {"action": "discount", "propensity": 0.25, "seats": 3, "meta": meta}
        ),
        _offer(first, start + DAY, "web", {"action": "email", "propensity": 1, "accepted": False}),  # a tie
        _offer(second, start + 2 * DAY, "mobile_app", {"action": "none", "accepted": True}, revenue=12.5),
    ]
    ignored = ref.Ev(
        second, str(uuid.uuid4()), "Purchased", "web", start + DAY, start + DAY, "track", {"a": 1}
    )
    events = [to_pb(e) for e in [*offers, ignored]]
    events[0].context.user_agent = "agent/1.0"
    journeys.write(*events)
    anchored = Sampling(anchor_event=ANCHOR, anchor_properties=PATHS)
    # Data as of a day after the last anchor: the anchors are in, a later write would not change the rows.
    request = pb.ExportTrainingSetRequest(
        spec=feature_pb2.FeatureSpec(features=[SPEC.features[0]]),
        sampling=anchored,
        data_as_of=at(start + 3 * DAY),
    )
    rows = rows_of(journeys.export_training_set(request))
    order = sorted(offers, key=lambda e: (e.ts, e.person, e.event_id))
    assert [(r.person_id, micros(r.observation_time), r.anchor_event_id) for r in rows] == [
        (e.person, e.ts, e.event_id) for e in order
    ]
    want: dict[str, dict[str, Any]] = {
        offers[0].event_id: {
            "properties.action": "discount",
            "properties.propensity": 0.25,
            "properties.seats": 3,
            "properties.accepted": None,
            "properties.meta": meta,
            "properties.meta.arms": meta["arms"],
            "properties.meta.note": None,
            "context.user_agent": "agent/1.0",
            "channel": "email",
            "revenue": None,
        },
        offers[1].event_id: {
            "properties.action": "email",
            "properties.propensity": 1,
            "properties.seats": None,
            "properties.accepted": False,
            "properties.meta": None,
            "properties.meta.arms": None,
            "properties.meta.note": None,
            "context.user_agent": None,
            "channel": "web",
            "revenue": None,
        },
        offers[2].event_id: {
            "properties.action": "none",
            "properties.propensity": None,
            "properties.seats": None,
            "properties.accepted": True,
            "properties.meta": None,
            "properties.meta.arms": None,
            "properties.meta.note": None,
            "context.user_agent": None,
            "channel": "mobile_app",
            "revenue": 12.5,
        },
    }
    for row in rows:
        got = json_format.MessageToDict(row.anchor_properties)
        common: dict[str, Any] = {"properties.absent": None, "name": "Offer Sent", "type": "track"}
        assert got == want[row.anchor_event_id] | common, row.anchor_event_id
    # The anchor is not in its own features' past: the tie at the first anchor's instant is not either.
    assert [python(r.feature_values[0]) for r in rows] == [None, None, 1]
    # Without anchor_properties a row still names its anchor; other observations have no anchor.
    del request.sampling.anchor_properties[:]
    rows = rows_of(journeys.export_training_set(request))
    assert [r.anchor_event_id for r in rows] == [e.event_id for e in order]
    assert not any(r.HasField("anchor_properties") for r in rows)
    request.sampling.CopyFrom(Sampling(observation_times=[at(start + 3 * DAY)]))
    rows = rows_of(journeys.export_training_set(request))
    assert len(rows) == 2
    assert all(r.anchor_event_id == "" and not r.HasField("anchor_properties") for r in rows)


def test_export_training_set_refuses_sets_over_the_row_limit(journeys: Journeys, chdb_path: Path) -> None:
    """The server's limit (1,000,000 by default) is a store setting; a store with a limit of 5 shows it is
    checked, for listed and for generated observations, before any row, and that max_rows within it
    passes."""
    start = base_us()
    journeys.write(*map(to_pb, random_log(random.Random(3), 8, start, max_events=3)))
    client = connect_clickhouse("", "wayline", chdb_path)
    store = ClickHouseFeatures(lambda: client, row_limit=5)
    snapshot = sampling(observation_times=[at(start + 60 * DAY)])
    try:
        for request in (exporting(observations=OBSERVED * 6), snapshot):
            query = training_set_query(journeys.tenant, request, datetime.now(UTC))
            with pytest.raises(ResourceExhausted) as caught:
                next(export_training_set(store, query, lambda: True))
            assert caught.value.reason == "QUERY_TOO_LARGE"
        snapshot.sampling.max_rows = 5
        query = training_set_query(journeys.tenant, snapshot, datetime.now(UTC))
        parts = list(export_training_set(store, query, lambda: True))
        assert sum(len(p) for p in parts if isinstance(p, list)) == 5
        with pytest.raises(InvalidArgument):
            training_set_query(journeys.tenant, pb.ExportTrainingSetRequest(spec=SPEC), datetime.now(UTC))
    finally:
        client.close()


def test_export_training_set_attributes_outcomes_to_their_anchor(journeys: Journeys) -> None:
    """An attributed label counts only the outcomes carrying the anchor's value at the attribution path: two
    decisions of one person an hour apart, each answered (or not) by orders naming their decision id, and an
    organic order naming none, which no decision gets."""
    start = base_us()
    person = str(uuid.uuid4())

    def decision(ts: int, decision_id: str | int) -> ref.Ev:
        return ref.Ev(person, str(uuid.uuid4()), "Decision Logged", "web", ts, ts, "track",
                      {"decision_id": decision_id})  # fmt: skip

    def order(ts: int, revenue: float, decision_id: str | float | None) -> ref.Ev:
        properties = {} if decision_id is None else {"decision_id": decision_id}
        return ref.Ev(person, str(uuid.uuid4()), "Order Completed", "web", ts, ts, "track", properties,
                      revenue=revenue)  # fmt: skip

    journeys.write(
        *(
            to_pb(e)
            for e in [
                decision(start + HOUR, "x-1"),
                decision(start + 2 * HOUR, "x-2"),
                decision(start + 3 * HOUR, 7),  # a numeric id: 7 and 7.0 are one JSON value
                order(start + 90 * 60_000_000, 30.0, None),  # organic: no decision's
                order(start + 4 * HOUR, 50.0, "x-2"),
                order(start + 5 * HOUR, 20.0, "x-2"),
                order(start + 6 * HOUR, 5.0, 7.0),
            ]
        )
    )
    label = Label(
        kind=training_set_pb2.LABEL_KIND_SUM,
        event=analytics_pb2.EventMatcher(event_name="Order Completed"),
        property="revenue",
        horizon=duration(DAY),
        attribution_property="properties.decision_id",
    )
    request = pb.ExportTrainingSetRequest(
        spec=feature_pb2.FeatureSpec(features=[SPEC.features[0]]),
        label=label,
        sampling=Sampling(anchor_event=analytics_pb2.EventMatcher(event_name="Decision Logged")),
        data_as_of=at(start + 2 * DAY),
    )
    rows = rows_of(journeys.export_training_set(request))
    assert [python(r.label) for r in rows] == [0.0, 70.0, 5.0]
    # Unattributed, every order in the horizon counts for every decision before it.
    request.label.attribution_property = ""
    rows = rows_of(journeys.export_training_set(request))
    assert [python(r.label) for r in rows] == [105.0, 75.0, 75.0]


@pytest.mark.parametrize(
    ("edit", "field", "reason"),
    [
        (lambda r: setattr(r.label, "attribution_property", "person.tier"), "label.attribution_property", ""),
        (lambda r: setattr(r.label, "attribution_property", "bogus"), "label.attribution_property", ""),
        (
            lambda r: r.sampling.CopyFrom(Sampling(observation_times=[at(base_us())])),
            "label.attribution_property",
            "only with sampling.anchor_event",
        ),
    ],
)
def test_export_training_set_refuses_a_misplaced_attribution(edit: Any, field: str, reason: str) -> None:
    request = pb.ExportTrainingSetRequest(
        spec=feature_pb2.FeatureSpec(features=[SPEC.features[0]]),
        label=Label(
            kind=training_set_pb2.LABEL_KIND_BINARY,
            horizon=duration(DAY),
            attribution_property="properties.decision_id",
        ),
        sampling=Sampling(anchor_event=analytics_pb2.EventMatcher(event_name="Decision Logged")),
    )
    edit(request)
    with pytest.raises(InvalidArgument) as raised:
        training_set_query("t", request, datetime.now(tz=UTC))
    found = {v.field: v.description for v in raised.value.violations}
    assert field in found
    assert reason in found[field]
