"""The catalogue's operations: create, get, list, update (by field mask, conditional on an etag), archive.
Each validates what it stores; archived actions stay (their ids stay taken) and are never candidates."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from wayline.common.errors import FieldViolation
from wayline.common.timestamps import now_us
from wayline_decision.actions.model import Action, ActionState
from wayline_decision.actions.rules import action_id_violations, action_violations
from wayline_decision.actions.store import ActionStore
from wayline_decision.errors import ActionExists, ActionInvalid, ActionNotFound, EtagMismatch

__all__ = ["MASK_PATHS", "ActionCatalogue", "ActionPage"]

# The fields UpdateAction may change; an empty mask means all of them but `state`.
MASK_PATHS: tuple[str, ...] = (
    "display_name",
    "description",
    "channel",
    "placements",
    "value",
    "value_currency",
    "lever",
    "start_time",
    "end_time",
    "eligibility",
    "counts_as_contact",
    "purpose",
    "state",
)


@dataclass(frozen=True)
class ActionPage:
    actions: list[Action]
    total: int
    more: bool


class ActionCatalogue:
    def __init__(self, store: ActionStore, clock: Callable[[], int] = now_us) -> None:
        self._store = store
        self._clock = clock

    def create(self, tenant: str, action_id: str, draft: Action) -> Action:
        now = self._clock()
        action = dataclasses.replace(
            draft,
            action_id=action_id,
            state=ActionState.ACTIVE,
            version=1,
            create_time=now,
            update_time=now,
        )
        problems = action_id_violations(action_id) + action_violations(action)
        if problems:
            raise ActionInvalid(problems)
        if not self._store.insert(tenant, action):
            raise ActionExists(action_id)
        return action

    def get(self, tenant: str, action_id: str) -> Action:
        action = self._store.get(tenant, action_id) if not action_id_violations(action_id) else None
        if action is None:
            raise ActionNotFound(action_id)
        return action

    def list(
        self, tenant: str, after: str, limit: int, state: ActionState | None = None, channel: str = ""
    ) -> ActionPage:
        actions, total = self._store.page(tenant, after, limit + 1, state.value if state else "", channel)
        return ActionPage(actions[:limit], total, len(actions) > limit)

    def update(self, tenant: str, changes: Action, paths: Sequence[str], etag: str) -> Action:
        """Apply the fields of `changes` named in `paths` (empty: every writable field but `state`) to the
        stored action `changes.action_id`, if `etag` (when given) is its current one."""
        unknown = [
            FieldViolation(f"update_mask.paths[{i}]", f"{path!r} is not a writable field of Action")
            for i, path in enumerate(paths)
            if path not in MASK_PATHS
        ]
        if unknown:
            raise ActionInvalid(unknown)
        fields = list(paths) or [p for p in MASK_PATHS if p != "state"]
        current = self.get(tenant, changes.action_id)
        if etag and etag != current.etag:
            raise EtagMismatch(current.action_id)
        updated = dataclasses.replace(
            current,
            **{name: getattr(changes, name) for name in fields},
            version=current.version + 1,
            update_time=self._clock(),
        )
        problems = action_violations(updated)
        if problems:
            raise ActionInvalid(problems)
        if updated == dataclasses.replace(current, version=updated.version, update_time=updated.update_time):
            return current  # nothing changes: no new version
        if not self._store.replace(tenant, updated, current.version):
            raise EtagMismatch(current.action_id)  # changed (or removed) between the read and the write
        return updated

    def archive(self, tenant: str, action_id: str, etag: str) -> Action:
        current = self.get(tenant, action_id)
        if etag and etag != current.etag:
            raise EtagMismatch(action_id)
        if current.state is ActionState.ARCHIVED:
            return current
        archived = dataclasses.replace(
            current, state=ActionState.ARCHIVED, version=current.version + 1, update_time=self._clock()
        )
        if not self._store.replace(tenant, archived, current.version):
            raise EtagMismatch(action_id)
        return archived
