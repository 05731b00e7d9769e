"""`wayline actions apply|list|archive`: the decision service's action catalogue, through the gateway.

`apply FILE` reads a YAML list of actions, each a mapping with an `id` and the fields of the contract's
`Action` (enum values by name, times as RFC 3339), and makes the catalogue match it: a missing action is
created, a different one updated (every writable field, conditional on the etag just read), an equal one
left alone, so applying the same file twice changes nothing. `state` is only changed when an entry sets it.
One line per action goes to standard output (`created`, `updated` or `unchanged`), errors to standard error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
import yaml
from google.protobuf.field_mask_pb2 import FieldMask
from rich.table import Table

from wayline.decision.v1 import action_pb2
from wayline.decision.v1 import decision_service_pb2 as pb
from wayline.decision.v1 import decision_service_pb2_grpc as pb_grpc
from wayline.event.v1 import event_pb2
from wayline_cli.apply import apply_each, create_or_update, parse, read_or_exit
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
    plain,
)

__all__ = ["ActionFileError", "actions_app", "read_actions"]

_OUTPUT_ONLY = ("name", "etag", "create_time", "update_time")
# The writable fields UpdateAction replaces on apply (`state` only when the file sets it), read from the
# contract so a field added to Action is applied without a change here.
_WRITABLE = tuple(
    f.name for f in action_pb2.Action.DESCRIPTOR.fields if f.name not in (*_OUTPUT_ONLY, "state")
)

actions_app = typer.Typer(help="Apply, list and archive the action catalogue.", no_args_is_help=True)

ApiKeyOption = Annotated[
    str,
    api_key_option("An API key: admin scope to apply or archive, read to list."),
]


class ActionFileError(ValueError):
    """A file that is not a YAML list of actions (the service checks each action's fields)."""


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
        fields = plain({k: v for k, v in entry.items() if k != "id"})
        where = f"{path}: entry {index} ({entry['id']})"
        if any(k in fields for k in _OUTPUT_ONLY):
            raise ActionFileError(f"{where} sets an output-only field")
        action = parse(fields, action_pb2.Action(), where, ActionFileError)
        found.append((entry["id"], action, "state" in fields))
    return found


def _same(current: action_pb2.Action, wanted: action_pb2.Action, with_state: bool) -> bool:
    """True when applying `wanted` would change nothing (an unset value or time differs from a set one)."""
    fields = (*_WRITABLE, "state") if with_state else _WRITABLE
    presence = ("value", "lever", "start_time", "end_time")
    return all(getattr(current, f) == getattr(wanted, f) for f in fields) and all(
        current.HasField(f) == wanted.HasField(f)  # type: ignore[arg-type]
        for f in presence
    )


def _apply_one(
    stub: pb_grpc.DecisionServiceStub, auth: Auth, entry: tuple[str, action_pb2.Action, bool]
) -> str:
    action_id, wanted, with_state = entry
    name = f"actions/{action_id}"

    def create() -> None:
        request = pb.CreateActionRequest(action_id=action_id, action=wanted)
        stub.CreateAction(request, metadata=auth, timeout=10)
        if with_state and wanted.state == action_pb2.ACTION_STATE_ARCHIVED:
            stub.ArchiveAction(pb.ArchiveActionRequest(name=name), metadata=auth, timeout=10)

    def update(current: action_pb2.Action) -> None:
        change = action_pb2.Action()
        change.CopyFrom(wanted)
        change.name, change.etag = name, current.etag
        paths = [*_WRITABLE, "state"] if with_state else list(_WRITABLE)
        request = pb.UpdateActionRequest(action=change, update_mask=FieldMask(paths=paths))
        stub.UpdateAction(request, metadata=auth, timeout=10)

    return create_or_update(
        lambda: stub.GetAction(pb.GetActionRequest(name=name), metadata=auth, timeout=10).action,
        create,
        lambda current: _same(current, wanted, with_state),
        update,
    )


@actions_app.command("apply")
def apply(
    file: Annotated[Path, typer.Argument(help="A YAML list of actions, each with an `id`.")],
    *,
    api_key: ApiKeyOption,
    gateway: GatewayOption = GATEWAY,
    tls: TlsOption = False,
) -> None:
    """Create or update the file's actions so that the catalogue matches it (idempotent)."""
    entries = read_or_exit(read_actions, file, ActionFileError)
    auth = bearer(api_key)
    apply_each(
        entries,
        pb_grpc.DecisionServiceStub,
        lambda stub, entry: _apply_one(stub, auth, entry),
        lambda entry: f"actions/{entry[0]}",
        gateway=gateway,
        tls=tls,
    )


@actions_app.command("list")
def list_actions(
    *,
    state: Annotated[str, typer.Option(help="active, archived or all.")] = "active",
    channel: Annotated[str, typer.Option(help="Only this channel, e.g. email or web.")] = "",
    api_key: ApiKeyOption,
    gateway: GatewayOption = GATEWAY,
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

    def fill(stub: pb_grpc.DecisionServiceStub, auth: Auth) -> None:
        listed = pages(lambda r: stub.ListActions(r, metadata=auth, timeout=10), request, lambda p: p.actions)
        for action in listed:
            table.add_row(
                action.name.removeprefix("actions/"),
                channel_name(action.channel),
                action_pb2.ActionState.Name(action.state).removeprefix("ACTION_STATE_").lower(),
                f"{action.value:g} {action.value_currency}".strip() if action.HasField("value") else "1",
                f"{action.lever:g}" if action.HasField("lever") else "1",
                "yes" if action.counts_as_contact else "no",
                ", ".join(action.placements) or "any",
            )

    call(pb_grpc.DecisionServiceStub, fill, gateway=gateway, tls=tls, api_key=api_key)
    out.print(table)


@actions_app.command("archive")
def archive(
    action_id: Annotated[str, typer.Argument(help="The action's id.")],
    *,
    api_key: ApiKeyOption,
    gateway: GatewayOption = GATEWAY,
    tls: TlsOption = False,
) -> None:
    """Archive an action: it stays in the catalogue but is never a candidate again."""
    name = f"actions/{action_id}"
    call(
        pb_grpc.DecisionServiceStub,
        lambda stub, auth: stub.ArchiveAction(pb.ArchiveActionRequest(name=name), metadata=auth, timeout=10),
        what=name,
        gateway=gateway,
        tls=tls,
        api_key=api_key,
    )
    out.print(f"archived actions/{action_id}")
