"""The typed Segment-style calls of the client: build the event on the caller's thread, then queue it.

Building first means a mistake raises `InvalidEvent` where it was made, and the event's id and timestamp
are fixed before it waits in the queue. Kept apart from the client's machinery so each reads on its own.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from wayline.client.convert import ChannelLike, ContextLike, IdentifiersLike
from wayline.client.events import (
    alias_event,
    group_event,
    identify_event,
    page_event,
    screen_event,
    track_event,
)
from wayline.event.v1 import event_pb2

__all__ = ["TrackingCalls"]


class TrackingCalls(ABC):
    """track, identify, page, screen, group and alias; each returns the queued event's `event_id`."""

    channel: ChannelLike | None = None
    """The channel of calls that name none."""

    @abstractmethod
    def _queue_built(self, event: event_pb2.Event) -> str:
        """Queue an event a builder just made (the client's own message); returns its event_id."""

    def track(
        self,
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
    ) -> str:
        """Record something the person did, such as `Order Completed`; `properties` describe it."""
        return self._queue_built(
            track_event(
                name,
                identifiers=identifiers,
                channel=channel or self.channel,
                properties=properties,
                timestamp=timestamp,
                context=context,
                text=text,
                revenue=revenue,
                group_id=group_id,
                event_id=event_id,
            )
        )

    def identify(
        self,
        *,
        identifiers: IdentifiersLike,
        channel: ChannelLike | None = None,
        traits: Mapping[str, Any] | None = None,
        timestamp: datetime | None = None,
        context: ContextLike | None = None,
        event_id: str | None = None,
    ) -> str:
        """Link the person's `identifiers` and set their `traits`."""
        return self._queue_built(
            identify_event(
                identifiers=identifiers,
                channel=channel or self.channel,
                traits=traits,
                timestamp=timestamp,
                context=context,
                event_id=event_id,
            )
        )

    def page(
        self,
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
    ) -> str:
        """Record a web page view (server-side rendering, say); the page fields go to `context.page`."""
        return self._queue_built(
            page_event(
                name,
                identifiers=identifiers,
                channel=channel or self.channel,
                url=url,
                path=path,
                title=title,
                referrer=referrer,
                search=search,
                properties=properties,
                timestamp=timestamp,
                context=context,
                event_id=event_id,
            )
        )

    def screen(
        self,
        name: str,
        *,
        identifiers: IdentifiersLike,
        channel: ChannelLike | None = None,
        category: str = "",
        properties: Mapping[str, Any] | None = None,
        timestamp: datetime | None = None,
        context: ContextLike | None = None,
        event_id: str | None = None,
    ) -> str:
        """Record an app screen view named `name`."""
        return self._queue_built(
            screen_event(
                name,
                identifiers=identifiers,
                channel=channel or self.channel,
                category=category,
                properties=properties,
                timestamp=timestamp,
                context=context,
                event_id=event_id,
            )
        )

    def group(
        self,
        group_id: str,
        *,
        identifiers: IdentifiersLike,
        channel: ChannelLike | None = None,
        traits: Mapping[str, Any] | None = None,
        timestamp: datetime | None = None,
        context: ContextLike | None = None,
        event_id: str | None = None,
    ) -> str:
        """Put the person in the group `group_id` (account, company, household) with the group's `traits`."""
        return self._queue_built(
            group_event(
                group_id,
                identifiers=identifiers,
                channel=channel or self.channel,
                traits=traits,
                timestamp=timestamp,
                context=context,
                event_id=event_id,
            )
        )

    def alias(
        self,
        *,
        identifiers: IdentifiersLike,
        channel: ChannelLike | None = None,
        timestamp: datetime | None = None,
        context: ContextLike | None = None,
        event_id: str | None = None,
    ) -> str:
        """Say that all `identifiers` (at least two) name the same person."""
        return self._queue_built(
            alias_event(
                identifiers=identifiers,
                channel=channel or self.channel,
                timestamp=timestamp,
                context=context,
                event_id=event_id,
            )
        )
