"""`wayline connectors list|get|apply|delete|test|dead-letters|redrive`: the orchestrator's connectors and
their dead letters, through the gateway.

`apply FILE` reads YAML documents (one or several, separated by `---`), each the proto3 JSON form of the
contract's `Connector` with its `name` (`connectors/{connector_id}`), and makes each connector match it: a
missing connector is created; an existing one gets exactly the fields the document names (an update mask of
those fields, so a field the file leaves out keeps its value, and one it sets to `false` or `0` is set), and
one whose named fields already match is left alone, so applying a file twice changes nothing. Secrets
(`webhook.signing_secret`, `smtp.password`) are write-only: write them as `${VARIABLE}` to take them from the
environment (kept out of the file), or literally; a connector whose document gives a secret is always
updated, since the stored secret cannot be read back to compare. `get` prints a connector in the same form,
its secrets masked and its output-only fields as comments.

`dead-letters NAME` lists the messages the connector gave up on, newest first; `redrive NAME KEY...` (or
`--all`) puts them back in the outbox under their original idempotency keys. One line per connector or
outcome goes to standard output, errors to standard error.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import grpc
import typer
import yaml
from google.protobuf import json_format
from google.protobuf.field_mask_pb2 import FieldMask
from rich.table import Table

from wayline.event.v1 import event_pb2
from wayline.orchestrator.v1 import connector_pb2
from wayline.orchestrator.v1 import orchestrator_service_pb2 as pb
from wayline.orchestrator.v1 import orchestrator_service_pb2_grpc as pb_grpc
from wayline_cli.actions import _GATEWAY, GatewayOption, TlsOption, _channel, _fail, _plain, err, out

__all__ = ["ConnectorFileError", "Wanted", "connectors_app", "read_connectors"]

PREFIX = "connectors/"
MASK = "********"  # how reads show a stored secret
_OUTPUT_ONLY = ("create_time", "update_time", "etag")
_SECRETS = ("webhook.signing_secret", "smtp.password")
_NESTED = ("webhook", "smtp", "retry_policy")  # their fields are masked one by one
_VARIABLE = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")

connectors_app = typer.Typer(
    help="Apply, list, read, delete and test connectors; list and redrive their dead letters.",
    no_args_is_help=True,
)

ApiKeyOption = Annotated[str, typer.Option(envvar="WAYLINE_API_KEY", help="An API key with the admin scope.")]
Auth = tuple[tuple[str, str], ...]


class ConnectorFileError(ValueError):
    """A file that is not YAML documents of connectors with their names, or names an unset variable."""


@dataclass(frozen=True)
class Wanted:
    """One document of the file: the connector, and the fields it names as update-mask paths."""

    connector: connector_pb2.Connector
    paths: list[str]

    @property
    def name(self) -> str:
        return self.connector.name

    @property
    def gives_secret(self) -> bool:
        return any(path in _SECRETS for path in self.paths)


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


def _paths(document: dict[str, Any]) -> list[str]:
    """The update-mask paths of the fields a document names: a nested message's fields one by one."""
    paths: list[str] = []
    for key, value in document.items():
        field = _snake(key)
        if field in ("name", "kind"):
            continue
        if field in _NESTED and isinstance(value, dict) and value:
            paths += [f"{field}.{_snake(sub)}" for sub in value]
        else:
            paths.append(field)
    return paths


def _with_secrets(document: dict[str, Any], where: str) -> dict[str, Any]:
    """The document with each `${VARIABLE}` secret replaced by the variable's value."""
    resolved = {k: dict(v) if isinstance(v, dict) else v for k, v in document.items()}
    for path in _SECRETS:
        config, key = path.split(".")
        section = resolved.get(config)
        if not isinstance(section, dict):
            continue
        for spelling in (key, "".join(p.capitalize() if i else p for i, p in enumerate(key.split("_")))):
            value = section.get(spelling)
            found = _VARIABLE.match(value) if isinstance(value, str) else None
            if found:
                if found[1] not in os.environ:
                    raise ConnectorFileError(f"{where}: {path} names ${{{found[1]}}}, which is not set")
                section[spelling] = os.environ[found[1]]
    return resolved


