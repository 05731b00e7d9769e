"""V2 tensors ⇄ numpy arrays: a request's inputs checked against the graph (names, datatypes, shapes, one
source of data each: typed `contents` or `raw_input_contents`, little-endian as the protocol says), and the
outputs as raw little-endian bytes, as Triton answers."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from wayline.common.errors import FieldViolation
from wayline.inference.v2 import grpc_service_pb2 as v2
from wayline_decision.errors import InferRequestInvalid
from wayline_decision.serving.raw import RawGraph, TensorSpec

__all__ = ["infer_inputs", "infer_response", "requested_outputs", "tensor_metadata"]

Array = npt.NDArray[np.generic]

# Which typed field of InferTensorContents carries each datatype.
_CONTENTS = {"FP32": "fp32_contents", "FP64": "fp64_contents", "INT64": "int64_contents",
             "INT32": "int_contents", "BOOL": "bool_contents"}  # fmt: skip


def tensor_metadata(specs: Sequence[TensorSpec]) -> list[v2.ModelMetadataResponse.TensorMetadata]:
    return [
        v2.ModelMetadataResponse.TensorMetadata(name=s.name, datatype=s.datatype, shape=s.shape)
        for s in specs
    ]


def _check_shape(spec: TensorSpec, shape: Sequence[int], field: str) -> list[FieldViolation]:
    if len(shape) != len(spec.shape) or any(d < 0 for d in shape):
        return [FieldViolation(field, f"must be {list(spec.shape)} (-1: any size); got {list(shape)}")]
    if any(want not in (-1, got) for want, got in zip(spec.shape, shape, strict=True)):
        return [FieldViolation(field, f"must be {list(spec.shape)} (-1: any size); got {list(shape)}")]
    return []


def _data(
    request: v2.ModelInferRequest, index: int, spec: TensorSpec, count: int
) -> tuple[Array | None, list[FieldViolation]]:
    tensor = request.inputs[index]
    if request.raw_input_contents:
        raw = request.raw_input_contents[index]
        want = count * spec.dtype.itemsize
        if len(raw) != want:
            field = f"raw_input_contents[{index}]"
            return None, [FieldViolation(field, f"holds {len(raw)} bytes; shape and datatype need {want}")]
        return np.frombuffer(raw, dtype=spec.dtype.newbyteorder("<")).astype(spec.dtype), []
    values = getattr(tensor.contents, _CONTENTS[spec.datatype])
    if len(values) != count:
        field = f"inputs[{index}].contents.{_CONTENTS[spec.datatype]}"
        return None, [FieldViolation(field, f"holds {len(values)} values; the shape needs {count}")]
    return np.asarray(values, dtype=spec.dtype), []


def infer_inputs(graph: RawGraph, request: v2.ModelInferRequest) -> dict[str, Array]:
    """Input name → array; InferRequestInvalid naming every problem."""
    specs = {s.name: s for s in graph.inputs}
    violations: list[FieldViolation] = []
    arrays: dict[str, Array] = {}
    if request.raw_input_contents and len(request.raw_input_contents) != len(request.inputs):
        violations.append(
            FieldViolation("raw_input_contents", "give raw contents for every input or for none of them")
        )
    for index, tensor in enumerate(request.inputs):
        field = f"inputs[{index}]"
        spec = specs.get(tensor.name)
        if spec is None:
            violations.append(FieldViolation(f"{field}.name", f"{graph.name} takes {sorted(specs)}"))
            continue
        if tensor.name in arrays:
            violations.append(FieldViolation(f"{field}.name", f"{tensor.name} is given twice"))
            continue
        if tensor.datatype != spec.datatype:
            violations.append(FieldViolation(f"{field}.datatype", f"{tensor.name} is {spec.datatype}"))
            continue
        problems = _check_shape(spec, tensor.shape, f"{field}.shape")
        if problems or violations:
            violations += problems
            continue
        count = int(np.prod(tensor.shape, dtype=np.int64))
        data, problems = _data(request, index, spec, count)
        violations += problems
        if data is not None:
            arrays[tensor.name] = data.reshape(tuple(tensor.shape))
    missing = sorted(set(specs) - {t.name for t in request.inputs})
    if missing:
        violations.append(FieldViolation("inputs", f"{graph.name} also needs {missing}"))
    if violations:
        raise InferRequestInvalid(violations)
    return arrays


def requested_outputs(graph: RawGraph, request: v2.ModelInferRequest) -> list[TensorSpec]:
    """The outputs asked for, every tensor output when none is named."""
    specs = {s.name: s for s in graph.outputs}
    if not request.outputs:
        return list(graph.outputs)
    unknown = [
        FieldViolation(f"outputs[{i}].name", f"{graph.name} has the outputs {sorted(specs)}")
        for i, o in enumerate(request.outputs)
        if o.name not in specs
    ]
    if unknown:
        raise InferRequestInvalid(unknown)
    return [specs[o.name] for o in request.outputs]


def infer_response(
    graph: RawGraph, request: v2.ModelInferRequest, specs: Sequence[TensorSpec], arrays: Sequence[Array]
) -> v2.ModelInferResponse:
    response = v2.ModelInferResponse(model_name=graph.name, model_version=graph.version, id=request.id)
    for spec, array in zip(specs, arrays, strict=True):
        response.outputs.add(name=spec.name, datatype=spec.datatype, shape=array.shape)
        response.raw_output_contents.append(
            np.ascontiguousarray(array, dtype=spec.dtype.newbyteorder("<")).tobytes()
        )
    return response
