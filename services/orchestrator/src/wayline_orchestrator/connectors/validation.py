"""A connector's rules, as field violations whose paths are the contract's (`connector.webhook.url`)."""

from __future__ import annotations

import re
from email.utils import parseaddr
from urllib.parse import urlsplit

from wayline.common.errors import FieldViolation
from wayline_orchestrator.connectors.model import Connector, Kind

__all__ = ["ID_PATTERN", "connector_violations", "recipient_violations"]

ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")  # as flows' connector references expect
MIN_TIMEOUT, MAX_TIMEOUT = 0.1, 300.0
MIN_BACKOFF, MAX_BACKOFF = 0.001, 3600.0
MAX_ATTEMPTS = 20
MIN_SECRET, MAX_SECRET = 16, 256
_EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")


def _webhook(connector: Connector, at: str) -> list[FieldViolation]:
    config = connector.webhook
    if config is None:
        return [FieldViolation(f"{at}.webhook", "is required for a webhook connector", "REQUIRED")]
    problems = []
    url = urlsplit(config.url)
    if url.scheme not in {"http", "https"} or not url.hostname:
        problems.append(FieldViolation(f"{at}.webhook.url", "must be an http:// or https:// URL with a host"))
    if not MIN_SECRET <= len(config.signing_secret) <= MAX_SECRET:
        problems.append(
            FieldViolation(
                f"{at}.webhook.signing_secret",
                f"must be {MIN_SECRET} to {MAX_SECRET} characters",
                "OUT_OF_RANGE",
            )
        )
    return problems


def _smtp(connector: Connector, at: str) -> list[FieldViolation]:
    config = connector.smtp
    if config is None:
        return [FieldViolation(f"{at}.smtp", "is required for an SMTP connector", "REQUIRED")]
    problems = []
    if not config.host:
        problems.append(FieldViolation(f"{at}.smtp.host", "is required", "REQUIRED"))
    if not 1 <= config.port <= 65535:
        problems.append(FieldViolation(f"{at}.smtp.port", "must be 1 to 65535", "OUT_OF_RANGE"))
    if not _EMAIL.match(parseaddr(config.from_address)[1]) or any(c in config.from_address for c in "\r\n"):
        problems.append(
            FieldViolation(f"{at}.smtp.from_address", "must be `address@domain` or `Name <address@domain>`")
        )
    if config.password and not config.username:
        problems.append(FieldViolation(f"{at}.smtp.password", "is set without a username"))
    return problems


def connector_violations(connector: Connector, at: str = "connector") -> list[FieldViolation]:
    problems = []
    if len(connector.display_name) > 200:
        problems.append(FieldViolation(f"{at}.display_name", "is longer than 200 characters", "OUT_OF_RANGE"))
    if connector.webhook is not None and connector.smtp is not None:
        problems.append(FieldViolation(at, "set one of `webhook` and `smtp`, not both"))
    problems += _webhook(connector, at) if connector.kind is Kind.WEBHOOK else _smtp(connector, at)
    if not MIN_TIMEOUT <= connector.timeout <= MAX_TIMEOUT:
        problems.append(FieldViolation(f"{at}.timeout", "must be 100 ms to 5 minutes", "OUT_OF_RANGE"))
    retry, where = connector.retry, f"{at}.retry_policy"
    if not 1 <= retry.max_attempts <= MAX_ATTEMPTS:
        problems.append(
            FieldViolation(f"{where}.max_attempts", f"must be 1 to {MAX_ATTEMPTS}", "OUT_OF_RANGE")
        )
    if not MIN_BACKOFF <= retry.initial_backoff <= MAX_BACKOFF:
        problems.append(FieldViolation(f"{where}.initial_backoff", "must be 1 ms to 1 hour", "OUT_OF_RANGE"))
    if not retry.initial_backoff <= retry.max_backoff <= MAX_BACKOFF:
        problems.append(
            FieldViolation(
                f"{where}.max_backoff",
                "must be at least `initial_backoff` and at most 1 hour",
                "OUT_OF_RANGE",
            )
        )
    return problems


def recipient_violations(kind: Kind, recipient: str) -> list[FieldViolation]:
    if not recipient:
        return [FieldViolation("recipient", "is required: who receives the test message", "REQUIRED")]
    if kind is Kind.SMTP and not _EMAIL.fullmatch(recipient):
        return [FieldViolation("recipient", "must be an email address for an SMTP connector")]
    return []
