"""Decision traces: written to the journey store as events through ingest (sink.py), kept in memory until the
store has them (recent.py), read back by GetDecision and ExportDecisions (reads.py), and Feedback
(feedback.py). The events' format is events.py; ADR 0029 says why it is built this way."""
