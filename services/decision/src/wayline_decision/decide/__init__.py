"""Decide: candidates → eligibility → contact policy → scoring → arbitration → ranked actions and a trace."""
