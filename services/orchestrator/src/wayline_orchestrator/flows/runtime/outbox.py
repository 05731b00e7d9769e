"""The outbox message of an allowed send: everything a connector needs to deliver it once, by its key.

Personalisation is filled here, once, when the action is sent: the connector's template variables from
their sources (`person.<trait>`, `trigger.properties.<key>`) and the `{{person.<trait>}}` and
`{{trigger.properties.<key>}}` placeholders in the string values of `payload`. The traits are the person's
as the journeys service knows them at the send (`traits_needed` names the keys, the interpreter asks for them
in one call); a source without a value takes the field's default, a placeholder without one becomes empty.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from wayline_orchestrator.flows.runtime.matching import Occurrence, read_path
from wayline_orchestrator.flows.runtime.model import Entry, Message

__all__ = ["fill_placeholders", "message_of", "personalisation", "traits_needed"]

_PERSON = "person."
_TRIGGER = "trigger."
_PLACEHOLDER = re.compile(r"\{\{\s*((?:person|trigger\.properties)\.[^{}\s]+)\s*\}\}")


def _text(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _strings(value: Any) -> list[str]:
    """Every string inside a JSON value."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def traits_needed(action: dict[str, Any]) -> list[str]:
    """The trait keys an action's personalisation and payload placeholders read, sorted, each once."""
    fields = action.get("connector", {}).get("personalisation", [])
    sources = [f.get("source", "") for f in fields]
    sources += [m.group(1) for s in _strings(action.get("payload", {})) for m in _PLACEHOLDER.finditer(s)]
    return sorted(
        {s.removeprefix(_PERSON) for s in sources if s.startswith(_PERSON) and len(s) > len(_PERSON)}
    )


def _value(source: str, trigger: Occurrence | None, traits: Mapping[str, Any]) -> str:
    """The source's value as text; '' when it has none."""
    if source.startswith(_PERSON):
        return _text(traits.get(source.removeprefix(_PERSON)))
    if source.startswith(_TRIGGER) and trigger is not None:
        return _text(read_path(trigger, source.removeprefix(_TRIGGER)))
    return ""


def _trigger(entry: Entry) -> Occurrence | None:
    return Occurrence.of_json(entry.trigger) if entry.trigger else None


def personalisation(entry: Entry, fields: list[dict[str, Any]], traits: Mapping[str, Any]) -> dict[str, str]:
    """The template variables, each from its source or else its default."""
    trigger = _trigger(entry)
    return {
        f.get("name", ""): _value(f.get("source", ""), trigger, traits) or f.get("default_value", "")
        for f in fields
    }


def fill_placeholders(value: Any, trigger: Occurrence | None, traits: Mapping[str, Any]) -> Any:
    """`value` (a JSON value) with the placeholders of its strings filled."""
    if isinstance(value, str):
        return _PLACEHOLDER.sub(lambda m: _value(m.group(1), trigger, traits), value)
    if isinstance(value, dict):
        return {k: fill_placeholders(v, trigger, traits) for k, v in value.items()}
    if isinstance(value, list):
        return [fill_placeholders(v, trigger, traits) for v in value]
    return value


def message_of(  # noqa: PLR0917 - one send's every input, at its one caller
    entry: Entry,
    step_id: str,
    key: str,
    action: dict[str, Any],
    now: int,
    traits: Mapping[str, Any] | None = None,
) -> Message:
    """`traits`: the person's traits among `traits_needed(action)` (none: every `person.` source is empty)."""
    connector = action.get("connector", {})
    known = traits or {}
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
        personalisation=personalisation(entry, connector.get("personalisation", []), known),
        payload=fill_placeholders(action.get("payload", {}), _trigger(entry), known),
    )
