"""IdentityService refuses malformed requests with INVALID_ARGUMENT naming the field, never INTERNAL, and
stores nothing of them: times outside Timestamp's range, inverted ranges, forged page tokens, enum numbers
this build does not know, non-RE2 patterns, over-long identifiers and NUL characters. Over a real gRPC socket,
on SQLite and on PostgreSQL (whose text cannot hold NUL): both engines answer alike."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import grpc
import pytest
from google.protobuf import timestamp_pb2
from pydantic import SecretStr

from tests.conftest import INTERNAL_TOKEN, common_settings, start_server
from tests.postgres import create_schema
from tests.rpc_errors import reason, violations
from wayline.common.context import INTERNAL_TOKEN_HEADER, TENANT_HEADER
from wayline.common.paging import encode_page_token
from wayline.common.timestamps import MAX_TIMESTAMP_SECONDS, MIN_TIMESTAMP_SECONDS, to_timestamp
from wayline.event.v1 import event_pb2
from wayline.identity.v1 import identity_rules_pb2 as rules_pb
from wayline.identity.v1 import identity_service_pb2 as pb
from wayline.identity.v1 import identity_service_pb2_grpc as pb_grpc
from wayline_identity.model import IgnoreReason
from wayline_identity.rules import Rules, TypeRule
from wayline_identity.service import identity_service
from wayline_identity.settings import IdentitySettings

Metadata = tuple[tuple[str, str], ...]
Stub = pb_grpc.IdentityServiceStub
YEAR_10000 = MAX_TIMESTAMP_SECONDS + 1
UNKNOWN = 99  # a number no enum of the contract has


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def stub(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stub]:
    url = create_schema(request.getfixturevalue("postgres_url")) if request.param == "postgresql" else None
    settings = IdentitySettings(
        **common_settings(tmp_path_factory.mktemp("identity-bad-input")),  # type: ignore[arg-type]
        database_url=SecretStr(url) if url else None,
        journeys_address="",
        ingest_address="",
    )
    server = start_server(identity_service(settings), settings)
    with grpc.insecure_channel(server.address) as channel:
        yield pb_grpc.IdentityServiceStub(channel)
    server.stop(0)


@pytest.fixture
def metadata() -> Metadata:
    """A tenant of the test's own."""
    return ((INTERNAL_TOKEN_HEADER, INTERNAL_TOKEN), (TENANT_HEADER, f"t-{uuid.uuid4().hex[:8]}"))


def _refused(call, request, metadata: Metadata) -> grpc.RpcError:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.RpcError) as raised:
        call(request, metadata=metadata, timeout=10)
    error = raised.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, (error.code(), error.details())
    return error


def _input(
    event_id: str,
    *identifiers: tuple[str, str],
    ts: timestamp_pb2.Timestamp | None = None,
    previous: tuple[tuple[str, str], ...] = (),
) -> pb.IdentityResolutionInput:
    return pb.IdentityResolutionInput(
        event_id=event_id,
        timestamp=ts or to_timestamp(datetime.now(UTC)),
        event_type=event_pb2.EVENT_TYPE_TRACK,
        identifiers=[event_pb2.Identifier(type=t, value=v) for t, v in identifiers],
        previous_identifiers=[event_pb2.Identifier(type=t, value=v) for t, v in previous],
    )


def _resolve(
    stub: Stub, metadata: Metadata, *inputs: pb.IdentityResolutionInput
) -> pb.ResolveIdentitiesResponse:
    return stub.ResolveIdentities(pb.ResolveIdentitiesRequest(inputs=inputs), metadata=metadata, timeout=10)


def _assert_unknown(stub: Stub, metadata: Metadata, kind: str, value: str) -> None:
    """Nothing was stored for the identifier: the refused batch changed nothing."""
    ref = event_pb2.PersonRef(identifier=event_pb2.Identifier(type=kind, value=value))
    with pytest.raises(grpc.RpcError) as raised:
        stub.GetProfile(pb.GetProfileRequest(person=ref), metadata=metadata, timeout=10)
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND


def _ts(seconds: int, nanos: int = 0) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)


# --- ResolveIdentities --------------------------------------------------------------------------------------


