"""The flows' operations: create, get, list, update the draft (by field mask, conditional on an etag),
publish (freeze the draft as a new immutable version), pause and archive, with the state transitions the
contract allows:

    DRAFT ──publish──▶ PUBLISHED ◀──publish── PAUSED
                        │  ▲ publish (a new version when the draft changed)
                        └──┴──pause──▶ PAUSED (pausing again changes only the mode)
    any state ──archive──▶ ARCHIVED (for good; read-only; archiving again changes nothing)

Pausing a draft is FLOW_NOT_PUBLISHED; changing or publishing an archived flow is FLOW_ARCHIVED.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from wayline.common.errors import FieldViolation
from wayline.common.timestamps import now_us
from wayline_orchestrator.errors import (
    FlowEtagMismatch,
    FlowExists,
    FlowIncomplete,
    FlowInvalid,
    FlowNotFound,
    FlowStateConflict,
    FlowVersionNotFound,
)
from wayline_orchestrator.flows.model import Flow, FlowState, PauseMode, definition_digest
from wayline_orchestrator.flows.rules import draft_violations, publish_violations
from wayline_orchestrator.flows.store import FlowStore
from wayline_orchestrator.flows.values import FLOW_ID

__all__ = ["DEFINITION_FIELDS", "MASK_PATHS", "FlowCatalogue", "FlowPage"]

DEFINITION_FIELDS = (
    "trigger",
    "entry_rules",
    "entry_step_id",
    "steps",
    "exit_conditions",
    "max_duration",
    "goal",
    "time_exits",
    "priority",
)
# The paths UpdateFlow accepts; an empty mask means display_name, description and definition.
MASK_PATHS = ("display_name", "description", "definition", *(f"definition.{f}" for f in DEFINITION_FIELDS))
_MAX_DISPLAY_NAME, _MAX_DESCRIPTION, _ATTEMPTS = 200, 2_000, 3


@dataclass(frozen=True)
class FlowPage:
    flows: list[Flow]
    total: int
    more: bool


def _text_violations(flow: Flow) -> list[FieldViolation]:
    found = []
    if len(flow.display_name) > _MAX_DISPLAY_NAME:
        found.append(FieldViolation("flow.display_name", f"at most {_MAX_DISPLAY_NAME} characters"))
    if len(flow.description) > _MAX_DESCRIPTION:
        found.append(FieldViolation("flow.description", f"at most {_MAX_DESCRIPTION} characters"))
    return found


def _refused(current: Flow, updated: Flow, paths: Sequence[str]) -> list[FieldViolation]:
    """The updated draft's problems the update answers for: those under a path it writes, and those it brings
    about elsewhere (a shorter max_duration makes the goal's window too long). A problem the stored draft
    already had, under a path the update leaves alone, is not the caller's request: such a draft was saved
    before a check existed (a property filter before 2026-12, ADR 78). PublishFlow still refuses it."""
    found = draft_violations(updated.definition)
    if not found:
        return found
    written = tuple(f"flow.{path}" for path in paths)
    stored = {(v.field, v.reason, v.description) for v in draft_violations(current.definition)}
    return [
        v
        for v in found
        if (v.field, v.reason, v.description) not in stored
        or any(v.field == w or v.field.startswith((f"{w}.", f"{w}[")) for w in written)
    ]


class FlowCatalogue:
    def __init__(self, store: FlowStore, clock: Callable[[], int] = now_us) -> None:
        self._store = store
        self._clock = clock

    def create(self, tenant: str, flow_id: str, draft: Flow) -> Flow:
        problems = []
        if flow_id and not FLOW_ID.fullmatch(flow_id):
            problems.append(FieldViolation("flow_id", f"{flow_id!r} does not match {FLOW_ID.pattern}"))
        flow_id = flow_id or f"flow-{uuid.uuid4().hex[:12]}"
        now = self._clock()
        flow = Flow(
            flow_id=flow_id,
            display_name=draft.display_name,
            description=draft.description,
            definition=draft.definition,
            revision=1,
            create_time=now,
            update_time=now,
        )
        problems += _text_violations(flow) + draft_violations(flow.definition)
        if problems:
            raise FlowInvalid(problems)
        if not self._store.insert(tenant, flow):
            raise FlowExists(flow.name)
        return flow

    def get(self, tenant: str, flow_id: str) -> Flow:
        flow = self._store.get(tenant, flow_id) if FLOW_ID.fullmatch(flow_id) else None
        if flow is None:
            raise FlowNotFound(f"flows/{flow_id}")
        return flow

    def get_version(self, tenant: str, flow_id: str, version: int) -> tuple[Flow, int | None]:
        """The flow with the definition of its published `version`, and that version's publication time."""
        flow = self.get(tenant, flow_id)
        found = self._store.version(tenant, flow_id, version)
        if found is None:
            raise FlowVersionNotFound(flow.name, version)
        return dataclasses.replace(flow, definition=found[0]), found[1]

    def list(self, tenant: str, after: str, limit: int, state: FlowState | None = None) -> FlowPage:
        flows, total = self._store.page(tenant, after, limit + 1, state.value if state else "")
        return FlowPage(flows[:limit], total, len(flows) > limit)

    def update(self, tenant: str, changes: Flow, paths: Sequence[str], etag: str) -> Flow:
        """Apply the fields of `changes` named in `paths` to the stored flow's draft, if `etag` (when given)
        is its current one; refused for the problems it writes or brings about (`_refused`)."""
        unknown = [
            FieldViolation(f"update_mask.paths[{i}]", f"{path!r} is not a writable field of Flow")
            for i, path in enumerate(paths)
            if path not in MASK_PATHS
        ]
        if unknown:
            raise FlowInvalid(unknown)
        current = self._writable(tenant, changes.flow_id, etag)
        fields = list(paths) or ["display_name", "description", "definition"]
        definition = dict(current.definition)
        top: dict[str, object] = {}
        for path in fields:
            if path == "definition":
                definition = dict(changes.definition)
            elif path.startswith("definition."):
                part = path.removeprefix("definition.")
                if part in changes.definition:
                    definition[part] = changes.definition[part]
                else:
                    definition.pop(part, None)
            else:
                top[path] = getattr(changes, path)
        updated = dataclasses.replace(current, definition=definition, **top)  # type: ignore[arg-type]
        problems = _text_violations(updated) + _refused(current, updated, fields)
        if problems:
            raise FlowInvalid(problems)
        if updated == current:
            return current  # nothing changes: no new revision
        return self._write(tenant, current, updated)

    def publish(self, tenant: str, flow_id: str, etag: str) -> Flow:
        current = self._writable(tenant, flow_id, etag)
        problems = publish_violations(current.definition)
        if problems:
            raise FlowIncomplete(current.name, problems)
        if current.published_version and not current.has_unpublished_changes:
            if current.state is FlowState.PUBLISHED:
                return current
            return self._write(tenant, current, dataclasses.replace(current, state=FlowState.PUBLISHED))
        now = self._clock()
        published = dataclasses.replace(
            current,
            state=FlowState.PUBLISHED,
            published_version=current.published_version + 1,
            published_digest=definition_digest(current.definition),
            publish_time=now,
        )
        return self._write(tenant, current, published, publish=True, now=now)

    def pause(self, tenant: str, flow_id: str, mode: PauseMode) -> Flow:
        for _ in range(_ATTEMPTS):
            current = self.get(tenant, flow_id)
            if current.state is FlowState.ARCHIVED:
                raise _archived(current)
            if current.state is FlowState.DRAFT:
                raise FlowStateConflict(
                    current.name,
                    current.state.value,
                    "FLOW_NOT_PUBLISHED",
                    f"{current.name} was never published",
                )
            paused = dataclasses.replace(current, state=FlowState.PAUSED, pause_mode=mode)
            if paused == current:
                return current
            written = self._try_write(tenant, current, paused)
            if written is not None:
                return written
        raise FlowEtagMismatch(f"flows/{flow_id}", "")

    def archive(self, tenant: str, flow_id: str) -> Flow:
        for _ in range(_ATTEMPTS):
            current = self.get(tenant, flow_id)
            if current.state is FlowState.ARCHIVED:
                return current
            written = self._try_write(tenant, current, dataclasses.replace(current, state=FlowState.ARCHIVED))
            if written is not None:
                return written
        raise FlowEtagMismatch(f"flows/{flow_id}", "")

    def _writable(self, tenant: str, flow_id: str, etag: str) -> Flow:
        current = self.get(tenant, flow_id)
        if etag and etag != current.etag:
            raise FlowEtagMismatch(current.name, current.etag)
        if current.state is FlowState.ARCHIVED:
            raise _archived(current)
        return current

    def _try_write(
        self, tenant: str, current: Flow, changed: Flow, publish: bool = False, now: int | None = None
    ) -> Flow | None:
        written = dataclasses.replace(
            changed, revision=current.revision + 1, update_time=now if now is not None else self._clock()
        )
        if not self._store.replace(
            tenant, written, current.revision, written.definition if publish else None
        ):
            return None
        return written

    def _write(
        self, tenant: str, current: Flow, changed: Flow, publish: bool = False, now: int | None = None
    ) -> Flow:
        written = self._try_write(tenant, current, changed, publish, now)
        if written is None:  # changed (or removed) between the read and the write
            raise FlowEtagMismatch(current.name, "")
        return written


def _archived(flow: Flow) -> FlowStateConflict:
    return FlowStateConflict(
        flow.name, flow.state.value, "FLOW_ARCHIVED", f"{flow.name} is archived: it can no longer change"
    )
