"""DeployModel, SetModelTraffic and RollbackModel over real sockets through the gateway, with packages
written by wayline_ml: full, canary and shadow deployments, traffic changes, rollbacks, each refusal with
its status and reason, a damaged package refused while the live version keeps serving, and tenants kept
apart."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import grpc
import numpy as np
import pytest

from tests.decision.lifecycle_calls import (
    OPERATOR,
    damage,
    deploy,
    get_model,
    push,
    states,
    tenant_key,
)
from tests.decision.ml_package import ml_package
from tests.rpc_errors import reason, violations
from wayline.decision.v1 import decision_service_pb2 as pb
from wayline.decision.v1 import decision_service_pb2_grpc as pb_grpc
from wayline.decision.v1 import model_pb2
from wayline.inference.v2 import grpc_service_pb2 as v2
from wayline.inference.v2 import grpc_service_pb2_grpc as v2_grpc

CANARY, SHADOW = pb.DEPLOY_MODE_CANARY, pb.DEPLOY_MODE_SHADOW


@pytest.fixture
def model_id() -> str:
    return f"life-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def versions(gateway_channel: grpc.Channel, tmp_path: Path, model_id: str) -> dict[str, Path]:
    """Versions 1, 2 and 3 of the model pushed; version → its directory in the registry."""
    registered = {}
    for version in ("1", "2", "3"):
        pushed = push(gateway_channel, ml_package(tmp_path / version, model_id=model_id, version=version))
        registered[version] = Path(pushed.artifact_uri)
    return registered


def set_traffic(channel: grpc.Channel, model_id: str, traffic: model_pb2.ModelTraffic) -> model_pb2.Model:
    request = pb.SetModelTrafficRequest(name=f"models/{model_id}", traffic=traffic)
    return pb_grpc.DecisionServiceStub(channel).SetModelTraffic(request, metadata=OPERATOR, timeout=60).model


def rollback(channel: grpc.Channel, model_id: str, version: str = "") -> model_pb2.Model:
    request = pb.RollbackModelRequest(name=f"models/{model_id}", version=version)
    return pb_grpc.DecisionServiceStub(channel).RollbackModel(request, metadata=OPERATOR, timeout=60).model


def traffic(model: model_pb2.Model) -> tuple[str, str, int, str, str]:
    t = model.traffic
    return (
        t.stable_version,
        t.canary_version,
        t.canary_percent,
        t.shadow_version,
        model.previous_stable_version,
    )


def infer(channel: grpc.Channel, model_id: str, version: str = "") -> v2.ModelInferResponse:
    """One V2 call on the model's response graph: it answers from the version actually loaded."""
    stub = v2_grpc.GRPCInferenceServiceStub(channel)
    meta = stub.ModelMetadata(
        v2.ModelMetadataRequest(name=model_id, version=version), metadata=OPERATOR, timeout=10
    )
    width = meta.inputs[0].shape[1]
    request = v2.ModelInferRequest(model_name=model_id, model_version=version)
    request.inputs.add(name=meta.inputs[0].name, datatype="FP32", shape=[1, width])
    request.raw_input_contents.append(np.zeros((1, width), dtype="<f4").tobytes())
    return stub.ModelInfer(request, metadata=OPERATOR, timeout=10)


