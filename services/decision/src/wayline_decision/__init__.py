"""The decision service: next best action: ONNX scoring, online features and the model lifecycle."""
