"""Explanations of scores: exact TreeSHAP over the tree ensembles of a package's ONNX graphs."""