def _field(connector: connector_pb2.Connector, path: str) -> str:
    """A secret's value (empty when its config is not set)."""
    config, key = path.split(".")
    return str(getattr(getattr(connector, config), key)) if connector.WhichOneof("config") == config else ""


def read_connectors(path: Path) -> list[Wanted]:
    """The file's connectors, in order, each with its `name`."""
    try:
        documents = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    except (OSError, yaml.YAMLError) as error:
        raise ConnectorFileError(f"{path}: {error}") from None
    wanted: list[Wanted] = []
    for index, document in enumerate(documents):
        where = f"{path}: document {index}"
        if not isinstance(document, dict):
            raise ConnectorFileError(f"{where} must be a mapping of Connector fields")
        name = document.get("name")
        if not isinstance(name, str) or not name.startswith(PREFIX) or name == PREFIX:
            raise ConnectorFileError(f"{where} must have a `name`, connectors/{{connector_id}}")
        if any(_snake(k) in _OUTPUT_ONLY for k in document):
            raise ConnectorFileError(f"{where} ({name}) sets an output-only field")
        resolved = _with_secrets(document, f"{where} ({name})")
        try:
            connector = json_format.ParseDict(_plain(resolved), connector_pb2.Connector())
        except json_format.ParseError as error:
            raise ConnectorFileError(f"{where} ({name}): {error}") from None
        # A secret written as `get` prints it (masked) is not given: the stored one stays.
        masked = {p for p in _SECRETS if _field(connector, p) == MASK}
        wanted.append(Wanted(connector, [p for p in _paths(document) if p not in masked]))
    if not wanted:
        raise ConnectorFileError(f"{path} holds no connector")
    return wanted


def _auth(api_key: str) -> Auth:
    return (("authorization", f"Bearer {api_key}"),)


def _named(connector: connector_pb2.Connector, paths: list[str]) -> connector_pb2.Connector:
    """Only the fields of `paths` of the connector."""
    picked = connector_pb2.Connector()
    FieldMask(paths=paths).MergeMessage(connector, picked, replace_message_field=True)
    return picked


def _apply_one(stub: pb_grpc.OrchestratorServiceStub, auth: Auth, wanted: Wanted) -> str:
    try:
        current = stub.GetConnector(pb.GetConnectorRequest(name=wanted.name), metadata=auth, timeout=10)
    except grpc.RpcError as error:
        if error.code() != grpc.StatusCode.NOT_FOUND:
            raise
        draft = connector_pb2.Connector()
        draft.CopyFrom(wanted.connector)
        draft.ClearField("name")
        for path in _SECRETS:  # a masked secret is no secret: the service asks for a real one
            config, key = path.split(".")
            if draft.WhichOneof("config") == config and _field(draft, path) == MASK:
                setattr(getattr(draft, config), key, "")
        request = pb.CreateConnectorRequest(connector_id=wanted.name.removeprefix(PREFIX), connector=draft)
        stub.CreateConnector(request, metadata=auth, timeout=10)
        return "created"
    stored = current.connector
    if not wanted.gives_secret and _named(stored, wanted.paths) == _named(wanted.connector, wanted.paths):
        return "unchanged"
    change = connector_pb2.Connector()
    change.CopyFrom(wanted.connector)
    change.etag = stored.etag
    request_update = pb.UpdateConnectorRequest(connector=change, update_mask=FieldMask(paths=wanted.paths))
    stub.UpdateConnector(request_update, metadata=auth, timeout=10)
    return "updated"


