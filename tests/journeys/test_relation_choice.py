"""The tenant-wide read models read events as stored while the tenant has no person override at all (ADR 85),
and through the override relation from the first override on, with the same answers either way."""

from __future__ import annotations

from wayline_journeys.overrides import PersonOverride
from wayline_journeys.store import JourneyStore
from wayline_journeys.store.client import ReadModel
from wayline_journeys.store.relation import current_events, stored_events
from wayline_journeys.store.sql import SqlParams


class _Probe(ReadModel):
    def params_of(self, tenant: str) -> SqlParams:
        return self._tenant_params(tenant)


def test_persons_read_as_stored_only_while_the_tenant_has_no_override(store: JourneyStore) -> None:
    probe = _Probe(lambda: store.client)
    assert probe.params_of("t-a").persons_as_stored
    store.overrides.apply("t-a", [PersonOverride("p-1", "p-2", 1)])
    assert not probe.params_of("t-a").persons_as_stored
    assert probe.params_of("t-b").persons_as_stored  # another tenant's override changes nothing here
    # An override that cancels itself (merged back) is still a row: the relation stays, which is always exact.
    store.overrides.apply("t-c", [PersonOverride("p-1", "p-2", 1), PersonOverride("p-1", "p-1", 2)])
    assert not probe.params_of("t-c").persons_as_stored


def test_current_events_is_stored_events_when_persons_read_as_stored() -> None:
    params = SqlParams(tenant="t")
    params.persons_as_stored = True
    where, kinds = "timestamp >= now() - INTERVAL 1 DAY", "name = 'Viewed'"
    assert current_events(params, where=where, kinds=kinds) == stored_events(params, where=where, kinds=kinds)
    assert current_events(SqlParams(tenant="t"), where=where) != stored_events(
        SqlParams(tenant="t"), where=where
    )
