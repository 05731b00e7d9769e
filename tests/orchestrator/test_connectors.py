"""The connectors' RPCs over real gRPC, on SQLite and PostgreSQL: create, read (secrets masked), list, update
by mask and etag, delete, validation with field paths, and TestConnector through a real HTTP server and a
real SMTP server."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from google.protobuf.field_mask_pb2 import FieldMask

from tests.orchestrator.conftest import Auth, as_tenant
from tests.orchestrator.helpers import Stub
from tests.orchestrator.receivers import SECRET, HttpReceiver, Reply, SmtpHandler, smtp_receiver
from tests.rpc_errors import reason, violations
from wayline.orchestrator.v1 import connector_pb2 as cpb
from wayline.orchestrator.v1 import orchestrator_service_pb2 as pb

MASK = "********"


@pytest.fixture
def as_other() -> Auth:
    """Another tenant."""
    return as_tenant(f"o-{uuid.uuid4().hex[:8]}")


@pytest.fixture(scope="module")
def http() -> Iterator[HttpReceiver]:
    with HttpReceiver() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def smtp() -> Iterator[tuple[SmtpHandler, int]]:
    with smtp_receiver() as receiver:
        yield receiver


def hook(url: str = "https://hooks.example.com/wayline", secret: str = SECRET) -> cpb.Connector:
    return cpb.Connector(
        display_name="SMS relay",
        webhook=cpb.WebhookConfig(url=url, signing_secret=secret),
        timeout=Duration(seconds=2),
        retry_policy=cpb.RetryPolicy(max_attempts=3),
    )


def mailer(port: int) -> cpb.Connector:
    return cpb.Connector(
        kind=cpb.CONNECTOR_KIND_SMTP,
        smtp=cpb.SmtpConfig(
            host="127.0.0.1",
            port=port,
            username="wayline",
            password="s3cret-password",
            from_address="Shop <news@shop.example>",
        ),
    )


def create(stub: Stub, auth: Auth, connector: cpb.Connector, connector_id: str = "") -> cpb.Connector:
    request = pb.CreateConnectorRequest(connector=connector, connector_id=connector_id)
    return stub.CreateConnector(request, metadata=auth, timeout=10).connector


def get(stub: Stub, auth: Auth, name: str) -> cpb.Connector:
    return stub.GetConnector(pb.GetConnectorRequest(name=name), metadata=auth, timeout=10).connector


def refusal(call: object, request: object, auth: Auth) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call(request, metadata=auth, timeout=10)  # type: ignore[operator]
    return caught.value


def test_a_created_connector_reads_back_with_its_secret_masked(stub: Stub, tenant: Auth) -> None:
    created = create(stub, tenant, hook(), "sms-relay")
    assert created.name == "connectors/sms-relay"
    assert created.kind == cpb.CONNECTOR_KIND_WEBHOOK  # inferred from the config
    assert created.webhook.signing_secret == MASK
    assert created.etag
    assert created.create_time == created.update_time
    assert (created.retry_policy.max_attempts, created.retry_policy.max_backoff.seconds) == (3, 30)
    assert created.retry_policy.initial_backoff.ToMilliseconds() == 500  # the default
    read = get(stub, tenant, "connectors/sms-relay")
    assert read == created
    assert SECRET not in str(read)


def test_an_smtp_connector_masks_its_password_and_defaults_its_port(stub: Stub, tenant: Auth) -> None:
    connector = mailer(0)
    connector.smtp.port = 0
    created = create(stub, tenant, connector)
    assert created.name.startswith("connectors/c-")
    assert (created.smtp.port, created.smtp.password, created.timeout.seconds) == (587, MASK, 10)


def test_invalid_connectors_are_refused_with_field_paths(stub: Stub, tenant: Auth) -> None:
    bad = hook(url="ftp://files", secret="short")
    bad.timeout.FromMilliseconds(10)
    bad.retry_policy.max_attempts = 50
    bad.retry_policy.initial_backoff.FromSeconds(10)
    bad.retry_policy.max_backoff.FromSeconds(1)
    error = refusal(
        stub.CreateConnector, pb.CreateConnectorRequest(connector=bad, connector_id="Bad_Id"), tenant
    )
    assert (error.code(), reason(error)) == (grpc.StatusCode.INVALID_ARGUMENT, "CONNECTOR_INVALID")
    assert set(violations(error)) == {
        "connector_id",
        "connector.webhook.url",
        "connector.webhook.signing_secret",
        "connector.timeout",
        "connector.retry_policy.max_attempts",
        "connector.retry_policy.max_backoff",
    }
    smtp = cpb.Connector(kind=cpb.CONNECTOR_KIND_SMTP, smtp=cpb.SmtpConfig(port=70000, from_address="nobody"))
    error = refusal(stub.CreateConnector, pb.CreateConnectorRequest(connector=smtp), tenant)
    assert set(violations(error)) == {
        "connector.smtp.host",
        "connector.smtp.port",
        "connector.smtp.from_address",
    }
    mismatch = cpb.Connector(kind=cpb.CONNECTOR_KIND_SMTP, webhook=hook().webhook)
    error = refusal(stub.CreateConnector, pb.CreateConnectorRequest(connector=mismatch), tenant)
    assert set(violations(error)) == {"connector.smtp"}
    error = refusal(stub.CreateConnector, pb.CreateConnectorRequest(), tenant)
    assert set(violations(error)) == {"connector.kind"}


def test_a_taken_id_and_an_unknown_name_are_told_apart(stub: Stub, tenant: Auth) -> None:
    create(stub, tenant, hook(), "taken")
    error = refusal(
        stub.CreateConnector, pb.CreateConnectorRequest(connector=hook(), connector_id="taken"), tenant
    )
    assert (error.code(), reason(error)) == (grpc.StatusCode.ALREADY_EXISTS, "CONNECTOR_EXISTS")
    error = refusal(stub.GetConnector, pb.GetConnectorRequest(name="connectors/nowhere"), tenant)
    assert (error.code(), reason(error)) == (grpc.StatusCode.NOT_FOUND, "CONNECTOR_NOT_FOUND")
    error = refusal(stub.GetConnector, pb.GetConnectorRequest(name="flows/taken"), tenant)
    assert (error.code(), set(violations(error))) == (grpc.StatusCode.INVALID_ARGUMENT, {"name"})


def test_connectors_list_in_pages_per_tenant(stub: Stub, tenant: Auth) -> None:
    for i in range(5):
        create(stub, tenant, hook(), f"hook-{i}")
    names, token = [], ""
    while True:
        page = stub.ListConnectors(
            pb.ListConnectorsRequest(page_size=2, page_token=token), metadata=tenant, timeout=10
        )
        names += [c.name for c in page.connectors]
        assert all(c.webhook.signing_secret == MASK for c in page.connectors)
        token = page.next_page_token
        if not token:
            break
    assert names == [f"connectors/hook-{i}" for i in range(5)]


def test_an_update_changes_the_masked_fields_and_keeps_a_secret_sent_back_masked(
    stub: Stub, tenant: Auth, http: HttpReceiver
) -> None:
    created = create(stub, tenant, hook(), "relay")
    read = get(stub, tenant, created.name)
    read.webhook.url = http.url
    read.display_name = "Relay v2"
    updated = stub.UpdateConnector(
        pb.UpdateConnectorRequest(connector=read), metadata=tenant, timeout=10
    ).connector  # an empty mask: every writable field, the masked secret sent back as read
    assert (updated.webhook.url, updated.display_name, updated.webhook.signing_secret) == (
        http.url,
        "Relay v2",
        MASK,
    )
    assert updated.etag != created.etag
    assert updated.create_time == created.create_time
    http.reset()
    test = stub.TestConnector(
        pb.TestConnectorRequest(name="connectors/relay", recipient="p-1"), metadata=tenant
    )
    assert test.outcome.status == cpb.DELIVERY_STATUS_DELIVERED  # still signed with the stored secret
    assert http.received[0].signed
    only = cpb.Connector(name=created.name, display_name="ignored", timeout=Duration(seconds=30))
    updated = stub.UpdateConnector(
        pb.UpdateConnectorRequest(connector=only, update_mask=FieldMask(paths=["timeout"])), metadata=tenant
    ).connector
    assert (updated.timeout.seconds, updated.display_name) == (30, "Relay v2")


def test_updates_are_refused_for_a_stale_etag_another_kind_or_an_unknown_path(
    stub: Stub, tenant: Auth
) -> None:
    created = create(stub, tenant, hook(), "guarded")
    create_etag = created.etag
    created.display_name = "first"
    stub.UpdateConnector(pb.UpdateConnectorRequest(connector=created), metadata=tenant)
    stale = cpb.Connector(name=created.name, display_name="second", etag=create_etag)
    error = refusal(
        stub.UpdateConnector,
        pb.UpdateConnectorRequest(connector=stale, update_mask=FieldMask(paths=["display_name"])),
        tenant,
    )
    assert (error.code(), reason(error)) == (grpc.StatusCode.ABORTED, "ETAG_MISMATCH")
    smtp_path = pb.UpdateConnectorRequest(
        connector=cpb.Connector(name=created.name), update_mask=FieldMask(paths=["smtp.host", "kind"])
    )
    error = refusal(stub.UpdateConnector, smtp_path, tenant)
    assert set(violations(error)) == {"update_mask.paths[0]", "update_mask.paths[1]"}
    other_kind = cpb.Connector(name=created.name, kind=cpb.CONNECTOR_KIND_SMTP)
    error = refusal(stub.UpdateConnector, pb.UpdateConnectorRequest(connector=other_kind), tenant)
    assert set(violations(error)) == {"connector.kind"}
    short = cpb.Connector(name=created.name, webhook=cpb.WebhookConfig(signing_secret="short"))
    mask = FieldMask(paths=["webhook.signing_secret"])
    error = refusal(
        stub.UpdateConnector, pb.UpdateConnectorRequest(connector=short, update_mask=mask), tenant
    )
    assert set(violations(error)) == {"connector.webhook.signing_secret"}
    assert get(stub, tenant, created.name).display_name == "first"


def test_delete_is_conditional_on_the_etag_and_final(stub: Stub, tenant: Auth, as_other: Auth) -> None:
    created = create(stub, tenant, hook(), "doomed")
    assert refusal(stub.GetConnector, pb.GetConnectorRequest(name=created.name), as_other).code() == (
        grpc.StatusCode.NOT_FOUND
    )
    error = refusal(stub.DeleteConnector, pb.DeleteConnectorRequest(name=created.name, etag="1-0"), tenant)
    assert error.code() == grpc.StatusCode.ABORTED
    stub.DeleteConnector(pb.DeleteConnectorRequest(name=created.name, etag=created.etag), metadata=tenant)
    error = refusal(stub.GetConnector, pb.GetConnectorRequest(name=created.name), tenant)
    assert error.code() == grpc.StatusCode.NOT_FOUND
    error = refusal(stub.DeleteConnector, pb.DeleteConnectorRequest(name=created.name), tenant)
    assert error.code() == grpc.StatusCode.NOT_FOUND


def test_test_connector_reports_a_webhooks_outcome_without_retrying(
    stub: Stub, tenant: Auth, http: HttpReceiver
) -> None:
    create(stub, tenant, hook(http.url), "tested")
    http.reset()
    request = pb.TestConnectorRequest(name="connectors/tested", recipient="p-42")
    delivered = stub.TestConnector(request, metadata=tenant, timeout=10).outcome
    assert (delivered.status, delivered.attempts, delivered.response_code) == (
        cpb.DELIVERY_STATUS_DELIVERED,
        1,
        200,
    )
    document = json.loads(http.received[0].body)
    assert (document["type"], document["data"]["recipient"]) == ("test", {"person_id": "p-42"})
    assert document["id"].startswith("test-")
    http.reset(Reply(503), Reply(503))
    failed = stub.TestConnector(request, metadata=tenant, timeout=10).outcome
    assert (failed.status, failed.attempts, failed.response_code) == (
        cpb.DELIVERY_STATUS_FAILED_TRANSIENT,
        1,
        503,
    )
    assert len(http.received) == 1
    error = refusal(stub.TestConnector, pb.TestConnectorRequest(name="connectors/tested"), tenant)
    assert set(violations(error)) == {"recipient"}


def test_test_connector_sends_an_email_through_smtp(
    stub: Stub, tenant: Auth, smtp: tuple[SmtpHandler, int]
) -> None:
    handler, port = smtp
    connector = mailer(port)
    connector.smtp.username = connector.smtp.password = ""  # aiosmtpd offers no AUTH without TLS
    create(stub, tenant, connector, "mail")
    handler.reset()
    request = pb.TestConnectorRequest(name="connectors/mail", recipient="ada@example.com")
    outcome = stub.TestConnector(request, metadata=tenant, timeout=10).outcome
    assert (outcome.status, outcome.response_code) == (cpb.DELIVERY_STATUS_DELIVERED, 250)
    [(envelope, mail)] = handler.mails
    assert envelope.rcpt_tos == ["ada@example.com"]
    assert mail["Subject"] == "Wayline connector test"
    handler.reset("550 5.7.1 Relaying denied")
    refused = stub.TestConnector(request, metadata=tenant, timeout=10).outcome
    assert (refused.status, refused.response_code) == (cpb.DELIVERY_STATUS_FAILED_PERMANENT, 550)
    assert "Relaying denied" in refused.error_message
    for recipient in ("p-1", "ada@example.com\n"):  # `$` matched before the newline, into RCPT TO
        error = refusal(
            stub.TestConnector, pb.TestConnectorRequest(name="connectors/mail", recipient=recipient), tenant
        )
        assert set(violations(error)) == {"recipient"}
