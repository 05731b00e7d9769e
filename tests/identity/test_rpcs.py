"""IdentityService over a real gRPC socket: what callers see — codes, reasons, field violations, paging,
etags, the override feed's cursor and erasure records."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import grpc
import pytest
from google.protobuf import field_mask_pb2
from google.rpc import error_details_pb2

from tests.conftest import INTERNAL_TOKEN, common_settings, start_server
from wayline.common.context import INTERNAL_TOKEN_HEADER, TENANT_HEADER
from wayline.common.errors import status_details
from wayline.common.timestamps import to_timestamp
from wayline.event.v1 import event_pb2
from wayline.identity.v1 import identity_rules_pb2 as rules_pb
from wayline.identity.v1 import identity_service_pb2 as pb
from wayline.identity.v1 import identity_service_pb2_grpc as pb_grpc
from wayline_identity.service import identity_service
from wayline_identity.settings import IdentitySettings


@pytest.fixture(scope="module")
def stub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[pb_grpc.IdentityServiceStub]:
    settings = IdentitySettings(
        **common_settings(tmp_path_factory.mktemp("identity-rpcs")),  # type: ignore[arg-type]
        journeys_address="",
        ingest_address="",
        erasure_feed_consumers=["decision"],
        erasure_retry_seconds=0.2,
    )
    server = start_server(identity_service(settings), settings)
    with grpc.insecure_channel(server.address) as channel:
        yield pb_grpc.IdentityServiceStub(channel)
    server.stop(0)


Metadata = tuple[tuple[str, str], ...]


@pytest.fixture
def metadata() -> Metadata:
    """A tenant of the test's own."""
    return ((INTERNAL_TOKEN_HEADER, INTERNAL_TOKEN), (TENANT_HEADER, f"t-{uuid.uuid4().hex[:8]}"))


def _input(event_id: str, *identifiers: tuple[str, str]) -> pb.IdentityResolutionInput:
    return pb.IdentityResolutionInput(
        event_id=event_id,
        timestamp=to_timestamp(datetime.now(UTC)),
        event_type=event_pb2.EVENT_TYPE_TRACK,
        identifiers=[event_pb2.Identifier(type=t, value=v) for t, v in identifiers],
    )


def _violations(error: grpc.RpcError) -> list[str]:
    return [
        v.field
        for d in status_details(error)
        if isinstance(d, error_details_pb2.BadRequest)
        for v in d.field_violations
    ]


def _reason(error: grpc.RpcError) -> str:
    reason: str = next(d.reason for d in status_details(error) if isinstance(d, error_details_pb2.ErrorInfo))
    return reason


def test_resolve_identities_names_each_malformed_input(
    stub: pb_grpc.IdentityServiceStub, metadata: Metadata
) -> None:
    bad = pb.ResolveIdentitiesRequest(
        inputs=[_input("e1", ("anonymous_id", "a")), _input("e2"), _input("e3", ("", "x"))]
    )
    del bad.inputs[0].identifiers[:]
    bad.inputs[0].identifiers.add(type="anonymous_id", value="a")
    bad.inputs[0].ClearField("timestamp")
    with pytest.raises(grpc.RpcError) as raised:
        stub.ResolveIdentities(bad, metadata=metadata, timeout=10)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _violations(raised.value) == [
        "inputs[0].timestamp",
        "inputs[1].identifiers",
        "inputs[2].identifiers[0].type",
    ]
    too_many = pb.ResolveIdentitiesRequest(
        inputs=[_input(f"e{i}", ("anonymous_id", f"a{i}")) for i in range(1001)]
    )
    with pytest.raises(grpc.RpcError) as raised:
        stub.ResolveIdentities(too_many, metadata=metadata, timeout=10)
    assert _violations(raised.value) == ["inputs"]


def test_resolve_identities_answers_reasons_and_merges(
    stub: pb_grpc.IdentityServiceStub, metadata: Metadata
) -> None:
    response = stub.ResolveIdentities(
        pb.ResolveIdentitiesRequest(
            inputs=[
                _input("e1", ("anonymous_id", "a")),
                _input("e2", ("anonymous_id", "b"), ("email", " Ada@Example.com"), ("user_id", "null")),
                _input("e3", ("anonymous_id", "a"), ("anonymous_id", "b")),
            ]
        ),
        metadata=metadata,
        timeout=10,
    )
    first, second, third = response.resolutions
    assert [(i.identifier.value, i.reason) for i in second.ignored_identifiers] == [
        ("null", rules_pb.IGNORE_REASON_BLOCKED_VALUE)
    ]
    assert ("email", "ada@example.com") in [(i.type, i.value) for i in second.identifiers]
    assert third.person_id == first.person_id
    [merge] = response.merges
    assert (merge.source_person_id, merge.event_id) == (second.person_id, "e3")
    assert [(o.person_id, o.override_person_id) for o in response.person_overrides] == [
        (second.person_id, first.person_id)
    ]


