"""UploadModelVersion, GetModel and ListModels over real sockets, through the gateway: packages of real ONNX
graphs pushed in 1 MiB chunks, registered once, read back, refused for each malformed stream and each broken
package with the violation naming the file, and invisible to other tenants."""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from tests.conftest import API_KEY, INTERNAL_TOKEN, common_settings, start_server
from tests.decision.ml_package import ml_package
from tests.decision.model_packages import (
    build_package,
    edit_manifest,
    feature_spec,
    read_manifest,
    replace_file,
    stamp,
)
from tests.rpc_errors import reason, violations
from wayline.api.v1 import annotations_pb2
from wayline.common.server import Server
from wayline.decision.v1 import decision_service_pb2 as pb
from wayline.decision.v1 import decision_service_pb2_grpc as pb_grpc
from wayline.decision.v1 import model_package_pb2 as mp
from wayline.decision.v1 import model_pb2
from wayline.event.v1 import event_pb2
from wayline.gateway.v1 import api_key_pb2
from wayline.gateway.v1 import gateway_service_pb2 as admin_pb
from wayline.gateway.v1 import gateway_service_pb2_grpc as admin_grpc
from wayline.journeys.v1 import analytics_pb2, condition_pb2, feature_pb2, lifecycle_stage_pb2
from wayline_cli.models import package_files, upload_requests
from wayline_decision.service import decision_service
from wayline_decision.settings import DecisionSettings

Auth = tuple[tuple[str, str], ...]
OPERATOR: Auth = (("authorization", f"Bearer {API_KEY}"),)
Request = pb.UploadModelVersionRequest


def header(model_id: str, version: str, total_bytes: int = 0) -> Request:
    return Request(header=pb.ModelPackageHeader(model_id=model_id, version=version, total_bytes=total_bytes))


def chunk(file: str, data: bytes) -> Request:
    return Request(chunk=pb.ModelPackageChunk(file=file, data=data))


def requests_of(package: Path) -> list[Request]:
    return list(upload_requests(*package_files(package)))


def upload(
    channel: grpc.Channel, requests: list[Request], auth: Auth = OPERATOR
) -> pb.UploadModelVersionResponse:
    return pb_grpc.DecisionServiceStub(channel).UploadModelVersion(iter(requests), metadata=auth, timeout=60)


def refused(channel: grpc.Channel, requests: list[Request], auth: Auth = OPERATOR) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as error:
        upload(channel, requests, auth)
    return error.value


@pytest.fixture
def model_id() -> str:
    """A model id no other test uses (the session's decision server is shared)."""
    return f"nbo-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def package(tmp_path: Path, model_id: str) -> Path:
    return build_package(tmp_path / "package", model_id=model_id, version="1.0.0")


def test_push_then_get_and_list_the_model(
    gateway_channel: grpc.Channel, tmp_path: Path, model_id: str
) -> None:
    # A model card over 2 MiB: whole 1 MiB chunks through the gateway's pass-through.
    package = build_package(tmp_path / "p", model_id=model_id, version="2024-06-01.1", card="x" * 2_500_000)
    requests = requests_of(package)
    assert max(len(r.chunk.data) for r in requests) == 1024 * 1024
    response = upload(gateway_channel, requests)
    assert response.created
    version = response.model_version
    assert version.name == f"models/{model_id}/versions/2024-06-01.1"
    assert version.state == model_pb2.MODEL_VERSION_STATE_REGISTERED
    assert version.sha256 == hashlib.sha256((package / "response.onnx").read_bytes()).hexdigest()
    assert [f.name for f in version.feature_spec.features] == [
        "orders_30d",
        "revenue_90d",
        "days_since_last_visit",
    ]
    assert list(version.action_ids) == ["none", "discount_10", "free_shipping"]
    assert list(version.channels) == [event_pb2.CHANNEL_WEB, event_pb2.CHANNEL_EMAIL]
    assert list(version.placements) == ["home_hero"]
    assert dict(version.metrics) == {"auc": 0.81, "policy_value_snips": 3.2}
    assert dict(version.labels) == {"revision": "test"}
    assert version.register_time.seconds > 0
    assert version.artifact_uri.endswith(f"/{model_id}/2024-06-01.1")

    decision = pb_grpc.DecisionServiceStub(gateway_channel)
    model = decision.GetModel(
        pb.GetModelRequest(name=f"models/{model_id}"), metadata=OPERATOR, timeout=10
    ).model
    assert model.name == f"models/{model_id}"
    assert list(model.versions) == [version]
    listed = decision.ListModels(pb.ListModelsRequest(page_size=1000), metadata=OPERATOR, timeout=10)
    assert model in listed.models
    assert listed.total_size >= 1


