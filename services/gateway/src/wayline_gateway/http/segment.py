"""One Segment HTTP Tracking API message (track, identify, page, screen, alias, group) → a Wayline Event.

Pure functions, free of HTTP and gRPC: the collector parses the body, calls `to_event` per message and sends
the events to ingest. A message Segment's API would refuse (no userId nor anonymousId, a track without
`event`, a field of the wrong type) raises `InvalidMessage` with every problem and its path in Segment's
names (`batch[2].event`), so the sender can fix its payload. Ingest's own checks come back with paths in
Wayline's names (`events[0].identifiers[1].value`); `segment_path` turns them back into the sender's names.

What is kept, field by field: see docs/http-collector.md. Two rules worth knowing here:

- `messageId` is the deduplication key. A UUID is kept as it is; anything else (`ajs-next-…`, a hash)
  becomes uuid5(MESSAGE_ID_NAMESPACE, messageId), so a retried message gets the same event id and is stored
  once. The namespace holds neither tenant nor write key: ingest and journeys already deduplicate per tenant,
  so two tenants sending the same messageId never collide, and one tenant's events keep their id when it
  rotates its write key. No messageId: ingest derives the id from the event's content, as for gRPC callers.
- Times: the device's clock is `timestamp` (Segment's libraries) or `originalTimestamp` (RudderStack's);
  with `sentAt`, ingest corrects it for clock skew and keeps it as `original_timestamp`, Segment's formula.
  A message with both has been through a Segment-like server already: its `timestamp` is the corrected time
  and is taken as it is, without `sentAt`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from wayline.common.errors import FieldViolation
from wayline.common.timestamps import to_timestamp
from wayline.event.v1 import event_pb2
from wayline_gateway.http.json_fields import Fields, Violations
from wayline_gateway.http.segment_context import channel_of, context_from

__all__ = ["KINDS", "MESSAGE_ID_NAMESPACE", "InvalidMessage", "Mapped", "event_id_of", "to_event"]

# uuid5(NAMESPACE_URL, "https://wayline.dev/ns/segment-message-id"). Fixed forever: changing it would give
# retries of already stored messages new ids.
MESSAGE_ID_NAMESPACE = uuid.UUID("e02bf236-5e28-5cc0-a73c-0987dd3df945")

KINDS: Mapping[str, event_pb2.EventType.ValueType] = {
    "track": event_pb2.EVENT_TYPE_TRACK,
    "identify": event_pb2.EVENT_TYPE_IDENTIFY,
    "page": event_pb2.EVENT_TYPE_PAGE,
    "screen": event_pb2.EVENT_TYPE_SCREEN,
    "alias": event_pb2.EVENT_TYPE_ALIAS,
    "group": event_pb2.EVENT_TYPE_GROUP,
}
_PAGE_KEYS = (
    "path",
    "referrer",
    "search",
    "title",
    "url",
)  # filled from page properties when context lacks them
_MAX_UNITS = Decimal(2**63 - 1)


class InvalidMessage(Exception):
    """The message cannot become an event; `violations` says why, with paths in Segment's field names."""

    def __init__(self, violations: Violations) -> None:
        super().__init__("; ".join(f"{v.field}: {v.description}" for v in violations))
        self.violations = violations


@dataclass(frozen=True)
class Mapped:
    """An event and, for reporting ingest's rejections, which Segment field each of its fields came from."""

    event: event_pb2.Event
    sources: Mapping[str, str]  # Wayline field path (relative to the event) → the sender's path

    def segment_path(self, field: str) -> str:
        """The sender's path of a Wayline field path such as `identifiers[0].value` or `properties.price`."""
        for wayline, segment in sorted(self.sources.items(), key=lambda item: -len(item[0])):
            if field == wayline or field.startswith((wayline + ".", wayline + "[")) or not wayline:
                rest = field[len(wayline) :].lstrip(".")
                if wayline.startswith("identifiers[") and rest == "value":
                    rest = ""  # the id itself is the value
                return f"{segment}.{rest}" if segment and rest else segment or rest or "message"
        return field