def test_get_profile_by_identifier_and_not_found(
    stub: pb_grpc.IdentityServiceStub, metadata: Metadata
) -> None:
    stub.ResolveIdentities(
        pb.ResolveIdentitiesRequest(inputs=[_input("e1", ("email", "x@y.io"))]), metadata=metadata
    )
    ref = event_pb2.PersonRef(identifier=event_pb2.Identifier(type="email", value=" X@Y.IO "))
    profile = stub.GetProfile(pb.GetProfileRequest(person=ref), metadata=metadata, timeout=10).profile
    assert [i.identifier.value for i in profile.identifiers] == ["x@y.io"]
    with pytest.raises(grpc.RpcError) as raised:
        stub.GetProfile(
            pb.GetProfileRequest(person=event_pb2.PersonRef(person_id="nobody")), metadata=metadata
        )
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    assert _reason(raised.value) == "PROFILE_NOT_FOUND"
    with pytest.raises(grpc.RpcError) as raised:
        stub.GetProfile(pb.GetProfileRequest(), metadata=metadata)
    assert _violations(raised.value) == ["person"]


def test_get_profile_tells_each_identifiers_origin_through_a_merge_and_an_unmerge(
    stub: pb_grpc.IdentityServiceStub, metadata: Metadata
) -> None:
    """The identity graph the console draws: identifiers grouped by the profile they came from."""
    response = stub.ResolveIdentities(
        pb.ResolveIdentitiesRequest(
            inputs=[
                _input("e1", ("email", "ann@x.io")),
                _input("e2", ("anonymous_id", "cookie-1")),
                _input("e3", ("email", "ann@x.io"), ("anonymous_id", "cookie-1")),
            ]
        ),
        metadata=metadata,
        timeout=10,
    )
    ann, cookie = response.resolutions[0].person_id, response.resolutions[1].person_id
    merged = stub.GetProfile(
        pb.GetProfileRequest(person=event_pb2.PersonRef(person_id=ann)), metadata=metadata, timeout=10
    ).profile
    assert {(i.identifier.value, i.origin_person_id) for i in merged.identifiers} == {
        ("ann@x.io", ann),
        ("cookie-1", cookie),
    }
    assert list(merged.merged_person_ids) == [cookie]
    unmerged = stub.UnmergeIdentifier(
        pb.UnmergeIdentifierRequest(
            person_id=ann,
            identifier=event_pb2.Identifier(type="anonymous_id", value="cookie-1"),
            reason="shared device",
        ),
        metadata=metadata,
        timeout=10,
    )
    assert [(i.identifier.value, i.origin_person_id) for i in unmerged.profile.identifiers] == [
        ("ann@x.io", ann)
    ]
    moved = unmerged.new_profile
    assert [(i.identifier.value, i.origin_person_id) for i in moved.identifiers] == [
        ("cookie-1", moved.person_id)
    ]


