"""The customer's timeline of contacts: every send the ledger records and every suppression a flow records,
kept in an outbox in the orchestrator's database (store.py) in the transaction that records them, and
shipped to the journey store through ingest (shipper.py) as `Contact Sent` and `Contact Suppressed` events
(events.py). ADR 42."""

from wayline_orchestrator.timeline.events import CONTACT_SENT, CONTACT_SUPPRESSED, ContactEvent
from wayline_orchestrator.timeline.recorder import ContactTimeline
from wayline_orchestrator.timeline.store import ContactEventStore

__all__ = ["CONTACT_SENT", "CONTACT_SUPPRESSED", "ContactEvent", "ContactEventStore", "ContactTimeline"]
