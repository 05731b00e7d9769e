"""Values identity stored before a check of 2026-12 refuses them keep being read, over a real gRPC socket on
SQLite and PostgreSQL (ADR 78).

Times outside Timestamp's range (ResolveIdentities took any int64 seconds; an SDK sending milliseconds as
seconds dates every event in year ~55,000): GetProfile and ListProfiles answer, each such time read as the
nearest one Timestamp holds (9999-12-31T23:59:59.999999Z, or 0001-01-01T00:00:00Z), the person logged once
(`identity.profiles.time_out_of_range`), and ListProfiles' pages go through every such profile once. Before,
every GetProfile of the person answered INTERNAL (a datetime cannot hold the time), and so did every
ListProfiles page holding the profile, the first page of an unfiltered list since the most recently seen come
first.

A `validation_regex` RE2 refuses (stored when Python's `re` checked patterns; ADR 72 keeps judging values
with it): UpdateIdentityRules refuses it when the update writes `identifier_types`, not when it writes other
fields. Before, every update of the rules was INVALID_ARGUMENT naming the pattern, whatever its mask.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from pydantic import SecretStr
from structlog.testing import capture_logs

from tests.conftest import INTERNAL_TOKEN, common_settings, start_server
from tests.postgres import create_schema
from tests.rpc_errors import violations
from wayline.common.context import INTERNAL_TOKEN_HEADER, TENANT_HEADER
from wayline.common.sql import Database, open_database
from wayline.common.timestamps import MAX_TIMESTAMP_SECONDS, MIN_TIMESTAMP_SECONDS, to_datetime
from wayline.event.v1 import event_pb2
from wayline.identity.v1 import identity_rules_pb2 as rules_pb
from wayline.identity.v1 import identity_service_pb2 as pb
from wayline.identity.v1 import identity_service_pb2_grpc as pb_grpc
from wayline_identity.identity import Identity
from wayline_identity.model import ResolutionInput
from wayline_identity.rules import DEFAULT_RULES, TypeRule
from wayline_identity.service import identity_service
from wayline_identity.settings import IdentitySettings
from wayline_identity.store.rules_store import save_rules

Metadata = tuple[tuple[str, str], ...]
LAST = datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)
FIRST = datetime(1, 1, 1, tzinfo=UTC)
NOW_US = 1_772_445_600 * 1_000_000  # 2026-03-02
YEAR_10000_US = (MAX_TIMESTAMP_SECONDS + 1) * 1_000_000
MILLIS_AS_SECONDS_US = NOW_US * 1_000  # year ~58,000
BEFORE_YEAR_1_US = (MIN_TIMESTAMP_SECONDS - 1) * 1_000_000


@dataclass
class Rig:
    stub: pb_grpc.IdentityServiceStub
    writer: Identity  # the service's own domain and store, on its database: how the values were stored
    db: Database


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def rig(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    url = create_schema(request.getfixturevalue("postgres_url")) if request.param == "postgresql" else None
    settings = IdentitySettings(
        **common_settings(tmp_path_factory.mktemp("identity-stored-times")),  # type: ignore[arg-type]
        database_url=SecretStr(url) if url else None,
        journeys_address="",
        ingest_address="",
        cache_identifiers=0,  # another Identity writes the database too
    )
    server = start_server(identity_service(settings), settings)
    db = open_database(url, settings.service_dir / "identity.db")
    with grpc.insecure_channel(server.address) as channel:
        yield Rig(pb_grpc.IdentityServiceStub(channel), Identity(db), db)
    server.stop(0)
    db.close()


@pytest.fixture
def tenant() -> str:
    return f"t-{uuid.uuid4().hex[:8]}"


def _metadata(tenant: str) -> Metadata:
    return ((INTERNAL_TOKEN_HEADER, INTERNAL_TOKEN), (TENANT_HEADER, tenant))


def _stored(rig: Rig, tenant: str, *inputs: tuple[str, int, tuple[tuple[str, str], ...]]) -> list[str]:
    """Resolve the inputs (event id, time in microseconds, identifiers) through the service's domain, as
    ResolveIdentities handed them over before it checked times; the person of each."""
    items = [ResolutionInput(event_id, at, "identify", identifiers) for event_id, at, identifiers in inputs]
    return [r.person_id for r in rig.writer.resolve(tenant, items).resolutions]


def _profile(rig: Rig, tenant: str, person_id: str) -> pb.GetProfileResponse:
    request = pb.GetProfileRequest(person=event_pb2.PersonRef(person_id=person_id))
    return rig.stub.GetProfile(request, metadata=_metadata(tenant), timeout=10)


@pytest.mark.parametrize(
    ("stored", "read"),
    [(YEAR_10000_US, LAST), (MILLIS_AS_SECONDS_US, LAST), (BEFORE_YEAR_1_US, FIRST)],
    ids=["year-10000", "milliseconds-as-seconds", "before-year-1"],
)
def test_get_profile_reads_a_stored_time_outside_timestamps_range_as_its_nearest(
    rig: Rig, tenant: str, stored: int, read: datetime
) -> None:
    (person,) = _stored(rig, tenant, ("e1", stored, (("user_id", "u1"), ("email", "u1@example.com"))))
    profile = _profile(rig, tenant, person).profile
    assert to_datetime(profile.first_seen_time) == read
    assert to_datetime(profile.last_seen_time) == read
    assert {to_datetime(i.last_seen_time) for i in profile.identifiers} == {read}


def test_list_profiles_pages_through_every_profile_stored_past_year_9999(rig: Rig, tenant: str) -> None:
    persons = _stored(
        rig,
        tenant,
        ("e1", YEAR_10000_US, (("user_id", "late-1"),)),
        ("e2", MILLIS_AS_SECONDS_US, (("user_id", "late-2"),)),
        ("e3", YEAR_10000_US + 5, (("user_id", "late-3"),)),
        ("e4", NOW_US, (("user_id", "now"),)),
    )
    listed: list[str] = []
    token = ""
    for _ in range(10):
        request = pb.ListProfilesRequest(page_size=1, page_token=token)
        page = rig.stub.ListProfiles(request, metadata=_metadata(tenant), timeout=10)
        listed += [p.person_id for p in page.profiles]
        token = page.next_page_token
        if not token:
            break
    # The most recently seen first, as stored: every profile once.
    assert listed == [persons[1], persons[2], persons[0], persons[3]]


def test_a_profile_stored_outside_timestamps_range_is_logged_once(rig: Rig, tenant: str) -> None:
    (person,) = _stored(rig, tenant, ("e1", YEAR_10000_US, (("user_id", "u1"),)))
    with capture_logs() as logged:
        for _ in range(3):
            _profile(rig, tenant, person)
        rig.stub.ListProfiles(pb.ListProfilesRequest(), metadata=_metadata(tenant), timeout=10)
    warnings = [
        e
        for e in logged
        if e["event"] == "identity.profiles.time_out_of_range" and e.get("person_id") == person
    ]
    assert len(warnings) == 1
    assert warnings[0]["tenant"] == tenant
    assert warnings[0]["log_level"] == "warning"


# --- rules --------------------------------------------------------------------------------------------------

LOOKAHEAD = "(?!0)[0-9]+"  # Python's `re` took it; RE2 has no lookaround


def _rules_stored_before(rig: Rig, tenant: str) -> None:
    """The tenant's rules with a lookahead pattern, saved through identity's rules store as
    UpdateIdentityRules saved them when `re` checked patterns."""
    kept = TypeRule("x_code", validation_regex=LOOKAHEAD)
    rules = replace(DEFAULT_RULES, identifier_types=(*DEFAULT_RULES.identifier_types, kept), revision=1)
    with rig.db.transaction() as tx:
        save_rules(tx, tenant, rules, NOW_US)


def _update(rig: Rig, tenant: str, rules: rules_pb.IdentityRules, *paths: str) -> rules_pb.IdentityRules:
    request = pb.UpdateIdentityRulesRequest(identity_rules=rules, update_mask=FieldMask(paths=list(paths)))
    return rig.stub.UpdateIdentityRules(request, metadata=_metadata(tenant), timeout=10).identity_rules


def test_update_identity_rules_leaving_a_stored_pattern_goes_through(rig: Rig, tenant: str) -> None:
    _rules_stored_before(rig, tenant)
    changes = rules_pb.IdentityRules(default_phone_region="FR")
    updated = _update(rig, tenant, changes, "default_phone_region")  # was refused, naming the pattern
    assert updated.default_phone_region == "FR"
    assert [t.validation_regex for t in updated.identifier_types if t.type == "x_code"] == [LOOKAHEAD]


def test_update_identity_rules_writing_a_stored_pattern_again_is_refused(rig: Rig, tenant: str) -> None:
    _rules_stored_before(rig, tenant)
    current = rig.stub.GetIdentityRules(
        pb.GetIdentityRulesRequest(), metadata=_metadata(tenant), timeout=10
    ).identity_rules
    for paths in (("identifier_types",), ()):
        with pytest.raises(grpc.RpcError) as refused:
            _update(rig, tenant, current, *paths)
        assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        index = [t.type for t in current.identifier_types].index("x_code")
        assert set(violations(refused.value)) == {
            f"identity_rules.identifier_types[{index}].validation_regex"
        }