def test_list_profiles_pages_and_filters(stub: pb_grpc.IdentityServiceStub, metadata: Metadata) -> None:
    stub.ResolveIdentities(
        pb.ResolveIdentitiesRequest(
            inputs=[
                _input(f"e{i}", ("anonymous_id", f"a{i}"), *([("user_id", f"u{i}")] if i % 2 else []))
                for i in range(7)
            ]
        ),
        metadata=metadata,
    )
    seen: list[str] = []
    token = ""
    while True:
        page = stub.ListProfiles(pb.ListProfilesRequest(page_size=3, page_token=token), metadata=metadata)
        assert page.total_size == 7
        seen.extend(p.person_id for p in page.profiles)
        token = page.next_page_token
        if not token:
            break
    assert len(seen) == len(set(seen)) == 7
    users = stub.ListProfiles(pb.ListProfilesRequest(identifier_type="user_id"), metadata=metadata)
    assert users.total_size == 3
    one = stub.ListProfiles(
        pb.ListProfilesRequest(identifier_type="user_id", identifier_value="u3"), metadata=metadata
    )
    assert [i.identifier.value for i in one.profiles[0].identifiers] == ["u3", "a3"]
    with pytest.raises(grpc.RpcError) as raised:  # a token from other filters is refused, not misread
        stub.ListProfiles(
            pb.ListProfilesRequest(identifier_type="email", page_token=token or "e30"), metadata=metadata
        )
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_update_identity_rules_checks_etag_mask_and_values(
    stub: pb_grpc.IdentityServiceStub, metadata: Metadata
) -> None:
    rules = stub.GetIdentityRules(pb.GetIdentityRulesRequest(), metadata=metadata).identity_rules
    assert [t.type for t in rules.identifier_types][:2] == ["user_id", "crm_id"]
    assert rules.revision == 0
    change = rules_pb.IdentityRules(blocked_values=["test"], default_phone_region="FR", etag=rules.etag)
    mask = field_mask_pb2.FieldMask(paths=["blocked_values", "default_phone_region"])
    updated = stub.UpdateIdentityRules(
        pb.UpdateIdentityRulesRequest(identity_rules=change, update_mask=mask), metadata=metadata
    ).identity_rules
    assert (list(updated.blocked_values), updated.default_phone_region, updated.revision) == (
        ["test"],
        "FR",
        1,
    )
    assert [t.type for t in updated.identifier_types] == [t.type for t in rules.identifier_types]  # untouched
    with pytest.raises(grpc.RpcError) as raised:  # the old etag
        stub.UpdateIdentityRules(
            pb.UpdateIdentityRulesRequest(identity_rules=change, update_mask=mask), metadata=metadata
        )
    assert raised.value.code() == grpc.StatusCode.ABORTED
    assert _reason(raised.value) == "ETAG_MISMATCH"
    invalid = rules_pb.IdentityRules(
        identifier_types=[
            rules_pb.IdentifierTypeRule(type="Email", max_per_profile=-1, validation_regex="(")
        ],
        default_phone_region="XX",
    )
    with pytest.raises(grpc.RpcError) as raised:
        stub.UpdateIdentityRules(pb.UpdateIdentityRulesRequest(identity_rules=invalid), metadata=metadata)
    assert set(_violations(raised.value)) == {
        "identity_rules.identifier_types[0].type",
        "identity_rules.identifier_types[0].max_per_profile",
        "identity_rules.identifier_types[0].validation_regex",
        "identity_rules.default_phone_region",
    }
    with pytest.raises(grpc.RpcError) as raised:
        stub.UpdateIdentityRules(
            pb.UpdateIdentityRulesRequest(
                identity_rules=change, update_mask=field_mask_pb2.FieldMask(paths=["revision"])
            ),
            metadata=metadata,
        )
    assert _violations(raised.value) == ["update_mask.paths"]


def test_simulate_identity_rules_reports_merges_undone_and_added(
    stub: pb_grpc.IdentityServiceStub, metadata: Metadata
) -> None:
    stub.ResolveIdentities(
        pb.ResolveIdentitiesRequest(
            inputs=[
                _input("e1", ("user_id", "u1"), ("email", "shared@x.io")),
                _input("e2", ("anonymous_id", "a2")),
                _input(
                    "e3", ("anonymous_id", "a2"), ("email", "shared@x.io")
                ),  # merges a2's profile into u1's
                _input("e4", ("user_id", "u2")),
                _input("e5", ("user_id", "u2"), ("email", "shared@x.io")),  # refused: two user ids
            ]
        ),
        metadata=metadata,
    )
    rules = stub.GetIdentityRules(pb.GetIdentityRulesRequest(), metadata=metadata).identity_rules
    proposed = rules_pb.IdentityRules()
    proposed.CopyFrom(rules)
    proposed.blocked_values.append("shared@x.io")  # the shared address would no longer link anything
    for rule in proposed.identifier_types:
        if rule.type == "user_id":
            rule.max_per_profile = 2  # and two user ids could share a profile
    result = stub.SimulateIdentityRules(
        pb.SimulateIdentityRulesRequest(identity_rules=proposed), metadata=metadata
    )
    assert result.undone_merge_count == 1
    assert result.undone_merges[0].event_id == "e3"
    assert "shared@x.io" in result.undone_merges[0].explanation
    assert result.added_merge_count == 1
    assert result.added_merges[0].event_id == "e5"
    assert result.newly_ignored_identifier_count == 1
    assert result.evaluated_link_count >= 3
    # Nothing changed.
    again = stub.SimulateIdentityRules(
        pb.SimulateIdentityRulesRequest(identity_rules=rules), metadata=metadata
    )
    assert (again.undone_merge_count, again.added_merge_count) == (0, 0)


