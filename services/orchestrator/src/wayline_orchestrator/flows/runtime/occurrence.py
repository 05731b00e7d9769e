"""One event of a person as the flows' runtime reads it (`Occurrence`), and the JSON form an entry keeps of
its triggering event and of the events since (`as_json`, `of_json`).

Free of protobuf: ObserveEvents' conversion (person_events.py) hands each occurrence an `EventSource` that
makes its parts on first read. Most events the service observes concern no flow, and converting every
event's properties was most of ObserveEvents' work; the event fields `text` (an email body, a transcript:
possibly long), `group_id`, `sentiment_score` and `revenue` are made apart from the properties, so a matcher
that reads one of them does not convert the other.

The stored form omits an event field at its default (`text` and `group_id` empty, `sentiment_score` and
`revenue` absent), so an event without them is stored as before these fields were read, and a form stored
before then loads with them absent."""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

__all__ = ["EventFields", "EventSource", "JsonObject", "Occurrence"]

JsonObject = dict[str, Any]


class EventFields(NamedTuple):
    """The event fields a property path names besides `name`, `type` and `channel` (analytics.proto):
    strings that are always set ('' when empty), and numbers that may be absent (None)."""

    text: str = ""
    group_id: str = ""
    sentiment_score: float | None = None
    revenue: float | None = None  # the amount as a decimal number (the currency is not compared)


_DEFAULTS = EventFields()


class EventSource(Protocol):
    """Where a `converting` occurrence gets the parts it makes on first read."""

    def json_objects(self) -> tuple[JsonObject, JsonObject]:
        """The properties and the context, as JSON objects (proto field names)."""
        ...

    def fields(self) -> EventFields: ...


class Occurrence:
    """One event of a person: its enum values by their value names (`EVENT_TYPE_TRACK`, `CHANNEL_WEB`), its
    time in microseconds since the epoch, its properties and context as JSON objects, and its other event
    fields (`EventFields`)."""

    __slots__ = (
        "_context",
        "_fields",
        "_fields_from",
        "_objects_from",
        "_properties",
        "channel",
        "event_id",
        "name",
        "person_id",
        "time",
        "type",
    )

    def __init__(  # noqa: PLR0917 - the event's fields, as the JSON form and the tests name them
        self,
        event_id: str,
        person_id: str,
        name: str,
        time: int,
        type: str = "EVENT_TYPE_UNSPECIFIED",
        channel: str = "CHANNEL_UNSPECIFIED",
        properties: JsonObject | None = None,
        context: JsonObject | None = None,
        *,
        text: str = "",
        group_id: str = "",
        sentiment_score: float | None = None,
        revenue: float | None = None,
    ) -> None:
        self.event_id, self.person_id, self.name, self.time = event_id, person_id, name, time
        self.type, self.channel = type, channel
        self._properties: JsonObject = {} if properties is None else properties
        self._context: JsonObject = {} if context is None else context
        unset = not text and not group_id and sentiment_score is None and revenue is None
        # The shared defaults for most events (an immutable tuple): a new one costs ObserveEvents per event.
        self._fields = _DEFAULTS if unset else EventFields(text, group_id, sentiment_score, revenue)
        self._objects_from: EventSource | None = None
        self._fields_from: EventSource | None = None

    @classmethod
    def converting(  # noqa: PLR0917 - as __init__, the source of the rest in their place
        cls,
        event_id: str,
        person_id: str,
        name: str,
        time: int,
        type: str,
        channel: str,
        source: EventSource,
    ) -> Occurrence:
        """An occurrence whose properties and context, and whose other event fields, `source` makes when
        first read (each part on its own)."""
        # Made without __init__ (its keywords and checks): ObserveEvents makes one of these per event.
        made = cls.__new__(cls)
        made.event_id, made.person_id, made.name, made.time = event_id, person_id, name, time
        made.type, made.channel = type, channel
        made._properties, made._context, made._fields = {}, {}, _DEFAULTS
        made._objects_from = made._fields_from = source
        return made

    def _json_objects(self) -> None:
        if self._objects_from is not None:
            self._properties, self._context = self._objects_from.json_objects()
            self._objects_from = None

    @property
    def properties(self) -> JsonObject:
        self._json_objects()
        return self._properties

    @property
    def context(self) -> JsonObject:
        self._json_objects()
        return self._context

    @property
    def fields(self) -> EventFields:
        if self._fields_from is not None:
            self._fields = self._fields_from.fields()
            self._fields_from = None
        return self._fields

    def as_json(self) -> JsonObject:
        stored: JsonObject = {
            "event_id": self.event_id,
            "person_id": self.person_id,
            "name": self.name,
            "time": self.time,
            "type": self.type,
            "channel": self.channel,
            "properties": self.properties,
            "context": self.context,
        }
        for key, value, default in zip(EventFields._fields, self.fields, _DEFAULTS, strict=True):
            if value != default:  # a zero amount is set (0.0 != None): kept, unlike an absent one
                stored[key] = value
        return stored

    @classmethod
    def of_json(cls, value: JsonObject) -> Occurrence:
        return cls(**value)

    def __eq__(self, other: object) -> bool:
        return self.as_json() == other.as_json() if isinstance(other, Occurrence) else NotImplemented

    __hash__ = None  # type: ignore[assignment]  # equal by value and mutable, as the dataclass it replaced

    def __repr__(self) -> str:
        return f"Occurrence({self.as_json()!r})"
