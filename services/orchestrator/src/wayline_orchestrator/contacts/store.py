"""The contact ledger in SQL, the same statements on SQLite (embedded) and PostgreSQL (production). Every
query is scoped by tenant.

Tables: the tenant's one policy (its revision makes writes conditional: two admins cannot both apply a change
made against the same etag); the contacts, indexed by (tenant, person, time) for the caps' window queries;
and what the ledger knows of each person from their events: consent statements (one per scope, the latest
kept), attributes (preferred channel, time zone; the latest kept) and, from migration 2, their engagement
with each channel's messages (`engagement_store.py`, ADR 41).

`person_lock` opens the transaction in which RecordContact with `enforce_policy` checks and inserts: on
PostgreSQL it takes a transaction-scoped advisory lock on the (tenant, person), so that concurrent senders to
one person queue while senders to other persons do not; on SQLite the kit's `BEGIN IMMEDIATE` already holds
the database's one write lock for the whole transaction. Either way the count the check reads cannot change
before the insert commits.

A merge gives the absorbed person's contacts to the survivor (they count toward the survivor's caps) and
folds their consent statements and attributes into the survivor's by the rule events follow: per scope
(per attribute), the latest statement wins. Erasure deletes all three (ADR 38).

CheckContact's inputs may come from a cache in memory (`check_cache.py`, ADR 60): every write here tells it
first (this process's checks of that person then read the database for a moment), and on PostgreSQL the
triggers of `invalidation.py` (their own migration) tell every replica's at commit.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from sys import intern
from typing import Any, NamedTuple

from wayline.common.sql import Database, Transaction, guarded_transaction, migrate, unavailable_as
from wayline_orchestrator.contacts import engagement_store
from wayline_orchestrator.contacts.check_cache import CheckCache, CheckInputs, longest_window
from wayline_orchestrator.contacts.codec import CONTACT_BODY_FIELDS, contact_body, policy_body, policy_of
from wayline_orchestrator.contacts.engagement import Engagement
from wayline_orchestrator.contacts.invalidation import NOTIFY_MIGRATIONS
from wayline_orchestrator.contacts.model import (
    ANY_CHANNEL,
    ChannelScore,
    Consent,
    Contact,
    ContactPolicy,
    Person,
)
from wayline_orchestrator.contacts.rules import Past
from wayline_orchestrator.contacts.validation import in_force
from wayline_orchestrator.errors import LedgerUnavailable

__all__ = [
    "MIGRATIONS",
    "Attribute",
    "ConsentStatement",
    "ContactFilter",
    "ContactStore",
    "longest_window",
]

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        "CREATE TABLE contact_policies (tenant_id TEXT NOT NULL PRIMARY KEY, revision BIGINT NOT NULL,"
        " update_time BIGINT NOT NULL, body TEXT NOT NULL)",
        "CREATE TABLE contacts (tenant_id TEXT NOT NULL, contact_id TEXT NOT NULL, person_id TEXT NOT NULL,"
        " channel TEXT NOT NULL, purpose TEXT NOT NULL, contact_time BIGINT NOT NULL,"
        " record_time BIGINT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (tenant_id, contact_id))",
        # The caps' window queries read one person's range of times, from the index alone (it covers them);
        # ListContacts' newest-first pages walk the same range backwards.
        "CREATE INDEX contacts_by_person_time ON contacts"
        " (tenant_id, person_id, contact_time, channel, purpose, contact_id)",
        "CREATE TABLE person_consents (tenant_id TEXT NOT NULL, person_id TEXT NOT NULL,"
        " channel TEXT NOT NULL, purpose TEXT NOT NULL, granted INTEGER NOT NULL,"
        " event_time BIGINT NOT NULL, event_id TEXT NOT NULL,"
        " PRIMARY KEY (tenant_id, person_id, channel, purpose))",
        "CREATE TABLE person_attributes (tenant_id TEXT NOT NULL, person_id TEXT NOT NULL,"
        " name TEXT NOT NULL, value TEXT NOT NULL, event_time BIGINT NOT NULL, event_id TEXT NOT NULL,"
        " PRIMARY KEY (tenant_id, person_id, name))",
    ),
    engagement_store.MIGRATION,
)
_CONTACT_COLUMNS = "contact_id, person_id, channel, purpose, contact_time, record_time, body"
# An event replayed, or older than what is stored, changes nothing: the latest (time, event id) wins.
_NEWER = (
    "{t}.event_time < excluded.event_time"
    " OR ({t}.event_time = excluded.event_time AND {t}.event_id < excluded.event_id)"
)
PREFERRED_CHANNEL = "preferred_channel"
TIME_ZONE = "time_zone"


class ConsentStatement(NamedTuple):
    person_id: str
    channel: str  # a channel's value name, or ALL
    purpose: str  # a purpose's value name, or ALL
    granted: bool
    event_time: int
    event_id: str


class Attribute(NamedTuple):
    person_id: str
    name: str  # PREFERRED_CHANNEL or TIME_ZONE
    value: str
    event_time: int
    event_id: str


class ContactFilter(NamedTuple):
    person_id: str
    start: int | None = None  # inclusive
    end: int | None = None  # exclusive
    channel: str = ANY_CHANNEL


@lru_cache(maxsize=1024)
def _policy(tenant: str, body: str, revision: int, update_time: int) -> ContactPolicy:
    """The tenant's stored policy as the ledger applies it (`in_force`: a window stored over the limit counts
    as the limit, logged here, so once per stored policy while it is kept). CheckContact reads the policy on
    every call; parsing its JSON each time cost ~100 µs. A stored revision never changes (an update writes a
    new one), so the parsed policy is kept per (tenant, body, revision)."""
    return in_force(tenant, policy_of(body, revision, update_time))


def _contact(row: tuple[Any, ...]) -> Contact:
    contact_id, person_id, channel, purpose, contact_time, record_time, body = row
    extra = json.loads(body)
    return Contact(
        contact_id=contact_id,
        person_id=person_id,
        channel=channel,
        purpose=purpose,
        contact_time=int(contact_time),
        record_time=int(record_time),
        **{name: extra[name] for name in CONTACT_BODY_FIELDS},
    )


# Everything CheckContact reads, in one statement: the policy, the person's consents, attributes and channel
# scores, and their contacts in a window. One statement, not a transaction of five: on SQLite each statement
# releases and retakes the interpreter's lock, which a busy writer thread (a flow's ObserveEvents) holds for
# up to the switch interval (5 ms) each time; on PostgreSQL each is a round trip. Rows are tagged by kind;
# NULLs are typed for PostgreSQL's UNION.
_CHECK_INPUTS = (
    "SELECT 'policy', body, CAST(NULL AS TEXT), revision, update_time, CAST(NULL AS DOUBLE PRECISION)"
    " FROM contact_policies WHERE tenant_id = ?"
    " UNION ALL SELECT 'consent', channel, purpose, granted, event_time, NULL"
    " FROM person_consents WHERE tenant_id = ? AND person_id = ?"
    " UNION ALL SELECT 'attribute', name, value, NULL, NULL, NULL"
    " FROM person_attributes WHERE tenant_id = ? AND person_id = ?"
    " UNION ALL SELECT 'engagement', channel, NULL, score_time, NULL, score"
    " FROM channel_engagement WHERE tenant_id = ? AND person_id = ?"
    " UNION ALL SELECT 'contact', channel, purpose, contact_time, NULL, NULL"
    " FROM contacts WHERE tenant_id = ? AND person_id = ? AND contact_time > ? AND contact_time <= ?"
)


# The upper bound of the contacts a check reads for the cache: all of them, those dated ahead too.
_NO_END = 2**63 - 1


class ContactStore:
    def __init__(self, db: Database, cache: CheckCache | None = None) -> None:
        """`cache`: the check's inputs kept in memory (ADR 60), told here of this process's writes; its
        invalidation source (`invalidation.py`) tells it of every replica's."""
        self._db = db
        self._cache = cache
        # Per tenant, the window of history the last check read: the window the next one reads in the same
        # statement as the policy. A policy whose caps reach further makes that check read once more.
        self._windows: dict[str, int] = {}

    def migrate(self) -> int:
        with unavailable_as(LedgerUnavailable):
            version = migrate(self._db, "orchestrator_contacts", MIGRATIONS)
            if self._db.engine == "postgresql":
                migrate(self._db, "orchestrator_contacts_notify", NOTIFY_MIGRATIONS)
            return version

    def _written(self, tenant: str, person_id: str = "") -> None:
        if self._cache is not None:
            self._cache.written(tenant, person_id)

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        with guarded_transaction(self._db, LedgerUnavailable) as tx:
            yield tx

    @contextmanager
    def person_lock(self, tenant: str, person_id: str) -> Iterator[Transaction]:
        """A transaction in which no other `person_lock` of the same person runs (see the module's note)."""
        with self.transaction() as tx:
            self.lock_person(tx, tenant, person_id)
            yield tx

    def lock_person(self, tx: Transaction, tenant: str, person_id: str) -> None:
        """Take the person's lock of `person_lock` in a transaction opened elsewhere (a flow's step)."""
        if self._db.engine == "postgresql":
            tx.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(?, 0))",
                (f"contacts\x1f{tenant}\x1f{person_id}",),
            )

    def check_inputs(
        self, tenant: str, person_id: str, when: int
    ) -> tuple[ContactPolicy, Person, list[Past]]:
        """The policy, the person and their contacts in the policy's longest window up to `when`: from the
        cache when it has them, else read in one statement (twice when the policy's window grew since this
        tenant's last check) and kept."""
        if self._cache is None:
            inputs = self._read_inputs(tenant, person_id, when, when)
        else:
            found = self._cache.lookup(tenant, person_id, when)
            if found is not None:
                return found
            noted = self._cache.note()
            inputs = self._read_inputs(tenant, person_id, when, _NO_END)
            self._cache.keep(noted, tenant, person_id, inputs)
        answer = inputs.at(when)
        assert answer is not None  # the rows start where the window does
        return answer

    def _read_inputs(self, tenant: str, person_id: str, when: int, until: int) -> CheckInputs:
        """The check's inputs at `when`, with the person's contacts from the window's start up to `until`."""
        window = self._windows.get(tenant, 0)
        with unavailable_as(LedgerUnavailable):
            rows = self._read_check_inputs(tenant, person_id, when - window, until)
            policy = next(
                (_policy(tenant, r[1], int(r[3]), int(r[4])) for r in rows if r[0] == "policy"),
                ContactPolicy(),
            )
            needed = longest_window(policy)
            if needed > window:
                rows = self._read_check_inputs(tenant, person_id, when - needed, until)
            self._windows[tenant] = needed
        consents, attributes, scores, contacts = [], {}, [], []
        for kind, text, more, number, other, score in rows:
            if kind == "consent":
                consents.append(Consent(text, more, bool(number), int(other)))
            elif kind == "attribute":
                attributes[text] = more
            elif kind == "engagement":
                scores.append(ChannelScore(text, float(score), int(number)))
            elif kind == "contact" and int(number) > when - needed:
                # Interned: a kept entry's few channel and purpose names are then shared, not copies.
                contacts.append(Past(intern(text), intern(more), int(number)))
        person = Person(
            consents=tuple(consents),
            preferred_channel=attributes.get(PREFERRED_CHANNEL, ANY_CHANNEL),
            time_zone=attributes.get(TIME_ZONE, ""),
            engagement=tuple(scores),
        )
        return CheckInputs(policy, person, tuple(contacts), when - needed)

    def _read_check_inputs(
        self, tenant: str, person_id: str, after: int, until: int
    ) -> list[tuple[Any, ...]]:
        person = (tenant, person_id)
        return self._db.read(_CHECK_INPUTS, (tenant, *person, *person, *person, *person, after, until))

    # The policy.

    def policy(self, tx: Transaction, tenant: str) -> ContactPolicy:
        rows = tx.execute(
            "SELECT body, revision, update_time FROM contact_policies WHERE tenant_id = ?", (tenant,)
        )
        return _policy(tenant, rows[0][0], int(rows[0][1]), int(rows[0][2])) if rows else ContactPolicy()

    def put_policy(self, tenant: str, policy: ContactPolicy, read_revision: int) -> bool:
        """Store `policy` if the stored one is still at `read_revision` (0: none stored); False otherwise."""
        params = (policy.revision, policy.update_time, policy_body(policy))
        self._written(tenant)
        with self.transaction() as tx:
            if read_revision == 0:
                rows = tx.execute(
                    "INSERT INTO contact_policies (revision, update_time, body, tenant_id)"
                    " VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (tenant_id) DO NOTHING RETURNING tenant_id",
                    (*params, tenant),
                )
            else:
                rows = tx.execute(
                    "UPDATE contact_policies SET revision = ?, update_time = ?, body = ?"
                    " WHERE tenant_id = ? AND revision = ? RETURNING tenant_id",
                    (*params, tenant, read_revision),
                )
        return bool(rows)

    # What the ledger knows of a person.

    def person(self, tx: Transaction, tenant: str, person_id: str) -> Person:
        consents = tx.execute(
            "SELECT channel, purpose, granted, event_time FROM person_consents"
            " WHERE tenant_id = ? AND person_id = ?",
            (tenant, person_id),
        )
        attributes = dict(
            tx.execute(
                "SELECT name, value FROM person_attributes WHERE tenant_id = ? AND person_id = ?",
                (tenant, person_id),
            )
        )
        return Person(
            consents=tuple(Consent(c, p, bool(g), int(t)) for c, p, g, t in consents),
            preferred_channel=attributes.get(PREFERRED_CHANNEL, ANY_CHANNEL),
            time_zone=attributes.get(TIME_ZONE, ""),
            engagement=engagement_store.channel_scores(tx, tenant, person_id),
        )

    def observe(
        self,
        tenant: str,
        consents: Sequence[ConsentStatement],
        attributes: Sequence[Attribute],
        engagements: Sequence[Engagement] = (),
    ) -> None:
        """Keep, per scope and per attribute, the latest of these statements and of those already stored,
        and add the engagements not seen before to their persons' channel scores."""
        if not consents and not attributes and not engagements:
            return  # most events state none of these: no write transaction for them
        persons = {c.person_id for c in consents} | {a.person_id for a in attributes}
        for person_id in persons | {e.person_id for e in engagements}:
            self._written(tenant, person_id)
        with self.transaction() as tx:
            if engagements:
                engagement_store.note(tx, tenant, engagements, self.lock_person)
            if consents:
                tx.executemany(
                    "INSERT INTO person_consents (tenant_id, person_id, channel, purpose, granted,"
                    " event_time, event_id) VALUES (?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (tenant_id, person_id, channel, purpose)"
                    " DO UPDATE SET granted = excluded.granted, event_time = excluded.event_time,"
                    " event_id = excluded.event_id WHERE " + _NEWER.format(t="person_consents"),
                    [
                        (tenant, c.person_id, c.channel, c.purpose, int(c.granted), c.event_time, c.event_id)
                        for c in consents
                    ],
                )
            if attributes:
                tx.executemany(
                    "INSERT INTO person_attributes (tenant_id, person_id, name, value, event_time, event_id)"
                    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (tenant_id, person_id, name)"
                    " DO UPDATE SET value = excluded.value, event_time = excluded.event_time,"
                    " event_id = excluded.event_id WHERE " + _NEWER.format(t="person_attributes"),
                    [(tenant, *a) for a in attributes],
                )

    def move_person(self, tx: Transaction, tenant: str, person_id: str, survivor: str) -> int:
        """Give the person's contacts to `survivor` and fold their consent and attributes into the survivor's
        (the latest statement per scope wins, so a merge never revives a consent either side withdrew
        later), and their engagement scores; both persons' locks are taken first. How many contacts
        moved."""
        for locked in sorted((person_id, survivor)):
            self.lock_person(tx, tenant, locked)
            self._written(tenant, locked)
        moved = tx.execute(
            "UPDATE contacts SET person_id = ? WHERE tenant_id = ? AND person_id = ? RETURNING contact_id",
            (survivor, tenant, person_id),
        )
        tx.execute(
            "INSERT INTO person_consents (tenant_id, person_id, channel, purpose, granted, event_time,"
            " event_id) SELECT tenant_id, ?, channel, purpose, granted, event_time, event_id"
            " FROM person_consents WHERE tenant_id = ? AND person_id = ?"
            " ON CONFLICT (tenant_id, person_id, channel, purpose)"
            " DO UPDATE SET granted = excluded.granted, event_time = excluded.event_time,"
            " event_id = excluded.event_id WHERE " + _NEWER.format(t="person_consents"),
            (survivor, tenant, person_id),
        )
        tx.execute(
            "INSERT INTO person_attributes (tenant_id, person_id, name, value, event_time, event_id)"
            " SELECT tenant_id, ?, name, value, event_time, event_id FROM person_attributes"
            " WHERE tenant_id = ? AND person_id = ? ON CONFLICT (tenant_id, person_id, name)"
            " DO UPDATE SET value = excluded.value, event_time = excluded.event_time,"
            " event_id = excluded.event_id WHERE " + _NEWER.format(t="person_attributes"),
            (survivor, tenant, person_id),
        )
        self._delete_statements(tx, tenant, person_id)
        engagement_store.move_person(tx, tenant, person_id, survivor)
        return len(moved)

    def forget_person(self, tx: Transaction, tenant: str, person_id: str) -> int:
        """Delete the person's contacts, consent, attributes and engagement (erasure); how many rows there
        were."""
        self.lock_person(tx, tenant, person_id)
        self._written(tenant, person_id)
        contacts = tx.execute(
            "DELETE FROM contacts WHERE tenant_id = ? AND person_id = ? RETURNING contact_id",
            (tenant, person_id),
        )
        deleted = len(contacts) + self._delete_statements(tx, tenant, person_id)
        return deleted + engagement_store.forget_person(tx, tenant, person_id)

    def _delete_statements(self, tx: Transaction, tenant: str, person_id: str) -> int:
        consents = tx.execute(
            "DELETE FROM person_consents WHERE tenant_id = ? AND person_id = ? RETURNING channel",
            (tenant, person_id),
        )
        attributes = tx.execute(
            "DELETE FROM person_attributes WHERE tenant_id = ? AND person_id = ? RETURNING name",
            (tenant, person_id),
        )
        return len(consents) + len(attributes)

    # The contacts.

    def history(self, tx: Transaction, tenant: str, person_id: str, after: int, until: int) -> list[Past]:
        """The person's contacts made in (after, until], as the caps count them."""
        rows = tx.execute(
            "SELECT channel, purpose, contact_time FROM contacts"
            " WHERE tenant_id = ? AND person_id = ? AND contact_time > ? AND contact_time <= ?",
            (tenant, person_id, after, until),
        )
        return [Past(channel, purpose, int(t)) for channel, purpose, t in rows]

    def contact(self, tx: Transaction, tenant: str, contact_id: str) -> Contact | None:
        rows = tx.execute(
            f"SELECT {_CONTACT_COLUMNS} FROM contacts WHERE tenant_id = ? AND contact_id = ?",
            (tenant, contact_id),
        )
        return _contact(rows[0]) if rows else None

    def insert(self, tx: Transaction, tenant: str, contact: Contact) -> bool:
        """Add `contact`; False (and nothing written) when its id is already in the tenant's ledger."""
        self._written(tenant, contact.person_id)
        rows = tx.execute(
            f"INSERT INTO contacts (tenant_id, {_CONTACT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (tenant_id, contact_id) DO NOTHING RETURNING contact_id",
            (
                tenant,
                contact.contact_id,
                contact.person_id,
                contact.channel,
                contact.purpose,
                contact.contact_time,
                contact.record_time,
                contact_body(contact),
            ),
        )
        return bool(rows)

    def page(
        self, tenant: str, where: ContactFilter, before: tuple[int, str] | None, limit: int
    ) -> tuple[list[Contact], int]:
        """Up to `limit` matching contacts, newest first, strictly after the (time, id) cursor `before`, and
        how many match in all."""
        clause = "tenant_id = ? AND person_id = ?"
        params: list[object] = [tenant, where.person_id]
        if where.start is not None:
            clause, params = clause + " AND contact_time >= ?", [*params, where.start]
        if where.end is not None:
            clause, params = clause + " AND contact_time < ?", [*params, where.end]
        if where.channel != ANY_CHANNEL:
            clause, params = clause + " AND channel = ?", [*params, where.channel]
        keyset, after = "", list[object]()
        if before is not None:
            keyset = " AND (contact_time < ? OR (contact_time = ? AND contact_id < ?))"
            after = [before[0], before[0], before[1]]
        with self.transaction() as tx:
            total = tx.execute(f"SELECT COUNT(*) FROM contacts WHERE {clause}", params)[0][0]
            rows = tx.execute(
                f"SELECT {_CONTACT_COLUMNS} FROM contacts WHERE {clause}{keyset}"
                " ORDER BY contact_time DESC, contact_id DESC LIMIT ?",
                [*params, *after, limit],
            )
        return [_contact(row) for row in rows], int(total)
