"""Builders of the six Segment-style events (track, identify, page, screen, group, alias).

Each returns a complete `wayline.event.v1.Event` with its `event_id` already set, so the id exists before
the event is queued and every retry carries it (the pipeline deduplicates by it), and with `timestamp` set
to the call time when the caller gave none, so batching delay does not move the touchpoint. They are what
`Client.track` and its siblings queue, and what callers of `Client.send` build their events with.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

from wayline.client.convert import (
    ChannelLike,
    ContextLike,
    IdentifiersLike,
    channel_value,
    context_message,
    event_id,
    identifier_list,
    properties_struct,
    timestamp_message,
)
from wayline.client.errors import InvalidEvent
from wayline.event.v1 import event_pb2

__all__ = [
    "LIBRARY_NAME",
    "alias_event",
    "group_event",
    "identify_event",
    "page_event",
    "screen_event",
    "track_event",
]

LIBRARY_NAME = "wayline-python"
MAX_NAME = 200


def _library_version() -> str:
    try:
        return metadata.version("wayline-common")
    except metadata.PackageNotFoundError:
        return "0"


LIBRARY_VERSION = _library_version()


def _build(
    kind: event_pb2.EventType.ValueType,
    *,
    identifiers: IdentifiersLike,
    channel: ChannelLike | None,
    name: str = "",
    properties: Mapping[str, Any] | None = None,
    properties_field: str = "properties",
    timestamp: datetime | None,
    context: ContextLike | None,
    event_id_: str | None,
    group_id: str = "",
    text: str = "",
    revenue: event_pb2.Money | None = None,
) -> event_pb2.Event:
    if not isinstance(name, str) or len(name) > MAX_NAME:
        raise InvalidEvent("name", f"must be a string of at most {MAX_NAME} characters")
    if not isinstance(text, str):
        raise InvalidEvent("text", "must be a string")
    if revenue is not None and not isinstance(revenue, event_pb2.Money):
        raise InvalidEvent("revenue", "build it with wayline.client.money('59.90', 'EUR')")
    event = event_pb2.Event(
        event_id=event_id(event_id_),
        type=kind,
        name=name,
        channel=channel_value(channel),
        timestamp=timestamp_message(timestamp or datetime.now(UTC)),
        identifiers=identifier_list(identifiers),
        text=text,
        revenue=revenue,
        group_id=group_id,
    )
    if properties:
        event.properties.CopyFrom(properties_struct(properties, properties_field))
    if context:
        event.context.CopyFrom(context_message(context))
    if not event.context.library.name:
        event.context.library.name = LIBRARY_NAME
        event.context.library.version = LIBRARY_VERSION
    return event


def track_event(
    name: str,
    *,
    identifiers: IdentifiersLike,
    channel: ChannelLike | None = None,
    properties: Mapping[str, Any] | None = None,
    timestamp: datetime | None = None,
    context: ContextLike | None = None,
    text: str = "",
    revenue: event_pb2.Money | None = None,
    group_id: str = "",
    event_id: str | None = None,
) -> event_pb2.Event:
    """Something the person did, such as `Order Completed`; `properties` describe it."""
    if not name:
        raise InvalidEvent("name", "track events need a name, such as 'Order Completed'")
    return _build(
        event_pb2.EVENT_TYPE_TRACK,
        name=name,
        identifiers=identifiers,
        channel=channel,
        properties=properties,
        timestamp=timestamp,
        context=context,
        event_id_=event_id,
        group_id=group_id,
        text=text,
        revenue=revenue,
    )


def identify_event(
    *,
    identifiers: IdentifiersLike,
    channel: ChannelLike | None = None,
    traits: Mapping[str, Any] | None = None,
    timestamp: datetime | None = None,
    context: ContextLike | None = None,
    event_id: str | None = None,
) -> event_pb2.Event:
    """The person told us who they are: `identifiers` are linked, `traits` become person properties."""
    return _build(
        event_pb2.EVENT_TYPE_IDENTIFY,
        identifiers=identifiers,
        channel=channel,
        properties=traits,
        properties_field="traits",
        timestamp=timestamp,
        context=context,
        event_id_=event_id,
    )


def page_event(
    name: str = "",
    *,
    identifiers: IdentifiersLike,
    channel: ChannelLike | None = None,
    url: str = "",
    path: str = "",
    title: str = "",
    referrer: str = "",
    search: str = "",
    properties: Mapping[str, Any] | None = None,
    timestamp: datetime | None = None,
    context: ContextLike | None = None,
    event_id: str | None = None,
) -> event_pb2.Event:
    """The person viewed a web page; the page fields go to `context.page`, `name` optionally names it."""
    event = _build(
        event_pb2.EVENT_TYPE_PAGE,
        name=name,
        identifiers=identifiers,
        channel=channel,
        properties=properties,
        timestamp=timestamp,
        context=context,
        event_id_=event_id,
    )
    page = {"url": url, "path": path, "title": title, "referrer": referrer, "search": search}
    for field, value in page.items():
        if value:
            setattr(event.context.page, field, value)
    return event


def screen_event(
    name: str,
    *,
    identifiers: IdentifiersLike,
    channel: ChannelLike | None = None,
    category: str = "",
    properties: Mapping[str, Any] | None = None,
    timestamp: datetime | None = None,
    context: ContextLike | None = None,
    event_id: str | None = None,
) -> event_pb2.Event:
    """The person viewed an app screen, named by `name` (also set as `context.screen.name`)."""
    if not name:
        raise InvalidEvent("name", "screen events need the screen's name, such as 'Checkout'")
    event = _build(
        event_pb2.EVENT_TYPE_SCREEN,
        name=name,
        identifiers=identifiers,
        channel=channel,
        properties=properties,
        timestamp=timestamp,
        context=context,
        event_id_=event_id,
    )
    event.context.screen.name = name
    if category:
        event.context.screen.category = category
    return event


def group_event(
    group_id: str,
    *,
    identifiers: IdentifiersLike,
    channel: ChannelLike | None = None,
    traits: Mapping[str, Any] | None = None,
    timestamp: datetime | None = None,
    context: ContextLike | None = None,
    event_id: str | None = None,
) -> event_pb2.Event:
    """The person belongs to the group (account, company, household) `group_id`; `traits` are the group's."""
    if not isinstance(group_id, str) or not group_id:
        raise InvalidEvent("group_id", "group events need the group they join, such as 'acct-7'")
    return _build(
        event_pb2.EVENT_TYPE_GROUP,
        identifiers=identifiers,
        channel=channel,
        properties=traits,
        properties_field="traits",
        timestamp=timestamp,
        context=context,
        event_id_=event_id,
        group_id=group_id,
    )


def alias_event(
    *,
    identifiers: IdentifiersLike,
    channel: ChannelLike | None = None,
    timestamp: datetime | None = None,
    context: ContextLike | None = None,
    event_id: str | None = None,
) -> event_pb2.Event:
    """Every identifier names the same person (an old and a new user id, say): at least two of them."""
    event = _build(
        event_pb2.EVENT_TYPE_ALIAS,
        identifiers=identifiers,
        channel=channel,
        timestamp=timestamp,
        context=context,
        event_id_=event_id,
    )
    if len(event.identifiers) < 2:
        raise InvalidEvent("identifiers", "an alias links at least two identifiers of the same person")
    return event
