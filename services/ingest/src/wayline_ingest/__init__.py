"""The ingest service: validation and enrichment of every touchpoint at the door."""
