"""The engagement scores in SQL (both engines), in the contact ledger's database and transactions: which
messages a person engaged with (one row per contact and kind of engagement, so a redelivered or repeated
event counts once) and the decayed score per (person, channel) that the learned preference reads with one
indexed read. The tables are the ledger's migration 2 (`contacts/store.py`).

A score is read, added to and written back (the decay needs arithmetic neither engine offers alike), so
`note` runs under the person's ledger lock: two replicas noting engagements of one person queue, and none
of the additions is lost. A merge adds the absorbed person's scores to the survivor's (each decayed from its
own time, as out-of-order engagements are) and gives them its engagements; erasure deletes both (ADR 38).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from wayline.common.sql import Transaction
from wayline_orchestrator.contacts.engagement import Engagement, added
from wayline_orchestrator.contacts.model import ChannelScore

__all__ = ["MIGRATION", "channel_scores", "forget_person", "move_person", "note"]

MIGRATION: tuple[str, ...] = (
    "CREATE TABLE contact_engagements (tenant_id TEXT NOT NULL, contact_id TEXT NOT NULL, kind TEXT NOT NULL,"
    " person_id TEXT NOT NULL, channel TEXT NOT NULL, event_time BIGINT NOT NULL, event_id TEXT NOT NULL,"
    " PRIMARY KEY (tenant_id, contact_id, kind))",
    "CREATE TABLE channel_engagement (tenant_id TEXT NOT NULL, person_id TEXT NOT NULL,"
    " channel TEXT NOT NULL, score DOUBLE PRECISION NOT NULL, score_time BIGINT NOT NULL,"
    " engagements BIGINT NOT NULL,"
    " PRIMARY KEY (tenant_id, person_id, channel))",
)


def channel_scores(tx: Transaction, tenant: str, person_id: str) -> tuple[ChannelScore, ...]:
    """The person's score per channel engaged with (the primary key's prefix: one indexed read)."""
    rows = tx.execute(
        "SELECT channel, score, score_time FROM channel_engagement WHERE tenant_id = ? AND person_id = ?",
        (tenant, person_id),
    )
    return tuple(ChannelScore(channel, float(score), int(at)) for channel, score, at in rows)


def _score(tx: Transaction, tenant: str, person_id: str, channel: str) -> ChannelScore | None:
    rows = tx.execute(
        "SELECT score, score_time FROM channel_engagement"
        " WHERE tenant_id = ? AND person_id = ? AND channel = ?",
        (tenant, person_id, channel),
    )
    return ChannelScore(channel, float(rows[0][0]), int(rows[0][1])) if rows else None


def note(
    tx: Transaction,
    tenant: str,
    engagements: Sequence[Engagement],
    lock_person: Callable[[Transaction, str, str], None],
) -> int:
    """Add each engagement not seen before to its person's score for the channel of the contact engaged
    with; how many counted. An engagement with a contact the tenant's ledger does not hold is skipped."""
    counted = 0
    for engagement in sorted(engagements, key=lambda e: (e.person_id, e.contact_id, e.kind)):
        lock_person(tx, tenant, engagement.person_id)  # in person order: two batches never wait on each other
        contact = tx.execute(
            "SELECT channel FROM contacts WHERE tenant_id = ? AND contact_id = ?",
            (tenant, engagement.contact_id),
        )
        if not contact:
            continue
        channel = str(contact[0][0])
        first = tx.execute(
            "INSERT INTO contact_engagements (tenant_id, contact_id, kind, person_id, channel, event_time,"
            " event_id) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (tenant_id, contact_id, kind) DO NOTHING"
            " RETURNING contact_id",
            (
                tenant,
                engagement.contact_id,
                engagement.kind,
                engagement.person_id,
                channel,
                engagement.event_time,
                engagement.event_id,
            ),
        )
        if not first:
            continue
        current = _score(tx, tenant, engagement.person_id, channel)
        score = added(current, channel, engagement.weight, engagement.event_time)
        tx.execute(
            "INSERT INTO channel_engagement (tenant_id, person_id, channel, score, score_time, engagements)"
            " VALUES (?, ?, ?, ?, ?, 1) ON CONFLICT (tenant_id, person_id, channel) DO UPDATE SET"
            " score = excluded.score, score_time = excluded.score_time,"
            " engagements = channel_engagement.engagements + 1",
            (tenant, engagement.person_id, channel, score.score, score.score_time),
        )
        counted += 1
    return counted


def move_person(tx: Transaction, tenant: str, person_id: str, survivor: str) -> None:
    """Give the person's engagements to `survivor` and add their scores to the survivor's, channel by channel
    (both persons' ledger locks held by the caller)."""
    tx.execute(
        "UPDATE contact_engagements SET person_id = ? WHERE tenant_id = ? AND person_id = ?",
        (survivor, tenant, person_id),
    )
    rows = tx.execute(
        "SELECT channel, score, score_time, engagements FROM channel_engagement"
        " WHERE tenant_id = ? AND person_id = ?",
        (tenant, person_id),
    )
    for channel, value, at, count in rows:
        score = added(_score(tx, tenant, survivor, channel), channel, float(value), int(at))
        tx.execute(
            "INSERT INTO channel_engagement (tenant_id, person_id, channel, score, score_time, engagements)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (tenant_id, person_id, channel) DO UPDATE SET"
            " score = excluded.score, score_time = excluded.score_time,"
            " engagements = channel_engagement.engagements + excluded.engagements",
            (tenant, survivor, channel, score.score, score.score_time, int(count)),
        )
    tx.execute("DELETE FROM channel_engagement WHERE tenant_id = ? AND person_id = ?", (tenant, person_id))


def forget_person(tx: Transaction, tenant: str, person_id: str) -> int:
    """Delete the person's engagements and scores (erasure); how many rows there were."""
    deleted = 0
    for table in ("contact_engagements", "channel_engagement"):
        rows = tx.execute(
            f"DELETE FROM {table} WHERE tenant_id = ? AND person_id = ? RETURNING person_id",  # noqa: S608 - a constant table name
            (tenant, person_id),
        )
        deleted += len(rows)
    return deleted
