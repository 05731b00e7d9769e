"""Wayline's ML side: feature specs as data, point-in-time training sets, XGBoost training, ONNX export and
the model registry. It talks to the services only through their contracts. Filled in by the decision
issues; the package exists now so the workspace and its lock have their final shape."""