def test_override_feed_pages_by_cursor_and_erasure_waits_for_feed_consumers(
    stub: pb_grpc.IdentityServiceStub, metadata: Metadata
) -> None:
    inputs = [_input(f"e{i}", ("anonymous_id", f"a{i}")) for i in range(5)]
    inputs.append(_input("join", *(("anonymous_id", f"a{i}") for i in range(5))))
    stub.ResolveIdentities(pb.ResolveIdentitiesRequest(inputs=inputs), metadata=metadata)
    first = stub.ListPersonOverrides(pb.ListPersonOverridesRequest(page_size=3), metadata=metadata)
    assert len(first.person_overrides) == 3
    assert first.next_page_token
    assert first.max_version == 4
    rest = stub.ListPersonOverrides(
        pb.ListPersonOverridesRequest(page_size=3, page_token=first.next_page_token), metadata=metadata
    )
    assert [o.version for o in rest.person_overrides] == [4]
    assert not rest.next_page_token
    with pytest.raises(grpc.RpcError) as raised:
        stub.ListPersonOverrides(pb.ListPersonOverridesRequest(after_version=-1), metadata=metadata)
    assert _violations(raised.value) == ["after_version"]

    person = stub.GetProfile(
        pb.GetProfileRequest(
            person=event_pb2.PersonRef(identifier=event_pb2.Identifier(type="anonymous_id", value="a0"))
        ),
        metadata=metadata,
    ).profile.person_id
    erased = stub.DeleteProfile(
        pb.DeleteProfileRequest(person_id=person, reason="erasure 1"), metadata=metadata
    )
    assert len(erased.deleted_person_ids) == 5
    assert erased.deleted_identifier_count == 5
    steps = {s.store: s.state for s in erased.erasure.steps}
    assert steps == {"identity": pb.ERASURE_STATE_DONE, "decision": pb.ERASURE_STATE_PENDING}
    markers = stub.ListPersonOverrides(pb.ListPersonOverridesRequest(after_version=4), metadata=metadata)
    assert {o.person_id for o in markers.person_overrides} == set(erased.deleted_person_ids)
    assert all(o.erased for o in markers.person_overrides)
    ack = stub.AcknowledgePersonOverrides(
        pb.AcknowledgePersonOverridesRequest(consumer="decision", applied_version=markers.max_version),
        metadata=metadata,
    )
    assert ack.max_version == markers.max_version

    def state() -> int:
        return stub.GetErasure(
            pb.GetErasureRequest(erasure_id=erased.erasure.erasure_id), metadata=metadata
        ).erasure.state

    deadline = time.monotonic() + 15
    while state() != pb.ERASURE_STATE_DONE:
        assert time.monotonic() < deadline, "the erasure did not complete after the consumer caught up"
        time.sleep(0.1)
    with pytest.raises(grpc.RpcError) as raised:
        stub.DeleteProfile(pb.DeleteProfileRequest(person_id=person, reason="again"), metadata=metadata)
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as raised:
        stub.AcknowledgePersonOverrides(
            pb.AcknowledgePersonOverridesRequest(consumer="Bad Name"), metadata=metadata
        )
    assert _violations(raised.value) == ["consumer"]


