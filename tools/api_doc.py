"""Write docs/api.md from the protos themselves (`--check`: fail when it is stale).

Every RPC of every service, with the scope a key needs, whether it is safe to retry, whether it is live
or still answers UNIMPLEMENTED, and the first sentence of its comment in the contract.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

from google.protobuf import descriptor_pb2
from grpc_tools import protoc

from tools.generated import PROTOS, ROOT, proto_sources, well_known_protos, write_or_check
from wayline.api.v1 import annotations_pb2
from wayline.common.registry import REGISTRY, SCOPE_NAMES
from wayline_decision.inference import InferenceServicer
from wayline_decision.servicer import DecisionServicer
from wayline_gateway.servicer import AdminServicer
from wayline_identity.servicer import IdentityServicer
from wayline_ingest.servicer import IngestServicer
from wayline_journeys.servicer import JourneyServicer
from wayline_orchestrator.servicer import OrchestratorServicer

DOC = ROOT / "docs" / "api.md"
SERVICE_FIELD, METHOD_FIELD = 6, 2  # FileDescriptorProto.service, ServiceDescriptorProto.method
LIVE = {
    "wayline.decision.v1.DecisionService": DecisionServicer,
    "inference.GRPCInferenceService": InferenceServicer,
    "wayline.gateway.v1.AdminService": AdminServicer,
    "wayline.identity.v1.IdentityService": IdentityServicer,
    "wayline.ingest.v1.IngestService": IngestServicer,
    "wayline.journeys.v1.JourneyService": JourneyServicer,
    "wayline.orchestrator.v1.OrchestratorService": OrchestratorServicer,
}
RETRY = {
    descriptor_pb2.MethodOptions.IDEMPOTENT: "idempotent",
    descriptor_pb2.MethodOptions.NO_SIDE_EFFECTS: "read-only",
}

INTRO = """# API

Generated from `protos/` by `make docs`; a test fails when this page is stale. The
contracts' own comments are the full reference (every field, every error); this page is the map.

## Calling conventions

- **Endpoint.** Callers talk to the gateway only (default `:{port}`). It routes every public RPC below by
  its full method name to the service that owns it; `internal` RPCs are service-to-service and not routed.
- **Authentication.** Send `authorization: Bearer <api key>` (or `x-api-key: <api key>`) metadata. The key
  decides the tenant; a tenant is never a request field. A key holds scopes (`read`, `write`, `admin`);
  each RPC needs the scope in the table. `public` RPCs (the inference probes, which reveal nothing) need no
  key, are answered before the service is ready, and pass no quota.
- **Deadlines.** Set one on every call. Without one the gateway gives 10 s; longer than 60 s is cut to 60 s
  (`WAYLINE_GATEWAY_DEFAULT_DEADLINE_SECONDS`, `..._MAX_DEADLINE_SECONDS`). The remaining deadline
  travels with every downstream call.
- **Errors.** gRPC status codes with `google.rpc` details in the trailers: always an `ErrorInfo` (domain
  `wayline.dev`, a machine-readable `reason`); INVALID_ARGUMENT adds `BadRequest` field violations with
  paths such as `events[3].identifiers[0].value` (the first ones, about 2.5 KB of them; the message counts
  those left out); UNAVAILABLE and RESOURCE_EXHAUSTED add `RetryInfo`; quota errors add `QuotaFailure`.
  INTERNAL messages carry a request id to quote. So that the trailers stay within gRPC's 8 KiB, a message
  is cut at about 1 KB and each text of a detail (an `ErrorInfo` metadata value naming what you sent) at
  200 bytes, ending in `…`.
- **Retries.** RPCs marked `idempotent` or `read-only` are safe to retry with the same request (events
  are deduplicated by `event_id`); retry UNAVAILABLE with backoff, honouring `RetryInfo`.
- **Paging.** List RPCs take `page_size` and `page_token` and return `next_page_token` (AIP-158); pass it
  back unchanged, an empty one means the last page. A page may hold fewer items than `page_size` when
  they are large: the timeline, dead letters, profiles, flows, actions and tracking plans end a page at
  about 3 MB, within the 4 MiB a gRPC client receives by default.
- **Tracing.** Send W3C `traceparent` metadata to join your trace; send `x-request-id` to choose the
  request id that every service logs.
"""


def _descriptor_set() -> descriptor_pb2.FileDescriptorSet:
    sources = proto_sources()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "api.pb"
        args = [
            "protoc",
            f"--proto_path={PROTOS}",
            f"--proto_path={well_known_protos()}",
            "--include_source_info",
            f"--descriptor_set_out={out}",
            *sources,
        ]
        if protoc.main(args) != 0:
            raise SystemExit("protoc failed")
        return descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())


def _first_sentence(comment: str) -> str:
    text = " ".join(comment.split())
    match = re.match(r"(.+?[.!?])(\s|$)", text)
    return (match.group(1) if match else text).replace("|", "\\|")


def render() -> str:
    lines = [INTRO.format(port=REGISTRY["gateway"].port)]
    for file in _descriptor_set().file:
        comments = {tuple(loc.path): loc.leading_comments for loc in file.source_code_info.location}
        for s_index, service in enumerate(file.service):
            full_name = f"{file.package}.{service.name}"
            servicer = LIVE.get(full_name)
            lines += [
                f"## {full_name}",
                "",
                _first_sentence(comments.get((SERVICE_FIELD, s_index), "")),
                "",
                "| RPC | scope | retry | status | what it does |",
                "|---|---|---|---|---|",
            ]
            for m_index, method in enumerate(service.method):
                scope = SCOPE_NAMES.get(method.options.Extensions[annotations_pb2.required_scope], "?")
                retry = RETRY.get(method.options.idempotency_level, "no")
                # Defined by the servicer or a mixin of ours, not inherited from the generated base.
                live = servicer is not None and any(
                    method.name in vars(cls)
                    for cls in servicer.__mro__
                    if not cls.__module__.endswith("_pb2_grpc")
                )
                streaming = (
                    ("stream " if method.client_streaming else "")
                    + "→"
                    + (" stream" if method.server_streaming else "")
                )
                name = f"`{method.name}`" + (f" ({streaming})" if streaming != "→" else "")
                summary = _first_sentence(comments.get((SERVICE_FIELD, s_index, METHOD_FIELD, m_index), ""))
                status = "live" if live else "planned"
                lines.append(f"| {name} | {scope} | {retry} | {status} | {summary} |")
            lines.append("")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail when docs/api.md is stale")
    return write_or_check(DOC, render(), check=parser.parse_args().check, command="make docs")


if __name__ == "__main__":
    sys.exit(main())
