"""The Open Inference Protocol V2 beside DecisionService, called by a standard client (tritonclient's gRPC
client, in a subprocess) through the gateway: the probes without a key, readiness, metadata and inference
of both graphs of a deployed package equal to ONNX Runtime on the bare graphs, and each error as a V2 client
sees it. Typed `contents` (which tritonclient never sends) are checked with our own stub."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import grpc
import numpy as np
import onnxruntime as ort
import pytest
from pydantic import SecretStr

from tests.conftest import API_KEY, common_settings
from tests.decision.lifecycle_calls import OPERATOR, deploy, push
from tests.decision.ml_package import ml_package
from tests.rpc_errors import reason, violations
from wayline.common.server import Server
from wayline.decision.v1 import decision_service_pb2 as pb
from wayline.inference.v2 import grpc_service_pb2 as v2
from wayline.inference.v2 import grpc_service_pb2_grpc as v2_grpc
from wayline_decision.service import decision_service
from wayline_decision.settings import DecisionSettings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def deployed(gateway_channel: grpc.Channel, tmp_path: Path) -> tuple[str, Path]:
    """A model with version 1 stable and version 2 its canary; (model id, version 1's directory)."""
    model_id = f"v2-{uuid.uuid4().hex[:8]}"
    first = push(gateway_channel, ml_package(tmp_path / "1", model_id=model_id, version="1"))
    push(gateway_channel, ml_package(tmp_path / "2", model_id=model_id, version="2"))
    deploy(gateway_channel, model_id, "1")
    deploy(gateway_channel, model_id, "2", mode=pb.DEPLOY_MODE_CANARY, percent=10)
    return model_id, Path(first.artifact_uri)


def bare(directory: Path, file: str, rows: np.ndarray) -> dict[str, np.ndarray]:
    session = ort.InferenceSession(str(directory / file), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, {session.get_inputs()[0].name: rows}), strict=True))


@pytest.mark.timeout(120)
def test_tritonclient_calls_every_rpc_through_the_gateway(
    gateway_server: Server, gateway_channel: grpc.Channel, deployed: tuple[str, Path], tmp_path: Path
) -> None:
    model_id, directory = deployed
    width = ort.InferenceSession(str(directory / "response.onnx")).get_inputs()[0].shape[1]
    rows = np.random.default_rng(1).normal(size=(5, width)).astype(np.float32)
    rows[0, 0] = np.nan
    np.save(tmp_path / "rows.npy", rows)
    probe = subprocess.run(
        [sys.executable, "-m", "tests.decision.triton_probe", gateway_server.address, model_id, API_KEY,
         str(tmp_path / "rows.npy")],
        cwd=ROOT, capture_output=True, text=True, timeout=90, check=False,
    )  # fmt: skip
    assert probe.returncode == 0, probe.stderr[-3000:]
    seen = json.loads(probe.stdout.strip().splitlines()[-1])

    assert (seen["live_without_key"], seen["ready_without_key"]) == (True, True)
    assert (seen["model_ready"], seen["value_model_ready"], seen["unknown_model_ready"]) == (
        True,
        True,
        False,
    )
    assert seen["model_ready_without_key"]["status"] == "StatusCode.UNAUTHENTICATED"
    metadata = seen["metadata"]
    assert (metadata["name"], metadata["platform"], metadata["versions"]) == (
        model_id,
        "onnxruntime_onnx",
        ["1", "2"],
    )
    assert metadata["inputs"] == [
        {"name": metadata["inputs"][0]["name"], "datatype": "FP32", "shape": ["-1", str(width)]}
    ]
    assert {o["name"]: o["datatype"] for o in metadata["outputs"]} == {
        "label": "INT64",
        "probabilities": "FP32",
    }

    response = seen["infer"][model_id]
    assert (response["version"], response["id"]) == ("1", "r-1")  # no version: the stable one
    expected = bare(directory, "response.onnx", rows)
    np.testing.assert_allclose(
        np.array(response["outputs"]["probabilities"]), expected["probabilities"], atol=1e-7
    )
    assert response["outputs"]["label"] == expected["label"].tolist()
    value = seen["infer"][f"{model_id}.value"]
    ((name, values),) = value["outputs"].items()
    np.testing.assert_allclose(np.array(values), bare(directory, "value.onnx", rows)[name], rtol=1e-6)

    assert seen["wrong_datatype"]["status"] == "StatusCode.INVALID_ARGUMENT"
    assert "FP32" in seen["wrong_datatype"]["message"]
    assert seen["wrong_shape"]["status"] == "StatusCode.INVALID_ARGUMENT"
    assert seen["unknown_model"]["status"] == "StatusCode.NOT_FOUND"
    assert seen["unknown_version"]["status"] == "StatusCode.NOT_FOUND"
    assert "'{model_id}.value'" in seen["unknown_version"]["message"]
    assert seen["infer_without_key"]["status"] == "StatusCode.UNAUTHENTICATED"