def test_versions_newest_first_and_models_paged_by_name(
    gateway_channel: grpc.Channel, tmp_path: Path
) -> None:
    tenant_key = _tenant_key(gateway_channel, annotations_pb2.SCOPE_ADMIN, annotations_pb2.SCOPE_READ)
    for model_id, version in (("alpha", "1"), ("beta", "1"), ("alpha", "2"), ("gamma", "1")):
        pushed = upload(
            gateway_channel,
            requests_of(
                build_package(tmp_path / f"{model_id}-{version}", model_id=model_id, version=version)
            ),
            tenant_key,
        )
        assert pushed.created
    decision = pb_grpc.DecisionServiceStub(gateway_channel)
    alpha = decision.GetModel(pb.GetModelRequest(name="models/alpha"), metadata=tenant_key, timeout=10).model
    assert [v.version for v in alpha.versions] == ["2", "1"]
    names, token = [], ""
    while True:
        page = decision.ListModels(
            pb.ListModelsRequest(page_size=2, page_token=token), metadata=tenant_key, timeout=10
        )
        assert page.total_size == 3
        names += [m.name for m in page.models]
        token = page.next_page_token
        if not token:
            break
    assert names == ["models/alpha", "models/beta", "models/gamma"]
    with pytest.raises(grpc.RpcError) as bad_token:
        decision.ListModels(pb.ListModelsRequest(page_token="garbage!"), metadata=tenant_key, timeout=10)
    assert bad_token.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_pushing_the_same_package_again_changes_nothing(gateway_channel: grpc.Channel, package: Path) -> None:
    first = upload(gateway_channel, requests_of(package))
    again = upload(gateway_channel, requests_of(package))
    assert (first.created, again.created) == (True, False)
    assert again.model_version == first.model_version


def test_the_same_version_with_other_content_already_exists(
    gateway_channel: grpc.Channel, package: Path, tmp_path: Path, model_id: str
) -> None:
    upload(gateway_channel, requests_of(package))
    changed = build_package(tmp_path / "changed", model_id=model_id, version="1.0.0", card=" Changed.")
    error = refused(gateway_channel, requests_of(changed))
    assert (error.code(), reason(error)) == (grpc.StatusCode.ALREADY_EXISTS, "MODEL_VERSION_EXISTS")


def _malformed_streams(package: Path) -> dict[str, tuple[list[Request], str]]:
    """Name → (a stream breaking the protocol one way, the violation's field)."""
    good = requests_of(package)
    head, chunks = good[0], good[1:]
    manifest = next(r for r in chunks if r.chunk.file == "manifest.json")
    card = chunk("model_card.md", b"# card")
    return {
        "no header first": (chunks, "header"),
        "empty stream": ([], "header"),
        "a second header": ([head, manifest, head, *chunks[1:]], "header"),
        "a file in a directory": ([head, chunk("../escape.onnx", b"x")], "chunk.file"),
        "a hidden file": ([head, chunk(".hidden", b"x")], "chunk.file"),
        "a file sent twice": ([head, card, manifest, card], "chunk.file"),
        "an empty message": ([head, Request()], "content"),
        "a bad model id": ([header("Bad Id", "1"), *chunks], "header.model_id"),
        "a header naming another version": (
            [header(head.header.model_id, "9.9.9"), *chunks],
            "header.version",
        ),
        "a chunk over 1 MiB": ([head, chunk("model_card.md", b"x" * (1024 * 1024 + 1))], "chunk.data"),
    }


