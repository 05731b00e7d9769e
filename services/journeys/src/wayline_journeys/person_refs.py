"""Persons as requests name them: by id, or by an identifier that stands for the current person of the latest
event carrying it. GetCustomerValue, GetLifecycleStages, GetSegmentMemberships and GetProfileFeatures take
both forms, and their stores resolve identifiers through this one protocol (implemented once, in
store/person_refs.py). No protobuf, no SQL."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = ["IdentifierResolver", "PersonRef", "resolve_persons"]


@dataclass(frozen=True)
class PersonRef:
    """A requested person: by id, or by an identifier (type, value)."""

    person_id: str = ""
    identifier: tuple[str, str] | None = None


class IdentifierResolver(Protocol):
    def current_persons(
        self, tenant: str, identifiers: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], str]:
        """The current person of the latest event carrying each identifier; identifiers no event carries are
        missing from the answer."""
        ...


def resolve_persons(resolver: IdentifierResolver, tenant: str, refs: Sequence[PersonRef]) -> list[str]:
    """One person id per ref, in order: a ref's id as it is, an identifier's current person ('' when no event
    carries it). One store call for all identifiers, none when there are none."""
    identifiers = sorted({r.identifier for r in refs if r.identifier is not None})
    owners = resolver.current_persons(tenant, identifiers) if identifiers else {}
    return [owners.get(r.identifier, "") if r.identifier is not None else r.person_id for r in refs]
