"""`wayline flows apply|list|get|publish|pause|archive`: the orchestrator's flow definitions, through the
gateway (`stats` and `simulate` are in flow_stats.py).

`apply FILE` reads YAML documents (one or several, separated by `---`), each the proto3 JSON form of the
contract's `Flow` with its `name` (`flows/{flow_id}`), and makes each flow's draft match it: a missing flow
is created, a different draft replaced (display name, description and definition, conditional on the etag
just read), an equal one left alone, so applying a file twice changes nothing. With `--publish`, each flow is
then published. `get` prints a flow in the same form (output-only fields as comments), so `get > file`, an
edit, and `apply file` round-trip. One line per flow goes to standard output, errors to standard error.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from google.protobuf.field_mask_pb2 import FieldMask
from rich.table import Table

from wayline.orchestrator.v1 import flow_pb2
from wayline.orchestrator.v1 import orchestrator_service_pb2 as pb
from wayline.orchestrator.v1 import orchestrator_service_pb2_grpc as pb_grpc
from wayline_cli.apply import NamedDocuments, apply_each, create_or_update, parse, print_yaml, read_or_exit
from wayline_cli.gateway import (
    GATEWAY,
    INT32_MAX,
    Auth,
    GatewayOption,
    TlsOption,
    api_key_option,
    bearer,
    call,
    out,
    pages,
)

__all__ = ["ApiKeyOption", "FlowFileError", "flows_app", "read_flows"]

_OUTPUT_ONLY = (
    "state",
    "version",
    "published_version",
    "has_unpublished_changes",
    "create_time",
    "update_time",
    "publish_time",
    "etag",
)
_WRITABLE = ("display_name", "description", "definition")
# What PublishFlow, PauseFlow and ArchiveFlow answer: the flow as it now is.
_FlowAnswer = pb.PublishFlowResponse | pb.PauseFlowResponse | pb.ArchiveFlowResponse

flows_app = typer.Typer(
    help="Apply, list, read, publish, pause and archive flows; count and simulate them.", no_args_is_help=True
)

ApiKeyOption = Annotated[
    str,
    api_key_option("An API key: admin scope to change flows, read to list or get."),
]


class FlowFileError(ValueError):
    """A file that is not YAML documents of flows with their names (the service checks the definitions)."""


_FILE = NamedDocuments("Flow", "flows", _OUTPUT_ONLY, FlowFileError)


def read_flows(path: Path) -> list[flow_pb2.Flow]:
    """The file's flows, in order, each with its `name`."""
    return _FILE.read(path, lambda where, document: parse(document, flow_pb2.Flow(), where, FlowFileError))


def _apply_one(stub: pb_grpc.OrchestratorServiceStub, auth: Auth, wanted: flow_pb2.Flow) -> str:
    def create() -> None:
        request = pb.CreateFlowRequest(flow_id=wanted.name.removeprefix("flows/"), flow=wanted)
        stub.CreateFlow(request, metadata=auth, timeout=10)

    def update(current: flow_pb2.Flow) -> None:
        change = flow_pb2.Flow()
        change.CopyFrom(wanted)
        change.etag = current.etag
        request = pb.UpdateFlowRequest(flow=change, update_mask=FieldMask(paths=list(_WRITABLE)))
        stub.UpdateFlow(request, metadata=auth, timeout=10)

    return create_or_update(
        lambda: stub.GetFlow(pb.GetFlowRequest(name=wanted.name), metadata=auth, timeout=10).flow,
        create,
        lambda current: all(getattr(current, f) == getattr(wanted, f) for f in _WRITABLE),
        update,
    )


@flows_app.command("apply")
def apply(
    file: Annotated[
        Path, typer.Argument(help="YAML documents, each a Flow (proto3 JSON form) with its name.")
    ],
    *,
    publish: Annotated[bool, typer.Option(help="Publish each flow after applying it.")] = False,
    api_key: ApiKeyOption,
    gateway: GatewayOption = GATEWAY,
    tls: TlsOption = False,
) -> None:
    """Create or update the file's flows so that their drafts match it (idempotent)."""
    flows = read_or_exit(read_flows, file, FlowFileError)
    auth = bearer(api_key)

    def publish_it(stub: pb_grpc.OrchestratorServiceStub, wanted: flow_pb2.Flow) -> None:
        done = stub.PublishFlow(pb.PublishFlowRequest(name=wanted.name), metadata=auth, timeout=10)
        out.print(f"published {wanted.name} version {done.flow.published_version}")

    apply_each(
        flows,
        pb_grpc.OrchestratorServiceStub,
        lambda stub, wanted: _apply_one(stub, auth, wanted),
        lambda wanted: wanted.name,
        gateway=gateway,
        tls=tls,
        then=publish_it if publish else None,
    )


def _state(flow: flow_pb2.Flow) -> str:
    return flow_pb2.FlowState.Name(flow.state).removeprefix("FLOW_STATE_").lower()


def _trigger(definition: flow_pb2.FlowDefinition) -> str:
    kind = definition.trigger.WhichOneof("trigger")
    if kind == "event":
        return f"event {definition.trigger.event.event.event_name}"
    if kind == "segment_entry":
        return f"enters {definition.trigger.segment_entry.segment}"
    if kind == "schedule":
        schedule = definition.trigger.schedule
        return f"schedule {schedule.cron or schedule.interval.ToJsonString()} over {schedule.segment}"
    return "none"


