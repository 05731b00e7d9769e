"""A customer named on the command line: a person id, or any identifier as `type:value` (split at the first
colon, so a value may hold more: `anonymous_id:cookie:42`). Person ids hold no colon."""

from __future__ import annotations

import typer

from wayline.event.v1 import event_pb2

__all__ = ["person_ref"]


def person_ref(subject: str) -> event_pb2.PersonRef:
    """The PersonRef `subject` names; a usage error (exit 2) when it names nobody."""
    text = subject.strip()
    if not text:
        raise typer.BadParameter("give a person id or an identifier as type:value")
    kind, colon, value = text.partition(":")
    if not colon:
        return event_pb2.PersonRef(person_id=text)
    if not kind or not value:
        raise typer.BadParameter(f"{subject!r}: an identifier is type:value, such as email:ann@example.com")
    return event_pb2.PersonRef(identifier=event_pb2.Identifier(type=kind, value=value))