def test_each_malformed_stream_is_refused(gateway_channel: grpc.Channel, package: Path) -> None:
    for name, (requests, field) in _malformed_streams(package).items():
        error = refused(gateway_channel, requests)
        assert (error.code(), reason(error)) == (grpc.StatusCode.INVALID_ARGUMENT, "UPLOAD_MALFORMED"), name
        assert list(violations(error)) == [field], name
    listed = pb_grpc.DecisionServiceStub(gateway_channel).ListModels(
        pb.ListModelsRequest(page_size=1000), metadata=OPERATOR, timeout=10
    )
    assert f"models/{package_files(package)[0]}" not in [m.name for m in listed.models]


def _broken(package: Path, how: str) -> str:
    """Break `package` one way; the field the violation must name."""
    if how == "corrupted file":
        data = bytearray((package / "response.onnx").read_bytes())
        data[100] ^= 0xFF
        replace_file(package, "response.onnx", bytes(data), relist=False)
        return "response.onnx"
    if how == "features reordered":
        edit_manifest(package, lambda m: m.feature_spec.features.reverse())
        return "response.onnx:metadata.wayline.feature_spec"
    if how == "wrong input width":

        def narrow(m: mp.ModelManifest) -> None:
            del m.feature_spec.features[-1]
            for model in m.models:
                model.input.shape[:] = [-1, 5]

        edit_manifest(package, narrow)
        return "response.onnx:input"
    parsed = json.loads((package / "value_parity.json").read_text())
    parsed["expected"][0][0] += 5.0
    replace_file(package, "value_parity.json", json.dumps(parsed).encode())
    return "value.onnx:parity"


@pytest.mark.parametrize(
    "how", ["corrupted file", "features reordered", "wrong input width", "failing parity"]
)
def test_an_invalid_package_is_refused_naming_the_file(
    gateway_channel: grpc.Channel, package: Path, how: str
) -> None:
    field = _broken(package, how)
    error = refused(gateway_channel, requests_of(package))
    assert (error.code(), reason(error)) == (grpc.StatusCode.INVALID_ARGUMENT, "PACKAGE_INVALID")
    assert field in violations(error), violations(error)
    with pytest.raises(grpc.RpcError) as missing:
        pb_grpc.DecisionServiceStub(gateway_channel).GetModel(
            pb.GetModelRequest(name=f"models/{package_files(package)[0]}"), metadata=OPERATOR, timeout=10
        )
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


def test_a_package_declared_too_large_is_refused_at_the_header(
    gateway_channel: grpc.Channel, package: Path
) -> None:
    requests = requests_of(package)
    requests[0].header.total_bytes = 10 * 1024**3
    error = refused(gateway_channel, requests)
    assert (error.code(), reason(error)) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "PACKAGE_TOO_LARGE")


