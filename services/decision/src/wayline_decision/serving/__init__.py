"""Serving: registered versions loaded into ONNX Runtime, and which of them serves which decision."""