def test_resolve_refuses_timestamps_outside_timestamps_range_and_stores_nothing(
    stub: Stub, metadata: Metadata
) -> None:
    """A year-10000 time was stored, and from then on every read of the profile answered INTERNAL."""
    request = pb.ResolveIdentitiesRequest(
        inputs=[
            _input("e0", ("user_id", "fine")),
            _input("e1", ("user_id", "far-future"), ts=_ts(YEAR_10000 + 10)),
            _input("e2", ("user_id", "before-year-1"), ts=_ts(MIN_TIMESTAMP_SECONDS - 1)),
            _input("e3", ("user_id", "bad-nanos"), ts=_ts(1_700_000_000, -1)),
            _input("e4", ("user_id", "too-many-nanos"), ts=_ts(1_700_000_000, 1_000_000_000)),
        ]
    )
    error = _refused(stub.ResolveIdentities, request, metadata)
    assert list(violations(error)) == [
        "inputs[1].timestamp",
        "inputs[2].timestamp",
        "inputs[3].timestamp.nanos",
        "inputs[4].timestamp.nanos",
    ]
    _assert_unknown(stub, metadata, "user_id", "fine")
    # The range's own ends are times like any other.
    edges = _resolve(
        stub,
        metadata,
        _input("e5", ("user_id", "last"), ts=_ts(MAX_TIMESTAMP_SECONDS, 999_999_999)),
        _input("e6", ("user_id", "first"), ts=_ts(MIN_TIMESTAMP_SECONDS)),
    )
    profile = stub.GetProfile(
        pb.GetProfileRequest(person=event_pb2.PersonRef(person_id=edges.resolutions[0].person_id)),
        metadata=metadata,
        timeout=10,
    ).profile
    assert profile.last_seen_time.seconds == MAX_TIMESTAMP_SECONDS


def test_resolve_refuses_identifiers_over_the_documented_lengths(stub: Stub, metadata: Metadata) -> None:
    """event.proto: an identifier's type is at most 64 characters, its value at most 512."""
    request = pb.ResolveIdentitiesRequest(
        inputs=[
            _input("e0", ("user_id", "v" * 513)),
            _input("e1", ("x" * 65, "v")),
            _input("e2", ("user_id", "ok"), previous=(("anonymous_id", "a" * 100_000),)),
        ]
    )
    error = _refused(stub.ResolveIdentities, request, metadata)
    assert list(violations(error)) == [
        "inputs[0].identifiers[0].value",
        "inputs[1].identifiers[0].type",
        "inputs[2].previous_identifiers[0].value",
    ]
    _assert_unknown(stub, metadata, "user_id", "ok")
    at_most = _resolve(stub, metadata, _input("e3", ("x" * 64, "v" * 512)))
    assert at_most.resolutions[0].person_id


@pytest.mark.parametrize(
    ("item", "field"),
    [
        (_input("e0", ("user_id", "a\x00b")), "inputs[0].identifiers[0].value"),
        (_input("e0", ("user\x00id", "a")), "inputs[0].identifiers[0].type"),
        (
            _input("e0", ("user_id", "a"), previous=(("user_id", "\x00"),)),
            "inputs[0].previous_identifiers[0].value",
        ),
        (_input("e\x000", ("user_id", "a")), "inputs[0].event_id"),
    ],
    ids=["value", "type", "previous", "event_id"],
)
def test_resolve_refuses_nul_characters(
    stub: Stub, metadata: Metadata, item: pb.IdentityResolutionInput, field: str
) -> None:
    """PostgreSQL's text cannot hold NUL (it answered INTERNAL); SQLite answers the same refusal."""
    error = _refused(stub.ResolveIdentities, pb.ResolveIdentitiesRequest(inputs=[item]), metadata)
    assert list(violations(error)) == [field]
    _assert_unknown(stub, metadata, "user_id", "a")


# --- the other RPCs' strings --------------------------------------------------------------------------------


def test_ids_reasons_and_identifiers_with_nul_are_refused(stub: Stub, metadata: Metadata) -> None:
    first, second = (
        r.person_id
        for r in _resolve(
            stub, metadata, _input("e1", ("user_id", "u1")), _input("e2", ("user_id", "u2"))
        ).resolutions
    )
    nul = "x\x00"
    by_identifier = event_pb2.PersonRef(identifier=event_pb2.Identifier(type="user_id", value=nul))
    cases: list[tuple[object, object, str]] = [
        (
            stub.GetProfile,
            pb.GetProfileRequest(person=event_pb2.PersonRef(person_id=nul)),
            "person.person_id",
        ),
        (stub.GetProfile, pb.GetProfileRequest(person=by_identifier), "person.identifier.value"),
        (
            stub.ListProfiles,
            pb.ListProfilesRequest(identifier_type="user_id", identifier_value=nul),
            "identifier_value",
        ),
        (stub.ListProfiles, pb.ListProfilesRequest(identifier_type=nul), "identifier_type"),
        (stub.MergeProfiles, pb.MergeProfilesRequest(person_ids=[first, nul], reason="r"), "person_ids[1]"),
        (stub.MergeProfiles, pb.MergeProfilesRequest(person_ids=[first, second], reason=nul), "reason"),
        (
            stub.UnmergeIdentifier,
            pb.UnmergeIdentifierRequest(
                person_id=first, identifier=event_pb2.Identifier(type="user_id", value=nul), reason="r"
            ),
            "identifier.value",
        ),
        (stub.SplitProfile, pb.SplitProfileRequest(person_id=first, merge_id=nul, reason="r"), "merge_id"),
        (stub.DeleteProfile, pb.DeleteProfileRequest(person_id=nul, reason="r"), "person_id"),
        (stub.GetErasure, pb.GetErasureRequest(erasure_id=nul), "erasure_id"),
    ]
    for call, request, field in cases:
        assert list(violations(_refused(call, request, metadata))) == [field], (call, field)
    # Nothing was merged or erased.
    for person in (first, second):
        profile = stub.GetProfile(
            pb.GetProfileRequest(person=event_pb2.PersonRef(person_id=person)), metadata=metadata, timeout=10
        ).profile
        assert profile.person_id == person


