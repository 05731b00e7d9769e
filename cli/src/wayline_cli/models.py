"""`wayline models push|list|get`: the decision service's model registry, through the gateway (the traffic
commands, deploy|traffic|rollback, are in model_traffic.py).

`push PACKAGE` streams a package directory (`manifest.json` and the files it lists) to
DecisionService.UploadModelVersion: a header with the model id and version read from the manifest and the
total size, then each file in 1 MiB chunks, the manifest first. The service validates the package and
registers it; the registered version's name is printed on standard output, everything else on standard
error.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated

import grpc
import typer
from google.rpc import error_details_pb2
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn
from rich.table import Table

from wayline.common.errors import status_details
from wayline.common.registry import REGISTRY
from wayline.decision.v1 import decision_service_pb2 as pb
from wayline.decision.v1 import decision_service_pb2_grpc as pb_grpc
from wayline.decision.v1 import model_pb2
from wayline_cli import terminal
from wayline_cli.gateway import GatewayOption, TlsOption, api_key_option
from wayline_cli.times import utc_text

__all__ = ["CHUNK_BYTES", "models_app", "package_files", "traffic_line", "upload_requests"]

CHUNK_BYTES = 1024 * 1024
MANIFEST_FILE = "manifest.json"
_GATEWAY = f"localhost:{REGISTRY['gateway'].port}"

models_app = typer.Typer(
    help="Push models to the registry, list them, show one; deploy, canary, shadow, roll back.",
    no_args_is_help=True,
)
err = terminal.console(stderr=True)

ApiKeyOption = Annotated[
    str,
    api_key_option("An API key: admin scope to push, read to list."),
]


class PackageError(ValueError):
    """A directory that cannot be pushed as a package (the service checks the rest)."""


def package_files(directory: Path) -> tuple[str, str, list[Path]]:
    """(model id, version, the files to send: the manifest first, the rest by name, hidden ones left out)."""
    manifest_path = directory / MANIFEST_FILE
    try:
        manifest = json.loads(manifest_path.read_bytes())
    except FileNotFoundError:
        raise PackageError(f"{directory} holds no {MANIFEST_FILE}; is it a model package?") from None
    except ValueError as error:
        raise PackageError(f"{manifest_path} is not JSON: {error}") from None
    if not isinstance(manifest, dict):
        raise PackageError(f"{manifest_path} is not a JSON object")
    files = [
        manifest_path,
        *sorted(
            p
            for p in directory.iterdir()
            if p.is_file() and p.name != MANIFEST_FILE and not p.name.startswith(".")  # hidden: no package's
        ),
    ]
    # proto3 JSON names fields in lowerCamelCase, and parsers accept the proto names too.
    model_id = manifest.get("modelId", manifest.get("model_id", ""))
    return str(model_id), str(manifest.get("version", "")), files


def upload_requests(
    model_id: str,
    version: str,
    files: list[Path],
    *,
    chunk_bytes: int = CHUNK_BYTES,
    sent: Callable[[int], None] = lambda n: None,
) -> Iterator[pb.UploadModelVersionRequest]:
    """The UploadModelVersion stream of `files`: the header, then each file's chunks in order (a chunk with
    no data for an empty file). `sent` is told each chunk's size as it goes."""
    total = sum(file.stat().st_size for file in files)
    yield pb.UploadModelVersionRequest(
        header=pb.ModelPackageHeader(model_id=model_id, version=version, total_bytes=total)
    )
    for file in files:
        with file.open("rb") as handle:
            data = handle.read(chunk_bytes)
            while True:
                yield pb.UploadModelVersionRequest(chunk=pb.ModelPackageChunk(file=file.name, data=data))
                sent(len(data))
                data = handle.read(chunk_bytes)
                if not data:
                    break


def _channel(gateway: str, tls: bool) -> grpc.Channel:
    if tls:
        return grpc.secure_channel(gateway, grpc.ssl_channel_credentials())
    return grpc.insecure_channel(gateway)


def _fail(error: grpc.RpcError) -> typer.Exit:
    err.print(f"[red]{error.code().name}[/red]: {escape(error.details() or '')}")
    for detail in status_details(error):
        if isinstance(detail, error_details_pb2.BadRequest):
            for violation in detail.field_violations:
                err.print(f"  • {escape(violation.field)}: {escape(violation.description)}")
    return typer.Exit(1)


