"""The action catalogue over real sockets, through the gateway, on both engines (SQLite embedded, a real
PostgreSQL): create, get, list with paging and filters, update by mask with etags, archive and unarchive,
validation with field paths, ALREADY_EXISTS, NOT_FOUND, scopes and tenant isolation."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import SecretStr

from tests.conftest import API_KEY, TENANT, common_settings, gateway_settings, start_server
from tests.pages import every_page
from tests.rpc_errors import reason, violations
from tools.postgres_server import create_schema
from wayline.api.v1 import annotations_pb2
from wayline.decision.v1 import action_pb2
from wayline.decision.v1 import decision_service_pb2 as pb
from wayline.decision.v1 import decision_service_pb2_grpc as pb_grpc
from wayline.event.v1 import event_pb2
from wayline.gateway.v1 import api_key_pb2
from wayline.gateway.v1 import gateway_service_pb2 as admin_pb
from wayline.gateway.v1 import gateway_service_pb2_grpc as admin_grpc
from wayline.journeys.v1 import lifecycle_stage_pb2
from wayline.orchestrator.v1 import contact_policy_pb2
from wayline_decision.service import decision_service
from wayline_decision.settings import DecisionSettings
from wayline_gateway.service import gateway_service

Auth = tuple[tuple[str, str], ...]
OPERATOR: Auth = (("authorization", f"Bearer {API_KEY}"),)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def channel(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[grpc.Channel]:
    """A gateway in front of a decision service whose catalogue is on each engine in turn."""
    url = create_schema(request.getfixturevalue("postgres_url")) if request.param == "postgresql" else ""
    decision_settings = DecisionSettings(
        **common_settings(tmp_path_factory.mktemp("decision")),  # type: ignore[arg-type]
        database_url=SecretStr(url) if url else None,
    )
    decision = start_server(decision_service(decision_settings), decision_settings)
    settings = gateway_settings(
        tmp_path_factory.mktemp("gateway"), {"decision": decision.address}, API_KEY, TENANT
    )
    gateway = start_server(gateway_service(settings), settings)
    with grpc.insecure_channel(gateway.address) as opened:
        yield opened
    gateway.stop(0)
    decision.stop(0)


@pytest.fixture
def stub(channel: grpc.Channel) -> pb_grpc.DecisionServiceStub:
    return pb_grpc.DecisionServiceStub(channel)


@pytest.fixture
def tenant(channel: grpc.Channel) -> Auth:
    """A read + admin key of a new tenant, so each test's catalogue is its own."""
    return tenant_key(channel, annotations_pb2.SCOPE_READ, annotations_pb2.SCOPE_ADMIN)


def tenant_key(channel: grpc.Channel, *scopes: annotations_pb2.Scope.ValueType) -> Auth:
    admin = admin_grpc.AdminServiceStub(channel)
    made = admin.CreateTenant(
        admin_pb.CreateTenantRequest(tenant_id=f"actions-{uuid.uuid4().hex[:6]}"),
        metadata=OPERATOR,
        timeout=10,
    ).tenant
    key = admin.CreateApiKey(
        admin_pb.CreateApiKeyRequest(parent=made.name, api_key=api_key_pb2.ApiKey(scopes=list(scopes))),
        metadata=OPERATOR,
        timeout=10,
    )
    return (("authorization", f"Bearer {key.secret}"),)


def email_offer(**changes: object) -> action_pb2.Action:
    action = action_pb2.Action(
        display_name="10% off, by email",
        description="A win-back discount for lapsing buyers.",
        channel=event_pb2.CHANNEL_EMAIL,
        placements=["newsletter_slot"],
        value=12.5,
        value_currency="EUR",
        lever=1.5,
        start_time=Timestamp(seconds=1_700_000_000),
        end_time=Timestamp(seconds=1_900_000_000),
        eligibility=action_pb2.ActionEligibility(
            required_segments=["segments/lapsing"],
            excluded_segments=["segments/vip"],
            lifecycle_stages=[lifecycle_stage_pb2.LIFECYCLE_STAGE_RETENTION],
            required_consent=contact_policy_pb2.CONTACT_PURPOSE_MARKETING,
            required_reachable_channel=event_pb2.CHANNEL_EMAIL,
        ),
        counts_as_contact=True,
        purpose=contact_policy_pb2.CONTACT_PURPOSE_MARKETING,
    )
    for name, value in changes.items():
        if isinstance(value, Timestamp):
            getattr(action, name).CopyFrom(value)
        else:
            setattr(action, name, value)
    return action


