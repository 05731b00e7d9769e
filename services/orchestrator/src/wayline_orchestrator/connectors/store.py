"""Connectors and their dead letters in SQL, the same statements on SQLite (embedded) and PostgreSQL
(production), in the orchestrator's database. Every query is scoped by tenant.

A connector's configuration, secrets included, is one JSON body; reads that leave the service mask the
secrets (see `masked`). Its revision makes updates and deletes conditional. A dead letter is keyed by
(tenant, connector, idempotency key): a message that dies again replaces its earlier letter. Letters hold
the person's addresses, so they are indexed by person for erasure (`forget_person`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
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

__all__ = ["MIGRATIONS", "ConnectorStore", "DeadLetter"]

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
)
_COLUMNS = "connector_id, kind, revision, create_time, update_time, body"


@dataclass(frozen=True)
class DeadLetter:
    connector_id: str
    message: Message
    dead_time: int  # microseconds since the epoch
    attempts: int
    response_code: int
    reason: str  # `permanent` (refused) or `exhausted` (every attempt failed transiently)
    error: str


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
    def _transaction(self) -> Iterator[Transaction]:
        with guarded_transaction(self._db, ConnectorStoreUnavailable) as tx:
            yield tx

    def get(self, tenant: str, connector_id: str) -> Connector | None:
        with self._transaction() as tx:
            rows = tx.execute(
                f"SELECT {_COLUMNS} FROM connectors WHERE tenant_id = ? AND connector_id = ?",
                (tenant, connector_id),
            )
        return _connector(rows[0]) if rows else None

    def page(self, tenant: str, after: str, limit: int) -> list[Connector]:
        """Up to `limit` connectors whose id sorts after `after`, by id."""
        with self._transaction() as tx:
            rows = tx.execute(
                f"SELECT {_COLUMNS} FROM connectors WHERE tenant_id = ? AND connector_id > ?"
                " ORDER BY connector_id LIMIT ?",
                (tenant, after, limit),
            )
        return [_connector(row) for row in rows]

    def insert(self, tenant: str, connector: Connector) -> bool:
        """Add `connector`; False (nothing written) when its id is taken."""
        with self._transaction() as tx:
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
        with self._transaction() as tx:
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
        with self._transaction() as tx:
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
        self, tenant: str, connector_id: str, message: Message, outcome: Outcome, reason: str, at: int
    ) -> None:
        """Keep `message` as a dead letter of the connector, with why it died."""
        with self._transaction() as tx:
            tx.execute(
                "INSERT INTO connector_dead_letters (tenant_id, connector_id, idempotency_key, person_id,"
                " dead_time, attempts, response_code, reason, error, message)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (tenant_id, connector_id, idempotency_key) DO UPDATE SET"
                " person_id = excluded.person_id, dead_time = excluded.dead_time,"
                " attempts = excluded.attempts,"
                " response_code = excluded.response_code, reason = excluded.reason,"
                " error = excluded.error, message = excluded.message",
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
                ),
            )

    def dead_letters(self, tenant: str, connector_id: str, limit: int = 100) -> list[DeadLetter]:
        """The connector's dead letters, the newest first."""
        with self._transaction() as tx:
            rows = tx.execute(
                "SELECT dead_time, attempts, response_code, reason, error, message"
                " FROM connector_dead_letters WHERE tenant_id = ? AND connector_id = ?"
                " ORDER BY dead_time DESC, idempotency_key LIMIT ?",
                (tenant, connector_id, limit),
            )
        return [
            DeadLetter(connector_id, _message(body), int(t), int(n), int(code), reason, error)
            for t, n, code, reason, error, body in rows
        ]

    def forget_person(self, tenant: str, person_id: str) -> int:
        """Delete the dead letters addressed to the person (erasure); how many there were."""
        with self._transaction() as tx:
            rows = tx.execute(
                "DELETE FROM connector_dead_letters WHERE tenant_id = ? AND person_id = ?"
                " RETURNING idempotency_key",
                (tenant, person_id),
            )
        return len(rows)