@flows_app.command("list")
def list_flows(
    *,
    state: Annotated[str, typer.Option(help="draft, published, paused, archived or all.")] = "all",
    api_key: ApiKeyOption,
    gateway: GatewayOption = GATEWAY,
    tls: TlsOption = False,
) -> None:
    """List the flows by id: state, published version, unpublished changes, trigger, steps, priority."""
    states = {
        "all": 0,
        **{
            s: flow_pb2.FlowState.Value(f"FLOW_STATE_{s.upper()}")
            for s in ("draft", "published", "paused", "archived")
        },
    }
    if state not in states:
        raise typer.BadParameter("choose draft, published, paused, archived or all", param_hint="--state")
    request = pb.ListFlowsRequest(page_size=500, state=states[state])  # type: ignore[arg-type]
    table = Table("flow", "name", "state", "version", "changes", "trigger", "steps", "priority")

    def fill(stub: pb_grpc.OrchestratorServiceStub, auth: Auth) -> None:
        listed = pages(lambda r: stub.ListFlows(r, metadata=auth, timeout=10), request, lambda p: p.flows)
        for flow in listed:
            table.add_row(
                flow.name.removeprefix("flows/"),
                flow.display_name,
                _state(flow),
                str(flow.published_version or "-"),
                "yes" if flow.has_unpublished_changes else "no",
                _trigger(flow.definition),
                str(len(flow.definition.steps)),
                str(flow.definition.priority),
            )

    call(pb_grpc.OrchestratorServiceStub, fill, gateway=gateway, tls=tls, api_key=api_key)
    out.print(table)


@flows_app.command("get")
def get(
    flow_id: Annotated[str, typer.Argument(help="The flow's id.")],
    *,
    version: Annotated[
        int, typer.Option(min=0, max=INT32_MAX, help="A published version; 0 means the draft.")
    ] = 0,
    api_key: ApiKeyOption,
    gateway: GatewayOption = GATEWAY,
    tls: TlsOption = False,
) -> None:
    """Print a flow as YAML (output-only fields as comments), as `apply` takes it."""
    name = f"flows/{flow_id}"
    request = pb.GetFlowRequest(name=name, version=version)
    found = call(
        pb_grpc.OrchestratorServiceStub,
        lambda stub, auth: stub.GetFlow(request, metadata=auth, timeout=10),
        what=name,
        gateway=gateway,
        tls=tls,
        api_key=api_key,
    )
    print_yaml(found.flow, _OUTPUT_ONLY)


def _change(
    flow_id: str,
    verb: str,
    rpc: Callable[[pb_grpc.OrchestratorServiceStub, str, Auth], _FlowAnswer],
    *,
    gateway: str,
    tls: bool,
    api_key: str,
) -> None:
    name = f"flows/{flow_id}"
    flow = call(
        pb_grpc.OrchestratorServiceStub,
        lambda stub, auth: rpc(stub, name, auth),
        what=name,
        gateway=gateway,
        tls=tls,
        api_key=api_key,
    ).flow
    out.print(f"{verb} {flow.name}: {_state(flow)}, version {flow.published_version}")


@flows_app.command("publish")
def publish_flow(
    flow_id: Annotated[str, typer.Argument(help="The flow's id.")],
    *,
    etag: Annotated[str, typer.Option(help="Publish only if the flow still has this etag.")] = "",
    api_key: ApiKeyOption,
    gateway: GatewayOption = GATEWAY,
    tls: TlsOption = False,
) -> None:
    """Freeze the draft as a new version (when it changed) and make the flow live."""
    _change(
        flow_id,
        "published",
        lambda stub, name, auth: stub.PublishFlow(
            pb.PublishFlowRequest(name=name, etag=etag), metadata=auth, timeout=10
        ),
        gateway=gateway,
        tls=tls,
        api_key=api_key,
    )


@flows_app.command("pause")
def pause_flow(
    flow_id: Annotated[str, typer.Argument(help="The flow's id.")],
    *,
    drain: Annotated[bool, typer.Option(help="Let enrolled persons finish instead of holding them.")] = False,
    api_key: ApiKeyOption,
    gateway: GatewayOption = GATEWAY,
    tls: TlsOption = False,
) -> None:
    """Stop new entries; enrolled persons are held (or drain with --drain)."""
    mode = pb.PAUSE_MODE_DRAIN if drain else pb.PAUSE_MODE_HOLD
    _change(
        flow_id,
        "paused",
        lambda stub, name, auth: stub.PauseFlow(
            pb.PauseFlowRequest(name=name, mode=mode), metadata=auth, timeout=10
        ),
        gateway=gateway,
        tls=tls,
        api_key=api_key,
    )


@flows_app.command("archive")
def archive_flow(
    flow_id: Annotated[str, typer.Argument(help="The flow's id.")],
    *,
    api_key: ApiKeyOption,
    gateway: GatewayOption = GATEWAY,
    tls: TlsOption = False,
) -> None:
    """End a flow for good: everyone exits, nobody enters, and it becomes read-only."""
    _change(
        flow_id,
        "archived",
        lambda stub, name, auth: stub.ArchiveFlow(
            pb.ArchiveFlowRequest(name=name), metadata=auth, timeout=10
        ),
        gateway=gateway,
        tls=tls,
        api_key=api_key,
    )