def event_id_of(message_id: str) -> str:
    """The event id of a Segment messageId: the UUID itself (canonical form), else a stable uuid5 of it."""
    try:
        return str(uuid.UUID(message_id))
    except ValueError:
        return str(uuid.uuid5(MESSAGE_ID_NAMESPACE, message_id))


def to_event(message: Any, kind: str | None, path: str) -> Mapped:
    """Map one message. `kind` is the endpoint's call type; None for a batch item, whose `type` says it.
    `path` prefixes every reported path (`batch[3]`, or empty for a single call)."""
    found: Violations = []
    if not isinstance(message, dict):
        raise InvalidMessage([FieldViolation(path or "body", "must be a JSON object", "INVALID_TYPE")])
    fields = Fields(message, path, found)
    name = kind or fields.text("type")
    if name not in KINDS:
        fields.report("type", f"must be one of {', '.join(KINDS)}", "REQUIRED" if not name else "INVALID")
        raise InvalidMessage(found)
    mapped = _Builder(fields, KINDS[name]).build()
    if found:
        raise InvalidMessage(found)
    return mapped


class _Builder:
    def __init__(self, fields: Fields, kind: event_pb2.EventType.ValueType) -> None:
        self.fields, self.kind = fields, kind
        self.event = event_pb2.Event(type=kind)
        self.sources: dict[str, str] = {"": fields.prefix}

    def source(self, wayline: str, segment_key: str) -> None:
        self.sources[wayline] = self.fields.path(segment_key)

    def build(self) -> Mapped:
        fields, event = self.fields, self.event
        message_id = fields.ident("messageId")
        if message_id:
            event.event_id = event_id_of(message_id)
            self.source("event_id", "messageId")
        self._identifiers()
        self._name()
        self._times()
        context_fields = fields.obj("context")
        event.context.CopyFrom(context_from(context_fields))
        self.source("context", "context")
        self._page_and_screen()
        event.channel = channel_of(
            self.kind,
            (fields.text("channel"), context_fields.text("channel") if context_fields else ""),
            event.context,
        )
        self._properties()
        self._group(context_fields)
        integrations = fields.obj("integrations")
        if integrations is not None:
            fields.copy_into(event.integrations, "integrations", integrations.data)
        return Mapped(event, self.sources)

    def _identifiers(self) -> None:
        fields, event = self.fields, self.event
        user_id, anonymous_id = fields.ident("userId"), fields.ident("anonymousId")
        for kind, value, key in (
            ("user_id", user_id, "userId"),
            ("anonymous_id", anonymous_id, "anonymousId"),
        ):
            if value:
                self.source(f"identifiers[{len(event.identifiers)}]", key)
                event.identifiers.add(type=kind, value=value)
        if (
            not user_id
            and not anonymous_id
            and "userId" not in fields.data
            and "anonymousId" not in fields.data
        ):
            fields.report("userId", "a userId or an anonymousId is required", "REQUIRED")
        elif not user_id and not anonymous_id:
            fields.report("userId", "a userId or an anonymousId must not be empty", "REQUIRED")
        if self.kind != event_pb2.EVENT_TYPE_ALIAS:
            return
        previous = fields.ident("previousId")
        if not previous:
            fields.report("previousId", "alias calls need the previousId they link to the userId", "REQUIRED")
            return
        # analytics.js sends the anonymousId as previousId until the person was identified, the old userId
        # after; server-side libraries send an old userId.
        kind = "anonymous_id" if previous == anonymous_id else "user_id"
        event.previous_identifier.type, event.previous_identifier.value = kind, previous
        if (kind, previous) not in {(i.type, i.value) for i in event.identifiers}:
            self.source(f"identifiers[{len(event.identifiers)}]", "previousId")
            event.identifiers.add(type=kind, value=previous)

    def _name(self) -> None:
        fields = self.fields
        if self.kind == event_pb2.EVENT_TYPE_TRACK:
            self.event.name = fields.text("event")
            if not self.event.name and not any(f.field == fields.path("event") for f in fields.found):
                fields.report(
                    "event", "track calls need the event name, such as 'Order Completed'", "REQUIRED"
                )
            self.source("name", "event")
        elif self.kind in (event_pb2.EVENT_TYPE_PAGE, event_pb2.EVENT_TYPE_SCREEN):
            self.event.name = fields.text("name")
            self.source("name", "name")

    def _times(self) -> None:
        fields, event = self.fields, self.event
        sent, original = fields.time("timestamp"), fields.time("originalTimestamp")
        happened = sent or original
        if happened is not None:
            event.timestamp.CopyFrom(to_timestamp(happened))
            self.source("timestamp", "timestamp" if sent else "originalTimestamp")
        sent_at = fields.time("sentAt")
        if sent_at is not None and not (sent and original):  # both: already corrected, see the docstring
            event.sent_at.CopyFrom(to_timestamp(sent_at))
            self.source("sent_at", "sentAt")

    def _page_and_screen(self) -> None:
        fields, context = self.fields, self.event.context
        category = fields.text("category")
        if self.kind == event_pb2.EVENT_TYPE_PAGE:
            properties = fields.data.get("properties")
            if isinstance(properties, dict):
                for key in _PAGE_KEYS:
                    value = properties.get(key)
                    if isinstance(value, str) and value and not getattr(context.page, key):
                        setattr(context.page, key, value)
            if category:
                context.page.category = category
        elif self.kind == event_pb2.EVENT_TYPE_SCREEN:
            if self.event.name:
                context.screen.name = self.event.name
            if category:
                context.screen.category = category

    def _properties(self) -> None:
        fields, event = self.fields, self.event
        key = (
            "traits"
            if self.kind in (event_pb2.EVENT_TYPE_IDENTIFY, event_pb2.EVENT_TYPE_GROUP)
            else "properties"
        )
        source = fields.obj(key)
        if source is None:
            return
        fields.copy_into(event.properties, key, source.data)
        self.source("properties", key)
        if self.kind == event_pb2.EVENT_TYPE_TRACK:
            self._revenue(source)

    def _revenue(self, properties: Fields) -> None:
        """Segment's `revenue` and `currency` (USD by default) properties: the event's monetary value."""
        amount = properties.data.get("revenue")
        # Segment's own HTTP API example sends it as a string ("39.95"): a numeric string counts too.
        if isinstance(amount, bool) or not isinstance(amount, int | float | str):
            return
        try:
            value = Decimal(str(amount).strip()).quantize(Decimal("1e-9"))
        except InvalidOperation:
            return  # not a number: it stays a property only
        if not value.is_finite():
            return
        if abs(value) > _MAX_UNITS:
            properties.report("revenue", "is too large for an amount of money", "OUT_OF_RANGE")
            return
        units = int(value)
        currency = properties.data.get("currency")
        self.event.revenue.currency_code = (
            currency.upper() if isinstance(currency, str) and currency else "USD"
        )
        self.event.revenue.units = units
        self.event.revenue.nanos = int((value - units) * 1_000_000_000)
        self.sources["revenue"] = properties.path("revenue")
        self.sources["revenue.currency_code"] = properties.path("currency")

    def _group(self, context: Fields | None) -> None:
        fields = self.fields
        group_id = fields.ident("groupId")
        if group_id:
            self.source("group_id", "groupId")
        elif context is not None and (group_id := context.ident("groupId")):
            self.sources["group_id"] = context.path("groupId")
        elif self.kind == event_pb2.EVENT_TYPE_GROUP:
            fields.report("groupId", "group calls need the groupId the person joins", "REQUIRED")
        self.event.group_id = group_id