def test_deploy_full_canary_shadow_then_promote_and_roll_back(
    gateway_channel: grpc.Channel, versions: dict[str, Path], model_id: str
) -> None:
    before = get_model(gateway_channel, model_id)
    assert not before.HasField("traffic")
    assert set(states(before).values()) == {"REGISTERED"}

    model = deploy(gateway_channel, model_id, "1")
    assert traffic(model) == ("1", "", 0, "", "")
    assert states(model) == {"3": "REGISTERED", "2": "REGISTERED", "1": "LOADED"}
    assert model.update_time.seconds > 0

    model = deploy(gateway_channel, model_id, "2", CANARY, 10)
    assert traffic(model) == ("1", "2", 10, "", "")
    model = deploy(gateway_channel, model_id, "3", SHADOW)
    assert traffic(model) == ("1", "2", 10, "3", "")
    assert set(states(model).values()) == {"LOADED"}
    assert infer(gateway_channel, model_id, "3").model_version == "3"  # the shadow is served to V2

    # Promote the canary, keep the shadow.
    model = set_traffic(
        gateway_channel, model_id, model_pb2.ModelTraffic(stable_version="2", shadow_version="3")
    )
    assert traffic(model) == ("2", "", 0, "3", "1")
    assert infer(gateway_channel, model_id).model_version == "2"

    model = rollback(gateway_channel, model_id)
    assert traffic(model) == ("1", "", 0, "", "2")
    assert infer(gateway_channel, model_id).model_version == "1"
    assert states(model) == {"3": "REGISTERED", "2": "REGISTERED", "1": "LOADED"}
    # Rolling back again returns to 2: the previous stable version is the one before the last change.
    assert traffic(rollback(gateway_channel, model_id)) == ("2", "", 0, "", "1")
    assert traffic(rollback(gateway_channel, model_id, "3")) == ("3", "", 0, "", "2")
    # Deploying the stable version again changes nothing.
    again = deploy(gateway_channel, model_id, "3")
    assert traffic(again) == ("3", "", 0, "", "2")
    assert again.update_time == get_model(gateway_channel, model_id).update_time

    listed = pb_grpc.DecisionServiceStub(gateway_channel).ListModels(
        pb.ListModelsRequest(page_size=1000), metadata=OPERATOR, timeout=10
    )
    assert traffic(next(m for m in listed.models if m.name == f"models/{model_id}")) == ("3", "", 0, "", "2")


def test_each_invalid_change_is_refused_with_its_reason(
    gateway_channel: grpc.Channel, versions: dict[str, Path], model_id: str
) -> None:
    def refused(call, *args) -> grpc.RpcError:  # type: ignore[no-untyped-def]
        with pytest.raises(grpc.RpcError) as error:
            call(gateway_channel, *args)
        return error.value

    error = refused(deploy, model_id, "2", CANARY, 10)
    assert (error.code(), "mode") == (grpc.StatusCode.INVALID_ARGUMENT, next(iter(violations(error))))
    error = refused(deploy, model_id, "1", SHADOW)
    assert "no stable version" in violations(error)["mode"]
    error = refused(rollback, model_id)
    assert (error.code(), reason(error)) == (grpc.StatusCode.FAILED_PRECONDITION, "NO_PREVIOUS_VERSION")

    deploy(gateway_channel, model_id, "1")
    for percent in (0, 101, -1):
        error = refused(deploy, model_id, "2", CANARY, percent)
        assert (error.code(), list(violations(error))) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            ["canary_percent"],
        )
    error = refused(deploy, model_id, "2", SHADOW, 5)
    assert list(violations(error)) == ["canary_percent"]
    error = refused(deploy, model_id, "1", CANARY, 5)
    assert "already the stable version" in violations(error)["version"]
    error = refused(deploy, model_id, "")
    assert list(violations(error)) == ["version"]
    error = refused(deploy, model_id, "9")
    assert (error.code(), reason(error)) == (grpc.StatusCode.NOT_FOUND, "MODEL_VERSION_NOT_FOUND")
    assert "models/" + model_id + "/versions/9" in (error.details() or "")
    error = refused(deploy, "no-such-model", "1")
    assert (error.code(), reason(error)) == (grpc.StatusCode.NOT_FOUND, "MODEL_NOT_FOUND")
    error = refused(deploy, "Bad Name", "1")
    assert error.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as bad_name:
        pb_grpc.DecisionServiceStub(gateway_channel).DeployModel(
            pb.DeployModelRequest(name=model_id, version="1"), metadata=OPERATOR, timeout=10
        )
    assert list(violations(bad_name.value)) == ["name"]

    bad_traffic = {
        "traffic.stable_version": model_pb2.ModelTraffic(canary_version="2", canary_percent=5),
        "traffic.canary_percent": model_pb2.ModelTraffic(stable_version="1", canary_percent=5),
        "traffic.canary_version": model_pb2.ModelTraffic(stable_version="1", canary_version="1"),
        "traffic.shadow_version": model_pb2.ModelTraffic(stable_version="1", shadow_version="1"),
    }
    for field, change in bad_traffic.items():
        error = refused(set_traffic, model_id, change)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, field
        assert field in violations(error), field
    error = refused(
        set_traffic,
        model_id,
        model_pb2.ModelTraffic(stable_version="1", canary_version="2", canary_percent=101),
    )
    assert "traffic.canary_percent" in violations(error)
    error = refused(set_traffic, model_id, model_pb2.ModelTraffic(stable_version="1", shadow_version="7"))
    assert reason(error) == "MODEL_VERSION_NOT_FOUND"
    error = refused(rollback, model_id, "8")
    assert reason(error) == "MODEL_VERSION_NOT_FOUND"
    # Nothing refused changed the traffic.
    assert traffic(get_model(gateway_channel, model_id)) == ("1", "", 0, "", "")
    # A canary at 0 % is allowed (loaded, warm, serving nobody yet).
    model = set_traffic(
        gateway_channel, model_id, model_pb2.ModelTraffic(stable_version="1", canary_version="2")
    )
    assert traffic(model) == ("1", "2", 0, "", "")


