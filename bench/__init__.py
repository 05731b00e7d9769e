"""Benchmarks: every scenario runs beside its baseline in the same run, and the ratio is what we compare."""