def test_feed_heads_are_read_for_many_tenants_in_one_call_without_a_tenant(
    stub: pb_grpc.IdentityServiceStub, metadata: Metadata
) -> None:
    merging, quiet = dict(metadata)[TENANT_HEADER], f"t-{uuid.uuid4().hex[:8]}"
    stub.ResolveIdentities(
        pb.ResolveIdentitiesRequest(inputs=[_input("e1", ("anonymous_id", "q"))]),
        metadata=((INTERNAL_TOKEN_HEADER, INTERNAL_TOKEN), (TENANT_HEADER, quiet)),
    )
    inputs = [_input(f"e{i}", ("anonymous_id", f"a{i}")) for i in range(3)]
    inputs.append(_input("join", *(("anonymous_id", f"a{i}") for i in range(3))))
    stub.ResolveIdentities(pb.ResolveIdentitiesRequest(inputs=inputs), metadata=metadata)
    internal = ((INTERNAL_TOKEN_HEADER, INTERNAL_TOKEN),)  # no tenant: the request names them

    def heads(*tenants: str) -> list[tuple[str, int]]:
        response = stub.GetOverrideFeedHeads(
            pb.GetOverrideFeedHeadsRequest(tenants=tenants), metadata=internal
        )
        return [(h.tenant, h.max_version) for h in response.heads]

    feed = stub.ListPersonOverrides(pb.ListPersonOverridesRequest(), metadata=metadata)
    assert feed.max_version == 2
    # In the request's order, each once; a tenant without overrides (or unknown to identity) is at 0.
    assert heads("nobody", merging, quiet, merging) == [("nobody", 0), (merging, 2), (quiet, 0)]

    stub.ResolveIdentities(
        pb.ResolveIdentitiesRequest(
            inputs=[
                _input("e8", ("anonymous_id", "b")),
                _input("e9", ("anonymous_id", "a0"), ("anonymous_id", "b")),
            ]
        ),
        metadata=metadata,
    )
    assert heads(merging) == [(merging, 3)]
    assert stub.ListPersonOverrides(pb.ListPersonOverridesRequest(), metadata=metadata).max_version == 3

    for bad, fields in (
        ((), ["tenants"]),
        ((merging, "", quiet, ""), ["tenants[1]", "tenants[3]"]),
        (tuple(f"t{i}" for i in range(10_001)), ["tenants"]),
    ):
        with pytest.raises(grpc.RpcError) as raised:
            stub.GetOverrideFeedHeads(pb.GetOverrideFeedHeadsRequest(tenants=bad), metadata=internal)
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert _violations(raised.value) == fields
    # 10,000 names, duplicates aside, is the most a call may ask for.
    many = [f"t{i}" for i in range(10_000)]
    assert len(heads(*many, *many[:10])) == 10_000
    # Only other services may read the heads.
    with pytest.raises(grpc.RpcError) as raised:
        stub.GetOverrideFeedHeads(pb.GetOverrideFeedHeadsRequest(tenants=[merging]))
    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED


def _resolve(
    stub: pb_grpc.IdentityServiceStub, metadata: Metadata, inputs: list[pb.IdentityResolutionInput]
) -> None:
    for start in range(0, len(inputs), 500):
        stub.ResolveIdentities(
            pb.ResolveIdentitiesRequest(inputs=inputs[start : start + 500]), metadata=metadata, timeout=60
        )


def test_a_profile_lists_its_first_thousand_identifiers_by_priority_and_counts_them(
    stub: pb_grpc.IdentityServiceStub, metadata: Metadata
) -> None:
    """A shared login gathers a device id per visitor: 60,000 made a 5.3 MB profile, past the 4 MiB a gRPC
    client receives by default. The profile lists the first 1,000 by priority (the email, seen last, comes
    before every anonymous id) and counts them all."""
    shared = ("user_id", f"shared-{uuid.uuid4().hex[:6]}")
    inputs = [_input(f"e{i}", shared, ("anonymous_id", f"a-{i:05}")) for i in range(1_500)]
    inputs.append(_input("e-email", shared, ("email", "team@example.com")))
    _resolve(stub, metadata, inputs)
    person = event_pb2.PersonRef(identifier=event_pb2.Identifier(type=shared[0], value=shared[1]))
    profile = stub.GetProfile(pb.GetProfileRequest(person=person), metadata=metadata, timeout=30).profile
    assert profile.identifier_count == 1_502
    shown = [(i.identifier.type, i.identifier.value) for i in profile.identifiers]
    assert shown == [shared, ("email", "team@example.com")] + [
        ("anonymous_id", f"a-{i:05}") for i in range(998)
    ]
    listed = stub.ListProfiles(
        pb.ListProfilesRequest(identifier_type=shared[0], identifier_value=shared[1]),
        metadata=metadata,
        timeout=30,
    ).profiles
    assert [(p.identifier_count, len(p.identifiers)) for p in listed] == [(1_502, 1_000)]


