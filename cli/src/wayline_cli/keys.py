"""`wayline keys create|list|revoke|rotate`: API keys for operators, through the gateway's AdminService.

The secret of a new key is printed once, on its own line on standard output (everything else goes to standard
error), so that `wayline keys create ... > key.txt` captures exactly the secret.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import grpc
import typer
from google.protobuf import duration_pb2
from rich.markup import escape
from rich.table import Table

from wayline.api.v1 import annotations_pb2
from wayline.common.registry import REGISTRY
from wayline.common.timestamps import to_datetime
from wayline.gateway.v1 import api_key_pb2
from wayline.gateway.v1 import gateway_service_pb2 as pb
from wayline.gateway.v1 import gateway_service_pb2_grpc as pb_grpc
from wayline_cli import terminal
from wayline_cli.gateway import GatewayOption, api_key_option

__all__ = ["keys_app"]

_GATEWAY = f"localhost:{REGISTRY['gateway'].port}"
keys_app = typer.Typer(help="Create, list, rotate and revoke API keys.", no_args_is_help=True)
err = terminal.console(stderr=True)

SCOPES = {
    "read": annotations_pb2.SCOPE_READ,
    "write": annotations_pb2.SCOPE_WRITE,
    "admin": annotations_pb2.SCOPE_ADMIN,
}

ApiKeyOption = Annotated[
    str,
    api_key_option("An admin API key (the operator's, or the tenant's own)."),
]
TenantArgument = Annotated[str, typer.Argument(help="The tenant id, e.g. acme.")]


def _admin(gateway: str) -> tuple[grpc.Channel, pb_grpc.AdminServiceStub]:
    channel = grpc.insecure_channel(gateway)
    return channel, pb_grpc.AdminServiceStub(channel)


def _fail(error: grpc.RpcError) -> typer.Exit:
    err.print(f"[red]{error.code().name}[/red]: {escape(error.details() or '')}")
    return typer.Exit(1)


def _when(key: api_key_pb2.ApiKey, field: str) -> str:
    has = key.HasField
    return to_datetime(getattr(key, field)).strftime("%Y-%m-%d %H:%M") if has(field) else "-"  # type: ignore[arg-type]


@keys_app.command("create")
def create(
    tenant: TenantArgument,
    *,
    scope: Annotated[list[str], typer.Option(help="read, write or admin; repeatable.")],
    name: Annotated[str, typer.Option(help="Who or what uses the key.")] = "",
    api_key: ApiKeyOption,
    gateway: GatewayOption = _GATEWAY,
) -> None:
    """Create a key and print its secret (shown only now)."""
    unknown = [s for s in scope if s not in SCOPES]
    if unknown:
        raise typer.BadParameter(
            f"unknown scope {unknown[0]!r}; choose from read, write, admin", param_hint="--scope"
        )
    channel, admin = _admin(gateway)
    with channel:
        try:
            created = admin.CreateApiKey(
                pb.CreateApiKeyRequest(
                    parent=f"tenants/{tenant}",
                    api_key=api_key_pb2.ApiKey(display_name=name, scopes=[SCOPES[s] for s in scope]),
                ),
                metadata=(("authorization", f"Bearer {api_key}"),),
                timeout=10,
            )
        except grpc.RpcError as error:
            raise _fail(error) from None
    err.print(f"created [bold]{escape(created.api_key.name)}[/bold]; its secret is shown once:")
    print(created.secret)


@keys_app.command("list")
def list_keys(
    tenant: TenantArgument,
    *,
    all_: Annotated[bool, typer.Option("--all", help="Include revoked and expired keys.")] = False,
    api_key: ApiKeyOption,
    gateway: GatewayOption = _GATEWAY,
) -> None:
    """List a tenant's keys (never their secrets)."""
    table = Table(title=f"API keys of {tenant}")
    for column in ("name", "display name", "scopes", "state", "prefix", "created", "expires", "last used"):
        table.add_column(column)
    channel, admin = _admin(gateway)
    token = ""
    with channel:
        while True:
            try:
                page = admin.ListApiKeys(
                    pb.ListApiKeysRequest(parent=f"tenants/{tenant}", page_token=token, show_inactive=all_),
                    metadata=(("authorization", f"Bearer {api_key}"),),
                    timeout=10,
                )
            except grpc.RpcError as error:
                raise _fail(error) from None
            for key in page.api_keys:
                table.add_row(
                    key.name.rpartition("/")[2],
                    key.display_name,
                    ", ".join(
                        annotations_pb2.Scope.Name(s).removeprefix("SCOPE_").lower() for s in key.scopes
                    ),
                    api_key_pb2.ApiKeyState.Name(key.state).removeprefix("API_KEY_STATE_").lower(),
                    key.key_prefix,
                    _when(key, "create_time"),
                    _when(key, "expire_time"),
                    _when(key, "last_use_time"),
                )
            token = page.next_page_token
            if not token:
                break
    terminal.console(markup=False).print(table)


@keys_app.command("revoke")
def revoke(
    tenant: TenantArgument,
    key_id: Annotated[str, typer.Argument(help="The key's id (the last part of its name).")],
    *,
    api_key: ApiKeyOption,
    gateway: GatewayOption = _GATEWAY,
) -> None:
    """Revoke a key; every gateway refuses it within a few seconds."""
    channel, admin = _admin(gateway)
    with channel:
        try:
            revoked = admin.RevokeApiKey(
                pb.RevokeApiKeyRequest(name=f"tenants/{tenant}/apiKeys/{key_id}"),
                metadata=(("authorization", f"Bearer {api_key}"),),
                timeout=10,
            )
        except grpc.RpcError as error:
            raise _fail(error) from None
    err.print(f"revoked {revoked.api_key.name}")


@keys_app.command("rotate")
def rotate(
    tenant: TenantArgument,
    key_id: Annotated[str, typer.Argument(help="The key's id (the last part of its name).")],
    *,
    overlap_hours: Annotated[
        float, typer.Option(min=0, max=720, help="How long the old key keeps working.")
    ] = 24,
    api_key: ApiKeyOption,
    gateway: GatewayOption = _GATEWAY,
) -> None:
    """Replace a key; the old one keeps working for the overlap. Prints the new secret (shown only now)."""
    overlap = duration_pb2.Duration()
    overlap.FromTimedelta(timedelta(hours=overlap_hours))
    channel, admin = _admin(gateway)
    with channel:
        try:
            rotated = admin.RotateApiKey(
                pb.RotateApiKeyRequest(name=f"tenants/{tenant}/apiKeys/{key_id}", overlap=overlap),
                metadata=(("authorization", f"Bearer {api_key}"),),
                timeout=10,
            )
        except grpc.RpcError as error:
            raise _fail(error) from None
    err.print(
        f"created [bold]{rotated.api_key.name}[/bold]; {rotated.previous_api_key.name} works until "
        f"{_when(rotated.previous_api_key, 'expire_time')} UTC. The new secret is shown once:"
    )
    print(rotated.secret)