@connectors_app.command("apply")
def apply(
    file: Annotated[
        Path, typer.Argument(help="YAML documents, each a Connector (proto3 JSON form) with its name.")
    ],
    *,
    api_key: ApiKeyOption,
    gateway: GatewayOption = _GATEWAY,
    tls: TlsOption = False,
) -> None:
    """Create or update the file's connectors so that they match it (idempotent without secrets)."""
    try:
        connectors = read_connectors(file)
    except ConnectorFileError as error:
        err.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from None
    auth = _auth(api_key)
    with _channel(gateway, tls) as channel:
        stub = pb_grpc.OrchestratorServiceStub(channel)
        for wanted in connectors:
            try:
                out.print(f"{_apply_one(stub, auth, wanted)} {wanted.name}")
            except grpc.RpcError as error:
                raise _fail(error, wanted.name) from None


def _kind(connector: connector_pb2.Connector) -> str:
    return connector_pb2.ConnectorKind.Name(connector.kind).removeprefix("CONNECTOR_KIND_").lower()


def _target(connector: connector_pb2.Connector) -> str:
    if connector.HasField("smtp"):
        return f"{connector.smtp.host}:{connector.smtp.port}"
    return connector.webhook.url


def _connectors(stub: pb_grpc.OrchestratorServiceStub, auth: Auth) -> Iterator[connector_pb2.Connector]:
    request = pb.ListConnectorsRequest(page_size=1000)
    while True:
        page = stub.ListConnectors(request, metadata=auth, timeout=10)
        yield from page.connectors
        if not page.next_page_token:
            return
        request.page_token = page.next_page_token


@connectors_app.command("list")
def list_connectors(
    *, api_key: ApiKeyOption, gateway: GatewayOption = _GATEWAY, tls: TlsOption = False
) -> None:
    """List the connectors by id: kind, display name, where they deliver, attempts."""
    table = Table("connector", "kind", "name", "target", "attempts")
    with _channel(gateway, tls) as channel:
        try:
            for connector in _connectors(pb_grpc.OrchestratorServiceStub(channel), _auth(api_key)):
                table.add_row(
                    connector.name.removeprefix(PREFIX),
                    _kind(connector),
                    connector.display_name,
                    _target(connector),
                    str(connector.retry_policy.max_attempts),
                )
        except grpc.RpcError as error:
            raise _fail(error) from None
    out.print(table)


def _yaml(connector: connector_pb2.Connector) -> str:
    fields: dict[str, Any] = json_format.MessageToDict(connector, preserving_proto_field_name=True)
    header = [f"# {k}: {fields.pop(k)}" for k in _OUTPUT_ONLY if k in fields]
    return "\n".join(header) + "\n" + yaml.safe_dump(fields, sort_keys=False, allow_unicode=True)


def _call(gateway: str, tls: bool, what: str, call: Any) -> Any:
    with _channel(gateway, tls) as channel:
        try:
            return call(pb_grpc.OrchestratorServiceStub(channel))
        except grpc.RpcError as error:
            raise _fail(error, what) from None


NameArgument = Annotated[str, typer.Argument(help="The connector's id (or connectors/{id}).")]


def _name(connector: str) -> str:
    return connector if connector.startswith(PREFIX) else PREFIX + connector


@connectors_app.command("get")
def get(
    connector: NameArgument,
    *,
    api_key: ApiKeyOption,
    gateway: GatewayOption = _GATEWAY,
    tls: TlsOption = False,
) -> None:
    """Print a connector as YAML (secrets masked, output-only fields as comments), as `apply` takes it."""
    name = _name(connector)
    found = _call(
        gateway,
        tls,
        name,
        lambda stub: stub.GetConnector(
            pb.GetConnectorRequest(name=name), metadata=_auth(api_key), timeout=10
        ),
    )
    out.print(_yaml(found.connector), end="", markup=False)


@connectors_app.command("delete")
def delete(
    connector: NameArgument,
    *,
    etag: Annotated[str, typer.Option(help="Delete only if the connector still has this etag.")] = "",
    api_key: ApiKeyOption,
    gateway: GatewayOption = _GATEWAY,
    tls: TlsOption = False,
) -> None:
    """Delete a connector and its dead letters."""
    name = _name(connector)
    request = pb.DeleteConnectorRequest(name=name, etag=etag)
    _call(gateway, tls, name, lambda stub: stub.DeleteConnector(request, metadata=_auth(api_key), timeout=10))
    out.print(f"deleted {name}")


