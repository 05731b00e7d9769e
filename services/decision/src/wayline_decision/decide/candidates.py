"""A decision's candidates: the request's, merged with the catalogue, else the catalogue's actions valid now
for the channel and placement.

The merge rule (the contract's DecideRequest.candidates): a request candidate whose id is catalogued takes
its `value`, `lever`, `context_weight`, `channel` and `purpose` when it sets them, and the catalogue's
otherwise; its segments are added to the catalogue's, so a caller may narrow eligibility but never widen
it; it is a contact when either says so (a caller cannot exempt a catalogued contact from the contact
policy); the catalogue's validity window, placements, lifecycle stages, consent and reachability still
apply. A candidate that is not catalogued is taken as given.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Mapping, Sequence

from wayline_decision.actions import Action, ActionCatalogue
from wayline_decision.decide.model import Candidate, ValueSource
from wayline_decision.errors import ActionStoreUnavailable, CatalogueUnavailable

__all__ = ["CatalogueCache", "candidate_set", "catalogue_candidates", "fills_placement", "merge_candidate"]

_PAGE = 1_000


def fills_placement(action: Action, placement: str) -> bool:
    """An action with no placements fills every placement of its channel."""
    return not action.placements or placement in action.placements


def _from_action(action: Action) -> Candidate:
    return Candidate(
        action_id=action.action_id,
        channel=action.channel,
        value=action.value,
        value_source=ValueSource.CATALOGUE if action.value is not None else None,
        lever=action.lever,
        required_segments=action.eligibility.required_segments,
        excluded_segments=action.eligibility.excluded_segments,
        is_contact=action.counts_as_contact,
        purpose=action.purpose,
        catalogued=action,
    )


def _union(first: tuple[str, ...], second: tuple[str, ...]) -> tuple[str, ...]:
    return first + tuple(s for s in second if s not in first)


def merge_candidate(given: Candidate, action: Action | None, request_channel: str) -> Candidate:
    """`given` (a request candidate; an unspecified channel is the request's) merged with its catalogued
    action, by the module's rule."""
    if action is None:
        channel = given.channel if given.channel != "CHANNEL_UNSPECIFIED" else request_channel
        source = ValueSource.REQUEST if given.value is not None else None
        return dataclasses.replace(given, channel=channel, value_source=source)
    base = _from_action(action)
    value, source = base.value, base.value_source
    if given.value is not None:
        value, source = given.value, ValueSource.REQUEST
    return Candidate(
        action_id=given.action_id,
        channel=given.channel if given.channel != "CHANNEL_UNSPECIFIED" else base.channel,
        value=value,
        value_source=source,
        lever=given.lever if given.lever is not None else base.lever,
        context_weight=given.context_weight,
        required_segments=_union(base.required_segments, given.required_segments),
        excluded_segments=_union(base.excluded_segments, given.excluded_segments),
        is_contact=given.is_contact or base.is_contact,
        purpose=given.purpose if given.purpose != "CONTACT_PURPOSE_UNSPECIFIED" else base.purpose,
        catalogued=action,
        attributes=given.attributes,
    )


def catalogue_candidates(
    catalogue: Mapping[str, Action], channel: str, placement: str, now_us: int
) -> list[Candidate]:
    """The catalogue's active actions on `channel`, valid at `now_us`, that fill `placement`, by id."""
    return [
        _from_action(action)
        for _, action in sorted(catalogue.items())
        if action.channel == channel and action.valid_at(now_us) and fills_placement(action, placement)
    ]


def candidate_set(
    given: Sequence[Candidate], catalogue: Mapping[str, Action], channel: str, placement: str, now_us: int
) -> list[Candidate]:
    """The decision's candidates, in the request's order (or by id from the catalogue)."""
    if not given:
        return catalogue_candidates(catalogue, channel, placement, now_us)
    return [merge_candidate(c, catalogue.get(c.action_id), channel) for c in given]


class CatalogueCache:
    """Each tenant's whole catalogue (archived actions too: a request may name one), read once per TTL.

    Decide has a budget of milliseconds; the catalogue is SQL. A change reaches decisions within the TTL.
    When the store cannot be read, the last copy keeps serving (a stale catalogue beats failing every
    decision) and is retried on the next decision; with no copy, Decide is UNAVAILABLE.
    """

    def __init__(
        self, catalogue: ActionCatalogue, ttl_seconds: float, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._catalogue = catalogue
        self._ttl = ttl_seconds
        self._monotonic = monotonic
        self._copies: dict[str, tuple[float, Mapping[str, Action]]] = {}
        self._lock = threading.Lock()

    def actions(self, tenant: str) -> Mapping[str, Action]:
        copy = self._copies.get(tenant)
        now = self._monotonic()
        if copy is not None and now < copy[0]:
            return copy[1]
        try:
            actions = self._read(tenant)
        except ActionStoreUnavailable:
            if copy is None:
                raise CatalogueUnavailable() from None
            return copy[1]
        with self._lock:
            self._copies[tenant] = (now + self._ttl, actions)
        return actions

    def _read(self, tenant: str) -> Mapping[str, Action]:
        actions: dict[str, Action] = {}
        after = ""
        while True:
            page = self._catalogue.list(tenant, after, _PAGE, None)
            actions.update((a.action_id, a) for a in page.actions)
            if not page.more:
                return actions
            after = page.actions[-1].action_id
