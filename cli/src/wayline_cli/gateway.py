"""What the resource commands (`actions`, `flows`, `connectors`, `contacts`, `decisions`) share to call the
gateway: its address and TLS options, an API key as the bearer metadata, one channel per command, an RPC
error printed to standard error (with the request's field violations) and turned into exit status 1, a list
read page by page, and the consoles for results (standard output) and errors (standard error)."""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable, Iterator
from typing import Annotated, Any, Protocol, TypeVar

import grpc
import typer
from google.rpc import error_details_pb2
from rich.markup import escape

from wayline.common.errors import status_details
from wayline.common.registry import REGISTRY
from wayline_cli import terminal

__all__ = [
    "GATEWAY",
    "INT32_MAX",
    "Auth",
    "GatewayOption",
    "ReadKeyOption",
    "TlsOption",
    "api_key_option",
    "bearer",
    "call",
    "checked_api_key",
    "checked_gateway",
    "err",
    "failure",
    "open_channel",
    "out",
    "pages",
    "plain",
]

GATEWAY = f"localhost:{REGISTRY['gateway'].port}"
INT32_MAX = 2**31 - 1  # the most an int32 field holds: an option past it is a usage error, not a traceback


def checked_api_key(value: str | None) -> str | None:
    """An API key option as gRPC metadata can carry it (printable ASCII): any other text is a usage error
    naming the option, not gRPC's `INTERNAL: Invalid metadata` after the command has started."""
    if value and not (value.isascii() and value.isprintable()):
        raise typer.BadParameter("an API key is printable ASCII: the secret `wayline keys create` printed")
    return value


def api_key_option(help_text: str) -> Any:
    """The `--api-key` option (or WAYLINE_API_KEY), checked as `checked_api_key` does, with its help text:
    each command says which scope its key needs."""
    return typer.Option(envvar="WAYLINE_API_KEY", callback=checked_api_key, help=help_text)


def checked_gateway(value: str | None) -> str | None:
    """A gateway option gRPC can dial: not empty (gRPC's `dns:///` error) and without spaces."""
    if value is not None and (
        not value.strip() or not value.isascii() or not value.isprintable() or " " in value
    ):
        raise typer.BadParameter(f"{value!r} is no host:port (e.g. {GATEWAY})")
    return value


GatewayOption = Annotated[
    str, typer.Option(callback=checked_gateway, help="host:port of the Wayline gateway.")
]
TlsOption = Annotated[bool, typer.Option(help="Reach the gateway over TLS.")]
# The key of the commands that only read (decisions, timeline, profile); the others state their scopes.
ReadKeyOption = Annotated[
    str,
    api_key_option("An API key with the read scope."),
]
Auth = tuple[tuple[str, str], ...]

out = terminal.console(highlight=False, markup=False)  # results: what users and servers wrote, as text
err = terminal.console(stderr=True)

Stub = TypeVar("Stub")
Answer = TypeVar("Answer")
Item = TypeVar("Item")


class _PageRequest(Protocol):
    page_token: str


class _Page(Protocol):
    @property
    def next_page_token(self) -> str: ...


Request = TypeVar("Request", bound=_PageRequest)
Page = TypeVar("Page", bound=_Page)


def bearer(api_key: str) -> Auth:
    """The metadata that authenticates a call with `api_key`."""
    return (("authorization", f"Bearer {api_key}"),)


def plain(value: Any) -> Any:
    """YAML's dates and times as RFC 3339 strings, as the JSON mapping of a Timestamp expects."""
    if isinstance(value, datetime.datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=datetime.UTC)
        return aware.isoformat().replace("+00:00", "Z")
    if isinstance(value, datetime.date):
        return f"{value.isoformat()}T00:00:00Z"
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def open_channel(gateway: str, tls: bool) -> grpc.Channel:
    if tls:
        return grpc.secure_channel(gateway, grpc.ssl_channel_credentials())
    return grpc.insecure_channel(gateway)


def failure(error: grpc.RpcError, what: str = "") -> typer.Exit:
    """Print the error (about `what`, when given) and its field violations; the exit to raise."""
    about = f" ({escape(what)})" if what else ""
    err.print(f"[red]{error.code().name}[/red]{about}: {escape(error.details() or '')}")
    for detail in status_details(error):
        if isinstance(detail, error_details_pb2.BadRequest):
            for violation in detail.field_violations:
                err.print(f"  {escape(violation.field)}: {escape(violation.description)}")
    return typer.Exit(1)


def call(
    stub_type: Callable[[grpc.Channel], Stub],
    rpc: Callable[[Stub, Auth], Answer],
    *,
    what: str = "",
    gateway: str,
    tls: bool,
    api_key: str,
) -> Answer:
    """`rpc` on a stub over a channel of its own, authenticated by `api_key`; an RPC error is printed (about
    `what`) and exits 1."""
    with open_channel(gateway, tls) as channel:
        try:
            return rpc(stub_type(channel), bearer(api_key))
        except grpc.RpcError as error:
            raise failure(error, what) from None


def pages(
    list_page: Callable[[Request], Page], request: Request, items: Callable[[Page], Iterable[Item]]
) -> Iterator[Item]:
    """Every item of a list, page after page, `request` carrying each next page's token."""
    while True:
        page = list_page(request)
        yield from items(page)
        if not page.next_page_token:
            return
        request.page_token = page.next_page_token