@connectors_app.command("test")
def send_test(
    connector: NameArgument,
    *,
    recipient: Annotated[str, typer.Option(help="Who receives the test: an email address for SMTP.")] = "",
    api_key: ApiKeyOption,
    gateway: GatewayOption = _GATEWAY,
    tls: TlsOption = False,
) -> None:
    """Send one test message through a connector (one attempt, no retry); exit 1 when it is not delivered."""
    name = _name(connector)
    request = pb.TestConnectorRequest(name=name, recipient=recipient)
    answer = _call(
        gateway, tls, name, lambda stub: stub.TestConnector(request, metadata=_auth(api_key), timeout=60)
    )
    outcome = answer.outcome
    status = connector_pb2.DeliveryStatus.Name(outcome.status).removeprefix("DELIVERY_STATUS_").lower()
    code = f", answer {outcome.response_code}" if outcome.response_code else ""
    error = f": {outcome.error_message}" if outcome.error_message else ""
    out.print(f"{status} {name} in {outcome.duration.ToTimedelta().total_seconds():.3f}s{code}{error}")
    if outcome.status != connector_pb2.DELIVERY_STATUS_DELIVERED:
        raise typer.Exit(1)


def _letters(stub: pb_grpc.OrchestratorServiceStub, auth: Auth, name: str) -> Iterator[pb.DeadLetter]:
    request = pb.ListDeadLettersRequest(parent=name, page_size=1000)
    while True:
        page = stub.ListDeadLetters(request, metadata=auth, timeout=10)
        yield from page.dead_letters
        if not page.next_page_token:
            return
        request.page_token = page.next_page_token


@connectors_app.command("dead-letters")
def dead_letters(
    connector: NameArgument,
    *,
    api_key: ApiKeyOption,
    gateway: GatewayOption = _GATEWAY,
    tls: TlsOption = False,
) -> None:
    """List the connector's dead letters, newest first: key, person, flow step, reason, answer, error."""
    name = _name(connector)
    table = Table("idempotency key", "person", "flow step", "channel", "died", "reason", "answer", "error")

    def fill(stub: pb_grpc.OrchestratorServiceStub) -> None:
        for letter in _letters(stub, _auth(api_key), name):
            table.add_row(
                letter.idempotency_key,
                letter.person_id,
                f"{letter.flow.removeprefix('flows/')}/{letter.flow_step_id}" if letter.flow else "-",
                event_pb2.Channel.Name(letter.channel).removeprefix("CHANNEL_").lower(),
                letter.dead_time.ToDatetime().isoformat(timespec="seconds"),
                letter.reason,
                str(letter.response_code or "-"),
                letter.error_message,
            )

    _call(gateway, tls, name, fill)
    out.print(table)


@connectors_app.command("redrive")
def redrive(
    connector: NameArgument,
    keys: Annotated[list[str] | None, typer.Argument(help="The idempotency keys of the letters.")] = None,
    *,
    every: Annotated[bool, typer.Option("--all", help="Redrive every dead letter of the connector.")] = False,
    api_key: ApiKeyOption,
    gateway: GatewayOption = _GATEWAY,
    tls: TlsOption = False,
) -> None:
    """Put dead letters back in the outbox, under their original idempotency keys."""
    if bool(keys) == every:
        raise typer.BadParameter("give the idempotency keys to redrive, or --all (not both)")
    name = _name(connector)
    request = pb.RedriveDeadLettersRequest(parent=name, idempotency_keys=keys or [], all=every)
    answer = _call(
        gateway, tls, name, lambda stub: stub.RedriveDeadLetters(request, metadata=_auth(api_key), timeout=30)
    )
    out.print(f"redrove {answer.redriven_count} dead letters of {name}")
