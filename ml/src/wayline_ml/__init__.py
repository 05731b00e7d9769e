"""Wayline's ML side, imported by no service: the training table (`training_table`, `table_io`), training
(`split`, `design`, `train`), evaluation (`metrics`, `policy_value`, `evaluate`, `model_card`), ONNX export
with parity (`export`), the model package (`manifest`, `package`, `validation`) and the per-tenant directory
registry (`registry`). docs/ml.md walks through them. It talks to the services only through their contracts.
"""
