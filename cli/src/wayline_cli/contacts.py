"""`wayline contacts policy get|set FILE` and `wayline contacts list PERSON`: the orchestrator's contact
policy and ledger, through the gateway.

`policy set FILE` reads a YAML mapping with the fields of the contract's `ContactPolicy` (enum values by
name, windows as durations such as `604800s`) and makes it the tenant's policy: every rule the file does not
set is cleared, so the file is the whole policy. `policy get` prints the policy in the same form, so
`get > file`, an edit, and `set file` round-trip.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import grpc
import typer
import yaml
from google.protobuf import json_format
from rich.markup import escape

from wayline.event.v1 import event_pb2
from wayline.orchestrator.v1 import contact_pb2
from wayline.orchestrator.v1 import contact_policy_pb2 as policy_pb
from wayline.orchestrator.v1 import orchestrator_service_pb2 as pb
from wayline.orchestrator.v1 import orchestrator_service_pb2_grpc as pb_grpc
from wayline_cli.gateway import (
    GATEWAY,
    GatewayOption,
    TlsOption,
    api_key_option,
    bearer,
    err,
    failure,
    open_channel,
    out,
    plain,
)

__all__ = ["PolicyFileError", "contacts_app", "read_policy"]

_OUTPUT_ONLY = ("revision", "updateTime", "update_time", "etag")

contacts_app = typer.Typer(help="The contact policy and the contact ledger.", no_args_is_help=True)
policy_app = typer.Typer(help="Read or replace the tenant's contact policy.", no_args_is_help=True)
contacts_app.add_typer(policy_app, name="policy")

ApiKeyOption = Annotated[
    str,
    api_key_option("An API key: admin scope to set the policy, read otherwise."),
]


class PolicyFileError(ValueError):
    """A file that is not a YAML mapping of ContactPolicy fields (the service checks the values)."""


def read_policy(path: Path) -> policy_pb.ContactPolicy:
    try:
        fields = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as error:
        raise PolicyFileError(f"{path}: {error}") from None
    if not isinstance(fields, dict):
        raise PolicyFileError(f"{path} must hold a YAML mapping of ContactPolicy fields")
    if any(k in fields for k in _OUTPUT_ONLY):
        raise PolicyFileError(f"{path} sets an output-only field ({', '.join(_OUTPUT_ONLY[:2])}, etag)")
    try:
        return json_format.ParseDict(plain(fields), policy_pb.ContactPolicy())
    except json_format.ParseError as error:
        raise PolicyFileError(f"{path}: {error}") from None


def _yaml(policy: policy_pb.ContactPolicy) -> str:
    return yaml.safe_dump(json_format.MessageToDict(policy), sort_keys=False)


@policy_app.command("get")
def get_policy(*, api_key: ApiKeyOption, gateway: GatewayOption = GATEWAY, tls: TlsOption = False) -> None:
    """Print the tenant's contact policy as YAML (with its revision and etag)."""
    with open_channel(gateway, tls) as channel:
        try:
            policy = (
                pb_grpc.OrchestratorServiceStub(channel)
                .GetContactPolicy(pb.GetContactPolicyRequest(), metadata=bearer(api_key), timeout=10)
                .contact_policy
            )
        except grpc.RpcError as error:
            raise failure(error) from None
    out.print(_yaml(policy), end="")


@policy_app.command("set")
def set_policy(
    file: Annotated[Path, typer.Argument(help="A YAML mapping of ContactPolicy fields: the whole policy.")],
    *,
    api_key: ApiKeyOption,
    gateway: GatewayOption = GATEWAY,
    tls: TlsOption = False,
) -> None:
    """Make the file the tenant's contact policy (rules it does not set are cleared)."""
    try:
        policy = read_policy(file)
    except PolicyFileError as error:
        err.print(f"[red]{escape(str(error))}[/red]")
        raise typer.Exit(2) from None
    with open_channel(gateway, tls) as channel:
        try:
            stored = (
                pb_grpc.OrchestratorServiceStub(channel)
                .UpdateContactPolicy(
                    pb.UpdateContactPolicyRequest(contact_policy=policy), metadata=bearer(api_key), timeout=10
                )
                .contact_policy
            )
        except grpc.RpcError as error:
            raise failure(error, "contact policy") from None
    out.print(f"contact policy at revision {stored.revision}")


def _short(enum: object, number: int, prefix: str) -> str:
    return str(enum.Name(number)).removeprefix(prefix).lower()  # type: ignore[attr-defined]


@contacts_app.command("list")
def list_contacts(
    person_id: Annotated[str, typer.Argument(help="The person's id.")],
    *,
    limit: Annotated[int, typer.Option(min=1, help="The most contacts to show, newest first.")] = 50,
    api_key: ApiKeyOption,
    gateway: GatewayOption = GATEWAY,
    tls: TlsOption = False,
) -> None:
    """List a person's contacts in the ledger, newest first."""
    from rich.table import Table

    table = Table("time", "channel", "purpose", "source", "action", "contact")
    request = pb.ListContactsRequest(person_id=person_id, page_size=min(limit, 1_000))
    shown = 0
    with open_channel(gateway, tls) as channel:
        stub = pb_grpc.OrchestratorServiceStub(channel)
        try:
            while shown < limit:
                page = stub.ListContacts(request, metadata=bearer(api_key), timeout=10)
                for contact in page.contacts[: limit - shown]:
                    table.add_row(
                        contact.contact_time.ToJsonString(),
                        _short(event_pb2.Channel, contact.channel, "CHANNEL_"),
                        _short(policy_pb.ContactPurpose, contact.purpose, "CONTACT_PURPOSE_"),
                        _short(contact_pb2.ContactSource, contact.source, "CONTACT_SOURCE_"),
                        contact.action_id,
                        contact.contact_id,
                    )
                    shown += 1
                if not page.next_page_token:
                    break
                request.page_token = page.next_page_token
        except grpc.RpcError as error:
            raise failure(error) from None
    out.print(table)
