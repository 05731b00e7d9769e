"""Schedule triggers: at each occurrence of a published flow's schedule, the members of its segment at that
time enter (subject to the entry rules), once each.

The segment poller registers each scheduled flow version with its first occurrence (`register`); the
schedule loop claims due schedules with a lease, like timers, so replicas never fire one occurrence at once,
and fires each (`fire_due`). Firing pages through the segment's members (ListSegmentMembers) and enters them
keyed by `schedule:{occurrence}:{person}`, recording the occurrence and the page reached after every page: a
replica that dies in the middle of a big segment leaves the rest to whoever claims the schedule after its
lease, who goes on from that page and enters nobody twice. After downtime the missed occurrences collapse
into the latest one, fired once. A paused flow's occurrences pass without entries; a flow archived, or
published again as a new version, retires the old version's schedule.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog

from wayline_orchestrator.flows.model import Definition, FlowState
from wayline_orchestrator.flows.occurrences import Cadence, CronSchedule, latest_due
from wayline_orchestrator.flows.runtime.engine import FlowRuntime
from wayline_orchestrator.flows.runtime.runs import micros_of, us
from wayline_orchestrator.flows.runtime.segment_feed import SegmentFeed, SegmentMissing
from wayline_orchestrator.flows.runtime.segment_store import NEVER, ScheduleRow, SegmentStore
from wayline_orchestrator.flows.store import FlowStore

__all__ = ["Schedules", "cadence_of"]

log = structlog.get_logger("wayline.orchestrator")


def cadence_of(schedule: dict[str, Any], anchor: int) -> Cadence:
    """A ScheduleTrigger's (JSON form) occurrences; an interval counts from `start_time`, or unset, from
    `anchor` (when the orchestrator first saw the version published)."""
    start, end = micros_of(schedule.get("start_time")), micros_of(schedule.get("end_time"))
    cron = schedule.get("cron")
    return Cadence(
        cron=CronSchedule.parse(cron, schedule.get("time_zone", "")) if cron else None,
        interval_us=us(schedule.get("interval")),
        anchor_us=start if start is not None else anchor,
        start_us=start,
        end_us=end,
    )


class Schedules:
    def __init__(
        self,
        store: SegmentStore,
        flows: FlowStore,
        feed: SegmentFeed,
        runtime: FlowRuntime,
        clock: Callable[[], int],
        *,
        page_size: int,
        lease_us: int,
    ) -> None:
        self._store = store
        self._flows = flows
        self._feed = feed
        self._runtime = runtime
        self._clock = clock
        self._page_size = page_size
        self._lease_us = lease_us

    def register(self, tenant: str, flow_id: str, version: int, schedule: dict[str, Any]) -> None:
        """Know a published scheduled version, with its first occurrence at or after now (once)."""
        now = self._clock()
        due = cadence_of(schedule, now).next_after(now - 1)
        if self._store.add_schedule(tenant, flow_id, version, now, NEVER if due is None else due):
            log.info("flows.schedule_registered", tenant=tenant, flow_id=flow_id, version=version, due=due)

    def fire_due(self, limit: int) -> int:
        """Claim up to `limit` due schedules and fire each; how many were claimed."""
        claimed = self._store.claim_schedules(self._clock(), limit, self._lease_us)
        for row in claimed:
            self._fire(row)
        return len(claimed)

    def _fire(self, row: ScheduleRow) -> None:
        flow = self._flows.get(row.tenant, row.flow_id)
        found = self._flows.version(row.tenant, row.flow_id, row.version)
        live = {FlowState.PUBLISHED, FlowState.PAUSED}
        if flow is None or found is None or flow.published_version != row.version or flow.state not in live:
            self._store.progress(row, 0, 0, "", NEVER)  # superseded or archived: this version is done
            return
        definition = found[0]
        cadence = cadence_of(definition["trigger"]["schedule"], row.anchor_time)
        now = self._clock()
        if flow.state is FlowState.PAUSED:
            following = cadence.next_after(now)  # a paused flow takes no entries: the occurrence passes
            self._store.progress(row, 0, 0, "", NEVER if following is None else following)
            return
        occurrence = row.occurrence or latest_due(cadence, row.due_time, now)
        claim = self._store.progress(row, now + self._lease_us, occurrence, row.page_token, row.due_time)
        done = None if claim is None else self._enter_members(claim, definition)
        if done is not None:
            following = cadence.next_after(occurrence)
            self._store.progress(done, 0, 0, "", NEVER if following is None else following)

    def _enter_members(self, claim: ScheduleRow, definition: Definition) -> ScheduleRow | None:
        """Enter the segment's members from the claim's page on, recording each page reached: the claim as
        last written, or None when it was lost to another replica on the way (its lease passed)."""
        segment = definition["trigger"]["schedule"]["segment"]
        live = (claim.flow_id, claim.version, definition)
        while True:
            try:
                persons, token = self._feed.members(claim.tenant, segment, claim.page_token, self._page_size)
            except SegmentMissing:
                log.warning("flows.schedule_segment_missing", tenant=claim.tenant, segment=segment)
                persons, token = [], ""
            keyed = [(p, f"schedule:{claim.occurrence}:{p}") for p in persons]
            entered = self._runtime.enter(claim.tenant, live, keyed)
            log.info("flows.schedule_entered", tenant=claim.tenant, flow_id=claim.flow_id, entered=entered)
            if not token:
                return claim
            lease = self._clock() + self._lease_us
            moved = self._store.progress(claim, lease, claim.occurrence, token, claim.due_time)
            if moved is None:
                return None
            claim = moved