def test_lookups_refuse_identifiers_over_the_documented_lengths(stub: Stub, metadata: Metadata) -> None:
    too_long = event_pb2.Identifier(type="user_id", value="v" * 513)
    error = _refused(
        stub.GetProfile, pb.GetProfileRequest(person=event_pb2.PersonRef(identifier=too_long)), metadata
    )
    assert list(violations(error)) == ["person.identifier.value"]
    error = _refused(
        stub.ListProfiles, pb.ListProfilesRequest(identifier_type="t" * 65, identifier_value="v"), metadata
    )
    assert list(violations(error)) == ["identifier_type"]


# --- time ranges --------------------------------------------------------------------------------------------


def test_list_profiles_refuses_range_bounds_outside_timestamps_range(stub: Stub, metadata: Metadata) -> None:
    request = pb.ListProfilesRequest(
        last_seen_range=event_pb2.TimeRange(start=_ts(YEAR_10000)),
        first_seen_range=event_pb2.TimeRange(end=_ts(0, -1)),
    )
    error = _refused(stub.ListProfiles, request, metadata)
    assert list(violations(error)) == ["last_seen_range.start", "first_seen_range.end.nanos"]


@pytest.mark.parametrize("end", [1, 2_000_000_000], ids=["inverted", "empty"])
def test_list_profiles_refuses_a_range_whose_start_is_not_before_its_end(
    stub: Stub, metadata: Metadata, end: int
) -> None:
    """event.proto's TimeRange: when both are set, start must be before end (INVALID_ARGUMENT otherwise)."""
    request = pb.ListProfilesRequest(
        first_seen_range=event_pb2.TimeRange(start=_ts(2_000_000_000), end=_ts(end))
    )
    assert list(violations(_refused(stub.ListProfiles, request, metadata))) == ["first_seen_range"]
    _resolve(stub, metadata, _input("e1", ("user_id", "u1"), ts=_ts(1_900_000_000)))
    one_second = pb.ListProfilesRequest(
        first_seen_range=event_pb2.TimeRange(start=_ts(1_900_000_000), end=_ts(1_900_000_001))
    )
    assert len(stub.ListProfiles(one_second, metadata=metadata, timeout=10).profiles) == 1


@pytest.mark.parametrize(
    ("time_range", "field"),
    [
        (event_pb2.TimeRange(end=_ts(YEAR_10000)), "time_range.end"),
        (event_pb2.TimeRange(start=_ts(MIN_TIMESTAMP_SECONDS - 1)), "time_range.start"),
    ],
    ids=["end-after-year-9999", "start-before-year-1"],
)
def test_simulate_refuses_a_malformed_time_range(
    stub: Stub, metadata: Metadata, time_range: event_pb2.TimeRange, field: str
) -> None:
    request = pb.SimulateIdentityRulesRequest(time_range=time_range)
    assert list(violations(_refused(stub.SimulateIdentityRules, request, metadata))) == [field]


# --- page tokens --------------------------------------------------------------------------------------------
# Tokens too long, nested too deep or holding integers outside int64 are refused by the common decoder
# (tests/common); these decode, and name a cursor no page of identity's ends at.


@pytest.mark.parametrize(
    "fields",
    [
        {"a": 0, "v": True},  # a bool: PostgreSQL will not compare it with a BIGINT
        {"a": 0, "v": -5},  # before the feed's start: no page ends there
        {"a": 0, "v": 0},  # not past after_version
        {"a": False, "v": 3},
    ],
    ids=["bool", "negative", "not-past-after-version", "bool-after-version"],
)
def test_list_person_overrides_refuses_tokens_it_never_issues(
    stub: Stub, metadata: Metadata, fields: dict[str, object]
) -> None:
    request = pb.ListPersonOverridesRequest(page_token=encode_page_token(fields))
    error = _refused(stub.ListPersonOverrides, request, metadata)
    assert (reason(error), list(violations(error))) == ("INVALID_PAGE_TOKEN", ["page_token"])