def test_a_profile_that_absorbed_many_persons_lists_the_first_thousand_and_counts_them(
    stub: pb_grpc.IdentityServiceStub, metadata: Metadata
) -> None:
    visitors = [_input(f"v{i}", ("anonymous_id", f"b-{i:05}")) for i in range(1_100)]
    _resolve(stub, metadata, visitors)
    login = ("user_id", f"member-{uuid.uuid4().hex[:6]}")
    _resolve(stub, metadata, [_input(f"l{i}", login, ("anonymous_id", f"b-{i:05}")) for i in range(1_100)])
    person = event_pb2.PersonRef(identifier=event_pb2.Identifier(type=login[0], value=login[1]))
    profile = stub.GetProfile(pb.GetProfileRequest(person=person), metadata=metadata, timeout=30).profile
    assert profile.merged_person_count == 1_099  # into the first visitor's profile, which the login joined
    assert len(profile.merged_person_ids) == 1_000
    assert profile.merged_person_ids == sorted(profile.merged_person_ids)
    assert len(profile.merge_history) == 500
    assert profile.merge_history_truncated
    assert profile.identifier_count == 1_101


def test_list_profile_identifiers_pages_past_the_thousand_a_profile_shows(
    stub: pb_grpc.IdentityServiceStub, metadata: Metadata
) -> None:
    shared = ("user_id", f"shared-{uuid.uuid4().hex[:6]}")
    inputs = [_input(f"e{i}", shared, ("anonymous_id", f"a-{i:05}")) for i in range(1_500)]
    inputs.append(_input("e-email", shared, ("email", "desk@example.com")))
    _resolve(stub, metadata, inputs)
    person = event_pb2.PersonRef(identifier=event_pb2.Identifier(type=shared[0], value=shared[1]))
    pages, token = [], ""
    while True:
        request = pb.ListProfileIdentifiersRequest(person=person, page_size=700, page_token=token)
        page = stub.ListProfileIdentifiers(request, metadata=metadata, timeout=30)
        pages.append(page)
        token = page.next_page_token
        if not token:
            break
    listed = [(i.identifier.type, i.identifier.value) for page in pages for i in page.identifiers]
    assert listed == [shared, ("email", "desk@example.com")] + [
        ("anonymous_id", f"a-{i:05}") for i in range(1_500)
    ]
    assert [(len(p.identifiers), p.total_size) for p in pages] == [(700, 1_502), (700, 1_502), (102, 1_502)]
    profile = stub.GetProfile(pb.GetProfileRequest(person=person), metadata=metadata, timeout=30).profile
    assert {p.person_id for p in pages} == {profile.person_id}
    assert list(profile.identifiers) == [i for page in pages for i in page.identifiers][:1_000]

    by_id = pb.ListProfileIdentifiersRequest(person=event_pb2.PersonRef(person_id=profile.person_id))
    whole = stub.ListProfileIdentifiers(by_id, metadata=metadata, timeout=30)  # 0 means 1,000 a page
    assert (len(whole.identifiers), whole.total_size, bool(whole.next_page_token)) == (1_000, 1_502, True)


def test_list_profile_identifiers_refuses_what_it_cannot_page(
    stub: pb_grpc.IdentityServiceStub, metadata: Metadata
) -> None:
    _resolve(stub, metadata, [_input("one", ("anonymous_id", "a-1"), ("anonymous_id", "a-2"))])
    _resolve(stub, metadata, [_input("two", ("anonymous_id", "b-1"), ("anonymous_id", "b-2"))])

    def ref(value: str) -> event_pb2.PersonRef:
        return event_pb2.PersonRef(identifier=event_pb2.Identifier(type="anonymous_id", value=value))

    first = stub.ListProfileIdentifiers(
        pb.ListProfileIdentifiersRequest(person=ref("a-1"), page_size=1), metadata=metadata, timeout=10
    )
    assert first.next_page_token
    for request, code in [
        (pb.ListProfileIdentifiersRequest(), grpc.StatusCode.INVALID_ARGUMENT),  # no person
        (pb.ListProfileIdentifiersRequest(person=ref("nobody")), grpc.StatusCode.NOT_FOUND),
        (
            pb.ListProfileIdentifiersRequest(person=ref("a-1"), page_token="garbage!"),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (pb.ListProfileIdentifiersRequest(person=ref("a-1"), page_size=-1), grpc.StatusCode.INVALID_ARGUMENT),
        (  # another profile's token
            pb.ListProfileIdentifiersRequest(person=ref("b-1"), page_token=first.next_page_token),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
    ]:
        with pytest.raises(grpc.RpcError) as refused:
            stub.ListProfileIdentifiers(request, metadata=metadata, timeout=10)
        assert refused.value.code() == code, refused.value.details()
