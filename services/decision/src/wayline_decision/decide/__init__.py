"""Decide: candidates, eligibility, facts, scoring, arbitration, holdouts and the trace; free of gRPC."""
