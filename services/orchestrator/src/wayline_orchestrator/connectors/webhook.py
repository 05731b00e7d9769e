"""Webhook delivery: one signed JSON POST per attempt (payloads in docs/connectors.md).

Each request carries `Wayline-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">` (the scheme
of Stripe and Svix: the timestamp in the signed text lets a receiver refuse replays) and the message's
`Idempotency-Key`, the same on every attempt. 2xx delivers; 429, 5xx, timeouts and network errors are
transient (Retry-After honoured); any other status, redirects included, is permanent.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from wayline_orchestrator.connectors.model import Attempt, Channel, Message, Status, WebhookConfig

__all__ = ["SIGNATURE_HEADER", "payload", "sign", "verify", "webhook_attempt"]

SIGNATURE_HEADER = "Wayline-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
TEST_TYPE = "test"


def _content(message: Message) -> dict[str, Any]:
    content: dict[str, Any] = {}
    if message.template_id:
        content["template_id"] = message.template_id
    if message.personalisation:
        content["personalisation"] = dict(message.personalisation)
    if message.action_id:
        content["action_id"] = message.action_id
    if message.decision_id:
        content["decision_id"] = message.decision_id
    return content


def payload(message: Message, created: int, event_type: str = "") -> dict[str, Any]:
    """The JSON body for `message`: an envelope (`id`, `type`, `created`) around the channel's `data`."""
    to = message.recipient
    data: dict[str, Any]
    if message.channel is Channel.SMS:
        data = {"to": to.phone, "person_id": to.person_id, "text": message.body}
    elif message.channel is Channel.PUSH:
        data = {
            "device_token": to.device_token,
            "person_id": to.person_id,
            "title": message.subject,
            "body": message.body,
        }
    elif message.channel is Channel.EMAIL:
        data = {"to": to.email, "person_id": to.person_id, "subject": message.subject, "body": message.body}
    else:
        recipient = {
            k: v
            for k, v in (
                ("person_id", to.person_id),
                ("email", to.email),
                ("phone", to.phone),
                ("device_token", to.device_token),
            )
            if v
        }
        data = {"recipient": recipient, "subject": message.subject, "body": message.body}
    data.update(_content(message))
    return {
        "id": message.idempotency_key,
        "type": event_type or f"message.{message.channel.value}",
        "created": created,
        "data": data,
    }


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header's value for `body` sent at `timestamp`."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: str, header: str, body: bytes, now: float, tolerance: float = 300.0) -> bool:
    """What a receiver does: recompute the signature and refuse a stale timestamp (a replay)."""
    parts = [part.split("=", 1) for part in header.split(",") if "=" in part]
    timestamps = [value for key, value in parts if key == "t"]
    if len(timestamps) != 1 or not (timestamps[0].isascii() and timestamps[0].isdigit()):
        return False
    timestamp = int(timestamps[0])
    if abs(now - timestamp) > tolerance:
        return False
    expected = sign(secret, timestamp, body).split(",v1=", 1)[1]
    return any(key == "v1" and hmac.compare_digest(value, expected) for key, value in parts)


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    seconds = value.strip()
    if seconds.isascii() and seconds.isdigit():  # str.isdigit alone takes `²`, which float() refuses
        return float(seconds)
    try:
        return max(parsedate_to_datetime(value).timestamp() - time.time(), 0.0)
    except (TypeError, ValueError):
        return None


def webhook_attempt(
    client: httpx.Client, config: WebhookConfig, body: bytes, *, key: str, timeout: float, number: int
) -> Attempt:
    """POST `body` once."""
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "wayline-orchestrator",
        IDEMPOTENCY_HEADER: key,
        "Wayline-Attempt": str(number),
        SIGNATURE_HEADER: sign(config.signing_secret, int(time.time()), body),
    }
    try:
        response = client.post(config.url, content=body, headers=headers, timeout=timeout)
    except httpx.TimeoutException:
        return Attempt(Status.TRANSIENT, error=f"no answer within {timeout:g} s")
    except httpx.HTTPError as error:
        return Attempt(Status.TRANSIENT, error=f"{type(error).__name__}: {error}")
    code = response.status_code
    if 200 <= code < 300:
        return Attempt(Status.DELIVERED, code)
    text = f"HTTP {code}: {response.text[:200]}".rstrip(": ")
    if code == 429 or code >= 500:
        return Attempt(Status.TRANSIENT, code, text, _retry_after(response.headers.get("Retry-After")))
    return Attempt(Status.PERMANENT, code, text)


def encode(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()