def _binding(request: pb.ListProfilesRequest) -> str:
    """The filters' fingerprint a ListProfiles token carries (anyone can compute it: a token is no secret)."""
    return hashlib.sha256(request.SerializeToString(deterministic=True)).hexdigest()[:16]


@pytest.mark.parametrize(
    ("cursor", "person"),
    [(True, "p"), (1.5, "p"), (1, "p\x00")],
    ids=["bool", "not-an-integer", "nul-in-person-id"],
)
def test_list_profiles_refuses_tokens_it_never_issues(
    stub: Stub, metadata: Metadata, cursor: object, person: str
) -> None:
    _resolve(stub, metadata, _input("e1", ("user_id", "u1")))
    token = encode_page_token({"f": _binding(pb.ListProfilesRequest()), "s": cursor, "p": person})
    error = _refused(stub.ListProfiles, pb.ListProfilesRequest(page_token=token), metadata)
    assert (reason(error), list(violations(error))) == ("INVALID_PAGE_TOKEN", ["page_token"])


# --- rules --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rules", "field"),
    [
        (
            rules_pb.IdentityRules(
                identifier_types=[rules_pb.IdentifierTypeRule(type="email", normalizations=[1, UNKNOWN])]  # type: ignore[list-item]
            ),
            "identity_rules.identifier_types[0].normalizations[1]",
        ),
        (
            rules_pb.IdentityRules(linking_event_types=[event_pb2.EVENT_TYPE_TRACK, UNKNOWN]),  # type: ignore[list-item]
            "identity_rules.linking_event_types[1]",
        ),
    ],
    ids=["normalization", "linking_event_type"],
)
def test_rules_with_enum_numbers_this_build_does_not_know_are_refused(
    stub: Stub, metadata: Metadata, rules: rules_pb.IdentityRules, field: str
) -> None:
    update = pb.UpdateIdentityRulesRequest(identity_rules=rules)
    assert list(violations(_refused(stub.UpdateIdentityRules, update, metadata))) == [field]
    simulate = pb.SimulateIdentityRulesRequest(identity_rules=rules)
    assert list(violations(_refused(stub.SimulateIdentityRules, simulate, metadata))) == [field]
    unchanged = stub.GetIdentityRules(pb.GetIdentityRulesRequest(), metadata=metadata, timeout=10)
    assert unchanged.identity_rules.revision == 0


@pytest.mark.parametrize(
    "pattern",
    [r"(a+)+\1$", r"(?=x)x+", r"(?<!a)b", r"(?>a+)b", r"a++b", r"(?P<n>a)(?P=n)"],
    ids=["backreference", "lookahead", "lookbehind", "atomic-group", "possessive", "named-backreference"],
)
def test_validation_regex_must_be_re2(stub: Stub, metadata: Metadata, pattern: str) -> None:
    """identity_rules.proto: `validation_regex` is an RE2 pattern; these are Python `re` only."""
    rules = rules_pb.IdentityRules(
        identifier_types=[rules_pb.IdentifierTypeRule(type="email", validation_regex=pattern)]
    )
    error = _refused(stub.UpdateIdentityRules, pb.UpdateIdentityRulesRequest(identity_rules=rules), metadata)
    assert list(violations(error)) == ["identity_rules.identifier_types[0].validation_regex"]


def test_validation_regex_matches_in_full_in_linear_time() -> None:
    """`(a+)+$` is RE2 and allowed; Python's backtracking engine took seconds on this value (and doubled with
    each `a` more) on every resolution of the type."""
    rules = Rules(identifier_types=(TypeRule("x_code", validation_regex=r"(a+)+$"),))
    started = time.perf_counter()
    assert rules.normalise(("x_code", "a" * 28 + "!")) == IgnoreReason.INVALID_VALUE
    assert time.perf_counter() - started < 1.0
    assert rules.normalise(("x_code", "aaa")) == ("x_code", "aaa")
    partial = Rules(identifier_types=(TypeRule("x_code", validation_regex=r"[0-9]+"),))
    assert partial.normalise(("x_code", "12a")) == IgnoreReason.INVALID_VALUE  # a full match, not a search


def test_a_stored_pattern_re2_refuses_keeps_working_as_before() -> None:
    """Rules stored before patterns were checked against RE2 may hold one it refuses: the type's values are
    still judged by it (with Python's engine, which accepted it); an update is refused until it is fixed."""
    rules = Rules(identifier_types=(TypeRule("x_code", validation_regex=r"(?!0)[0-9]+"),))
    assert rules.normalise(("x_code", "12")) == ("x_code", "12")
    assert rules.normalise(("x_code", "012")) == IgnoreReason.INVALID_VALUE
    assert [v.field for v in rules.violations()] == ["identity_rules.identifier_types[0].validation_regex"]
