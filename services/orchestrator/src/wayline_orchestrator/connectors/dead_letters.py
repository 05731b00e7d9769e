"""A connector's dead letters as the contract offers them: pages, newest first, and the redrive that puts
letters back in the outbox. Free of gRPC.

A redrive takes the letters out and makes their outbox messages PENDING again, due at once, their attempts
reset, under their original idempotency keys (so a receiver that saw an earlier attempt still deduplicates),
in one transaction: a crash leaves either the letter or the pending message, never both or neither. The
outbox is reached through the `Requeue` protocol, so this module does not depend on the flows' runtime.
A letter whose outbox message is no longer DEAD (delivered meanwhile, or erased with its person) is left as
it is and not counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from wayline.common.errors import FieldViolation
from wayline.common.sql import Transaction
from wayline_orchestrator.connectors.catalogue import connector_name
from wayline_orchestrator.connectors.store import ConnectorStore, DeadLetter
from wayline_orchestrator.errors import ConnectorInvalid, ConnectorNotFound
from wayline_orchestrator.field_checks import text_violation

__all__ = ["MAX_REDRIVE_KEYS", "DeadLetters", "LetterPage", "Requeue"]

MAX_REDRIVE_KEYS = 1_000


class Requeue(Protocol):
    def requeue(self, tx: Transaction, tenant: str, keys: Sequence[str]) -> list[str]:
        """Make the DEAD outbox messages of these keys PENDING again; the keys that were DEAD."""
        ...


@dataclass(frozen=True)
class LetterPage:
    letters: list[DeadLetter]
    more: bool


def _redrive_violations(keys: Sequence[str], every: bool) -> list[FieldViolation]:
    if every and keys:
        return [FieldViolation("idempotency_keys", "must be empty when `all` is set", "CONFLICTING")]
    if not every and not keys:
        return [FieldViolation("idempotency_keys", "give the keys to redrive, or set `all`", "REQUIRED")]
    if len(keys) > MAX_REDRIVE_KEYS:
        return [FieldViolation("idempotency_keys", f"at most {MAX_REDRIVE_KEYS} keys", "TOO_MANY")]
    # A key is bound into SQL as text, which cannot hold NUL on PostgreSQL: refused on both engines alike.
    problems = (
        text_violation(f"idempotency_keys[{i}]", key)
        if key
        else FieldViolation(f"idempotency_keys[{i}]", "must not be empty", "REQUIRED")
        for i, key in enumerate(keys)
    )
    return [problem for problem in problems if problem is not None]


class DeadLetters:
    def __init__(self, store: ConnectorStore, outbox: Requeue) -> None:
        self._store = store
        self._outbox = outbox

    def _require(self, tenant: str, connector_id: str) -> None:
        if self._store.get(tenant, connector_id) is None:
            raise ConnectorNotFound(connector_name(connector_id))

    def page(self, tenant: str, connector_id: str, before: tuple[int, str] | None, limit: int) -> LetterPage:
        """Up to `limit` letters of the connector after the (dead time, key) cursor, newest first."""
        self._require(tenant, connector_id)
        found = self._store.dead_letters(tenant, connector_id, limit + 1, before)
        return LetterPage(found[:limit], len(found) > limit)

    def redrive(self, tenant: str, connector_id: str, keys: Sequence[str], every: bool) -> int:
        """Put the connector's letters of `keys` (every letter when `every`) back in the outbox; how many
        went. Keys that are not letters of the connector are ignored."""
        problems = _redrive_violations(keys, every)
        if problems:
            raise ConnectorInvalid(problems)
        self._require(tenant, connector_id)
        with self._store.transaction() as tx:
            letters = self._store.letter_keys(tx, tenant, connector_id, None if every else keys)
            requeued = self._outbox.requeue(tx, tenant, letters)
            self._store.remove_letters(tx, tenant, connector_id, requeued)
        return len(requeued)
