"""A package's response and value graphs as one ONNX graph, so that scoring a decision is one session run.

Each `InferenceSession.run` pays a fixed toll (argument conversion, output allocation, the executor's set-up)
of tens of microseconds, comparable to the trees' own work for one customer's few candidate rows; two runs
per decision paid it twice (measured in bench/decision_scoring.py). The merged graph holds both graphs' nodes
side by side, reading the one input; the value graph's names are prefixed so that nothing collides, and its
input is renamed to the response graph's. Only the two outputs used are graph outputs, so ONNX Runtime
drops whatever else it can (the classifier's label). The package's own files stay as they are: validation,
parity and explanations use them; the merge is a load-time artefact, checked by the tests to give the very
same numbers.
"""

from __future__ import annotations

import onnx
from onnx import compose, helper

__all__ = ["VALUE_PREFIX", "merge_graphs"]

VALUE_PREFIX = "value/"


def merge_graphs(
    response: bytes, response_output: str, value: bytes, value_output: str, input_name: str
) -> tuple[bytes, str]:
    """The merged graph and the name its value output has in it (the response output keeps its name)."""
    first = onnx.load_model_from_string(response)
    second = compose.add_prefix(onnx.load_model_from_string(value), VALUE_PREFIX, rename_inputs=False)
    value_input = second.graph.input[0].name
    for node in second.graph.node:
        node.input[:] = [input_name if name == value_input else name for name in node.input]
    merged_output = VALUE_PREFIX + value_output
    graph = helper.make_graph(
        [*first.graph.node, *second.graph.node],
        "response_and_value",
        [first.graph.input[0]],
        [
            *(o for o in first.graph.output if o.name == response_output),
            *(o for o in second.graph.output if o.name == merged_output),
        ],
        [*first.graph.initializer, *second.graph.initializer],
    )
    opsets: dict[str, int] = {}
    for model in (first, second):
        for opset in model.opset_import:
            opsets[opset.domain] = max(opsets.get(opset.domain, 0), opset.version)
    merged = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid(domain, version) for domain, version in sorted(opsets.items())],
        ir_version=max(first.ir_version, second.ir_version),
    )
    onnx.checker.check_model(merged)
    return merged.SerializeToString(), merged_output
