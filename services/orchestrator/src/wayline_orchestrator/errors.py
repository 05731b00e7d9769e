"""Errors of the orchestrator service, each mapped once to its status code and ErrorInfo reason by the kit."""

from __future__ import annotations

from collections.abc import Sequence

from wayline.common.errors import (
    Aborted,
    AlreadyExists,
    FieldViolation,
    InvalidArgument,
    NotFound,
    Unavailable,
)

__all__ = [
    "ConnectorExists",
    "ConnectorInvalid",
    "ConnectorNotFound",
    "ContactInvalid",
    "EtagMismatch",
    "LedgerUnavailable",
    "PolicyInvalid",
]


def _summary(what: str, violations: Sequence[FieldViolation]) -> str:
    first = violations[0]
    more = f" (and {len(violations) - 1} more problems)" if len(violations) > 1 else ""
    return f"{what}: {first.field}: {first.description}{more}"


class PolicyInvalid(InvalidArgument):
    """A contact policy (or an update's mask) that breaks the policy's rules; one violation each."""

    default_reason = "CONTACT_POLICY_INVALID"

    def __init__(self, violations: Sequence[FieldViolation]) -> None:
        super().__init__(_summary("the contact policy is invalid", violations), violations)


class ContactInvalid(InvalidArgument):
    """A malformed CheckContact, RecordContact, ListContacts or ObserveEvents request."""

    default_reason = "CONTACT_REQUEST_INVALID"

    def __init__(self, violations: Sequence[FieldViolation]) -> None:
        super().__init__(_summary("the request is invalid", violations), violations)


class EtagMismatch(Aborted):
    """The policy (or a connector) changed since the caller read it: read it again and reapply the change."""

    default_reason = "ETAG_MISMATCH"

    def __init__(self, current: str, what: str = "the contact policy") -> None:
        super().__init__(
            f"{what} changed since it was read (the etag does not match); read it again and "
            "reapply the change",
            metadata={"current_etag": current},
        )


class ConnectorInvalid(InvalidArgument):
    """A connector (or a connector request) that breaks the connector's rules; one violation each."""

    default_reason = "CONNECTOR_INVALID"

    def __init__(self, violations: Sequence[FieldViolation]) -> None:
        super().__init__(_summary("the connector is invalid", violations), violations)


class ConnectorNotFound(NotFound):
    default_reason = "CONNECTOR_NOT_FOUND"

    def __init__(self, name: str) -> None:
        super().__init__(f"no connector {name!r}", metadata={"name": name})


class ConnectorExists(AlreadyExists):
    default_reason = "CONNECTOR_EXISTS"

    def __init__(self, name: str) -> None:
        super().__init__(f"the connector {name!r} already exists", metadata={"name": name})


class LedgerUnavailable(Unavailable):
    """The ledger's database cannot be reached (or stayed locked too long): retryable."""

    default_reason = "LEDGER_UNAVAILABLE"

    def __init__(self) -> None:
        super().__init__(
            "the contact ledger's database cannot be reached; retry with backoff", retry_after=1.0
        )
