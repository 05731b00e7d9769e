"""Segment's `context` object → Wayline's EventContext, and the channel a Segment message came from.

Every key Segment's spec names lands in its typed field (`app`, `campaign`, `device`, `ip`, `library`,
`locale`, `location`, `os`, `page`, `screen`, `timezone`, `userAgent`, `traits`); what has no typed field
(`active`, `network`, `referrer`, `userAgentData`, `device.token`, custom keys) is kept verbatim in
`extra`, under the same key, so nothing a sender sent is lost. Segment's `context.screen` is the display
(width, height, density), so it fills `device.display_*`; Wayline's `context.screen` is the app screen a
screen call names.
"""

from __future__ import annotations

import re
from typing import Any

from wayline.event.v1 import event_pb2
from wayline_gateway.http.json_fields import Fields

__all__ = ["channel_of", "context_from"]

_COUNTRY_CODE = re.compile(r"^[A-Za-z]{2}$")
# Segment's device.type is a platform (`ios`, `android`); only form factors fill Wayline's device type.
_DEVICE_TYPES = {
    name.removeprefix("DEVICE_TYPE_").lower(): number
    for name, number in event_pb2.DeviceType.items()
    if number != event_pb2.DEVICE_TYPE_UNSPECIFIED
} | {"phone": event_pb2.DEVICE_TYPE_MOBILE}
# RudderStack's top-level `channel` and an explicit `context.channel`: Wayline's names, and the SDKs' own.
_CHANNELS = {
    name.removeprefix("CHANNEL_").lower(): number
    for name, number in event_pb2.Channel.items()
    if number != event_pb2.CHANNEL_UNSPECIFIED
} | {
    "mobile": event_pb2.CHANNEL_MOBILE_APP,
    "server": event_pb2.CHANNEL_OTHER,
    "sources": event_pb2.CHANNEL_OTHER,
}
_MOBILE_OS = ("ios", "iphone os", "ipados", "android", "tvos", "watchos")


def _strings(source: Fields, target: Any, names: dict[str, str]) -> set[str]:
    """Copy the string keys `names` (Segment key → proto field) onto `target`; the keys it handled."""
    for key, field in names.items():
        value = source.text(key)
        if value:
            setattr(target, field, value)
    return set(names)


def _device(source: Fields, device: event_pb2.Device) -> set[str]:
    known = _strings(
        source,
        device,
        {"id": "id", "manufacturer": "manufacturer", "model": "model", "name": "name",
         "advertisingId": "advertising_id"},
    )  # fmt: skip
    tracking = source.flag("adTrackingEnabled")
    if tracking is not None:
        device.ad_tracking_enabled = tracking
    kind = source.text("type").lower()
    if kind in _DEVICE_TYPES:
        device.type = _DEVICE_TYPES[kind]
        known.add("type")
    return known | {"adTrackingEnabled"}


_MAX_PIXELS = 2**31 - 1  # the display's int32 fields


def _display(source: Fields, device: event_pb2.Device) -> set[str]:
    width, height = source.count("width", _MAX_PIXELS), source.count("height", _MAX_PIXELS)
    density = source.number("density")
    if width is not None:
        device.display_width = width
    if height is not None:
        device.display_height = height
    if density is not None:
        device.display_density = density
    return {"width", "height", "density"}


def _location(source: Fields, location: event_pb2.Location) -> set[str]:
    known = _strings(source, location, {"city": "city", "region": "region", "postalCode": "postal_code"})
    country = source.text("country")
    if _COUNTRY_CODE.fullmatch(country):  # Wayline's is ISO 3166-1 alpha-2; a country's name stays in extra
        location.country = country.upper()
        known.add("country")
    latitude, longitude = source.number("latitude"), source.number("longitude")
    if latitude is not None:
        location.latitude = latitude
    if longitude is not None:
        location.longitude = longitude
    return known | {"latitude", "longitude"}


_SIMPLE = {"ip": "ip", "locale": "locale", "timezone": "timezone", "userAgent": "user_agent"}
_PARTS = {  # Segment key → (EventContext field, string keys → proto fields)
    "app": ("app", {"name": "name", "version": "version", "build": "build", "namespace": "namespace"}),
    "campaign": (
        "campaign",
        {
            "name": "name",
            "source": "source",
            "medium": "medium",
            "term": "term",
            "content": "content",
            "id": "id",
        },
    ),
    "library": ("library", {"name": "name", "version": "version"}),
    "os": ("os", {"name": "name", "version": "version"}),
    "page": (
        "page",
        {"path": "path", "referrer": "referrer", "search": "search", "title": "title", "url": "url"},
    ),
}
# Handled elsewhere: `groupId` becomes the event's group_id, `channel` its channel (see the message mapping).
_HANDLED = frozenset({*_SIMPLE, *_PARTS, "device", "screen", "location", "traits", "groupId", "channel"})


def context_from(source: Fields | None) -> event_pb2.EventContext:
    """The EventContext of a Segment `context` object (empty when there is none)."""
    context = event_pb2.EventContext()
    if source is None:
        return context
    extra: dict[str, Any] = source.rest(_HANDLED)
    _strings(source, context, _SIMPLE)
    for key, (field, names) in _PARTS.items():
        part = source.obj(key)
        if part is not None:
            _keep_rest(extra, key, part, _strings(part, getattr(context, field), names))
    for key, fill in (("device", _device), ("screen", _display)):
        part = source.obj(key)
        if part is not None:
            _keep_rest(extra, key, part, fill(part, context.device))
    location = source.obj("location")
    if location is not None:
        _keep_rest(extra, "location", location, _location(location, context.location))
    traits = source.obj("traits")
    if traits is not None:
        source.copy_into(context.traits, "traits", traits.data)
    for key, value in extra.items():
        source.copy_into(context.extra, key, {key: value})
    return context


def _keep_rest(extra: dict[str, Any], key: str, part: Fields, known: set[str]) -> None:
    rest = part.rest(frozenset(known))
    if rest:
        extra[key] = rest


def channel_of(
    kind: int, named: tuple[str, ...], context: event_pb2.EventContext
) -> event_pb2.Channel.ValueType:
    """The channel: the first of `named` (RudderStack's top-level `channel`, then `context.channel`) that
    names one; otherwise inferred from what the SDK sent (a screen call or a mobile OS or app: mobile app;
    a page or a browser's user agent: web), and CHANNEL_OTHER for server-side libraries that send neither."""
    for name in named:
        if name.lower() in _CHANNELS:
            return _CHANNELS[name.lower()]
    if (
        kind == event_pb2.EVENT_TYPE_SCREEN
        or context.os.name.lower() in _MOBILE_OS
        or _platform(context) in _MOBILE_OS
        or context.app.namespace
    ):
        return event_pb2.CHANNEL_MOBILE_APP
    if kind == event_pb2.EVENT_TYPE_PAGE or context.HasField("page") or context.user_agent:
        return event_pb2.CHANNEL_WEB
    return event_pb2.CHANNEL_OTHER


def _platform(context: event_pb2.EventContext) -> str:
    """Segment's `context.device.type` (`ios`, `android`), kept in `extra` since it is no form factor."""
    if "device" not in context.extra.fields:
        return ""
    device = context.extra.fields["device"].struct_value.fields
    return device["type"].string_value.lower() if "type" in device else ""