def test_typed_contents_and_their_errors(gateway_channel: grpc.Channel, deployed: tuple[str, Path]) -> None:
    model_id, directory = deployed
    stub = v2_grpc.GRPCInferenceServiceStub(gateway_channel)
    meta = stub.ModelMetadata(
        v2.ModelMetadataRequest(name=model_id, version="2"), metadata=OPERATOR, timeout=10
    )
    width = int(meta.inputs[0].shape[1])
    rows = np.random.default_rng(2).normal(size=(3, width)).astype(np.float32)
    request = v2.ModelInferRequest(model_name=model_id, model_version="1")
    request.inputs.add(
        name=meta.inputs[0].name, datatype="FP32", shape=[3, width]
    ).contents.fp32_contents.extend(rows.ravel().tolist())
    request.outputs.add(name="probabilities")
    response = stub.ModelInfer(request, metadata=OPERATOR, timeout=10)
    assert [o.name for o in response.outputs] == ["probabilities"]
    got = np.frombuffer(response.raw_output_contents[0], dtype="<f4").reshape(
        tuple(response.outputs[0].shape)
    )
    np.testing.assert_allclose(got, bare(directory, "response.onnx", rows)["probabilities"], atol=1e-7)

    def refused(change: object) -> grpc.RpcError:
        bad = v2.ModelInferRequest()
        bad.CopyFrom(request)
        change(bad)  # type: ignore[operator]
        with pytest.raises(grpc.RpcError) as error:
            stub.ModelInfer(bad, metadata=OPERATOR, timeout=10)
        return error.value

    short = refused(lambda r: r.inputs[0].contents.fp32_contents.pop())
    assert (short.code(), reason(short)) == (grpc.StatusCode.INVALID_ARGUMENT, "INFER_REQUEST_INVALID")
    assert "inputs[0].contents.fp32_contents" in violations(short)
    assert "inputs[0].name" in violations(refused(lambda r: setattr(r.inputs[0], "name", "x")))
    assert "outputs[0].name" in violations(refused(lambda r: setattr(r.outputs[0], "name", "nope")))
    assert "inputs" in violations(refused(lambda r: r.ClearField("inputs")))
    raw_mismatch = refused(lambda r: r.raw_input_contents.append(b"\x00" * 4))
    assert "raw_input_contents[0]" in violations(raw_mismatch)
    registered_not_deployed = refused(lambda r: setattr(r, "model_version", "3"))
    assert (registered_not_deployed.code(), reason(registered_not_deployed)) == (
        grpc.StatusCode.NOT_FOUND,
        "MODEL_NOT_SERVED",
    )


def test_the_probes_answer_without_a_key_before_the_service_is_ready(tmp_path: Path) -> None:
    # A database that never answers keeps the service from becoming ready.
    settings = DecisionSettings(
        **common_settings(tmp_path),  # type: ignore[arg-type]
        database_url=SecretStr("postgresql://wayline@127.0.0.1:1/none"),
    )
    server = Server(decision_service(settings), settings)
    server.start()
    try:
        with grpc.insecure_channel(server.address) as channel:
            stub = v2_grpc.GRPCInferenceServiceStub(channel)
            assert stub.ServerLive(v2.ServerLiveRequest(), timeout=10).live
            assert not stub.ServerReady(v2.ServerReadyRequest(), timeout=10).ready
            with pytest.raises(grpc.RpcError) as starting:
                stub.ModelReady(v2.ModelReadyRequest(name="m"), timeout=10)
            assert starting.value.code() == grpc.StatusCode.UNAVAILABLE
            assert not server.ready.is_set()
    finally:
        server.stop(0)
