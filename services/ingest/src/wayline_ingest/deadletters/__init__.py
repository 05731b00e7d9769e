"""Dead letters: events a sink refused for good, kept with the failure and the payload as parked, listable
by reason and time, replayable into that one sink's queue after a fix, and erasable by person.

`DeadLetters` (store.py) is the store and the forwarder's DeadLetterPark; `DeadLetterRpcs` (rpcs.py) serves
the three IngestService RPCs over it. See docs/dead-letters.md.
"""

from wayline_ingest.deadletters.model import (
    DeadLetterFilter,
    DeadLetterPage,
    DeadLetterRecord,
    DeadLetterState,
)
from wayline_ingest.deadletters.store import DeadLetters, Requeue

__all__ = [
    "DeadLetterFilter",
    "DeadLetterPage",
    "DeadLetterRecord",
    "DeadLetterState",
    "DeadLetters",
    "Requeue",
]
