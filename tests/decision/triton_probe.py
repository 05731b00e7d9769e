"""Run by test_inference_v2.py in a subprocess: tritonclient's generated `inference.*` protobuf symbols
collide with ours in one process. Calls a V2 server as any Triton client would and prints what it saw as
one JSON document: `python -m tests.decision.triton_probe ADDRESS MODEL API_KEY ROWS_FILE`."""

from __future__ import annotations

import json
import sys
from typing import Any

import numpy as np
import tritonclient.grpc as triton
from tritonclient.utils import InferenceServerException


def _error(call: Any) -> dict[str, str]:
    try:
        call()
    except InferenceServerException as error:
        return {"status": str(error.status()), "message": str(error.message())}
    return {"status": "OK", "message": ""}


def main() -> None:
    address, model, key, rows_file = sys.argv[1:5]
    rows = np.load(rows_file)
    client = triton.InferenceServerClient(url=address)
    headers = {"authorization": f"Bearer {key}"}
    seen: dict[str, Any] = {
        "live_without_key": client.is_server_live(),
        "ready_without_key": client.is_server_ready(),
        "model_ready": client.is_model_ready(model, headers=headers),
        "value_model_ready": client.is_model_ready(f"{model}.value", headers=headers),
        "unknown_model_ready": client.is_model_ready("nope", headers=headers),
        "model_ready_without_key": _error(lambda: client.is_model_ready(model)),
    }
    metadata = client.get_model_metadata(model, headers=headers, as_json=True)
    seen["metadata"] = metadata
    input_name = metadata["inputs"][0]["name"]
    results = {}
    for name in (model, f"{model}.value"):
        tensor = triton.InferInput(input_name, list(rows.shape), "FP32")
        tensor.set_data_from_numpy(rows)
        result = client.infer(name, [tensor], headers=headers, request_id="r-1")
        response = result.get_response()
        results[name] = {
            "version": response.model_version,
            "id": response.id,
            "outputs": {o.name: result.as_numpy(o.name).tolist() for o in response.outputs},
        }
    seen["infer"] = results
    wrong = triton.InferInput(input_name, list(rows.shape), "FP64")
    wrong.set_data_from_numpy(rows.astype(np.float64))
    seen["wrong_datatype"] = _error(lambda: client.infer(model, [wrong], headers=headers))
    narrow = triton.InferInput(input_name, [1, rows.shape[1] - 1], "FP32")
    narrow.set_data_from_numpy(rows[:1, :-1].copy())
    seen["wrong_shape"] = _error(lambda: client.infer(model, [narrow], headers=headers))
    tensor = triton.InferInput(input_name, list(rows.shape), "FP32")
    tensor.set_data_from_numpy(rows)
    seen["unknown_model"] = _error(lambda: client.infer("nope", [tensor], headers=headers))
    seen["unknown_version"] = _error(
        lambda: client.infer(model, [tensor], model_version="99", headers=headers)
    )
    seen["infer_without_key"] = _error(lambda: client.infer(model, [tensor]))
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
