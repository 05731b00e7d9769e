"""Errors of the orchestrator service, each mapped once to its status code and ErrorInfo reason by the kit."""

from __future__ import annotations

from collections.abc import Sequence

from google.protobuf import any_pb2
from google.rpc import error_details_pb2

from wayline.common.errors import (
    Aborted,
    AlreadyExists,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    Unavailable,
)

__all__ = [
    "ConnectorExists",
    "ConnectorInvalid",
    "ConnectorNotFound",
    "ConnectorStoreUnavailable",
    "ContactInvalid",
    "EtagMismatch",
    "FlowEtagMismatch",
    "FlowExists",
    "FlowIncomplete",
    "FlowInvalid",
    "FlowNotFound",
    "FlowStateConflict",
    "FlowStoreUnavailable",
    "FlowVersionNotFound",
    "HistoryUnavailable",
    "JourneysNotConfigured",
    "LedgerUnavailable",
    "PersonLookupUnavailable",
    "PolicyInvalid",
    "SimulationTooLarge",
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


def _pack(message: error_details_pb2.BadRequest | error_details_pb2.PreconditionFailure) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


class FlowInvalid(InvalidArgument):
    """A malformed flow, flow id, update mask or request field; one violation each."""

    default_reason = "FLOW_INVALID"

    def __init__(self, violations: Sequence[FieldViolation]) -> None:
        super().__init__(_summary("the flow is invalid", violations), violations)


class FlowIncomplete(FailedPrecondition):
    """A draft that cannot be published as it is: every problem, with its field path (BadRequest)."""

    default_reason = "FLOW_INVALID"

    def __init__(self, flow: str, violations: Sequence[FieldViolation]) -> None:
        super().__init__(_summary(f"{flow} cannot be published", violations), metadata={"flow": flow})
        self.violations = list(violations)

    def details(self) -> list[any_pb2.Any]:
        return [
            _pack(
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(
                            field=v.field, description=v.description, reason=v.reason
                        )
                        for v in self.violations
                    ]
                )
            )
        ]


class FlowStateConflict(FailedPrecondition):
    """The flow's state does not allow the operation (reason FLOW_ARCHIVED or FLOW_NOT_PUBLISHED), with a
    PreconditionFailure naming the flow and its state."""

    def __init__(self, flow: str, state: str, reason: str, message: str) -> None:
        super().__init__(message, reason=reason, metadata={"flow": flow, "state": state})
        self.flow, self.state = flow, state

    def details(self) -> list[any_pb2.Any]:
        violation = error_details_pb2.PreconditionFailure.Violation(
            type=self.reason, subject=self.flow, description=self.message
        )
        return [_pack(error_details_pb2.PreconditionFailure(violations=[violation]))]


class FlowExists(AlreadyExists):
    default_reason = "FLOW_EXISTS"

    def __init__(self, flow: str) -> None:
        super().__init__(f"{flow} exists (archived flows keep their ids)", metadata={"flow": flow})


class FlowNotFound(NotFound):
    default_reason = "FLOW_NOT_FOUND"

    def __init__(self, flow: str) -> None:
        super().__init__(f"{flow} does not exist", metadata={"flow": flow})


class FlowVersionNotFound(NotFound):
    default_reason = "FLOW_VERSION_NOT_FOUND"

    def __init__(self, flow: str, version: int) -> None:
        super().__init__(
            f"{flow} has no published version {version}", metadata={"flow": flow, "version": str(version)}
        )


class FlowEtagMismatch(Aborted):
    """The flow changed since the caller read it: read it again and reapply the change."""

    default_reason = "ETAG_MISMATCH"

    def __init__(self, flow: str, current: str) -> None:
        super().__init__(
            f"{flow} changed since it was read (the etag does not match); read it again",
            metadata={"flow": flow, "current_etag": current},
        )


class FlowStoreUnavailable(Unavailable):
    """The flows' database cannot be reached (or stayed locked too long): retryable."""

    default_reason = "FLOW_STORE_UNAVAILABLE"

    def __init__(self) -> None:
        super().__init__("the flows' database cannot be reached; retry with backoff", retry_after=1.0)


class ConnectorStoreUnavailable(Unavailable):
    """The connectors' database cannot be reached (or stayed locked too long): retryable."""

    default_reason = "CONNECTOR_STORE_UNAVAILABLE"

    def __init__(self) -> None:
        super().__init__("the connectors' database cannot be reached; retry with backoff", retry_after=1.0)


class PersonLookupUnavailable(Unavailable):
    """The journeys service did not answer a flow's person question (down, or slower than the timeout): the
    step's transaction rolls back so that the event or the timer is retried, rather than a branch taken on
    a guess."""

    default_reason = "JOURNEYS_UNAVAILABLE"

    def __init__(self, detail: str) -> None:
        super().__init__(
            f"the journeys service did not answer a flow's question about a person ({detail}); retry with "
            "backoff",
            retry_after=1.0,
        )


class JourneysNotConfigured(FailedPrecondition):
    """SimulateFlow replays journeys' history, and no journeys address is configured."""

    default_reason = "JOURNEYS_NOT_CONFIGURED"

    def __init__(self) -> None:
        super().__init__(
            "simulations read the stored events from journeys, and WAYLINE_ORCHESTRATOR_JOURNEYS_ADDRESS is "
            "empty"
        )


class HistoryUnavailable(Unavailable):
    """Journeys could not be reached, or failed, while a simulation read its history: retryable."""

    default_reason = "JOURNEYS_UNAVAILABLE"

    def __init__(self, detail: str) -> None:
        super().__init__(
            f"journeys could not export the history: {detail}; retry with backoff", retry_after=1.0
        )


class SimulationTooLarge(ResourceExhausted):
    """Journeys refused to export the range: it holds more events than one export streams."""

    default_reason = "QUERY_TOO_LARGE"

    def __init__(self, detail: str) -> None:
        super().__init__(
            f"the range is too large to simulate ({detail}); narrow time_range or lower max_persons",
            quota_subject="export_events",
        )
