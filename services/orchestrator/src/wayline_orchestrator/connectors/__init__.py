"""Connectors: the configured ways of delivering a flow's messages to people — signed webhooks (which also
carry push and SMS to the tenant's providers) and SMTP email — with retries, backoff and dead letters.
Nothing here knows gRPC; the servicer converts."""

from wayline_orchestrator.connectors.delivery import Deliverer, test_message
from wayline_orchestrator.connectors.model import (
    MASK,
    Attempt,
    Channel,
    Connector,
    Kind,
    Message,
    Outcome,
    Recipient,
    RetryPolicy,
    SmtpConfig,
    Status,
    WebhookConfig,
)
from wayline_orchestrator.connectors.store import ConnectorStore, DeadLetter

__all__ = [
    "MASK",
    "Attempt",
    "Channel",
    "Connector",
    "ConnectorStore",
    "DeadLetter",
    "Deliverer",
    "Kind",
    "Message",
    "Outcome",
    "Recipient",
    "RetryPolicy",
    "SmtpConfig",
    "Status",
    "WebhookConfig",
    "test_message",
]
