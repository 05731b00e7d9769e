"""Helpers of the person tests (EvaluatePersonConditions, GetPersonProperties, BatchGetPersonProperties):
fresh person ids, identify events carrying traits, refs by id or identifier, and one person's properties."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, TypeAlias

from google.protobuf import json_format

from tests.journeys.conftest import Journeys
from tests.journeys.segments_support import event
from wayline.event.v1 import event_pb2
from wayline.journeys.v1 import journeys_service_pb2 as pb

__all__ = ["Person", "identify", "person", "person_ref", "properties"]

Person: TypeAlias = str | tuple[str, str]
"""A person by id, or by an identifier (type, value)."""


def person() -> str:
    return f"p-{uuid.uuid4().hex[:10]}"


def identify(person: str, at: datetime, **traits: Any) -> event_pb2.Event:
    """An identify event of `person` at `at` setting `traits` (carrying the user id `u-<person>`)."""
    found = event(person, "Identify", at)
    found.type = event_pb2.EVENT_TYPE_IDENTIFY
    json_format.ParseDict(traits, found.properties)
    return found


def person_ref(person: Person) -> event_pb2.PersonRef:
    if isinstance(person, str):
        return event_pb2.PersonRef(person_id=person)
    return event_pb2.PersonRef(identifier=event_pb2.Identifier(type=person[0], value=person[1]))


def properties(journeys: Journeys, person: Person, *keys: str) -> pb.GetPersonPropertiesResponse:
    """GetPersonProperties' answer for the person and keys (none: every property)."""
    request = pb.GetPersonPropertiesRequest(person=person_ref(person), keys=keys)
    response: pb.GetPersonPropertiesResponse = journeys.stub.GetPersonProperties(
        request, metadata=journeys.metadata, timeout=10
    )
    return response