def create(
    stub: pb_grpc.DecisionServiceStub, auth: Auth, action_id: str, action: action_pb2.Action | None = None
) -> action_pb2.Action:
    request = pb.CreateActionRequest(action_id=action_id, action=action or email_offer())
    return stub.CreateAction(request, metadata=auth, timeout=10).action


def refused(call: object, request: object, auth: Auth) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as error:
        call(request, metadata=auth, timeout=10)  # type: ignore[operator]
    return error.value


def test_create_action_then_get_it(stub: pb_grpc.DecisionServiceStub, tenant: Auth) -> None:
    created = create(stub, tenant, "winback_10")
    expected = email_offer()
    expected.name = "actions/winback_10"
    expected.state = action_pb2.ACTION_STATE_ACTIVE
    assert created.etag
    assert created.create_time.seconds > 0
    assert created.update_time == created.create_time
    for output_only in ("etag", "create_time", "update_time"):
        created.ClearField(output_only)
    assert created == expected
    got = stub.GetAction(pb.GetActionRequest(name="actions/winback_10"), metadata=tenant, timeout=10).action
    got.ClearField("etag")
    got.ClearField("create_time")
    got.ClearField("update_time")
    assert got == expected


def test_create_action_defaults_value_and_lever_to_unset(
    stub: pb_grpc.DecisionServiceStub, tenant: Auth
) -> None:
    banner = action_pb2.Action(channel=event_pb2.CHANNEL_WEB, placements=["home_hero"])
    created = create(stub, tenant, "hero-banner", banner)
    assert [created.HasField(f) for f in ("value", "lever", "start_time")] == [False, False, False]
    assert not created.counts_as_contact


def test_create_action_already_exists(stub: pb_grpc.DecisionServiceStub, tenant: Auth) -> None:
    create(stub, tenant, "dup")
    error = refused(stub.CreateAction, pb.CreateActionRequest(action_id="dup", action=email_offer()), tenant)
    assert (error.code(), reason(error)) == (grpc.StatusCode.ALREADY_EXISTS, "ACTION_EXISTS")
    stub.ArchiveAction(pb.ArchiveActionRequest(name="actions/dup"), metadata=tenant, timeout=10)
    error = refused(stub.CreateAction, pb.CreateActionRequest(action_id="dup", action=email_offer()), tenant)
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS  # an archived action keeps its id


def test_create_action_validation_names_each_field(stub: pb_grpc.DecisionServiceStub, tenant: Auth) -> None:
    bad = email_offer(
        channel=event_pb2.CHANNEL_UNSPECIFIED,
        value=-1.0,
        lever=0.0,
        value_currency="euro",
        end_time=Timestamp(seconds=1_600_000_000),
        purpose=contact_policy_pb2.CONTACT_PURPOSE_UNSPECIFIED,
    )
    bad.placements.append("Not A Placement")
    bad.eligibility.required_segments.append("lapsing")
    bad.eligibility.excluded_segments.append("segments/lapsing")
    bad.eligibility.lifecycle_stages.append(lifecycle_stage_pb2.LIFECYCLE_STAGE_RETENTION)
    error = refused(stub.CreateAction, pb.CreateActionRequest(action_id="Bad Id", action=bad), tenant)
    assert (error.code(), reason(error)) == (grpc.StatusCode.INVALID_ARGUMENT, "ACTION_INVALID")
    assert set(violations(error)) == {
        "action_id",
        "action.channel",
        "action.placements[1]",
        "action.value",
        "action.value_currency",
        "action.lever",
        "action.end_time",
        "action.eligibility.required_segments[1]",
        "action.eligibility.excluded_segments[1]",
        "action.eligibility.lifecycle_stages[1]",
        "action.purpose",
    }
    unknown = email_offer()
    unknown.eligibility.required_reachable_channel = 999  # type: ignore[assignment]
    error = refused(stub.CreateAction, pb.CreateActionRequest(action_id="x", action=unknown), tenant)
    assert list(violations(error)) == ["action.eligibility.required_reachable_channel"]


def test_get_action_not_found_and_malformed_name(stub: pb_grpc.DecisionServiceStub, tenant: Auth) -> None:
    error = refused(stub.GetAction, pb.GetActionRequest(name="actions/missing"), tenant)
    assert (error.code(), reason(error)) == (grpc.StatusCode.NOT_FOUND, "ACTION_NOT_FOUND")
    error = refused(stub.GetAction, pb.GetActionRequest(name="models/missing"), tenant)
    assert (error.code(), list(violations(error))) == (grpc.StatusCode.INVALID_ARGUMENT, ["name"])


