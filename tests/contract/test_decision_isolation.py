"""Issue 9's isolation check for decide: through the real gateway, a tenant that deployed a model, defined
actions and made decisions shows none of it to another tenant's key — not its models (list, get, deploy,
V2 readiness and inference), its actions, its decisions and their traces, nor its model for the other tenant's
Decide, even for the same person id."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest

from tests.decision.lifecycle_calls import Auth, deploy, push, tenant_key
from tests.decision.ml_package import ml_package
from tests.rpc_errors import reason
from wayline.decision.v1 import action_pb2
from wayline.decision.v1 import decision_service_pb2 as pb
from wayline.decision.v1 import decision_service_pb2_grpc as pb_grpc
from wayline.event.v1 import event_pb2
from wayline.inference.v2 import grpc_service_pb2 as v2
from wayline.inference.v2 import grpc_service_pb2_grpc as v2_grpc


@pytest.mark.timeout(120)
def test_another_tenant_reaches_nothing_of_a_tenants_decisions(
    gateway_channel: grpc.Channel, tmp_path: Path
) -> None:
    owner, stranger = tenant_key(gateway_channel), tenant_key(gateway_channel)
    decision = pb_grpc.DecisionServiceStub(gateway_channel)
    inference = v2_grpc.GRPCInferenceServiceStub(gateway_channel)
    model_id = f"iso-{uuid.uuid4().hex[:8]}"
    push(gateway_channel, ml_package(tmp_path / "p", model_id=model_id, version="1"), owner)
    deploy(gateway_channel, model_id, "1", auth=owner)
    action = action_pb2.Action(channel=event_pb2.CHANNEL_WEB)
    decision.CreateAction(
        pb.CreateActionRequest(action_id="discount_10", action=action), metadata=owner, timeout=10
    )
    meta = inference.ModelMetadata(v2.ModelMetadataRequest(name=model_id), metadata=owner, timeout=10)
    width = int(meta.inputs[0].shape[1])
    infer = v2.ModelInferRequest(model_name=model_id)
    infer.inputs.add(
        name=meta.inputs[0].name, datatype="FP32", shape=[1, width]
    ).contents.fp32_contents.extend([0.0] * width)
    person = event_pb2.PersonRef(person_id=f"shared-{uuid.uuid4().hex[:6]}")
    decide = pb.DecideRequest(person=person, channel=event_pb2.CHANNEL_WEB, placement="home_hero")
    made = decision.Decide(decide, metadata=owner, timeout=10)
    assert [a.action_id for a in made.actions] == ["discount_10"]

    def calls(auth: Auth) -> dict[str, object]:
        """What each read gives `auth`: a value, or the refusal's code and reason."""
        found: dict[str, object] = {}
        reads: dict[str, Callable[[], object]] = {
            "models": lambda: [
                m.name for m in decision.ListModels(pb.ListModelsRequest(), metadata=auth, timeout=10).models
            ],
            "model": lambda: (
                decision.GetModel(
                    pb.GetModelRequest(name=f"models/{model_id}"), metadata=auth, timeout=10
                ).model.name
            ),
            "actions": lambda: [
                a.name
                for a in decision.ListActions(pb.ListActionsRequest(), metadata=auth, timeout=10).actions
            ],
            "action": lambda: (
                decision.GetAction(
                    pb.GetActionRequest(name="actions/discount_10"), metadata=auth, timeout=10
                ).action.name
            ),
            "decision": lambda: (
                decision.GetDecision(
                    pb.GetDecisionRequest(decision_id=made.decision_id), metadata=auth, timeout=10
                ).decision.decision_id
            ),
            "decide": lambda: [
                a.action_id for a in decision.Decide(decide, metadata=auth, timeout=10).actions
            ],
            "ready": lambda: (
                inference.ModelReady(v2.ModelReadyRequest(name=model_id), metadata=auth, timeout=10).ready
            ),
            "infer": lambda: len(inference.ModelInfer(infer, metadata=auth, timeout=10).outputs),
            "deploy": lambda: deploy(gateway_channel, model_id, "1", auth=auth).name,
        }
        for name, read in reads.items():
            try:
                found[name] = read()
            except grpc.RpcError as error:
                found[name] = (error.code(), reason(error))
        return found

    mine = calls(owner)
    assert mine["models"] == [f"models/{model_id}"]
    assert (mine["model"], mine["action"], mine["decision"]) == (
        f"models/{model_id}",
        "actions/discount_10",
        made.decision_id,
    )
    assert mine["actions"] == ["actions/discount_10"]
    assert (mine["decide"], mine["ready"], mine["deploy"]) == (["discount_10"], True, f"models/{model_id}")
    assert mine["infer"] == 2  # the response graph's outputs

    theirs = calls(stranger)
    assert (theirs["models"], theirs["actions"]) == ([], [])
    for name in ("model", "action", "decision", "infer", "deploy"):
        assert _code(theirs[name]) == grpc.StatusCode.NOT_FOUND, (name, theirs[name])
    assert theirs["decide"] == (grpc.StatusCode.FAILED_PRECONDITION, "NO_MODEL_DEPLOYED")
    assert theirs["ready"] is False or _code(theirs["ready"]) == grpc.StatusCode.NOT_FOUND, theirs["ready"]


def _code(outcome: object) -> object:
    """A refusal's status code (`calls` gives (code, reason) for a refusal), else the value itself."""
    return outcome[0] if isinstance(outcome, tuple) else outcome