def traffic_line(model: model_pb2.Model) -> str:
    """`models/x stable=2 canary=3@10% shadow=4 previous=1`, or `models/x not deployed`."""
    traffic = model.traffic
    if not traffic.stable_version:
        return f"{model.name} not deployed"
    parts = [model.name, f"stable={traffic.stable_version}"]
    if traffic.canary_version:
        parts.append(f"canary={traffic.canary_version}@{traffic.canary_percent}%")
    if traffic.shadow_version:
        parts.append(f"shadow={traffic.shadow_version}")
    if model.previous_stable_version:
        parts.append(f"previous={model.previous_stable_version}")
    return " ".join(parts)


def _when(version: model_pb2.ModelVersion) -> str:
    return utc_text(version.register_time)


@models_app.command("push")
def push(
    package: Annotated[
        Path, typer.Argument(exists=True, file_okay=False, help="The package directory (with manifest.json).")
    ],
    *,
    api_key: ApiKeyOption,
    gateway: GatewayOption = _GATEWAY,
    tls: TlsOption = False,
    timeout: Annotated[float, typer.Option(min=1, help="Seconds the upload may take.")] = 300.0,
) -> None:
    """Upload a model package; the service validates and registers it, and the version is printed."""
    try:
        model_id, version, files = package_files(package)
    except PackageError as error:
        err.print(f"[red]error:[/red] {escape(str(error))}")
        raise typer.Exit(1) from None
    total = sum(file.stat().st_size for file in files)
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    with _channel(gateway, tls) as channel, Progress(*columns, console=err) as progress:
        task = progress.add_task(f"pushing {model_id} {version}", total=total)
        requests = upload_requests(model_id, version, files, sent=lambda n: progress.advance(task, n))
        try:
            response = pb_grpc.DecisionServiceStub(channel).UploadModelVersion(
                requests, metadata=(("authorization", f"Bearer {api_key}"),), timeout=timeout
            )
        except grpc.RpcError as error:
            raise _fail(error) from None
    registered = response.model_version
    if response.created:
        err.print(
            f"registered [bold]{registered.name}[/bold] ({total:,} bytes, sha256 {registered.sha256[:12]})"
        )
    else:
        err.print(
            f"[yellow]{registered.name} was already registered with this content; nothing changed[/yellow]"
        )
    print(registered.name)


@models_app.command("list")
def list_models(*, api_key: ApiKeyOption, gateway: GatewayOption = _GATEWAY, tls: TlsOption = False) -> None:
    """List the tenant's models with their latest version."""
    table = Table(title="Models")
    for column in ("model", "versions", "latest", "registered (UTC)", "traffic"):
        table.add_column(column)
    token = ""
    with _channel(gateway, tls) as channel:
        stub = pb_grpc.DecisionServiceStub(channel)
        while True:
            try:
                page = stub.ListModels(
                    pb.ListModelsRequest(page_token=token),
                    metadata=(("authorization", f"Bearer {api_key}"),),
                    timeout=30,
                )
            except grpc.RpcError as error:
                raise _fail(error) from None
            for model in page.models:
                latest = model.versions[0] if model.versions else None
                table.add_row(
                    model.name.removeprefix("models/"),
                    str(len(model.versions)),
                    latest.version if latest else "-",
                    _when(latest) if latest else "-",
                    traffic_line(model).removeprefix(model.name + " "),
                )
            token = page.next_page_token
            if not token:
                break
    terminal.console(markup=False).print(table)


@models_app.command("get")
def get(
    model: Annotated[str, typer.Argument(help="The model id, e.g. next-best-offer.")],
    *,
    api_key: ApiKeyOption,
    gateway: GatewayOption = _GATEWAY,
    tls: TlsOption = False,
) -> None:
    """Show a model's versions, the newest first."""
    with _channel(gateway, tls) as channel:
        try:
            found = pb_grpc.DecisionServiceStub(channel).GetModel(
                pb.GetModelRequest(name=f"models/{model.removeprefix('models/')}"),
                metadata=(("authorization", f"Bearer {api_key}"),),
                timeout=30,
            )
        except grpc.RpcError as error:
            raise _fail(error) from None
    table = Table(title=found.model.name)
    for column in ("version", "state", "registered (UTC)", "features", "actions", "metrics", "sha256"):
        table.add_column(column)
    for version in found.model.versions:
        state = model_pb2.ModelVersionState.Name(version.state).removeprefix("MODEL_VERSION_STATE_").lower()
        table.add_row(
            version.version,
            f"{state}: {version.error_message}" if version.error_message else state,
            _when(version),
            str(len(version.feature_spec.features)),
            ", ".join(version.action_ids),
            ", ".join(f"{name} {value:.4g}" for name, value in sorted(version.metrics.items())),
            version.sha256[:12],
        )
    terminal.console(markup=False).print(table)
    print(traffic_line(found.model))
