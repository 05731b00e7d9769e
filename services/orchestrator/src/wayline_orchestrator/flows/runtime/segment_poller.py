"""The segment poller: follows journeys' membership change feed (ListSegmentMembershipChanges) for every
segment a published or paused flow of any tenant names — in its segment trigger or a segment exit — with one
cursor per (tenant, segment) in the database, and turns the changes into entries and exits (ADR 40).

- An ENTERED change enters the person into each published flow whose segment trigger names the segment,
  keyed by `segment:{segment}:{sequence}`, so a page read again (a restart, another replica) enters nobody
  twice; a change older than the flow version's publication enters nobody.
- An EXITED change ends the person's live entries whose version exits on that segment.
- `include_existing_members`: the first time the poller sees a flow version, the segment's current members
  enter (ListSegmentMembers, page by page, keyed by `segment:{segment}:v{version}:{person}`), once per
  version: the page reached is recorded, and the end.
- A new cursor starts at 0, the oldest change the feed keeps: publication filters the entries.
- CURSOR_EXPIRED (the changes after the cursor are partly gone): logged; flows with
  `include_existing_members` enter the current members not inside (the entry rules decide), and the cursor
  goes back to 0, so every change still kept is read — none of them was read before, all are after the gap.
  A flow without `include_existing_members` misses the entrants of the gap.
- Registers the published scheduled flows with the schedules (schedules.py).

A poll that fails to reach journeys — for the feed, or for an entry's audience or first steps
(PersonLookupUnavailable; the change is read again, its key keeps it once) — backs off (doubling, up to
`max_backoff_s`); no error ends the loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import structlog

from wayline_orchestrator.errors import PersonLookupUnavailable
from wayline_orchestrator.flows.runtime.engine import FlowRuntime
from wayline_orchestrator.flows.runtime.schedules import Schedules
from wayline_orchestrator.flows.runtime.segment_feed import (
    CursorExpired,
    FeedUnavailable,
    SegmentFeed,
    SegmentMissing,
)
from wayline_orchestrator.flows.runtime.segment_store import FollowedVersion, SegmentStore

__all__ = ["SegmentPoller"]

log = structlog.get_logger("wayline.orchestrator")

_FLOWS_PAGE = 500


@dataclass
class _Segment:
    """What one (tenant, segment) feeds: the published versions it enters, those entering its members."""

    entering: list[FollowedVersion] = field(default_factory=list)

    @property
    def with_existing(self) -> list[FollowedVersion]:
        return [
            v
            for v in self.entering
            if v.definition["trigger"]["segment_entry"].get("include_existing_members")
        ]


def _entering(versions: Iterator[FollowedVersion], segment: str) -> list[FollowedVersion]:
    """The published versions whose segment trigger names `segment`."""
    return [
        v
        for v in versions
        if v.published and v.definition.get("trigger", {}).get("segment_entry", {}).get("segment") == segment
    ]


class SegmentPoller:
    def __init__(
        self,
        store: SegmentStore,
        feed: SegmentFeed,
        runtime: FlowRuntime,
        schedules: Schedules,
        *,
        page_size: int,
        poll_s: float,
        max_backoff_s: float = 60.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._feed = feed
        self._runtime = runtime
        self._schedules = schedules
        self._page_size = page_size
        self._poll_s = poll_s
        self._max_backoff_s = max_backoff_s
        self._monotonic = monotonic
        self._failures = 0
        self._resume_at = 0.0
        self._missing: set[tuple[str, str]] = set()  # logged once each, until they exist again

    def poll(self, limit: int) -> int:
        """One pass over every followed segment; `limit` when a segment has more changes waiting (the loop
        polls again at once), else 0. A failure to reach journeys backs off."""
        if self._monotonic() < self._resume_at:
            return 0
        try:
            more = self._pass()
        except (FeedUnavailable, PersonLookupUnavailable) as error:  # journeys, for the feed or an entry
            self._failures += 1
            backoff = min(self._poll_s * 2**self._failures, self._max_backoff_s)
            self._resume_at = self._monotonic() + backoff
            log.warning("flows.segment_poll_failed", error=str(error), retry_in_s=backoff)
            return 0
        self._failures = 0
        return limit if more else 0

    def _versions(self, tenant: str = "") -> Iterator[FollowedVersion]:
        after = ("", "")
        while True:
            page = self._store.followed(after, _FLOWS_PAGE, tenant)
            yield from page
            if len(page) < _FLOWS_PAGE:
                return
            after = (page[-1].tenant, page[-1].flow_id)

    def _segments(self) -> dict[tuple[str, str], _Segment]:
        """The (tenant, segment) pairs to follow, registering scheduled versions on the way."""
        followed: dict[tuple[str, str], _Segment] = {}
        for version in self._versions():
            trigger = version.definition.get("trigger", {})
            if version.published and "segment_entry" in trigger:
                key = (version.tenant, trigger["segment_entry"].get("segment", ""))
                followed.setdefault(key, _Segment()).entering.append(version)
            if version.published and "schedule" in trigger:
                self._schedules.register(
                    version.tenant, version.flow_id, version.version, trigger["schedule"]
                )
            for time_exit in version.definition.get("time_exits", []):
                if "segment_exit" in time_exit:
                    followed.setdefault(
                        (version.tenant, time_exit["segment_exit"].get("segment", "")), _Segment()
                    )
        return followed

    def _pass(self) -> bool:
        more = False
        for (tenant, segment), fed in self._segments().items():
            try:
                for version in fed.with_existing:
                    self._enter_existing(version, segment)
                more = self._follow(tenant, segment, fed) or more
                self._missing.discard((tenant, segment))
            except SegmentMissing:
                if (tenant, segment) not in self._missing:
                    log.warning("flows.segment_missing", tenant=tenant, segment=segment)
                    self._missing.add((tenant, segment))
        return more

    def _follow(self, tenant: str, segment: str, fed: _Segment) -> bool:
        after = self._store.cursor(tenant, segment)
        try:
            changes, more = self._feed.changes(tenant, segment, after, self._page_size)
        except CursorExpired:
            log.warning("flows.segment_cursor_expired", tenant=tenant, segment=segment, after_sequence=after)
            for version in fed.with_existing:
                self._enter_members(version, segment, f"resync{after}")
            self._store.move_cursor(tenant, segment, 0, back=True)
            return True
        # The flows entering on the segment are read again after the page: a flow published while this pass
        # ran is after the changes made before its publication, and must not miss those made after it.
        entering = _entering(self._versions(tenant), segment) if changes else []
        for change in changes:
            if change.entered:
                for version in entering:
                    if change.time >= version.publish_time:
                        live = (version.flow_id, version.version, version.definition)
                        key = f"segment:{segment}:{change.sequence}"
                        self._runtime.enter(tenant, live, [(change.person_id, key)])
            else:
                self._runtime.leave_segment(tenant, change.person_id, segment, change.sequence, change.time)
        if changes:
            self._store.move_cursor(tenant, segment, changes[-1].sequence)
        return more

    def _enter_existing(self, version: FollowedVersion, segment: str) -> None:
        """The version's entry of the segment's members at publication, once (resumed from its page)."""
        token = self._store.backfill(version.tenant, version.flow_id, version.version, segment)
        if token is None:
            return
        try:
            self._enter_members(version, segment, f"v{version.version}", token, record=True)
        except SegmentMissing:
            log.info("flows.segment_missing", tenant=version.tenant, segment=segment)
            self._store.advance_backfill(version.tenant, version.flow_id, version.version, "")

    def _enter_members(
        self, version: FollowedVersion, segment: str, tag: str, token: str = "", *, record: bool = False
    ) -> None:
        """Enter the segment's current members from the page `token`, keyed by `segment:{segment}:{tag}:
        {person}`; with `record`, the page reached is recorded in the version's backfill after each page."""
        live = (version.flow_id, version.version, version.definition)
        while True:
            persons, token = self._feed.members(version.tenant, segment, token, self._page_size)
            keyed = [(p, f"segment:{segment}:{tag}:{p}") for p in persons]
            entered = self._runtime.enter(version.tenant, live, keyed)
            log.info(
                "flows.segment_members_entered",
                tenant=version.tenant,
                flow_id=version.flow_id,
                entered=entered,
            )
            if record:
                self._store.advance_backfill(version.tenant, version.flow_id, version.version, token)
            if not token:
                return