def test_a_damaged_package_is_refused_and_the_live_version_keeps_serving(
    gateway_channel: grpc.Channel, versions: dict[str, Path], model_id: str
) -> None:
    deploy(gateway_channel, model_id, "1")
    # Version 2's graph changed on the volume after it was registered.
    graph = versions["2"] / "response.onnx"
    damage(versions["2"], "response.onnx", graph.read_bytes()[:-16])
    with pytest.raises(grpc.RpcError) as refused:
        deploy(gateway_channel, model_id, "2", CANARY, 50)
    error = refused.value
    assert (error.code(), reason(error)) == (grpc.StatusCode.FAILED_PRECONDITION, "MODEL_LOAD_FAILED")
    assert "models/" in (error.details() or "")
    assert "SHA-256 mismatch" in (error.details() or "")
    model = get_model(gateway_channel, model_id)
    assert traffic(model) == ("1", "", 0, "", "")
    assert states(model)["2"] == "FAILED"
    assert "SHA-256 mismatch" in next(v.error_message for v in model.versions if v.version == "2")
    assert infer(gateway_channel, model_id).model_version == "1"

    # Version 3's manifest no longer matches its graphs (a feature dropped from the spec).
    manifest = json.loads((versions["3"] / "manifest.json").read_text())
    manifest["featureSpec"]["features"].pop()
    damage(versions["3"], "manifest.json", json.dumps(manifest).encode())
    with pytest.raises(grpc.RpcError) as schema:
        set_traffic(gateway_channel, model_id, model_pb2.ModelTraffic(stable_version="3"))
    assert reason(schema.value) == "MODEL_LOAD_FAILED"
    assert traffic(get_model(gateway_channel, model_id)) == ("1", "", 0, "", "")
    assert infer(gateway_channel, model_id).model_version == "1"


def test_another_tenant_neither_sees_nor_changes_the_traffic(
    gateway_channel: grpc.Channel, versions: dict[str, Path], model_id: str
) -> None:
    deploy(gateway_channel, model_id, "1")
    other = tenant_key(gateway_channel)
    with pytest.raises(grpc.RpcError) as hidden:
        deploy(gateway_channel, model_id, "1", auth=other)
    assert (hidden.value.code(), reason(hidden.value)) == (grpc.StatusCode.NOT_FOUND, "MODEL_NOT_FOUND")
    stub = v2_grpc.GRPCInferenceServiceStub(gateway_channel)
    ready = stub.ModelReady(v2.ModelReadyRequest(name=model_id), metadata=other, timeout=10)
    assert not ready.ready
    assert stub.ModelReady(v2.ModelReadyRequest(name=model_id), metadata=OPERATOR, timeout=10).ready
