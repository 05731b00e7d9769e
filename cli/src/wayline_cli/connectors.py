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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from google.protobuf.field_mask_pb2 import FieldMask
from rich.table import Table

from wayline.orchestrator.v1 import connector_pb2
from wayline.orchestrator.v1 import orchestrator_service_pb2 as pb
from wayline.orchestrator.v1 import orchestrator_service_pb2_grpc as pb_grpc
from wayline_cli.apply import (
    NamedDocuments,
    apply_each,
    create_or_update,
    named_fields,
    parse,
    print_yaml,
    read_or_exit,
    snake,
)
from wayline_cli.channels import channel_name
from wayline_cli.gateway import (
    GATEWAY,
    Auth,
    GatewayOption,
    TlsOption,
    api_key_option,
    bearer,
    call,
    out,
    pages,
)

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

ApiKeyOption = Annotated[
    str,
    api_key_option("An API key with the admin scope."),
]
Answer = TypeVar("Answer")


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


def _paths(document: dict[str, Any]) -> list[str]:
    """The update-mask paths of the fields a document names: a nested message's fields one by one."""
    paths: list[str] = []
    for key, value in document.items():
        field = snake(key)
        if field in ("name", "kind"):
            continue
        if field in _NESTED and isinstance(value, dict) and value:
            paths += [f"{field}.{snake(sub)}" for sub in value]
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
            found = _VARIABLE.fullmatch(value) if isinstance(value, str) else None
            if found:
                if found[1] not in os.environ:
                    raise ConnectorFileError(f"{where}: {path} names ${{{found[1]}}}, which is not set")
                section[spelling] = os.environ[found[1]]
    return resolved


def _field(connector: connector_pb2.Connector, path: str) -> str:
    """A secret's value (empty when its config is not set)."""
    config, key = path.split(".")
    return str(getattr(getattr(connector, config), key)) if connector.WhichOneof("config") == config else ""


def _wanted(where: str, document: dict[str, Any]) -> Wanted:
    """One document of the file, its `${VARIABLE}` secrets resolved."""
    resolved = _with_secrets(document, where)
    connector = parse(resolved, connector_pb2.Connector(), where, ConnectorFileError)
    # A secret written as `get` prints it (masked) is not given: the stored one stays.
    masked = {p for p in _SECRETS if _field(connector, p) == MASK}
    return Wanted(connector, [p for p in _paths(document) if p not in masked])


_FILE = NamedDocuments("Connector", "connectors", _OUTPUT_ONLY, ConnectorFileError)


def read_connectors(path: Path) -> list[Wanted]:
    """The file's connectors, in order, each with its `name`."""
    return _FILE.read(path, _wanted)


def _apply_one(stub: pb_grpc.OrchestratorServiceStub, auth: Auth, wanted: Wanted) -> str:
    def create() -> None:
        draft = connector_pb2.Connector()
        draft.CopyFrom(wanted.connector)
        draft.ClearField("name")
        for path in _SECRETS:  # a masked secret is no secret: the service asks for a real one
            config, key = path.split(".")
            if draft.WhichOneof("config") == config and _field(draft, path) == MASK:
                setattr(getattr(draft, config), key, "")
        request = pb.CreateConnectorRequest(connector_id=wanted.name.removeprefix(PREFIX), connector=draft)
        stub.CreateConnector(request, metadata=auth, timeout=10)

    def matches(stored: connector_pb2.Connector) -> bool:
        # A stored secret cannot be read back to compare: a document that gives one always updates.
        named = wanted.paths
        return not wanted.gives_secret and named_fields(stored, named) == named_fields(
            wanted.connector, named
        )

    def update(stored: connector_pb2.Connector) -> None:
        change = connector_pb2.Connector()
        change.CopyFrom(wanted.connector)
        change.etag = stored.etag
        request = pb.UpdateConnectorRequest(connector=change, update_mask=FieldMask(paths=wanted.paths))
        stub.UpdateConnector(request, metadata=auth, timeout=10)

    get = pb.GetConnectorRequest(name=wanted.name)
    return create_or_update(
        lambda: stub.GetConnector(get, metadata=auth, timeout=10).connector,
        create,
        matches,
        update,
    )


