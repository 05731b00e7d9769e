"""The orchestrator service: flows across channels under one contact policy."""
