"""The demo's HTTP step: a Segment SDK's batch, posted as analytics.js would (HTTP Basic write key, Segment's
field names, a non-UUID messageId), lands in the journey store; a bad message in it is named, not lost."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime
from typing import Any

from rich.console import Console

__all__ = ["post_segment_batch"]


def post_segment_batch(http_port: int, write_key: str, user_id: str, console: Console) -> int:
    """Post a three-message batch (one of them invalid) to the collector; how many it accepted."""
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    batch: list[dict[str, Any]] = [
        {
            "type": "page",
            "userId": user_id,
            "name": "Pricing",
            "properties": {"url": "https://shop.example/pricing", "title": "Pricing"},
            "messageId": f"ajs-next-{uuid.uuid4().hex}",
            "timestamp": now,
        },
        {
            "type": "track",
            "userId": user_id,
            "event": "Trial Started",
            "properties": {"plan": "pro"},
            "context": {"library": {"name": "analytics.js", "version": "2.11.1"}},
            "messageId": f"ajs-next-{uuid.uuid4().hex}",
            "timestamp": now,
        },
        {"type": "track", "userId": user_id, "messageId": "ajs-bad-1", "timestamp": now},  # no event name
    ]
    request = urllib.request.Request(
        f"http://127.0.0.1:{http_port}/v1/batch",
        data=json.dumps({"batch": batch, "sentAt": now}).encode(),
        headers={
            "Content-Type": "application/json",
            "Authorization": "Basic " + base64.b64encode(f"{write_key}:".encode()).decode(),
        },
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - see above
            status, body = response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        status, body = error.code, json.loads(error.read() or b"{}")
    rejected = body.get("rejected", [])
    accepted = int(body.get("accepted", len(batch) - len(rejected) if body.get("success") else 0))
    named = ", ".join(f"{r['messageId']} ({r['errors'][0]['field']})" for r in rejected)
    console.print(
        f"[bold]HTTP /v1/batch[/bold] (Segment's format, write key as Basic user): {status}, "
        f"{accepted} accepted; rejected: {named or 'none'}"
    )
    return accepted
