"""CheckContact's workload: a tenant's contact policy with every kind of rule, and a ledger pre-filled with
history for many persons, written straight into the orchestrator's tables (after its migrations) so that
100k persons take seconds; only the RPC is timed.

The policy: frequency caps per channel (email 3 in 7 days, push 2 a day, SMS 1 a day) and across channels
(6 in 7 days, 12 in 30 days: the longest window, the range each check reads), quiet hours 22:00-08:00 in the
person's zone (Europe/Paris when unknown), email marketing opt-in, SMS opt-out, and a default channel order.
Each person has `CONTACTS_PER_PERSON` contacts spread over the last 30 days; half granted email marketing
consent and a tenth withdrew it; a fifth have a time zone and a tenth a preferred channel. A check asks for
email and push marketing at once, as Decide does for its candidate channels.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg

from wayline.common.sql import Database
from wayline.event.v1 import event_pb2
from wayline.orchestrator.v1 import contact_pb2, contact_policy_pb2
from wayline.orchestrator.v1 import orchestrator_service_pb2 as pb
from wayline_orchestrator.contacts import ContactLedger, ContactStore
from wayline_orchestrator.contacts.codec import contact_body
from wayline_orchestrator.contacts.model import (
    ChannelPreference,
    ConsentRule,
    Contact,
    ContactCheck,
    ContactPolicy,
    FrequencyCap,
    QuietHours,
)

__all__ = [
    "CHECKS",
    "CONTACTS_PER_PERSON",
    "POLICY",
    "check_requests",
    "database_path",
    "fill_ledger",
    "person_id",
]

DAY_US = 86_400 * 1_000_000
CONTACTS_PER_PERSON = 6
EMAIL, PUSH, SMS = "CHANNEL_EMAIL", "CHANNEL_PUSH", "CHANNEL_SMS"
MARKETING, TRANSACTIONAL = "CONTACT_PURPOSE_MARKETING", "CONTACT_PURPOSE_TRANSACTIONAL"
ZONES = ("Europe/Paris", "America/New_York", "Asia/Tokyo", "Europe/London")

POLICY = ContactPolicy(
    frequency_caps=(
        FrequencyCap(channel=EMAIL, max_contacts=3, window_us=7 * DAY_US),
        FrequencyCap(channel=PUSH, max_contacts=2, window_us=DAY_US),
        FrequencyCap(channel=SMS, max_contacts=1, window_us=DAY_US),
        FrequencyCap(max_contacts=6, window_us=7 * DAY_US),
        FrequencyCap(max_contacts=12, window_us=30 * DAY_US),
    ),
    quiet_hours=(QuietHours(start_minute=22 * 60, end_minute=8 * 60, default_time_zone="Europe/Paris"),),
    consent_rules=(
        ConsentRule(channel=EMAIL, purpose=MARKETING, mode="CONSENT_MODE_OPT_IN"),
        ConsentRule(channel=SMS, mode="CONSENT_MODE_OPT_OUT"),
    ),
    channel_preference=ChannelPreference(default_order=(PUSH, EMAIL, SMS)),
)
CHECKS = (ContactCheck(EMAIL, MARKETING), ContactCheck(PUSH, MARKETING))

Row = tuple[Any, ...]


def person_id(index: int) -> str:
    return f"person-{index:07d}"


def _rows(tenant: str, start: int, stop: int, now: int, rng: random.Random) -> tuple[list[Row], ...]:
    contacts: list[Row] = []
    consents: list[Row] = []
    attributes: list[Row] = []
    for i in range(start, stop):
        person = person_id(i)
        for n in range(CONTACTS_PER_PERSON):
            channel = rng.choice((EMAIL, EMAIL, PUSH, SMS))
            purpose = TRANSACTIONAL if n == 0 else MARKETING
            at = now - rng.randrange(30 * DAY_US)
            contact = Contact(
                f"{person}/c{n}", person, channel, purpose, action_id=f"action-{n}", contact_time=at
            )
            contacts.append(
                (tenant, contact.contact_id, person, channel, purpose, at, at, contact_body(contact))
            )
        if i % 2 == 0:
            consents.append(
                (tenant, person, EMAIL, MARKETING, int(i % 10 != 0), now - DAY_US, f"{person}/e1")
            )
        if i % 5 == 0:
            attributes.append(
                (tenant, person, "time_zone", ZONES[i % len(ZONES)], now - DAY_US, f"{person}/e2")
            )
        if i % 10 == 3:
            attributes.append((tenant, person, "preferred_channel", PUSH, now - DAY_US, f"{person}/e3"))
    return contacts, consents, attributes


_TABLES = (
    "contacts (tenant_id, contact_id, person_id, channel, purpose, contact_time, record_time, body)",
    "person_consents (tenant_id, person_id, channel, purpose, granted, event_time, event_id)",
    "person_attributes (tenant_id, person_id, name, value, event_time, event_id)",
)


def fill_ledger(db: Database, url: str | None, tenant: str, persons: int, seed: int = 12) -> int:
    """Set the tenant's policy and write `persons` persons' history; the contacts written."""
    store = ContactStore(db)
    store.migrate()
    ContactLedger(store).update_policy(tenant, POLICY, (), "")
    rng = random.Random(seed)
    now = time.time_ns() // 1_000
    written = 0
    for start in range(0, persons, 20_000):
        tables = _rows(tenant, start, min(persons, start + 20_000), now, rng)
        written += len(tables[0])
        if url:  # COPY: the fast path into PostgreSQL
            with psycopg.connect(url) as connection, connection.cursor() as cursor:
                for table, rows in zip(_TABLES, tables, strict=True):
                    with cursor.copy(f"COPY {table} FROM STDIN") as copy:
                        for row in rows:
                            copy.write_row(row)
            continue
        with db.transaction() as tx:
            for table, rows in zip(_TABLES, tables, strict=True):
                if rows:
                    tx.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' for _ in rows[0])})", rows)
    _analyze(db, url)
    return written


def _analyze(db: Database, url: str | None) -> None:
    if url:
        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute("VACUUM ANALYZE")
    else:
        with db.transaction() as tx:
            tx.execute("ANALYZE")


def check_requests(persons: int, count: int, seed: int = 7) -> list[bytes]:
    """`count` serialised CheckContact requests, for persons drawn evenly from the filled ones."""
    rng = random.Random(seed)
    checks: Sequence[contact_pb2.ContactCheck] = [
        contact_pb2.ContactCheck(
            channel=event_pb2.Channel.Value(c.channel),
            purpose=contact_policy_pb2.ContactPurpose.Value(c.purpose),
        )
        for c in CHECKS
    ]
    return [
        pb.CheckContactRequest(person_id=person_id(rng.randrange(persons)), checks=checks).SerializeToString()
        for _ in range(count)
    ]


def database_path(data_dir: Path) -> Path:
    """Where the orchestrator keeps its SQLite database under WAYLINE_DATA_DIR."""
    return data_dir / "orchestrator" / "orchestrator.db"
