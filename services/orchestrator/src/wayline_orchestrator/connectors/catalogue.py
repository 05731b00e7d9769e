"""The tenant's connectors as resources: create, read, update and delete them (conditionally on their etag),
and send a test message through one. Reads hand out the stored connector; masking its secrets is the
converters' job, at the edge."""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable

from wayline.common.errors import FieldViolation
from wayline_orchestrator.connectors.delivery import Deliverer, test_message
from wayline_orchestrator.connectors.model import Connector, Outcome
from wayline_orchestrator.connectors.store import ConnectorStore
from wayline_orchestrator.connectors.validation import ID_PATTERN, connector_violations, recipient_violations
from wayline_orchestrator.errors import ConnectorExists, ConnectorInvalid, ConnectorNotFound, EtagMismatch

__all__ = ["ConnectorCatalogue", "connector_name", "parse_name"]

PREFIX = "connectors/"


def connector_name(connector_id: str) -> str:
    return PREFIX + connector_id


def parse_name(name: str, field: str = "name") -> str:
    """The connector id of `connectors/{connector_id}`. Matched as CreateConnector matched ids until 2026-12
    (`match`, whose `$` also matches before a final newline): a connector stored then as `push-hook\n` must
    stay reachable, to be read, changed or deleted (ADR 78). New ids are matched whole (`create`); a name
    with a final newline that no connector has is NOT_FOUND."""
    connector_id = name.removeprefix(PREFIX)
    if not name.startswith(PREFIX) or not ID_PATTERN.match(connector_id):
        raise ConnectorInvalid([FieldViolation(field, "must be `connectors/{connector_id}`")])
    return connector_id


def _now() -> int:
    return int(time.time() * 1e6)


class ConnectorCatalogue:
    def __init__(self, store: ConnectorStore, deliverer: Deliverer, clock: Callable[[], int] = _now) -> None:
        self._store = store
        self._deliverer = deliverer
        self._clock = clock

    def get(self, tenant: str, connector_id: str) -> Connector:
        found = self._store.get(tenant, connector_id)
        if found is None:
            raise ConnectorNotFound(connector_name(connector_id))
        return found

    def page(self, tenant: str, after: str, limit: int) -> tuple[list[Connector], bool]:
        """Up to `limit` connectors after the id `after`, and whether more follow."""
        found = self._store.page(tenant, after, limit + 1)
        return found[:limit], len(found) > limit

    def create(self, tenant: str, draft: Connector) -> Connector:
        """Store `draft` under its id (a generated one when empty)."""
        connector_id = draft.connector_id or f"c-{uuid.uuid4().hex[:12]}"
        problems = (
            []
            if ID_PATTERN.fullmatch(connector_id)
            else [FieldViolation("connector_id", "must be lower-kebab-case, 3 to 63 characters")]
        )
        problems += connector_violations(draft)
        if problems:
            raise ConnectorInvalid(problems)
        now = self._clock()
        connector = dataclasses.replace(
            draft, connector_id=connector_id, create_time=now, update_time=now, revision=1
        )
        if not self._store.insert(tenant, connector):
            raise ConnectorExists(connector_name(connector_id))
        return connector

    def update(self, tenant: str, current: Connector, updated: Connector, etag: str) -> Connector:
        """Replace `current` (as read) by `updated`, if `etag` (when given) is still the stored one."""
        if etag and etag != current.etag:
            raise EtagMismatch(current.etag, "the connector")
        problems = connector_violations(updated)
        if problems:
            raise ConnectorInvalid(problems)
        stored = dataclasses.replace(
            updated,
            connector_id=current.connector_id,
            kind=current.kind,
            create_time=current.create_time,
            update_time=max(self._clock(), current.update_time + 1),
            revision=current.revision + 1,
        )
        if not self._store.replace(tenant, stored, current.revision):
            raise EtagMismatch(self.get(tenant, current.connector_id).etag, "the connector")
        return stored

    def delete(self, tenant: str, connector_id: str, etag: str) -> None:
        current = self.get(tenant, connector_id)
        if etag and etag != current.etag:
            raise EtagMismatch(current.etag, "the connector")
        if not self._store.delete(tenant, connector_id, current.revision if etag else None):
            if etag:
                raise EtagMismatch(self.get(tenant, connector_id).etag, "the connector")
            raise ConnectorNotFound(connector_name(connector_id))

    def test(self, tenant: str, connector_id: str, recipient: str) -> Outcome:
        """Send one test message through the connector: one attempt, no retry, no dead letter."""
        connector = self.get(tenant, connector_id)
        problems = recipient_violations(connector.kind, recipient)
        if problems:
            raise ConnectorInvalid(problems)
        message = test_message(connector, recipient, f"test-{uuid.uuid4()}")
        return self._deliverer.test(connector, message)
