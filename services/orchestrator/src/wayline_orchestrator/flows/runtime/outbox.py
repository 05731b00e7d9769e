"""The outbox message of an allowed send: everything a connector needs to deliver it once, by its key."""

from __future__ import annotations

from typing import Any

from wayline_orchestrator.flows.runtime.matching import Occurrence, read_path
from wayline_orchestrator.flows.runtime.model import Entry, Message

__all__ = ["message_of"]


def _text(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def personalisation(entry: Entry, fields: list[dict[str, Any]]) -> dict[str, str]:
    """The template variables: `trigger.properties.<key>` from the triggering event; `person.<trait>` takes
    its default (the profile's traits are the journeys service's, not read yet)."""
    trigger = Occurrence.of_json(entry.trigger) if entry.trigger else None
    values: dict[str, str] = {}
    for field in fields:
        source: str = field.get("source", "")
        found: Any = None
        if source.startswith("trigger.") and trigger is not None:
            found = read_path(trigger, source.removeprefix("trigger."))
        values[field.get("name", "")] = _text(found) or field.get("default_value", "")
    return values


def message_of(entry: Entry, step_id: str, key: str, action: dict[str, Any], now: int) -> Message:
    connector = action.get("connector", {})
    return Message(
        idempotency_key=key,
        flow_id=entry.flow_id,
        version=entry.version,
        person_id=entry.person_id,
        entry_number=entry.number,
        step_id=step_id,
        channel=action["channel"],
        create_time=now,
        purpose=action.get("purpose", "CONTACT_PURPOSE_MARKETING"),
        action_id=action.get("action_id", ""),
        connector=connector.get("connector", ""),
        template_id=connector.get("template_id", ""),
        personalisation=personalisation(entry, connector.get("personalisation", [])),
        payload=action.get("payload", {}),
    )
