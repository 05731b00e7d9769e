"""`wayline actions apply|list|archive`: the decision service's action catalogue, through the gateway.

`apply FILE` reads a YAML list of actions, each a mapping with an `id` and the fields of the contract's
`Action` (enum values by name, times as RFC 3339), and makes the catalogue match it: a missing action is
created, a different one updated (every writable field, conditional on the etag just read), an equal one
left alone, so applying the same file twice changes nothing. `state` is only changed when an entry sets it.
One line per action goes to standard output (`created`, `updated` or `unchanged`), errors to standard error.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import grpc
import typer
import yaml
from google.protobuf import json_format
from google.protobuf.field_mask_pb2 import FieldMask
from google.rpc import error_details_pb2
from rich.console import Console
from rich.table import Table

from wayline.common.errors import status_details
from wayline.common.registry import REGISTRY
from wayline.decision.v1 import action_pb2
from wayline.decision.v1 import decision_service_pb2 as pb
from wayline.decision.v1 import decision_service_pb2_grpc as pb_grpc
from wayline.event.v1 import event_pb2

__all__ = ["ActionFileError", "actions_app", "read_actions"]

_GATEWAY = f"localhost:{REGISTRY['gateway'].port}"
_OUTPUT_ONLY = ("name", "etag", "create_time", "update_time")
# The writable fields UpdateAction replaces on apply (`state` only when the file sets it), read from the
# contract so a field added to Action is applied without a change here.
_WRITABLE = tuple(
    f.name for f in action_pb2.Action.DESCRIPTOR.fields if f.name not in (*_OUTPUT_ONLY, "state")
)

actions_app = typer.Typer(help="Apply, list and archive the action catalogue.", no_args_is_help=True)
out = Console(highlight=False)
err = Console(stderr=True)

ApiKeyOption = Annotated[
    str,
    typer.Option(envvar="WAYLINE_API_KEY", help="An API key: admin scope to apply or archive, read to list."),
]
GatewayOption = Annotated[str, typer.Option(help="host:port of the Wayline gateway.")]
TlsOption = Annotated[bool, typer.Option(help="Reach the gateway over TLS.")]


class ActionFileError(ValueError):
    """A file that is not a YAML list of actions (the service checks each action's fields)."""


def _plain(value: Any) -> Any:
    """YAML's dates and times as RFC 3339 strings, as the JSON mapping of a Timestamp expects."""
    if isinstance(value, datetime.datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=datetime.UTC)
        return aware.isoformat().replace("+00:00", "Z")
    if isinstance(value, datetime.date):
        return f"{value.isoformat()}T00:00:00Z"
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def read_actions(path: Path) -> list[tuple[str, action_pb2.Action, bool]]:
    """(id, action, whether the entry sets `state`) for each entry of the file, in order."""
    try:
        entries = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ActionFileError(f"{path}: {error}") from None
    if not isinstance(entries, list):
        raise ActionFileError(f"{path} must hold a YAML list of actions")
    found: list[tuple[str, action_pb2.Action, bool]] = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            raise ActionFileError(f"{path}: entry {index} must be a mapping with a string `id`")
        fields = _plain({k: v for k, v in entry.items() if k != "id"})
        if any(k in fields for k in _OUTPUT_ONLY):
            raise ActionFileError(f"{path}: entry {index} ({entry['id']}) sets an output-only field")
        try:
            action = json_format.ParseDict(fields, action_pb2.Action())
        except json_format.ParseError as error:
            raise ActionFileError(f"{path}: entry {index} ({entry['id']}): {error}") from None
        found.append((entry["id"], action, "state" in fields))
    return found


def _channel(gateway: str, tls: bool) -> grpc.Channel:
    if tls:
        return grpc.secure_channel(gateway, grpc.ssl_channel_credentials())
    return grpc.insecure_channel(gateway)


def _fail(error: grpc.RpcError, what: str = "") -> typer.Exit:
    err.print(f"[red]{error.code().name}[/red]{f' ({what})' if what else ''}: {error.details()}")
    for detail in status_details(error):
        if isinstance(detail, error_details_pb2.BadRequest):
            for violation in detail.field_violations:
                err.print(f"  {violation.field}: {violation.description}")
    return typer.Exit(1)


def _same(current: action_pb2.Action, wanted: action_pb2.Action, with_state: bool) -> bool:
    """True when applying `wanted` would change nothing (an unset value or time differs from a set one)."""
    fields = (*_WRITABLE, "state") if with_state else _WRITABLE
    presence = ("value", "lever", "start_time", "end_time")
    return all(getattr(current, f) == getattr(wanted, f) for f in fields) and all(
        current.HasField(f) == wanted.HasField(f)  # type: ignore[arg-type]
        for f in presence
    )


def _apply_one(
    stub: pb_grpc.DecisionServiceStub,
    auth: tuple[tuple[str, str], ...],
    entry: tuple[str, action_pb2.Action, bool],
) -> str:
    action_id, wanted, with_state = entry
    name = f"actions/{action_id}"
    try:
        current = stub.GetAction(pb.GetActionRequest(name=name), metadata=auth, timeout=10).action
    except grpc.RpcError as error:
        if error.code() != grpc.StatusCode.NOT_FOUND:
            raise
        stub.CreateAction(
            pb.CreateActionRequest(action_id=action_id, action=wanted), metadata=auth, timeout=10
        )
        if with_state and wanted.state == action_pb2.ACTION_STATE_ARCHIVED:
            stub.ArchiveAction(pb.ArchiveActionRequest(name=name), metadata=auth, timeout=10)
        return "created"
    if _same(current, wanted, with_state):
        return "unchanged"
    change = action_pb2.Action()
    change.CopyFrom(wanted)
    change.name, change.etag = name, current.etag
    paths = [*_WRITABLE, "state"] if with_state else list(_WRITABLE)
    stub.UpdateAction(
        pb.UpdateActionRequest(action=change, update_mask=FieldMask(paths=paths)), metadata=auth, timeout=10
    )
    return "updated"


@actions_app.command("apply")
def apply(
    file: Annotated[Path, typer.Argument(help="A YAML list of actions, each with an `id`.")],
    *,
    api_key: ApiKeyOption,
    gateway: GatewayOption = _GATEWAY,
    tls: TlsOption = False,
) -> None:
    """Create or update the file's actions so that the catalogue matches it (idempotent)."""
    try:
        entries = read_actions(file)
    except ActionFileError as error:
        err.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from None
    auth = (("authorization", f"Bearer {api_key}"),)
    with _channel(gateway, tls) as channel:
        stub = pb_grpc.DecisionServiceStub(channel)
        for entry in entries:
            try:
                outcome = _apply_one(stub, auth, entry)
            except grpc.RpcError as error:
                raise _fail(error, f"actions/{entry[0]}") from None
            out.print(f"{outcome} actions/{entry[0]}")


def _pages(
    stub: pb_grpc.DecisionServiceStub, auth: tuple[tuple[str, str], ...], request: pb.ListActionsRequest
) -> Iterator[action_pb2.Action]:
    while True:
        page = stub.ListActions(request, metadata=auth, timeout=10)
        yield from page.actions
        if not page.next_page_token:
            return
        request.page_token = page.next_page_token


@actions_app.command("list")
def list_actions(
    *,
    state: Annotated[str, typer.Option(help="active, archived or all.")] = "active",
    channel: Annotated[str, typer.Option(help="Only this channel, e.g. email or web.")] = "",
    api_key: ApiKeyOption,
    gateway: GatewayOption = _GATEWAY,
    tls: TlsOption = False,
) -> None:
    """List the catalogue by id: channel, state, value, lever, whether it is a contact, placements."""
    states = {
        "active": action_pb2.ACTION_STATE_ACTIVE,
        "archived": action_pb2.ACTION_STATE_ARCHIVED,
        "all": 0,
    }
    if state not in states:
        raise typer.BadParameter("choose active, archived or all", param_hint="--state")
    request = pb.ListActionsRequest(page_size=500, state=states[state])  # type: ignore[arg-type]
    if channel:
        try:
            request.channel = event_pb2.Channel.Value(f"CHANNEL_{channel.upper()}")
        except ValueError:
            raise typer.BadParameter(f"unknown channel {channel!r}", param_hint="--channel") from None
    table = Table("action", "channel", "state", "value", "lever", "contact", "placements")
    with _channel(gateway, tls) as grpc_channel:
        stub = pb_grpc.DecisionServiceStub(grpc_channel)
        try:
            for action in _pages(stub, (("authorization", f"Bearer {api_key}"),), request):
                table.add_row(
                    action.name.removeprefix("actions/"),
                    event_pb2.Channel.Name(action.channel).removeprefix("CHANNEL_").lower(),
                    action_pb2.ActionState.Name(action.state).removeprefix("ACTION_STATE_").lower(),
                    f"{action.value:g} {action.value_currency}".strip() if action.HasField("value") else "1",
                    f"{action.lever:g}" if action.HasField("lever") else "1",
                    "yes" if action.counts_as_contact else "no",
                    ", ".join(action.placements) or "any",
                )
        except grpc.RpcError as error:
            raise _fail(error) from None
    out.print(table)


@actions_app.command("archive")
def archive(
    action_id: Annotated[str, typer.Argument(help="The action's id.")],
    *,
    api_key: ApiKeyOption,
    gateway: GatewayOption = _GATEWAY,
    tls: TlsOption = False,
) -> None:
    """Archive an action: it stays in the catalogue but is never a candidate again."""
    with _channel(gateway, tls) as channel:
        try:
            pb_grpc.DecisionServiceStub(channel).ArchiveAction(
                pb.ArchiveActionRequest(name=f"actions/{action_id}"),
                metadata=(("authorization", f"Bearer {api_key}"),),
                timeout=10,
            )
        except grpc.RpcError as error:
            raise _fail(error, f"actions/{action_id}") from None
    out.print(f"archived actions/{action_id}")
