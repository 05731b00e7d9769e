"""Wayline's ML side, imported by no service: the training table (`training_table`, `table_io`), training
(`split`, `design`, `train`), evaluation (`metrics`, `policy_value`, `evaluate`, `model_card`), ONNX export
with parity (`export`), the model package (`manifest`, `package`, `validation`), the per-tenant directory
registry (`registry`) and predicted customer value (`clv`: BG/NBD and Gamma-Gamma, written back as person
traits). docs/ml.md walks through them. It talks to the services only through their contracts.
"""
