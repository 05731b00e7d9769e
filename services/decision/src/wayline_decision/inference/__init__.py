"""The Open Inference Protocol V2 (`inference.GRPCInferenceService`) over the loaded graphs."""

from wayline_decision.inference.servicer import InferenceServicer

__all__ = ["InferenceServicer"]