@connectors_app.command("apply")
def apply(
    file: Annotated[
        Path, typer.Argument(help="YAML documents, each a Connector (proto3 JSON form) with its name.")
    ],
    *,
    api_key: ApiKeyOption,
    gateway: GatewayOption = GATEWAY,
    tls: TlsOption = False,
) -> None:
    """Create or update the file's connectors so that they match it (idempotent without secrets)."""
    connectors = read_or_exit(read_connectors, file, ConnectorFileError)
    auth = bearer(api_key)
    apply_each(
        connectors,
        pb_grpc.OrchestratorServiceStub,
        lambda stub, wanted: _apply_one(stub, auth, wanted),
        lambda wanted: wanted.name,
        gateway=gateway,
        tls=tls,
    )


def _kind(connector: connector_pb2.Connector) -> str:
    return connector_pb2.ConnectorKind.Name(connector.kind).removeprefix("CONNECTOR_KIND_").lower()


def _target(connector: connector_pb2.Connector) -> str:
    if connector.HasField("smtp"):
        return f"{connector.smtp.host}:{connector.smtp.port}"
    return connector.webhook.url


@connectors_app.command("list")
def list_connectors(
    *, api_key: ApiKeyOption, gateway: GatewayOption = GATEWAY, tls: TlsOption = False
) -> None:
    """List the connectors by id: kind, display name, where they deliver, attempts."""
    table = Table("connector", "kind", "name", "target", "attempts")

    def fill(stub: pb_grpc.OrchestratorServiceStub, auth: Auth) -> None:
        request = pb.ListConnectorsRequest(page_size=1000)
        listed = pages(
            lambda r: stub.ListConnectors(r, metadata=auth, timeout=10), request, lambda p: p.connectors
        )
        for connector in listed:
            table.add_row(
                connector.name.removeprefix(PREFIX),
                _kind(connector),
                connector.display_name,
                _target(connector),
                str(connector.retry_policy.max_attempts),
            )

    call(pb_grpc.OrchestratorServiceStub, fill, gateway=gateway, tls=tls, api_key=api_key)
    out.print(table)


NameArgument = Annotated[str, typer.Argument(help="The connector's id (or connectors/{id}).")]


def _name(connector: str) -> str:
    return connector if connector.startswith(PREFIX) else PREFIX + connector


def _on_connector(
    connector: str,
    rpc: Callable[[pb_grpc.OrchestratorServiceStub, str, Auth], Answer],
    *,
    gateway: str,
    tls: bool,
    api_key: str,
) -> tuple[str, Answer]:
    """The connector's name and `rpc`'s answer about it (an RPC error printed, naming it, and exit 1)."""
    name = _name(connector)
    answer = call(
        pb_grpc.OrchestratorServiceStub,
        lambda stub, auth: rpc(stub, name, auth),
        what=name,
        gateway=gateway,
        tls=tls,
        api_key=api_key,
    )
    return name, answer


@connectors_app.command("get")
def get(
    connector: NameArgument,
    *,
    api_key: ApiKeyOption,
    gateway: GatewayOption = GATEWAY,
    tls: TlsOption = False,
) -> None:
    """Print a connector as YAML (secrets masked, output-only fields as comments), as `apply` takes it."""
    _, found = _on_connector(
        connector,
        lambda stub, name, auth: stub.GetConnector(
            pb.GetConnectorRequest(name=name), metadata=auth, timeout=10
        ),
        gateway=gateway,
        tls=tls,
        api_key=api_key,
    )
    print_yaml(found.connector, _OUTPUT_ONLY)


