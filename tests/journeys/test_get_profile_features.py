"""GetProfileFeatures over gRPC against the plain-Python reference (features_reference.py) on a generated
event log with a merge: every feature kind at random times and exactly at events' timestamps and receipts,
identifiers, ties, a merge changing a person's features, and the refusals. The parity with ExportTrainingSet
is in test_export_training_set.py."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest
from google.protobuf import duration_pb2, struct_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from tests.journeys import features_reference as ref
from tests.journeys.conftest import Journeys, field_violations, override
from tests.journeys.features_data import (
    BADLY_TYPED,
    CATEGORY,
    DAY,
    FEATURES,
    GOLD,
    HOUR,
    INT,
    LAST_VALUE,
    SPEC,
    assert_same,
    at,
    base_us,
    by_person,
    expected_values,
    merged_log,
    micros,
    python,
    to_pb,
)
from wayline.common.timestamps import to_micros
from wayline.event.v1 import event_pb2
from wayline.journeys.v1 import analytics_pb2, feature_pb2
from wayline.journeys.v1 import journeys_service_pb2 as pb


def of(person: str) -> event_pb2.PersonRef:
    return event_pb2.PersonRef(person_id=person)


def test_get_profile_features_matches_the_reference(journeys: Journeys) -> None:
    events, start = merged_log(journeys, seed=11)
    persons = by_person(events)
    rng = random.Random(5)
    for person in [*persons, "nobody-" + uuid.uuid4().hex]:
        mine = persons.get(person, [])
        times = [start + rng.randint(0, 52 * DAY)]
        if mine:  # exactly at an event or exactly at a receipt: neither of those counts
            times.append(rng.choice([rng.choice(mine).ts, rng.choice(mine).rs]))
        for t in times:
            request = pb.GetProfileFeaturesRequest(person=of(person), spec=SPEC, as_of=at(t))
            vector = journeys.profile_features(request).features
            assert (vector.person_id, vector.spec_name, vector.spec_version) == (person, "churn", "3")
            assert micros(vector.as_of) == t
            got = [python(vector.values[f.name]) for f in FEATURES]
            assert_same(got, expected_values(mine, person, t, t), (person, t))
    # Unset as_of means now; an identifier names the current person (the merge's target here).
    merged_into = events[0].person
    identifier = event_pb2.Identifier(type="user_id", value=merged_into)
    request = pb.GetProfileFeaturesRequest(
        person=event_pb2.PersonRef(identifier=identifier), spec=SPEC, feature_names=["events", "tier"]
    )
    vector = journeys.profile_features(request).features
    now = micros(vector.as_of)
    assert abs(now - to_micros(datetime.now(UTC))) < 60 * 1_000_000
    assert vector.person_id == merged_into
    assert set(vector.values) == {"events", "tier"}
    want = ref.feature(FEATURES[0].reference, persons[merged_into], merged_into, now, now)
    assert python(vector.values["events"]) == want


def _event(person: str, name: str, ts: int, **properties: Any) -> ref.Ev:
    return ref.Ev(person, str(uuid.uuid4()), name, "web", ts, ts, "track", properties)


def test_get_profile_features_follows_a_merge(journeys: Journeys) -> None:
    start = base_us()
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    mine = [_event(first, "Checkout", start + i * HOUR, amount=10.5) for i in range(3)]
    journeys.write(*map(to_pb, mine), to_pb(_event(second, "Checkout", start, amount=1.25)))
    spec = feature_pb2.FeatureSpec(features=[SPEC.features[0], SPEC.features[3]])  # events, amount_sum

    def features(person: str) -> list[ref.Value]:
        vector = journeys.profile_features(
            pb.GetProfileFeaturesRequest(person=of(person), spec=spec)
        ).features
        return [python(vector.values["events"]), python(vector.values["amount_sum"])]

    assert features(second) == [1, 1.25]
    assert features(first) == [3, 31.5]
    journeys.apply(override(first, second, 1))
    assert features(second) == [4, 32.75]
    assert features(first) == [None, 0]  # no events of its own any more: the defaults (COUNT has none)


def test_get_profile_features_breaks_ties_by_event_id(journeys: Journeys) -> None:
    """Two events at one instant: the first value is the lower event id's, the last the higher's, whichever
    was written first."""
    moment = base_us() + DAY
    spec = feature_pb2.FeatureSpec(features=[SPEC.features[9], SPEC.features[10]])  # first_plan, last_plan_3d
    for order in (("1", "2"), ("2", "1")):
        person = str(uuid.uuid4())
        low, high = (
            f"{prefix}-0000-4000-8000-{uuid.uuid4().hex[:12]}" for prefix in ("00000000", "ffffffff")
        )
        ids = {"1": low, "2": high}
        for k in order:  # one write each: separate parts, read in no particular order
            journeys.write(
                to_pb(ref.Ev(person, ids[k], "Checkout", "web", moment, moment, "track", {"plan": k}))
            )
        request = pb.GetProfileFeaturesRequest(person=of(person), spec=spec, as_of=at(moment + 1))
        vector = journeys.profile_features(request).features
        assert (python(vector.values["first_plan"]), python(vector.values["last_plan_3d"])) == ("1", "2")


def test_get_profile_features_values_do_not_depend_on_the_value_type(journeys: Journeys) -> None:
    """The type says how a consumer encodes a value for a model; the value served is the stored one."""
    moment, person = base_us() + DAY, str(uuid.uuid4())
    journeys.write(to_pb(_event(person, "Checkout", moment, plan="pro", seats=3)))
    typed = [
        ("as_float", "plan", feature_pb2.FEATURE_VALUE_TYPE_FLOAT, ()),
        ("as_bool", "plan", feature_pb2.FEATURE_VALUE_TYPE_BOOL, ()),
        ("as_category", "plan", CATEGORY, ("free",)),  # "pro" is an unknown category to a model
        ("seats_int", "seats", INT, ()),
        ("seats_category", "seats", CATEGORY, ("3",)),  # a number is no category label, even "3"
    ]
    spec = feature_pb2.FeatureSpec(
        features=[
            feature_pb2.FeatureDefinition(
                name=name,
                aggregation=LAST_VALUE,
                property=f"properties.{key}",
                value_type=value_type,
                categories=categories,
            )
            for name, key, value_type, categories in typed
        ]
    )
    request = pb.GetProfileFeaturesRequest(person=of(person), spec=spec, as_of=at(moment + 1))
    values = journeys.profile_features(request).features.values
    assert {name: python(values[name]) for name, *_ in typed} == {
        "as_float": "pro",
        "as_bool": "pro",
        "as_category": "pro",
        "seats_int": 3,
        "seats_category": 3,
    }


def test_get_profile_features_unknown_identifier_is_not_found(journeys: Journeys) -> None:
    identifier = event_pb2.Identifier(type="email", value="nobody@example.com")
    request = pb.GetProfileFeaturesRequest(person=event_pb2.PersonRef(identifier=identifier), spec=SPEC)
    with pytest.raises(grpc.RpcError) as caught:
        journeys.profile_features(request)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert "PERSON_NOT_FOUND" in str(caught.value.trailing_metadata())


def one(**fields: Any) -> feature_pb2.FeatureSpec:
    """A spec of one feature."""
    return feature_pb2.FeatureSpec(features=[feature_pb2.FeatureDefinition(**fields)])


def asking(spec: feature_pb2.FeatureSpec = SPEC, **fields: Any) -> pb.GetProfileFeaturesRequest:
    return pb.GetProfileFeaturesRequest(person=of("p"), spec=spec, **fields)


COUNT, SUM = feature_pb2.FEATURE_AGGREGATION_COUNT, feature_pb2.FEATURE_AGGREGATION_SUM
PERSON_PROPERTY = feature_pb2.FEATURE_AGGREGATION_PERSON_PROPERTY
PERSON_FILTER = analytics_pb2.EventMatcher(property_filters=GOLD.person_filters)
A_LIST = struct_pb2.Value(list_value=struct_pb2.ListValue())
NEGATIVE = duration_pb2.Duration(seconds=-5)


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (pb.GetProfileFeaturesRequest(spec=SPEC), "person"),
        (pb.GetProfileFeaturesRequest(person=of("p")), "spec"),
        (asking(feature_pb2.FeatureSpec()), "spec.features"),
        (asking(feature_names=["events", "nope"]), "feature_names[1]"),
        (asking(one(name="Bad Name", aggregation=COUNT)), "spec.features[0].name"),
        (asking(one(name="x")), "spec.features[0].aggregation"),
        (asking(one(name="x", aggregation=SUM)), "spec.features[0].property"),
        (asking(one(name="x", aggregation=COUNT, property="properties.a")), "spec.features[0].property"),
        (asking(one(name="x", aggregation=PERSON_PROPERTY, property="a")), "spec.features[0].property"),
        (asking(one(name="x", aggregation=COUNT, window=NEGATIVE)), "spec.features[0].window"),
        (
            asking(one(name="x", aggregation=COUNT, events=PERSON_FILTER)),
            "spec.features[0].events.property_filters[0].property",
        ),
        (asking(one(name="x", aggregation=COUNT, default_value=A_LIST)), "spec.features[0].default_value"),
        (asking(feature_pb2.FeatureSpec(features=[SPEC.features[0]] * 2)), "spec.features[1].name"),
        (pb.GetProfileFeaturesRequest(person=of("p"), spec=SPEC, as_of=Timestamp(seconds=2**62)), "as_of"),
    ],
)  # fmt: skip
def test_get_profile_features_refuses_invalid_requests(
    journeys: Journeys, request_: pb.GetProfileFeaturesRequest, field: str
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        journeys.profile_features(request_)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in field_violations(caught.value)


@pytest.mark.parametrize(("spec", "field"), BADLY_TYPED)
def test_get_profile_features_refuses_badly_typed_features(
    journeys: Journeys, spec: feature_pb2.FeatureSpec, field: str
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        journeys.profile_features(asking(spec))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert list(field_violations(caught.value)) == [f"spec.{field}"]
