"""DecisionService messages ⇄ the model registry's types."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from wayline.common.errors import FieldViolation, InvalidArgument
from wayline.common.paging import decode_page_token, encode_page_token, invalid_page_token, page_size
from wayline.common.timestamps import to_timestamp
from wayline.decision.v1 import decision_service_pb2 as pb
from wayline.decision.v1 import model_package_pb2, model_pb2
from wayline_decision.catalog import ModelEntry, ModelPage
from wayline_decision.judge_converters import evaluation_message, judgement_message
from wayline_decision.registry import RegisteredVersion
from wayline_decision.serving.lifecycle import VersionState
from wayline_decision.serving.traffic import Traffic
from wayline_decision.uploads import Chunk, Header

__all__ = [
    "list_request",
    "list_response",
    "model_id_of",
    "model_message",
    "traffic_message",
    "upload_parts",
    "version_message",
]


def upload_parts(requests: Iterable[pb.UploadModelVersionRequest]) -> Iterator[Header | Chunk | None]:
    """The stream's messages as headers and chunks (None for a message with neither), read lazily."""
    for request in requests:
        content = request.WhichOneof("content")
        if content == "header":
            header = request.header
            yield Header(header.model_id, header.version, header.total_bytes)
        elif content == "chunk":
            yield Chunk(request.chunk.file, request.chunk.data)
        else:
            yield None


def response_graph_sha256(manifest: model_package_pb2.ModelManifest) -> str:
    """The SHA-256 of the package's MODEL_ROLE_RESPONSE graph, the one ModelVersion.sha256 names."""
    for model in manifest.models:
        if model.role == model_package_pb2.MODEL_ROLE_RESPONSE:
            return manifest.files.get(model.file, "")
    return ""


_STATES = {
    VersionState.REGISTERED: model_pb2.MODEL_VERSION_STATE_REGISTERED,
    VersionState.LOADED: model_pb2.MODEL_VERSION_STATE_LOADED,
    VersionState.FAILED: model_pb2.MODEL_VERSION_STATE_FAILED,
}


def version_message(
    version: RegisteredVersion, state: VersionState = VersionState.REGISTERED, error_message: str = ""
) -> model_pb2.ModelVersion:
    manifest = version.manifest
    return model_pb2.ModelVersion(
        name=version.package.name,
        version=version.package.version,
        state=_STATES[state],
        error_message=error_message,
        artifact_uri=version.location,
        sha256=response_graph_sha256(manifest),
        feature_spec=manifest.feature_spec,
        action_ids=manifest.action_ids,
        channels=manifest.channels,
        placements=manifest.placements,
        metrics=manifest.metrics,
        labels=manifest.labels,
        register_time=to_timestamp(version.register_time),
    )


def traffic_message(traffic: Traffic) -> model_pb2.ModelTraffic:
    return model_pb2.ModelTraffic(
        stable_version=traffic.stable_version,
        canary_version=traffic.canary_version,
        canary_percent=traffic.canary_percent,
        shadow_version=traffic.shadow_version,
        judgement=judgement_message(traffic.judgement) if traffic.judgement is not None else None,
    )


def model_message(entry: ModelEntry) -> model_pb2.Model:
    model = model_pb2.Model(
        name=f"models/{entry.model_id}",
        versions=[version_message(v.version, v.state, v.error_message) for v in entry.versions],
    )
    traffic = entry.traffic
    if traffic is not None and traffic.deployed:
        model.traffic.CopyFrom(traffic_message(traffic))
        model.previous_stable_version = traffic.previous_stable_version
        model.update_time.FromMicroseconds(traffic.update_time_us)
    if traffic is not None and traffic.evaluation is not None:
        model.canary_evaluation.CopyFrom(evaluation_message(traffic.evaluation))
    return model


def model_id_of(name: str) -> str:
    """`models/{model_id}` → the id; INVALID_ARGUMENT for anything else."""
    model_id = name.removeprefix("models/")
    if not name.startswith("models/") or not model_id or "/" in model_id:
        raise InvalidArgument(
            "name must be models/{model_id}", [FieldViolation("name", f"{name!r} is not models/{{model_id}}")]
        )
    return model_id


def list_request(request: pb.ListModelsRequest) -> tuple[str, int]:
    """(the model id to list after, the page size)."""
    limit = page_size(request.page_size, default=50, maximum=1_000)
    if not request.page_token:
        return "", limit
    after = decode_page_token(request.page_token, "ListModels").get("after")
    if not isinstance(after, str):
        raise invalid_page_token("ListModels")
    return after, limit


def list_response(page: ModelPage) -> pb.ListModelsResponse:
    token = encode_page_token({"after": page.models[-1].model_id}) if page.more and page.models else ""
    return pb.ListModelsResponse(
        models=[model_message(entry) for entry in page.models], next_page_token=token, total_size=page.total
    )