@connectors_app.command("delete")
def delete(
    connector: NameArgument,
    *,
    etag: Annotated[str, typer.Option(help="Delete only if the connector still has this etag.")] = "",
    api_key: ApiKeyOption,
    gateway: GatewayOption = GATEWAY,
    tls: TlsOption = False,
) -> None:
    """Delete a connector and its dead letters."""
    name, _ = _on_connector(
        connector,
        lambda stub, name, auth: stub.DeleteConnector(
            pb.DeleteConnectorRequest(name=name, etag=etag), metadata=auth, timeout=10
        ),
        gateway=gateway,
        tls=tls,
        api_key=api_key,
    )
    out.print(f"deleted {name}")


@connectors_app.command("test")
def send_test(
    connector: NameArgument,
    *,
    recipient: Annotated[str, typer.Option(help="Who receives the test: an email address for SMTP.")] = "",
    api_key: ApiKeyOption,
    gateway: GatewayOption = GATEWAY,
    tls: TlsOption = False,
) -> None:
    """Send one test message through a connector (one attempt, no retry); exit 1 when it is not delivered."""
    name, answer = _on_connector(
        connector,
        lambda stub, name, auth: stub.TestConnector(
            pb.TestConnectorRequest(name=name, recipient=recipient), metadata=auth, timeout=60
        ),
        gateway=gateway,
        tls=tls,
        api_key=api_key,
    )
    outcome = answer.outcome
    status = connector_pb2.DeliveryStatus.Name(outcome.status).removeprefix("DELIVERY_STATUS_").lower()
    code = f", answer {outcome.response_code}" if outcome.response_code else ""
    error = f": {outcome.error_message}" if outcome.error_message else ""
    out.print(f"{status} {name} in {outcome.duration.ToTimedelta().total_seconds():.3f}s{code}{error}")
    if outcome.status != connector_pb2.DELIVERY_STATUS_DELIVERED:
        raise typer.Exit(1)


@connectors_app.command("dead-letters")
def dead_letters(
    connector: NameArgument,
    *,
    api_key: ApiKeyOption,
    gateway: GatewayOption = GATEWAY,
    tls: TlsOption = False,
) -> None:
    """List the connector's dead letters, newest first: key, person, flow step, reason, answer, error."""
    table = Table("idempotency key", "person", "flow step", "channel", "died", "reason", "answer", "error")

    def fill(stub: pb_grpc.OrchestratorServiceStub, name: str, auth: Auth) -> None:
        request = pb.ListDeadLettersRequest(parent=name, page_size=1000)
        listed = pages(
            lambda r: stub.ListDeadLetters(r, metadata=auth, timeout=10), request, lambda p: p.dead_letters
        )
        for letter in listed:
            table.add_row(
                letter.idempotency_key,
                letter.person_id,
                f"{letter.flow.removeprefix('flows/')}/{letter.flow_step_id}" if letter.flow else "-",
                channel_name(letter.channel),
                letter.dead_time.ToDatetime().isoformat(timespec="seconds"),
                letter.reason,
                str(letter.response_code or "-"),
                letter.error_message,
            )

    _on_connector(connector, fill, gateway=gateway, tls=tls, api_key=api_key)
    out.print(table)


@connectors_app.command("redrive")
def redrive(
    connector: NameArgument,
    keys: Annotated[list[str] | None, typer.Argument(help="The idempotency keys of the letters.")] = None,
    *,
    every: Annotated[bool, typer.Option("--all", help="Redrive every dead letter of the connector.")] = False,
    api_key: ApiKeyOption,
    gateway: GatewayOption = GATEWAY,
    tls: TlsOption = False,
) -> None:
    """Put dead letters back in the outbox, under their original idempotency keys."""
    if bool(keys) == every:
        raise typer.BadParameter("give the idempotency keys to redrive, or --all (not both)")
    name, answer = _on_connector(
        connector,
        lambda stub, name, auth: stub.RedriveDeadLetters(
            pb.RedriveDeadLettersRequest(parent=name, idempotency_keys=keys or [], all=every),
            metadata=auth,
            timeout=30,
        ),
        gateway=gateway,
        tls=tls,
        api_key=api_key,
    )
    out.print(f"redrove {answer.redriven_count} dead letters of {name}")
