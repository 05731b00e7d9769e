"""The flow definitions' RPCs over real sockets, on SQLite and PostgreSQL: create, get, list (paging and the
state filter), update by mask with etags, publish into immutable versions, pause and archive with the
transitions the contract allows, validation with field paths, and tenant isolation."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2

from tests.orchestrator.flow_calls import create, flow, get, update
from tests.orchestrator.flow_samples import abandoned_cart, small_flow
from tests.orchestrator.helpers import Auth, Stub
from tests.pages import every_page
from tests.rpc_errors import reason, violations
from wayline.common.errors import status_details
from wayline.orchestrator.v1 import flow_pb2
from wayline.orchestrator.v1 import orchestrator_service_pb2 as pb


def publish(stub: Stub, auth: Auth, flow_id: str, etag: str = "") -> flow_pb2.Flow:
    request = pb.PublishFlowRequest(name=f"flows/{flow_id}", etag=etag)
    return stub.PublishFlow(request, metadata=auth, timeout=10).flow


def pause(
    stub: Stub, auth: Auth, flow_id: str, mode: pb.PauseMode.ValueType = pb.PAUSE_MODE_HOLD
) -> flow_pb2.Flow:
    return stub.PauseFlow(
        pb.PauseFlowRequest(name=f"flows/{flow_id}", mode=mode), metadata=auth, timeout=10
    ).flow


def archive(stub: Stub, auth: Auth, flow_id: str) -> flow_pb2.Flow:
    return stub.ArchiveFlow(pb.ArchiveFlowRequest(name=f"flows/{flow_id}"), metadata=auth, timeout=10).flow


def refused(call: object) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call()  # type: ignore[operator]
    return caught.value


def test_create_flow_stores_a_draft(stub: Stub, tenant: Auth) -> None:
    made = create(stub, tenant, "welcome", flow(small_flow(), "Welcome"))
    assert (made.name, made.state, made.version, made.published_version) == (
        "flows/welcome",
        flow_pb2.FLOW_STATE_DRAFT,
        0,
        0,
    )
    assert made.has_unpublished_changes
    assert made.etag
    assert get(stub, tenant, "welcome") == made
    assert made.definition.steps[2].split.variants[0].weight == 50.0


def test_create_flow_generates_an_id_and_accepts_an_incomplete_draft(stub: Stub, tenant: Auth) -> None:
    made = create(stub, tenant, "", flow({"steps": [{"id": "a", "wait": {"next_step_id": "nowhere"}}]}))
    assert made.name.startswith("flows/flow-")


def test_create_flow_refuses_a_taken_id(stub: Stub, tenant: Auth) -> None:
    create(stub, tenant, "taken", flow())
    error = refused(lambda: create(stub, tenant, "taken", flow()))
    assert (error.code(), reason(error)) == (grpc.StatusCode.ALREADY_EXISTS, "FLOW_EXISTS")


def test_create_flow_refuses_malformed_fields_with_their_paths(stub: Stub, tenant: Auth) -> None:
    bad = flow({"steps": [{"id": "Bad Id", "wait": {"duration": "-1s"}}], "priority": 5000})
    bad.definition.steps.add(id="c").action.channel = 99  # type: ignore[assignment]
    error = refused(lambda: create(stub, tenant, "x", bad))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(violations(error)) == {"flow.definition.steps[1].action.channel"}  # enums are read first
    bad.definition.steps.pop()
    error = refused(lambda: create(stub, tenant, "X", bad))
    assert (reason(error), set(violations(error))) == (
        "FLOW_INVALID",
        {
            "flow_id",
            "flow.definition.steps[0].id",
            "flow.definition.steps[0].wait.duration",
            "flow.definition.priority",
        },
    )


def test_get_flow_of_an_unknown_flow_or_version_is_not_found(stub: Stub, tenant: Auth) -> None:
    error = refused(lambda: get(stub, tenant, "nobody"))
    assert (error.code(), reason(error)) == (grpc.StatusCode.NOT_FOUND, "FLOW_NOT_FOUND")
    create(stub, tenant, "young", flow(small_flow()))
    error = refused(lambda: get(stub, tenant, "young", version=1))
    assert (error.code(), reason(error)) == (grpc.StatusCode.NOT_FOUND, "FLOW_VERSION_NOT_FOUND")
    error = refused(lambda: stub.GetFlow(pb.GetFlowRequest(name="flow/young"), metadata=tenant, timeout=10))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "name" in violations(error)


def test_list_flows_pages_by_id_with_a_state_filter(stub: Stub, tenant: Auth) -> None:
    for flow_id in ("f-c", "f-a", "f-b", "f-d"):
        create(stub, tenant, flow_id, flow(small_flow()))
    publish(stub, tenant, "f-b")
    seen, token = [], ""
    while True:
        page = stub.ListFlows(pb.ListFlowsRequest(page_size=3, page_token=token), metadata=tenant, timeout=10)
        assert page.total_size == 4
        seen += [f.name for f in page.flows]
        token = page.next_page_token
        if not token:
            break
    assert seen == ["flows/f-a", "flows/f-b", "flows/f-c", "flows/f-d"]
    drafts = stub.ListFlows(
        pb.ListFlowsRequest(page_size=1, state=flow_pb2.FLOW_STATE_DRAFT), metadata=tenant, timeout=10
    )
    assert ([f.name for f in drafts.flows], drafts.total_size) == (["flows/f-a"], 3)
    mixed = pb.ListFlowsRequest(page_token=drafts.next_page_token, state=flow_pb2.FLOW_STATE_PUBLISHED)
    error = refused(lambda: stub.ListFlows(mixed, metadata=tenant, timeout=10))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_update_flow_changes_the_masked_fields_under_its_etag(stub: Stub, tenant: Auth) -> None:
    made = create(stub, tenant, "edit", flow(small_flow(), "Before"))
    change = flow_pb2.Flow(name="flows/edit", display_name="After", etag=made.etag)
    change.definition.priority = 7
    renamed = update(stub, tenant, change, "display_name")
    assert (renamed.display_name, renamed.definition.priority, renamed.etag != made.etag) == (
        "After",
        0,
        True,
    )
    change.etag = renamed.etag
    reprioritised = update(stub, tenant, change, "definition.priority")
    assert reprioritised.definition.priority == 7
    assert len(reprioritised.definition.steps) == 5
    change.etag = reprioritised.etag
    assert update(stub, tenant, change, "definition.priority").etag == reprioritised.etag  # unchanged
    change.etag = made.etag
    stale = refused(lambda: update(stub, tenant, change, "display_name", "description"))
    assert (stale.code(), reason(stale)) == (grpc.StatusCode.ABORTED, "ETAG_MISMATCH")
    unknown = refused(lambda: update(stub, tenant, flow_pb2.Flow(name="flows/edit"), "state"))
    assert set(violations(unknown)) == {"update_mask.paths[0]"}
    missing = refused(lambda: update(stub, tenant, flow_pb2.Flow(name="flows/gone"), "display_name"))
    assert missing.code() == grpc.StatusCode.NOT_FOUND


def test_publish_flow_freezes_versions(stub: Stub, tenant: Auth) -> None:
    made = create(stub, tenant, "versions", flow(small_flow()))
    first = publish(stub, tenant, "versions", made.etag)
    assert (first.state, first.published_version, first.has_unpublished_changes) == (
        flow_pb2.FLOW_STATE_PUBLISHED,
        1,
        False,
    )
    assert first.HasField("publish_time")
    assert publish(stub, tenant, "versions") == first  # nothing changed: no new version
    change = flow_pb2.Flow(name="flows/versions")
    change.definition.priority = 9
    edited = update(stub, tenant, change, "definition.priority")
    assert edited.has_unpublished_changes
    assert edited.published_version == 1
    second = publish(stub, tenant, "versions")
    assert second.published_version == 2
    v1, v2 = get(stub, tenant, "versions", 1), get(stub, tenant, "versions", 2)
    assert (v1.version, v1.definition.priority, v2.version, v2.definition.priority) == (1, 0, 2, 9)
    stale = refused(lambda: publish(stub, tenant, "versions", made.etag))
    assert (stale.code(), reason(stale)) == (grpc.StatusCode.ABORTED, "ETAG_MISMATCH")


def test_publish_flow_refuses_an_incomplete_draft_with_every_field(stub: Stub, tenant: Auth) -> None:
    definition = small_flow()
    definition.pop("trigger")
    definition["steps"][0]["wait"]["next_step_id"] = "ghost"
    create(stub, tenant, "broken", flow(definition))
    error = refused(lambda: publish(stub, tenant, "broken"))
    assert (error.code(), reason(error)) == (grpc.StatusCode.FAILED_PRECONDITION, "FLOW_INVALID")
    assert {
        "flow.definition.trigger",
        "flow.definition.steps[0].wait.next_step_id",
        "flow.definition.steps[1]",  # unreachable now
    } <= set(violations(error))
    assert get(stub, tenant, "broken").state == flow_pb2.FLOW_STATE_DRAFT


def _precondition(error: grpc.RpcError) -> list[tuple[str, str]]:
    return [
        (v.type, v.subject)
        for d in status_details(error)
        if isinstance(d, error_details_pb2.PreconditionFailure)
        for v in d.violations
    ]


def test_pause_and_archive_follow_the_contracts_transitions(stub: Stub, tenant: Auth) -> None:
    create(stub, tenant, "life", flow(small_flow()))
    draft_pause = refused(lambda: pause(stub, tenant, "life"))
    assert (draft_pause.code(), reason(draft_pause)) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "FLOW_NOT_PUBLISHED",
    )
    assert _precondition(draft_pause) == [("FLOW_NOT_PUBLISHED", "flows/life")]
    publish(stub, tenant, "life")
    paused = pause(stub, tenant, "life", pb.PAUSE_MODE_DRAIN)
    assert paused.state == flow_pb2.FLOW_STATE_PAUSED
    assert pause(stub, tenant, "life", pb.PAUSE_MODE_DRAIN) == paused  # the same mode: nothing changes
    assert pause(stub, tenant, "life", pb.PAUSE_MODE_HOLD).etag != paused.etag
    resumed = publish(stub, tenant, "life")
    assert (resumed.state, resumed.published_version) == (flow_pb2.FLOW_STATE_PUBLISHED, 1)
    archived = archive(stub, tenant, "life")
    assert archived.state == flow_pb2.FLOW_STATE_ARCHIVED
    assert archive(stub, tenant, "life") == archived
    for call in (
        lambda: publish(stub, tenant, "life"),
        lambda: pause(stub, tenant, "life"),
        lambda: update(stub, tenant, flow_pb2.Flow(name="flows/life", display_name="x"), "display_name"),
    ):
        error = refused(call)
        assert (error.code(), reason(error)) == (grpc.StatusCode.FAILED_PRECONDITION, "FLOW_ARCHIVED")
        assert _precondition(error) == [("FLOW_ARCHIVED", "flows/life")]
    assert get(stub, tenant, "life", 1).definition == get(stub, tenant, "life").definition


def test_archive_flow_of_a_draft(stub: Stub, tenant: Auth) -> None:
    create(stub, tenant, "short-lived", flow())
    assert archive(stub, tenant, "short-lived").state == flow_pb2.FLOW_STATE_ARCHIVED


def test_flows_are_isolated_by_tenant(stub: Stub, tenant: Auth) -> None:
    other: Auth = ((tenant[0][0], tenant[0][1]), ("x-wayline-tenant", tenant[1][1] + "-other"))
    create(stub, tenant, "mine", flow(small_flow()))
    create(stub, other, "mine", flow(small_flow(), "Theirs"))  # the same id in another tenant
    assert get(stub, tenant, "mine").display_name == "A flow"
    publish(stub, other, "mine")
    assert get(stub, tenant, "mine").state == flow_pb2.FLOW_STATE_DRAFT
    create(stub, other, "only-theirs", flow())
    for call in (
        lambda: get(stub, tenant, "only-theirs"),
        lambda: publish(stub, tenant, "only-theirs"),
        lambda: archive(stub, tenant, "only-theirs"),
    ):
        assert refused(call).code() == grpc.StatusCode.NOT_FOUND
    listed = stub.ListFlows(pb.ListFlowsRequest(), metadata=tenant, timeout=10)
    assert [f.name for f in listed.flows] == ["flows/mine"]


def test_the_abandoned_cart_example_publishes(stub: Stub, tenant: Auth) -> None:
    example = abandoned_cart()
    made = create(stub, tenant, "abandoned-cart", flow(example["definition"], example["display_name"]))
    published = publish(stub, tenant, "abandoned-cart", made.etag)
    assert published.published_version == 1
    steps = {s.id: s for s in published.definition.steps}
    assert steps["push_reminder"].action.connector.template_id == "cart-reminder-push"
    assert published.definition.trigger.event.event.event_name == "Cart Abandoned"
    assert published.definition.goal.exit_on_conversion
    assert published.definition.priority == 50


def test_list_flows_ends_a_page_before_it_passes_what_a_client_receives(stub: Stub, tenant: Auth) -> None:
    """170 flows of 200 steps (about 27 KB each) at page_size 1,000 were one 4.5 MB answer, past the 4 MiB a
    gRPC client receives by default: the page ends at about 3 MB and the token goes on."""
    steps = [
        {
            "id": f"s{i:03}_" + "w" * 50,
            "wait": {"duration": "60s", "next_step_id": f"s{i + 1:03}_" + "w" * 50},
        }
        for i in range(199)
    ]
    steps.append({"id": "s199_" + "w" * 50, "exit": {"reason": "finished"}})
    definition = small_flow() | {"entry_step_id": steps[0]["id"], "steps": steps}
    for number in range(170):
        message = flow(definition, "d" * 200)
        message.description = "x" * 2_000
        create(stub, tenant, f"big-{number:03}", message)
    pages = every_page(
        lambda token: stub.ListFlows(
            pb.ListFlowsRequest(page_size=1000, page_token=token), metadata=tenant, timeout=30
        )
    )
    assert [f.name for page in pages for f in page.flows] == [f"flows/big-{n:03}" for n in range(170)]
    assert len(pages) == 2
