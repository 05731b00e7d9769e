"""Connectors between the contract and the model: a request's connector to a draft (defaults applied), a
stored connector to its message (secrets masked), an update's mask applied to the stored connector, and a
delivery's outcome."""

from __future__ import annotations

from google.protobuf.duration_pb2 import Duration
from google.protobuf.field_mask_pb2 import FieldMask

from wayline.common.errors import FieldViolation
from wayline.common.paging import decode_page_token, encode_page_token, invalid_page_token, page_size
from wayline.common.timestamps import duration_violation
from wayline.orchestrator.v1 import connector_pb2 as connector_pb
from wayline.orchestrator.v1 import orchestrator_service_pb2 as pb
from wayline_orchestrator.connectors import (
    MASK,
    Connector,
    Kind,
    Outcome,
    RetryPolicy,
    SmtpConfig,
    Status,
    WebhookConfig,
)
from wayline_orchestrator.connectors.catalogue import connector_name
from wayline_orchestrator.converters import timestamp
from wayline_orchestrator.errors import ConnectorInvalid
from wayline_orchestrator.field_checks import text_violation

__all__ = [
    "connector_message",
    "connector_of",
    "list_connectors_request",
    "list_connectors_response",
    "merged",
    "outcome_message",
]

_KINDS = {
    connector_pb.CONNECTOR_KIND_WEBHOOK: Kind.WEBHOOK,
    connector_pb.CONNECTOR_KIND_SMTP: Kind.SMTP,
}
_KIND_VALUES = {kind: value for value, kind in _KINDS.items()}
_STATUSES = {
    Status.DELIVERED: connector_pb.DELIVERY_STATUS_DELIVERED,
    Status.TRANSIENT: connector_pb.DELIVERY_STATUS_FAILED_TRANSIENT,
    Status.PERMANENT: connector_pb.DELIVERY_STATUS_FAILED_PERMANENT,
}
_DEFAULT_TIMEOUT, _DEFAULT_PORT = 10.0, 587
_DEFAULTS = RetryPolicy()
# The mask paths UpdateConnector accepts; a kind's paths only on a connector of that kind.
_COMMON_PATHS = frozenset(
    {
        "display_name",
        "timeout",
        "retry_policy",
        "retry_policy.max_attempts",
        "retry_policy.initial_backoff",
        "retry_policy.max_backoff",
    }
)
_EVERY_FIELD = ("display_name", "timeout", "retry_policy")  # an empty mask's, with the kind's config
_KIND_PATHS = {
    Kind.WEBHOOK: frozenset({"webhook", "webhook.url", "webhook.signing_secret"}),
    Kind.SMTP: frozenset(
        {
            "smtp",
            "smtp.host",
            "smtp.port",
            "smtp.starttls",
            "smtp.username",
            "smtp.password",
            "smtp.from_address",
        }
    ),
}


def _seconds(duration: Duration) -> float:
    return duration.seconds + duration.nanos / 1e9


def _duration(seconds: float) -> Duration:
    message = Duration()
    message.FromNanoseconds(round(seconds * 1e9))
    return message


def _kind(message: connector_pb.Connector, at: str) -> Kind:
    config = message.WhichOneof("config")
    inferred = Kind(config) if config else None
    if message.kind == connector_pb.CONNECTOR_KIND_UNSPECIFIED:
        if inferred is None:
            raise ConnectorInvalid(
                [FieldViolation(f"{at}.kind", "is required (or set `webhook` or `smtp`)", "REQUIRED")]
            )
        return inferred
    if message.kind not in _KINDS:
        raise ConnectorInvalid([FieldViolation(f"{at}.kind", f"{message.kind} is not a ConnectorKind")])
    return _KINDS[message.kind]


def connector_of(message: connector_pb.Connector, connector_id: str = "", at: str = "connector") -> Connector:
    """The draft a request's connector describes, its unset fields at their defaults."""
    retry = message.retry_policy
    # Durations the wire allows but protobuf does not (beyond ±10,000 years, nanos of the wrong sign) are
    # refused as such; their ranges as timeouts and backoffs are the connector's rules (validation.py).
    durations = (
        duration_violation(message.timeout, f"{at}.timeout"),
        duration_violation(retry.initial_backoff, f"{at}.retry_policy.initial_backoff"),
        duration_violation(retry.max_backoff, f"{at}.retry_policy.max_backoff"),
    )
    problems = [problem for problem in durations if problem is not None]
    if problems:
        raise ConnectorInvalid(problems)
    return Connector(
        connector_id=connector_id,
        kind=_kind(message, at),
        display_name=message.display_name,
        webhook=WebhookConfig(message.webhook.url, message.webhook.signing_secret)
        if message.HasField("webhook")
        else None,
        smtp=SmtpConfig(
            host=message.smtp.host,
            port=message.smtp.port or _DEFAULT_PORT,
            starttls=message.smtp.starttls,
            username=message.smtp.username,
            password=message.smtp.password,
            from_address=message.smtp.from_address,
        )
        if message.HasField("smtp")
        else None,
        timeout=_seconds(message.timeout) if message.HasField("timeout") else _DEFAULT_TIMEOUT,
        retry=RetryPolicy(
            max_attempts=retry.max_attempts or _DEFAULTS.max_attempts,
            initial_backoff=_seconds(retry.initial_backoff)
            if retry.HasField("initial_backoff")
            else _DEFAULTS.initial_backoff,
            max_backoff=_seconds(retry.max_backoff)
            if retry.HasField("max_backoff")
            else _DEFAULTS.max_backoff,
        ),
    )