def test_list_actions_pages_by_id_with_filters(stub: pb_grpc.DecisionServiceStub, tenant: Auth) -> None:
    for action_id in ("e", "c", "a", "d", "b"):
        create(stub, tenant, action_id)
    create(stub, tenant, "web", action_pb2.Action(channel=event_pb2.CHANNEL_WEB))
    stub.ArchiveAction(pb.ArchiveActionRequest(name="actions/c"), metadata=tenant, timeout=10)

    def names(**filters: object) -> tuple[list[str], int]:
        found, token, total = [], "", -1
        while True:
            page = stub.ListActions(
                pb.ListActionsRequest(page_size=2, page_token=token, **filters),  # type: ignore[arg-type]
                metadata=tenant,
                timeout=10,
            )
            assert len(page.actions) <= 2
            found += [a.name.removeprefix("actions/") for a in page.actions]
            total, token = page.total_size, page.next_page_token
            if not token:
                return found, total

    assert names() == (["a", "b", "c", "d", "e", "web"], 6)
    assert names(state=action_pb2.ACTION_STATE_ACTIVE) == (["a", "b", "d", "e", "web"], 5)
    assert names(state=action_pb2.ACTION_STATE_ARCHIVED) == (["c"], 1)
    assert names(channel=event_pb2.CHANNEL_WEB) == (["web"], 1)
    first = stub.ListActions(pb.ListActionsRequest(page_size=2), metadata=tenant, timeout=10)
    for request in (
        pb.ListActionsRequest(page_token="garbage!"),
        pb.ListActionsRequest(page_token=first.next_page_token, channel=event_pb2.CHANNEL_WEB),
        pb.ListActionsRequest(page_size=-1),
    ):
        error = refused(stub.ListActions, request, tenant)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_update_action_by_mask_with_etags(stub: pb_grpc.DecisionServiceStub, tenant: Auth) -> None:
    created = create(stub, tenant, "offer")
    change = action_pb2.Action(name="actions/offer", lever=3.0, display_name="ignored", etag=created.etag)
    updated = stub.UpdateAction(
        pb.UpdateActionRequest(action=change, update_mask=FieldMask(paths=["lever"])),
        metadata=tenant,
        timeout=10,
    ).action
    assert (updated.lever, updated.display_name) == (3.0, created.display_name)
    assert updated.etag != created.etag
    assert updated.create_time == created.create_time
    stale = refused(
        stub.UpdateAction,
        pb.UpdateActionRequest(action=change, update_mask=FieldMask(paths=["lever"])),
        tenant,
    )
    assert (stale.code(), reason(stale)) == (grpc.StatusCode.ABORTED, "ETAG_MISMATCH")
    unknown = refused(
        stub.UpdateAction,
        pb.UpdateActionRequest(action=change, update_mask=FieldMask(paths=["etag", "lever"])),
        tenant,
    )
    assert (unknown.code(), list(violations(unknown))) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        ["update_mask.paths[0]"],
    )
    invalid = refused(
        stub.UpdateAction,
        pb.UpdateActionRequest(
            action=action_pb2.Action(name="actions/offer", lever=-2.0), update_mask=FieldMask(paths=["lever"])
        ),
        tenant,
    )
    assert list(violations(invalid)) == ["action.lever"]
    # An empty mask replaces every writable field but the state: an inbound banner now.
    whole = stub.UpdateAction(
        pb.UpdateActionRequest(action=action_pb2.Action(name="actions/offer", channel=event_pb2.CHANNEL_WEB)),
        metadata=tenant,
        timeout=10,
    ).action
    assert (whole.channel, whole.counts_as_contact, whole.HasField("value")) == (
        event_pb2.CHANNEL_WEB,
        False,
        False,
    )
    assert whole.state == action_pb2.ACTION_STATE_ACTIVE
    missing = refused(
        stub.UpdateAction, pb.UpdateActionRequest(action=action_pb2.Action(name="actions/nope")), tenant
    )
    assert (missing.code(), reason(missing)) == (grpc.StatusCode.NOT_FOUND, "ACTION_NOT_FOUND")