@pytest.fixture(scope="module")
def small_decision(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A decision service that takes packages up to 64 KiB."""
    settings = DecisionSettings(
        **common_settings(tmp_path_factory.mktemp("small-decision")),  # type: ignore[arg-type]
        max_package_bytes=64 * 1024,
    )
    server = start_server(decision_service(settings), settings)
    yield server
    server.stop(0)


def test_bytes_past_the_limit_are_refused_as_they_stream(small_decision: Server, package: Path) -> None:
    """The header says nothing of the size; the limit is enforced on the bytes as they arrive."""
    requests = requests_of(package)
    requests[0].header.total_bytes = 0
    internal: Auth = (("x-wayline-internal-token", INTERNAL_TOKEN), ("x-wayline-tenant", "acme"))
    with grpc.insecure_channel(small_decision.address) as channel:
        error = refused(channel, [*requests, chunk("padding.bin", b"x" * 1024 * 1024)], internal)
    assert (error.code(), reason(error)) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "PACKAGE_TOO_LARGE")
    registry = small_decision.settings.data_dir / "decision" / "registry" / "acme"
    assert [p.name for p in (registry / package_files(package)[0]).iterdir()] == []  # no staging left


def _tenant_key(channel: grpc.Channel, *scopes: annotations_pb2.Scope.ValueType) -> Auth:
    """A key with `scopes` of a new tenant, made by the operator."""
    admin = admin_grpc.AdminServiceStub(channel)
    tenant = admin.CreateTenant(
        admin_pb.CreateTenantRequest(tenant_id=f"models-{uuid.uuid4().hex[:6]}"),
        metadata=OPERATOR,
        timeout=10,
    ).tenant
    created = admin.CreateApiKey(
        admin_pb.CreateApiKeyRequest(parent=tenant.name, api_key=api_key_pb2.ApiKey(scopes=list(scopes))),
        metadata=OPERATOR,
        timeout=10,
    )
    return (("authorization", f"Bearer {created.secret}"),)


def test_another_tenant_neither_sees_nor_gets_the_model(
    gateway_channel: grpc.Channel, package: Path, model_id: str
) -> None:
    upload(gateway_channel, requests_of(package))
    other = _tenant_key(gateway_channel, annotations_pb2.SCOPE_READ, annotations_pb2.SCOPE_ADMIN)
    decision = pb_grpc.DecisionServiceStub(gateway_channel)
    listed = decision.ListModels(pb.ListModelsRequest(), metadata=other, timeout=10)
    assert (list(listed.models), listed.total_size) == ([], 0)
    with pytest.raises(grpc.RpcError) as hidden:
        decision.GetModel(pb.GetModelRequest(name=f"models/{model_id}"), metadata=other, timeout=10)
    assert (hidden.value.code(), reason(hidden.value)) == (grpc.StatusCode.NOT_FOUND, "MODEL_NOT_FOUND")
    # Its own push of the same id and version is its own model, not the first tenant's.
    assert upload(gateway_channel, requests_of(package), other).created


def test_pushing_needs_the_admin_scope(gateway_channel: grpc.Channel, package: Path) -> None:
    reader = _tenant_key(gateway_channel, annotations_pb2.SCOPE_READ, annotations_pb2.SCOPE_WRITE)
    error = refused(gateway_channel, requests_of(package), reader)
    assert (error.code(), reason(error)) == (grpc.StatusCode.PERMISSION_DENIED, "SCOPE_MISSING")


def test_a_malformed_model_name_is_invalid(gateway_channel: grpc.Channel) -> None:
    decision = pb_grpc.DecisionServiceStub(gateway_channel)
    with pytest.raises(grpc.RpcError) as error:
        decision.GetModel(pb.GetModelRequest(name="next-best-offer"), metadata=OPERATOR, timeout=10)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert list(violations(error.value)) == ["name"]


@pytest.mark.parametrize("same_content", [True, False])
def test_concurrent_pushes_of_one_version_register_it_once(
    gateway_channel: grpc.Channel, tmp_path: Path, model_id: str, same_content: bool
) -> None:
    """Both streams end together, so both pushes validate and race to register: exactly one makes the
    version; the other gets the idempotent answer, or MODEL_VERSION_EXISTS when its content differs."""
    first = build_package(tmp_path / "first", model_id=model_id)
    second = first if same_content else build_package(tmp_path / "second", model_id=model_id, card=" Other.")
    together = threading.Barrier(2)

    def ending_together(requests: list[Request]) -> Iterator[Request]:
        yield from requests[:-1]
        together.wait(timeout=30)
        yield requests[-1]

    answers: list[pb.UploadModelVersionResponse | grpc.RpcError] = []

    def push(package: Path) -> None:
        stub = pb_grpc.DecisionServiceStub(gateway_channel)
        try:
            answers.append(
                stub.UploadModelVersion(ending_together(requests_of(package)), metadata=OPERATOR, timeout=60)
            )
        except grpc.RpcError as error:
            answers.append(error)

    threads = [threading.Thread(target=push, args=(package,)) for package in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    made = [a for a in answers if isinstance(a, pb.UploadModelVersionResponse) and a.created]
    assert len(made) == 1, answers
    (other,) = [a for a in answers if a is not made[0]]
    if same_content:
        assert isinstance(other, pb.UploadModelVersionResponse)
        assert (other.created, other.model_version) == (False, made[0].model_version)
    else:
        assert isinstance(other, grpc.RpcError)
        assert (other.code(), reason(other)) == (grpc.StatusCode.ALREADY_EXISTS, "MODEL_VERSION_EXISTS")


def test_an_upload_cut_short_leaves_nothing_behind(small_decision: Server, tmp_path: Path) -> None:
    package = build_package(tmp_path / "p", model_id="cut-short")
    requests = requests_of(package)
    sent_some = threading.Event()

    def then_stall() -> Iterator[Request]:
        yield from requests[:2]
        sent_some.set()
        threading.Event().wait(30)  # never sends the rest

    internal: Auth = (("x-wayline-internal-token", INTERNAL_TOKEN), ("x-wayline-tenant", "acme"))
    model_dir = small_decision.settings.data_dir / "decision" / "registry" / "acme" / "cut-short"
    with grpc.insecure_channel(small_decision.address) as channel:
        call = pb_grpc.DecisionServiceStub(channel).UploadModelVersion.future(
            then_stall(), metadata=internal, timeout=60
        )
        assert sent_some.wait(10)
        deadline = time.monotonic() + 10
        while not any(model_dir.glob(".staging-*")):  # the service is writing it
            assert time.monotonic() < deadline
            time.sleep(0.02)
        call.cancel()  # type: ignore[no-untyped-call]  # grpc-stubs leave it untyped
    deadline = time.monotonic() + 10
    while any(model_dir.iterdir()):
        assert time.monotonic() < deadline, list(model_dir.iterdir())
        time.sleep(0.05)


def _writable_copy(package: Path, dest: Path) -> Path:
    dest.mkdir()
    for file in package.iterdir():
        shutil.copyfile(file, dest / file.name)  # contents only: the published package is read-only
    return dest


def test_a_package_written_by_the_ml_pipeline_is_registered(
    gateway_channel: grpc.Channel, tmp_path: Path
) -> None:
    model_id = f"ml-{uuid.uuid4().hex[:6]}"
    package = ml_package(tmp_path / "package", model_id=model_id, version="2026.1")
    manifest = read_manifest(package)

    pushed = upload(gateway_channel, requests_of(package))
    assert pushed.created
    got = pb_grpc.DecisionServiceStub(gateway_channel).GetModel(
        pb.GetModelRequest(name=f"models/{model_id}"), metadata=OPERATOR, timeout=10
    )
    (version,) = got.model.versions
    assert version == pushed.model_version
    assert version.feature_spec == manifest.feature_spec
    assert list(version.action_ids) == list(manifest.action_ids)
    assert dict(version.metrics) == dict(manifest.metrics)
    assert version.sha256 == manifest.files["response.onnx"]

    # The same package with its features reordered in the manifest no longer matches its graphs.
    broken = _writable_copy(package, tmp_path / "broken")

    def reorder(m: mp.ModelManifest) -> None:
        m.feature_spec.features.reverse()
        m.version = "2026.2"

    edit_manifest(broken, reorder)
    error = refused(gateway_channel, requests_of(broken))
    assert reason(error) == "PACKAGE_INVALID"
    assert {"response.onnx:metadata.wayline.feature_spec", "value.onnx:metadata.wayline.feature_spec"} <= set(
        violations(error)
    )


_FILTERS = "manifest.json:feature_spec.features[0].events.property_filters[0]"


def _bad_spec(how: str) -> tuple[feature_pb2.FeatureSpec, str]:
    """The test packages' feature spec with one thing the spec compiler refuses, though the manifest's own
    checks and the kit's typing rules pass it; the field the violation must name."""
    spec = feature_spec()
    feature = spec.features[0]  # orders_30d, a COUNT
    where = _FILTERS
    if how == "regex RE2 refuses":
        feature.events.property_filters.add(
            property="properties.sku", operator=analytics_pb2.FILTER_OPERATOR_MATCHES_REGEX
        ).values.add(string_value="(?=a)b")  # a look-ahead: Python's re compiles it, RE2 does not
        where += ".values[0]"
    elif how == "unknown path":
        feature.events.property_filters.add(
            property="nowhere", operator=analytics_pb2.FILTER_OPERATOR_EQUALS
        ).values.add(string_value="x")
        where += ".property"
    elif how == "ordering bound not a number or a time":
        feature.events.property_filters.add(
            property="properties.total", operator=analytics_pb2.FILTER_OPERATOR_GREATER_THAN
        ).values.add(string_value="soon")
        where += ".values[0]"
    elif how == "IS_SET with a value":
        feature.events.property_filters.add(
            property="properties.total", operator=analytics_pb2.FILTER_OPERATOR_IS_SET
        ).values.add(number_value=1)
        where += ".values"
    else:  # a lifecycle model of more conditions than condition.proto allows
        feature.Clear()
        feature.name = "orders_30d"
        feature.aggregation = feature_pb2.FEATURE_AGGREGATION_LIFECYCLE_STAGE
        stage = feature.lifecycle_model.stages.add(stage=lifecycle_stage_pb2.LIFECYCLE_STAGE_ENGAGEMENT)
        for _ in range(101):
            stage.condition.group.conditions.add().event_count.event.event_name = "order_completed"
        stage.condition.group.operator = condition_pb2.LOGICAL_OPERATOR_OR
        where = "manifest.json:feature_spec.features[0].lifecycle_model.stages[0].condition"
    return spec, where


@pytest.mark.parametrize(
    "how",
    [
        "regex RE2 refuses",
        "unknown path",
        "ordering bound not a number or a time",
        "IS_SET with a value",
        "too many conditions",
    ],
)
def test_a_spec_the_compiler_refuses_is_refused_at_upload(
    gateway_channel: grpc.Channel, tmp_path: Path, model_id: str, how: str
) -> None:
    # A package whole and consistent with itself (its graphs stamped with the same spec): only compiling
    # the spec, as DeployModel would, finds what is wrong.
    spec, field = _bad_spec(how)
    package = build_package(tmp_path / "package", model_id=model_id, version="1.0.0", spec=spec)
    error = refused(gateway_channel, requests_of(package))
    assert (error.code(), reason(error)) == (grpc.StatusCode.INVALID_ARGUMENT, "PACKAGE_INVALID")
    assert field in violations(error), violations(error)
    with pytest.raises(grpc.RpcError) as missing:
        pb_grpc.DecisionServiceStub(gateway_channel).GetModel(
            pb.GetModelRequest(name=f"models/{model_id}"), metadata=OPERATOR, timeout=10
        )
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


def test_an_ml_package_with_a_filter_the_compiler_refuses_is_refused(
    gateway_channel: grpc.Channel, tmp_path: Path
) -> None:
    model_id = f"ml-{uuid.uuid4().hex[:6]}"
    package = _writable_copy(ml_package(tmp_path / "ml", model_id=model_id, version="2026.1"), tmp_path / "p")
    manifest = read_manifest(package)
    # Its features are person properties; one becomes a count of events with a back-reference filter.
    index, feature = next(
        (i, f)
        for i, f in enumerate(manifest.feature_spec.features)
        if f.value_type == feature_pb2.FEATURE_VALUE_TYPE_FLOAT
    )
    feature.aggregation = feature_pb2.FEATURE_AGGREGATION_COUNT
    feature.ClearField("property")
    feature.events.property_filters.add(
        property="properties.sku", operator=analytics_pb2.FILTER_OPERATOR_MATCHES_REGEX
    ).values.add(string_value="(a)\\1")  # a back-reference: RE2 refuses it
    edit_manifest(package, lambda m: m.feature_spec.CopyFrom(manifest.feature_spec))
    for file in ("response.onnx", "value.onnx"):  # the graphs carry the same spec: consistent
        replace_file(
            package,
            file,
            stamp((package / file).read_bytes(), manifest.feature_spec, tuple(manifest.action_ids)),
        )
    error = refused(gateway_channel, requests_of(package))
    assert (error.code(), reason(error)) == (grpc.StatusCode.INVALID_ARGUMENT, "PACKAGE_INVALID")
    field = f"manifest.json:feature_spec.features[{index}].events.property_filters[0].values[0]"
    assert field in violations(error), violations(error)
