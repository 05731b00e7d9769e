"""Connectors and their dead letters in SQL, the same statements on SQLite (embedded) and PostgreSQL
(production), in the orchestrator's database. Every query is scoped by tenant.

A connector's configuration, secrets included, is one JSON body; reads that leave the service mask the
secrets (see `masked`). Its revision makes updates and deletes conditional. A dead letter is keyed by
(tenant, connector, idempotency key): a message that dies again replaces its earlier letter. Letters hold
the person's addresses, so they are indexed by person (a merge gives them to the survivor, `move_person`;
erasure deletes them, `forget_person`, `forget_person_in`; ADR 38), and by time for ListDeadLetters'
newest-first pages. A letter names the flow step that sent it (its `Origin`), for people reading the list;
redriving it (`connectors/dead_letters.py`) takes letters out in a caller's transaction.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from typing import Any

from wayline.common.sql import Database, Transaction, guarded_transaction, migrate, unavailable_as
from wayline_orchestrator.connectors.model import (
    Channel,
    Connector,
    Kind,
    Message,
    Outcome,
    Recipient,
    RetryPolicy,
    SmtpConfig,
    WebhookConfig,
)
from wayline_orchestrator.errors import ConnectorStoreUnavailable

__all__ = ["DEAD_REASONS", "MIGRATIONS", "NO_ORIGIN", "ConnectorStore", "DeadLetter", "Origin"]

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        "CREATE TABLE connectors (tenant_id TEXT NOT NULL, connector_id TEXT NOT NULL, kind TEXT NOT NULL,"
        " revision BIGINT NOT NULL, create_time BIGINT NOT NULL, update_time BIGINT NOT NULL,"
        " body TEXT NOT NULL, PRIMARY KEY (tenant_id, connector_id))",
        "CREATE TABLE connector_dead_letters (tenant_id TEXT NOT NULL, connector_id TEXT NOT NULL,"
        " idempotency_key TEXT NOT NULL, person_id TEXT NOT NULL, dead_time BIGINT NOT NULL,"
        " attempts INTEGER NOT NULL, response_code INTEGER NOT NULL, reason TEXT NOT NULL,"
        " error TEXT NOT NULL, message TEXT NOT NULL,"
        " PRIMARY KEY (tenant_id, connector_id, idempotency_key))",
        # A letter holds the person's addresses: erasure finds their letters by person.
        "CREATE INDEX connector_dead_letters_by_person ON connector_dead_letters (tenant_id, person_id)",
    ),
    (
        # ListDeadLetters (ADR 41): the flow step and channel each letter came from, and its pages' order.
        "ALTER TABLE connector_dead_letters ADD COLUMN flow_id TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE connector_dead_letters ADD COLUMN flow_step_id TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE connector_dead_letters ADD COLUMN channel TEXT NOT NULL DEFAULT ''",
        "CREATE INDEX connector_dead_letters_by_time ON connector_dead_letters"
        " (tenant_id, connector_id, dead_time, idempotency_key)",
    ),
)
# Why a message was given up, as the contract's DeadLetter.reason lists them.
DEAD_REASONS = ("permanent", "exhausted", "unknown_connector", "missing_address")
_LETTER_COLUMNS = "dead_time, attempts, response_code, reason, error, message, flow_id, flow_step_id, channel"
_IN_CHUNK = 500  # keys per IN list
_COLUMNS = "connector_id, kind, revision, create_time, update_time, body"


@dataclass(frozen=True)
class Origin:
    """What sent a message: the flow and its step, and the contract's channel name (`CHANNEL_PUSH`); empty
    for a message sent outside a flow."""

    flow_id: str = ""
    flow_step_id: str = ""
    channel: str = ""


NO_ORIGIN = Origin()


@dataclass(frozen=True)
class DeadLetter:
    connector_id: str
    message: Message
    dead_time: int  # microseconds since the epoch
    attempts: int
    response_code: int
    reason: str  # one of DEAD_REASONS
    error: str
    origin: Origin = NO_ORIGIN


def _letter(connector_id: str, row: tuple[Any, ...]) -> DeadLetter:
    dead_time, attempts, code, reason, error, body, flow_id, step_id, channel = row
    origin = Origin(flow_id, step_id, channel)
    return DeadLetter(
        connector_id, _message(body), int(dead_time), int(attempts), int(code), reason, error, origin
    )


def _body(connector: Connector) -> str:
    body: dict[str, Any] = {
        "display_name": connector.display_name,
        "timeout": connector.timeout,
        "retry": asdict(connector.retry),
    }
    if connector.webhook is not None:
        body["webhook"] = asdict(connector.webhook)
    if connector.smtp is not None:
        body["smtp"] = asdict(connector.smtp)
    return json.dumps(body, sort_keys=True)


def _connector(row: tuple[Any, ...]) -> Connector:
    connector_id, kind, revision, create_time, update_time, body = row
    extra = json.loads(body)
    return Connector(
        connector_id=connector_id,
        kind=Kind(kind),
        display_name=extra["display_name"],
        webhook=WebhookConfig(**extra["webhook"]) if "webhook" in extra else None,
        smtp=SmtpConfig(**extra["smtp"]) if "smtp" in extra else None,
        timeout=float(extra["timeout"]),
        retry=RetryPolicy(**extra["retry"]),
        create_time=int(create_time),
        update_time=int(update_time),
        revision=int(revision),
    )


def _message_body(message: Message) -> str:
    return json.dumps(asdict(message), sort_keys=True)


def _message(body: str) -> Message:
    fields = json.loads(body)
    return Message(
        **{**fields, "channel": Channel(fields["channel"]), "recipient": Recipient(**fields["recipient"])}
    )


class ConnectorStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def migrate(self) -> int:
        with unavailable_as(ConnectorStoreUnavailable):
            return migrate(self._db, "orchestrator_connectors", MIGRATIONS)

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        with guarded_transaction(self._db, ConnectorStoreUnavailable) as tx:
            yield tx

    def get(self, tenant: str, connector_id: str) -> Connector | None:
        with self.transaction() as tx:
            rows = tx.execute(
                f"SELECT {_COLUMNS} FROM connectors WHERE tenant_id = ? AND connector_id = ?",
                (tenant, connector_id),
            )
        return _connector(rows[0]) if rows else None

    def page(self, tenant: str, after: str, limit: int) -> list[Connector]:
        """Up to `limit` connectors whose id sorts after `after`, by id."""
        with self.transaction() as tx:
            rows = tx.execute(
                f"SELECT {_COLUMNS} FROM connectors WHERE tenant_id = ? AND connector_id > ?"
                " ORDER BY connector_id LIMIT ?",
                (tenant, after, limit),
            )
        return [_connector(row) for row in rows]

    def insert(self, tenant: str, connector: Connector) -> bool:
        """Add `connector`; False (nothing written) when its id is taken."""
        with self.transaction() as tx:
            rows = tx.execute(
                f"INSERT INTO connectors (tenant_id, {_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (tenant_id, connector_id) DO NOTHING RETURNING connector_id",
                (
                    tenant,
                    connector.connector_id,
                    connector.kind.value,
                    connector.revision,
                    connector.create_time,
                    connector.update_time,
                    _body(connector),
                ),
            )
        return bool(rows)

    def replace(self, tenant: str, connector: Connector, read_revision: int) -> bool:
        """Store `connector` if the stored one is still at `read_revision`; False otherwise."""
        with self.transaction() as tx:
            rows = tx.execute(
                "UPDATE connectors SET revision = ?, update_time = ?, body = ?"
                " WHERE tenant_id = ? AND connector_id = ? AND revision = ? RETURNING connector_id",
                (
                    connector.revision,
                    connector.update_time,
                    _body(connector),
                    tenant,
                    connector.connector_id,
                    read_revision,
                ),
            )
        return bool(rows)

    def delete(self, tenant: str, connector_id: str, read_revision: int | None) -> bool:
        """Delete the connector (if still at `read_revision`, when given) and its dead letters."""
        clause, params = "tenant_id = ? AND connector_id = ?", list[object]([tenant, connector_id])
        with self.transaction() as tx:
            if read_revision is not None:
                clause, params = clause + " AND revision = ?", [*params, read_revision]
            rows = tx.execute(f"DELETE FROM connectors WHERE {clause} RETURNING connector_id", params)
            if rows:
                tx.execute(
                    "DELETE FROM connector_dead_letters WHERE tenant_id = ? AND connector_id = ?",
                    (tenant, connector_id),
                )
        return bool(rows)

    # Dead letters.

    def bury(  # noqa: PLR0917 - one letter's parts
        self,
        tenant: str,
        connector_id: str,
        message: Message,
        outcome: Outcome,
        reason: str,
        at: int,
        origin: Origin = NO_ORIGIN,
    ) -> None:
        """Keep `message` as a dead letter of the connector, with why it died and what sent it."""
        with self.transaction() as tx:
            tx.execute(
                "INSERT INTO connector_dead_letters (tenant_id, connector_id, idempotency_key, person_id,"
                " dead_time, attempts, response_code, reason, error, message, flow_id, flow_step_id, channel)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (tenant_id, connector_id, idempotency_key) DO UPDATE SET"
                " person_id = excluded.person_id, dead_time = excluded.dead_time,"
                " attempts = excluded.attempts,"
                " response_code = excluded.response_code, reason = excluded.reason,"
                " error = excluded.error, message = excluded.message, flow_id = excluded.flow_id,"
                " flow_step_id = excluded.flow_step_id, channel = excluded.channel",
                (
                    tenant,
                    connector_id,
                    message.idempotency_key,
                    message.recipient.person_id,
                    at,
                    outcome.attempts,
                    outcome.response_code,
                    reason,
                    outcome.error,
                    _message_body(message),
                    origin.flow_id,
                    origin.flow_step_id,
                    origin.channel,
                ),
            )

    def dead_letters(
        self, tenant: str, connector_id: str, limit: int = 100, before: tuple[int, str] | None = None
    ) -> list[DeadLetter]:
        """Up to `limit` of the connector's dead letters, the newest first (by time, then key, both
        descending), strictly after the (dead time, key) cursor `before`."""
        keyset, after = "", list[object]()
        if before is not None:
            keyset = " AND (dead_time < ? OR (dead_time = ? AND idempotency_key < ?))"
            after = [before[0], before[0], before[1]]
        with self.transaction() as tx:
            rows = tx.execute(
                f"SELECT {_LETTER_COLUMNS} FROM connector_dead_letters"
                f" WHERE tenant_id = ? AND connector_id = ?{keyset}"
                " ORDER BY dead_time DESC, idempotency_key DESC LIMIT ?",
                [tenant, connector_id, *after, limit],
            )
        return [_letter(connector_id, row) for row in rows]

    def letter_keys(
        self, tx: Transaction, tenant: str, connector_id: str, keys: Sequence[str] | None
    ) -> list[str]:
        """The idempotency keys among `keys` (None: all) that are dead letters of the connector."""
        if keys is None:
            rows = tx.execute(
                "SELECT idempotency_key FROM connector_dead_letters WHERE tenant_id = ? AND connector_id = ?",
                (tenant, connector_id),
            )
            return [key for (key,) in rows]
        found: list[str] = []
        wanted = sorted(set(keys))
        for start in range(0, len(wanted), _IN_CHUNK):
            chunk = wanted[start : start + _IN_CHUNK]
            rows = tx.execute(
                "SELECT idempotency_key FROM connector_dead_letters WHERE tenant_id = ? AND connector_id = ?"
                f" AND idempotency_key IN ({', '.join('?' * len(chunk))})",
                [tenant, connector_id, *chunk],
            )
            found += [key for (key,) in rows]
        return found

    def remove_letters(self, tx: Transaction, tenant: str, connector_id: str, keys: Sequence[str]) -> int:
        """Delete the connector's letters of these keys; how many there were."""
        removed = 0
        for start in range(0, len(keys), _IN_CHUNK):
            chunk = list(keys[start : start + _IN_CHUNK])
            rows = tx.execute(
                "DELETE FROM connector_dead_letters WHERE tenant_id = ? AND connector_id = ?"
                f" AND idempotency_key IN ({', '.join('?' * len(chunk))}) RETURNING idempotency_key",
                [tenant, connector_id, *chunk],
            )
            removed += len(rows)
        return removed

    def forget_person(self, tenant: str, person_id: str) -> int:
        """Delete the dead letters addressed to the person (erasure); how many there were."""
        with self.transaction() as tx:
            return self.forget_person_in(tx, tenant, person_id)

    def forget_person_in(self, tx: Transaction, tenant: str, person_id: str) -> int:
        """`forget_person` in a transaction the caller opened (an erasure, with the person's other state)."""
        rows = tx.execute(
            "DELETE FROM connector_dead_letters WHERE tenant_id = ? AND person_id = ?"
            " RETURNING idempotency_key",
            (tenant, person_id),
        )
        return len(rows)

    def move_person(self, tx: Transaction, tenant: str, person_id: str, survivor: str) -> int:
        """Readdress the person's dead letters to `survivor` (a merge); how many there were."""
        rows = tx.execute(
            "SELECT connector_id, idempotency_key, message FROM connector_dead_letters"
            " WHERE tenant_id = ? AND person_id = ?",
            (tenant, person_id),
        )
        updates = []
        for connector_id, key, body in rows:
            message = _message(body)
            moved = replace(message, recipient=replace(message.recipient, person_id=survivor))
            updates.append((survivor, _message_body(moved), tenant, connector_id, key))
        tx.executemany(
            "UPDATE connector_dead_letters SET person_id = ?, message = ?"
            " WHERE tenant_id = ? AND connector_id = ? AND idempotency_key = ?",
            updates,
        )
        return len(updates)
