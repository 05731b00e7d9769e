"""The contract's PersonRef (a person id or an identifier) → person_refs.PersonRef, with its violations."""

from __future__ import annotations

from wayline.common.errors import FieldViolation
from wayline.event.v1 import event_pb2
from wayline_journeys.person_refs import PersonRef

__all__ = ["person_ref"]


def person_ref(ref: event_pb2.PersonRef, path: str, violations: list[FieldViolation]) -> PersonRef:
    """The ref; an empty PersonRef after recording why it is unusable (an identifier needs its type and
    value, a person id must not be empty)."""
    kind = ref.WhichOneof("ref")
    if kind == "person_id" and ref.person_id:
        return PersonRef(person_id=ref.person_id)
    if kind == "identifier" and ref.identifier.type and ref.identifier.value:
        return PersonRef(identifier=(ref.identifier.type, ref.identifier.value))
    if kind == "identifier":
        violations.append(
            FieldViolation(f"{path}.identifier", "type and value are both required", "REQUIRED")
        )
    else:
        violations.append(FieldViolation(path, "set a non-empty person_id or identifier", "REQUIRED"))
    return PersonRef()