def test_archive_action_then_unarchive_by_update(stub: pb_grpc.DecisionServiceStub, tenant: Auth) -> None:
    created = create(stub, tenant, "seasonal")
    stale = refused(stub.ArchiveAction, pb.ArchiveActionRequest(name="actions/seasonal", etag="999"), tenant)
    assert (stale.code(), reason(stale)) == (grpc.StatusCode.ABORTED, "ETAG_MISMATCH")
    archived = stub.ArchiveAction(
        pb.ArchiveActionRequest(name="actions/seasonal", etag=created.etag), metadata=tenant, timeout=10
    ).action
    assert archived.state == action_pb2.ACTION_STATE_ARCHIVED
    again = stub.ArchiveAction(pb.ArchiveActionRequest(name="actions/seasonal"), metadata=tenant, timeout=10)
    assert again.action == archived  # idempotent: no new version
    active = stub.UpdateAction(
        pb.UpdateActionRequest(
            action=action_pb2.Action(name="actions/seasonal", state=action_pb2.ACTION_STATE_ACTIVE),
            update_mask=FieldMask(paths=["state"]),
        ),
        metadata=tenant,
        timeout=10,
    ).action
    assert active.state == action_pb2.ACTION_STATE_ACTIVE
    assert active.display_name == created.display_name
    missing = refused(stub.ArchiveAction, pb.ArchiveActionRequest(name="actions/nope"), tenant)
    assert (missing.code(), reason(missing)) == (grpc.StatusCode.NOT_FOUND, "ACTION_NOT_FOUND")


def test_another_tenant_neither_sees_nor_changes_the_action(
    channel: grpc.Channel, stub: pb_grpc.DecisionServiceStub, tenant: Auth
) -> None:
    create(stub, tenant, "private")
    other = tenant_key(channel, annotations_pb2.SCOPE_READ, annotations_pb2.SCOPE_ADMIN)
    listed = stub.ListActions(pb.ListActionsRequest(), metadata=other, timeout=10)
    assert (list(listed.actions), listed.total_size) == ([], 0)
    for call, request in (
        (stub.GetAction, pb.GetActionRequest(name="actions/private")),
        (stub.ArchiveAction, pb.ArchiveActionRequest(name="actions/private")),
        (stub.UpdateAction, pb.UpdateActionRequest(action=action_pb2.Action(name="actions/private"))),
    ):
        error = refused(call, request, other)
        assert (error.code(), reason(error)) == (grpc.StatusCode.NOT_FOUND, "ACTION_NOT_FOUND")
    # Its own action of the same id is its own.
    assert create(stub, other, "private").name == "actions/private"
    got = stub.GetAction(pb.GetActionRequest(name="actions/private"), metadata=tenant, timeout=10).action
    assert got.state == action_pb2.ACTION_STATE_ACTIVE


def test_catalogue_writes_need_the_admin_scope(
    channel: grpc.Channel, stub: pb_grpc.DecisionServiceStub
) -> None:
    reader = tenant_key(channel, annotations_pb2.SCOPE_READ, annotations_pb2.SCOPE_WRITE)
    error = refused(stub.CreateAction, pb.CreateActionRequest(action_id="x", action=email_offer()), reader)
    assert (error.code(), reason(error)) == (grpc.StatusCode.PERMISSION_DENIED, "SCOPE_MISSING")
    listed = stub.ListActions(pb.ListActionsRequest(), metadata=reader, timeout=10)
    assert listed.total_size == 0


def test_list_actions_ends_a_page_before_it_passes_what_a_client_receives(
    stub: pb_grpc.DecisionServiceStub, tenant: Auth
) -> None:
    """An action with a full description, 50 placements and 50 segments each way is about 12 KB: 400 of them
    at page_size 1,000 were a 5 MB answer, which a gRPC client refuses by default. The page ends at about
    3 MB; the token goes on."""
    for number in range(400):
        action = email_offer()
        action.description = "x" * 2_000
        action.placements[:] = [f"p{i:02}" + "-" * 61 for i in range(50)]
        action.eligibility.required_segments[:] = [f"segments/r{i:02}" + "-" * 61 for i in range(50)]
        action.eligibility.excluded_segments[:] = [f"segments/x{i:02}" + "-" * 61 for i in range(50)]
        create(stub, tenant, f"big_{number:03}", action)
    pages = every_page(
        lambda token: stub.ListActions(
            pb.ListActionsRequest(page_size=1000, page_token=token), metadata=tenant, timeout=30
        )
    )
    assert [a.name for page in pages for a in page.actions] == [f"actions/big_{n:03}" for n in range(400)]
    assert len(pages) == 2
