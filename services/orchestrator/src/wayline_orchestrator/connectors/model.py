"""What a connector is and what it delivers, free of gRPC: the message to a person, the connector's
configuration, and the outcome of a delivery."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

__all__ = [
    "MASK",
    "Attempt",
    "Channel",
    "Connector",
    "Kind",
    "Message",
    "Outcome",
    "Recipient",
    "RetryPolicy",
    "SmtpConfig",
    "Status",
    "WebhookConfig",
]

MASK = "********"  # what reads return in place of a stored secret


class Channel(StrEnum):
    """The channel a message goes out on; it picks the webhook payload's shape."""

    EMAIL = "email"
    SMS = "sms"
    PUSH = "push"
    WEBHOOK = "webhook"


class Kind(StrEnum):
    WEBHOOK = "webhook"
    SMTP = "smtp"


class Status(StrEnum):
    DELIVERED = "delivered"
    TRANSIENT = "transient"  # a retry may cure it
    PERMANENT = "permanent"  # a retry cannot


@dataclass(frozen=True)
class Recipient:
    """Who receives a message: the person and the address the channel needs."""

    person_id: str = ""
    email: str = ""
    phone: str = ""  # E.164, for SMS
    device_token: str = ""  # for push


@dataclass(frozen=True)
class Message:
    """One message to one person. `idempotency_key` is the same for every attempt and every resend of the
    message (a flow derives it from the person's step), so receivers can drop duplicates."""

    channel: Channel
    recipient: Recipient
    idempotency_key: str
    subject: str = ""
    body: str = ""
    template_id: str = ""
    personalisation: dict[str, str] = field(default_factory=dict)
    action_id: str = ""  # the flow's action (a decided one, with decision_placement): what the receiver sends
    decision_id: str = ""  # the decision that chose it, for Feedback


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    initial_backoff: float = 0.5  # seconds
    max_backoff: float = 30.0


@dataclass(frozen=True)
class WebhookConfig:
    url: str = ""
    signing_secret: str = ""


@dataclass(frozen=True)
class SmtpConfig:
    host: str = ""
    port: int = 587
    starttls: bool = False
    username: str = ""
    password: str = ""
    from_address: str = ""


@dataclass(frozen=True)
class Connector:
    connector_id: str
    kind: Kind
    display_name: str = ""
    webhook: WebhookConfig | None = None
    smtp: SmtpConfig | None = None
    timeout: float = 10.0  # seconds, per attempt
    retry: RetryPolicy = RetryPolicy()
    create_time: int = 0  # microseconds since the epoch
    update_time: int = 0
    revision: int = 0

    @property
    def etag(self) -> str:
        return f"{self.revision}-{self.update_time:x}"


@dataclass(frozen=True)
class Attempt:
    """One attempt's result: `retry_after` is the receiver's own wait (Retry-After), when it said one."""

    status: Status
    response_code: int = 0
    error: str = ""
    retry_after: float | None = None


@dataclass(frozen=True)
class Outcome:
    status: Status
    attempts: int
    response_code: int = 0
    error: str = ""
    duration: float = 0.0  # seconds, every attempt and wait included
    dead_lettered: bool = False