def _mask(secret: str, *, masked: bool) -> str:
    return MASK if masked and secret else secret


def connector_message(connector: Connector, *, masked: bool = True) -> connector_pb.Connector:
    """The connector as the contract shows it: with its secrets replaced by `********` unless `masked` is
    False (only for merging an update, never for a response)."""
    message = connector_pb.Connector(
        name=connector_name(connector.connector_id),
        display_name=connector.display_name,
        kind=_KIND_VALUES[connector.kind],
        timeout=_duration(connector.timeout),
        retry_policy=connector_pb.RetryPolicy(
            max_attempts=connector.retry.max_attempts,
            initial_backoff=_duration(connector.retry.initial_backoff),
            max_backoff=_duration(connector.retry.max_backoff),
        ),
        create_time=timestamp(connector.create_time),
        update_time=timestamp(connector.update_time),
        etag=connector.etag,
    )
    if connector.webhook is not None:
        message.webhook.CopyFrom(
            connector_pb.WebhookConfig(
                url=connector.webhook.url,
                signing_secret=_mask(connector.webhook.signing_secret, masked=masked),
            )
        )
    if connector.smtp is not None:
        smtp = connector.smtp
        message.smtp.CopyFrom(
            connector_pb.SmtpConfig(
                host=smtp.host,
                port=smtp.port,
                starttls=smtp.starttls,
                username=smtp.username,
                password=_mask(smtp.password, masked=masked),
                from_address=smtp.from_address,
            )
        )
    return message


def merged(current: Connector, changes: connector_pb.Connector, paths: list[str]) -> Connector:
    """`current` with the fields of `changes` named in `paths` (empty: every writable field). A secret sent
    back as `********` keeps the stored one."""
    if changes.kind not in {connector_pb.CONNECTOR_KIND_UNSPECIFIED, _KIND_VALUES[current.kind]}:
        raise ConnectorInvalid([FieldViolation("connector.kind", "cannot change after creation")])
    allowed = _COMMON_PATHS | _KIND_PATHS[current.kind]
    problems = [
        FieldViolation(f"update_mask.paths[{i}]", f"{path!r} is not a writable field of this connector")
        for i, path in enumerate(paths)
        if path not in allowed
    ]
    if problems:
        raise ConnectorInvalid(problems)
    incoming = connector_pb.Connector()
    incoming.CopyFrom(changes)
    if incoming.webhook.signing_secret == MASK and current.webhook is not None:
        incoming.webhook.signing_secret = current.webhook.signing_secret
    if incoming.smtp.password == MASK and current.smtp is not None:
        incoming.smtp.password = current.smtp.password
    target = connector_message(current, masked=False)
    mask = FieldMask(paths=paths or [*_EVERY_FIELD, current.kind.value])
    mask.MergeMessage(incoming, target, replace_message_field=True, replace_repeated_field=True)
    target.kind = _KIND_VALUES[current.kind]
    return connector_of(target, current.connector_id)


def list_connectors_request(request: pb.ListConnectorsRequest) -> tuple[str, int]:
    """(the id to continue after, the page size)."""
    limit = page_size(request.page_size, default=50, maximum=1_000)
    if not request.page_token:
        return "", limit
    after = decode_page_token(request.page_token, "ListConnectors").get("after")
    # A NUL cannot be sent to PostgreSQL as text: refused on both engines alike (no service issues one).
    if not isinstance(after, str) or text_violation("page_token", after) is not None:
        raise invalid_page_token("ListConnectors")
    return after, limit


def list_connectors_response(connectors: list[Connector], more: bool) -> pb.ListConnectorsResponse:
    token = encode_page_token({"after": connectors[-1].connector_id}) if more and connectors else ""
    return pb.ListConnectorsResponse(
        connectors=[connector_message(c) for c in connectors], next_page_token=token
    )


def outcome_message(outcome: Outcome) -> connector_pb.DeliveryOutcome:
    return connector_pb.DeliveryOutcome(
        status=_STATUSES[outcome.status],
        attempts=outcome.attempts,
        response_code=outcome.response_code,
        error_message=outcome.error,
        duration=_duration(outcome.duration),
    )
