"""A merge's effect on flow entries: the absorbed person's entries become the survivor's (ADR 38).

Per flow, inside the merge's transaction: when both persons are inside the flow, the absorbed person's live
entry ends (EXITED, reason `merged`, its timers deleted) and the survivor's carries on; every entry of the
absorbed person, live or ended, then moves to the survivor, numbered after the survivor's highest number in
that flow (in the absorbed person's order), so no (flow, person, number) key ever collides and the re-entry
rules read the merged history. A moved entry keeps the key it was born with (`Entry.key_base`): its timers,
its ledger contacts, its outbox messages and the ids engagement events carry back keep their keys, so a
step it already sent is never sent again under another key.
"""

from __future__ import annotations

from itertools import groupby

from wayline.common.sql import Transaction
from wayline_orchestrator.flows.runtime.interpreter import ENTRY
from wayline_orchestrator.flows.runtime.model import Entry, EntryStatus, StepRun
from wayline_orchestrator.flows.runtime.store import RuntimeStore

__all__ = ["MERGED", "merge_entries"]

MERGED = "merged"
"""The reason an absorbed person's live entry ends with when the survivor is inside the same flow."""

Renumbered = dict[tuple[str, int], int]  # (flow, the absorbed person's entry number) → its new number


def _end_merged(store: RuntimeStore, tx: Transaction, tenant: str, entry: Entry, now: int) -> None:
    entry.status, entry.reason = EntryStatus.EXITED, MERGED
    entry.revision += 1
    entry.update_time = now
    store.delete_entry_timers(tx, tenant, entry)
    store.update_entry(tx, tenant, entry)
    end = StepRun(
        key=f"{entry.key()}/~end",
        flow_id=entry.flow_id,
        version=entry.version,
        person_id=entry.person_id,
        entry_number=entry.number,
        step_id=entry.step_id or ENTRY,
        outcome=EntryStatus.EXITED.value,
        run_time=now,
        detail={"reason": MERGED},
    )
    store.add_runs(tx, tenant, [end])


def merge_entries(  # noqa: PLR0917 - one merge's every input, at its one caller
    store: RuntimeStore, tx: Transaction, tenant: str, person_id: str, survivor: str, now: int
) -> Renumbered:
    """Move `person_id`'s entries (and their timers and step runs) to `survivor`; the new numbers."""
    absorbed = store.person_entries(tx, tenant, person_id)
    if not absorbed:
        return {}
    surviving = store.person_entries(tx, tenant, survivor)
    renumbered: Renumbered = {}
    for flow_id, group in groupby(absorbed, key=lambda e: e.flow_id):
        mine = [e for e in surviving if e.flow_id == flow_id]
        top = max((e.number for e in mine), default=0)
        survivor_inside = any(e.live for e in mine)
        for entry in group:
            if entry.live and survivor_inside:
                _end_merged(store, tx, tenant, entry, now)
            survivor_inside = survivor_inside or entry.live
            top += 1
            renumbered[(flow_id, entry.number)] = top
            store.move_entry(tx, tenant, entry, survivor, top)
    store.move_runs(tx, tenant, person_id, survivor, renumbered)
    return renumbered
