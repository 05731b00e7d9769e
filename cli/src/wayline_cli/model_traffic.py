"""`wayline models deploy|traffic|rollback`: which versions of a model serve decisions, through the gateway.

`deploy MODEL VERSION` makes a registered version the stable one (`--canary PCT`: the canary for that share
of persons; `--shadow`: the shadow, scoring beside the stable version, never served). `traffic MODEL --stable
V [--canary V --percent P] [--shadow V]` replaces the traffic as a whole (to grow, promote or drop a
canary). `rollback MODEL [--version V]` returns to the previous stable version (or V) and clears the canary
and the shadow. Each waits until the service has loaded and checked the versions and switched, then prints
the model's traffic on standard output.

The commands are added to `models_app` of models.py, whose helpers they share; the CLI takes `models_app`
from here so that they are registered.
"""

from __future__ import annotations

from typing import Annotated

import grpc
import typer

from wayline.decision.v1 import decision_service_pb2 as pb
from wayline.decision.v1 import decision_service_pb2_grpc as pb_grpc
from wayline.decision.v1 import model_pb2
from wayline_cli.gateway import GatewayOption, TlsOption
from wayline_cli.models import (
    _GATEWAY,
    ApiKeyOption,
    _channel,
    _fail,
    err,
    models_app,
    traffic_line,
)

__all__ = ["models_app"]

ModelArgument = Annotated[str, typer.Argument(help="The model id, e.g. next-best-offer.")]
TimeoutOption = Annotated[float, typer.Option(min=1, help="Seconds to wait for the load and the switch.")]


def _call(  # noqa: PLR0917 - the commands' shared options, then the call
    gateway: str, tls: bool, api_key: str, timeout: float, rpc: str, request: object
) -> model_pb2.Model:
    with _channel(gateway, tls) as channel:
        stub = pb_grpc.DecisionServiceStub(channel)
        try:
            response = getattr(stub, rpc)(
                request, metadata=(("authorization", f"Bearer {api_key}"),), timeout=timeout
            )
        except grpc.RpcError as error:
            raise _fail(error) from None
    model: model_pb2.Model = response.model
    return model


def _name(model: str) -> str:
    return f"models/{model.removeprefix('models/')}"


@models_app.command("deploy")
def deploy(
    model: ModelArgument,
    version: Annotated[str, typer.Argument(help="The registered version to deploy.")],
    *,
    canary: Annotated[
        int | None, typer.Option(min=1, max=100, help="Deploy as the canary for this percentage of persons.")
    ] = None,
    shadow: Annotated[
        bool, typer.Option("--shadow", help="Deploy as the shadow (scored, never served).")
    ] = False,
    api_key: ApiKeyOption,
    gateway: GatewayOption = _GATEWAY,
    tls: TlsOption = False,
    timeout: TimeoutOption = 300.0,
) -> None:
    """Deploy a registered version: stable (default), canary (--canary PCT) or shadow (--shadow)."""
    if canary is not None and shadow:
        err.print("[red]error:[/red] --canary and --shadow are exclusive")
        raise typer.Exit(2)
    request = pb.DeployModelRequest(name=_name(model), version=version, mode=pb.DEPLOY_MODE_FULL)
    if canary is not None:
        request.mode, request.canary_percent = pb.DEPLOY_MODE_CANARY, canary
    elif shadow:
        request.mode = pb.DEPLOY_MODE_SHADOW
    print(traffic_line(_call(gateway, tls, api_key, timeout, "DeployModel", request)))


@models_app.command("traffic")
def traffic(
    model: ModelArgument,
    *,
    stable: Annotated[str, typer.Option(help="The stable version.")],
    canary: Annotated[str, typer.Option(help="The canary version; omit to drop the canary.")] = "",
    percent: Annotated[int, typer.Option(min=0, max=100, help="The canary's percentage of persons.")] = 0,
    shadow: Annotated[str, typer.Option(help="The shadow version; omit to drop the shadow.")] = "",
    api_key: ApiKeyOption,
    gateway: GatewayOption = _GATEWAY,
    tls: TlsOption = False,
    timeout: TimeoutOption = 300.0,
) -> None:
    """Replace a model's traffic as a whole: grow a canary, promote it (--stable), or drop it."""
    change = model_pb2.ModelTraffic(
        stable_version=stable, canary_version=canary, canary_percent=percent, shadow_version=shadow
    )
    request = pb.SetModelTrafficRequest(name=_name(model), traffic=change)
    print(traffic_line(_call(gateway, tls, api_key, timeout, "SetModelTraffic", request)))


@models_app.command("rollback")
def rollback(
    model: ModelArgument,
    *,
    version: Annotated[
        str, typer.Option(help="The version to roll back to; default: the previous stable.")
    ] = "",
    api_key: ApiKeyOption,
    gateway: GatewayOption = _GATEWAY,
    tls: TlsOption = False,
    timeout: TimeoutOption = 300.0,
) -> None:
    """Serve the previous stable version (or --version) to everyone; clears the canary and the shadow."""
    request = pb.RollbackModelRequest(name=_name(model), version=version)
    print(traffic_line(_call(gateway, tls, api_key, timeout, "RollbackModel", request)))
