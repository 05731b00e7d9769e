"""Candidates: the catalogue's actions valid now for the channel and placement when the request gives none
(read through the per-tenant cache), the merge rule when it does, and the local eligibility rules
(archived, unknown to the model, validity window, placement), each traced."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.decision.decide.support import NOW_US, TENANT, ask, ids, rig
from wayline_decision.actions import Action
from wayline_decision.decide.candidates import CatalogueCache, merge_candidate
from wayline_decision.decide.model import Candidate, FilterReason, Outcome, ValueSource
from wayline_decision.errors import CatalogueUnavailable
from wayline_decision.serving.loaded import ServingModel


def test_decide_without_candidates_takes_the_catalogues_valid_actions(
    tmp_path: Path, model: ServingModel
) -> None:
    r = rig(tmp_path, model)
    r.add("discount_10", placements=("home_hero",))
    r.add("call_back")  # every placement
    r.add("push_reminder", placements=("cart_upsell",))  # another placement: not a candidate
    r.add("email_newsletter", channel="CHANNEL_EMAIL")  # another channel: not a candidate
    r.add("winter_sale", start_time=NOW_US - 10, end_time=NOW_US + 10)  # the model does not score it
    r.add("spring_sale", start_time=NOW_US + 10)  # not valid yet: not a candidate
    archived = r.add("old_offer")
    r.catalogue.archive(TENANT, archived.action_id, "")
    decision = r.decider.decide(TENANT, ask(max_actions=5))
    assert sorted(ids(decision.returned)) == ["call_back", "discount_10"]
    filtered = [
        (r.candidate.action_id, r.filter) for r in decision.candidates if r.outcome is Outcome.FILTERED
    ]
    assert [(a, f.reason, f.rule) for a, f in filtered if f] == [
        ("winter_sale", FilterReason.UNKNOWN_ACTION, "model.action_ids")
    ]


def test_merge_overrides_and_adds_to_the_catalogue_entry() -> None:
    action = Action(
        "discount_10",
        channel="CHANNEL_EMAIL",
        value=5.0,
        lever=2.0,
        counts_as_contact=True,
        purpose="CONTACT_PURPOSE_MARKETING",
    )
    action = Action(
        **{**action.__dict__, "eligibility": action.eligibility.__class__(required_segments=("segments/a",))}
    )
    given = Candidate(
        "discount_10",
        "CHANNEL_UNSPECIFIED",
        value=9.0,
        context_weight=0.5,
        required_segments=("segments/b",),
        excluded_segments=("segments/c",),
        is_contact=False,
    )
    merged = merge_candidate(given, action, "CHANNEL_WEB")
    assert (merged.value, merged.value_source, merged.lever, merged.context_weight) == (
        9.0,
        ValueSource.REQUEST,
        2.0,
        0.5,
    )
    assert merged.channel == "CHANNEL_EMAIL"  # unspecified: the catalogue's
    assert merged.required_segments == ("segments/a", "segments/b")
    assert merged.excluded_segments == ("segments/c",)
    assert merged.is_contact  # a caller cannot waive the contact policy of a catalogued contact
    assert merged.purpose == "CONTACT_PURPOSE_MARKETING"
    assert merged.catalogued is action
    alone = merge_candidate(Candidate("ad_hoc", "CHANNEL_UNSPECIFIED", value=1.0), None, "CHANNEL_WEB")
    assert (alone.channel, alone.value_source, alone.catalogued) == ("CHANNEL_WEB", ValueSource.REQUEST, None)


def test_decide_request_candidates_keep_the_catalogues_local_rules(
    tmp_path: Path, model: ServingModel
) -> None:
    r = rig(tmp_path, model)
    r.add("discount_10", placements=("cart_upsell",))
    r.add("call_back", end_time=NOW_US)
    r.add("push_reminder", start_time=NOW_US + 1)
    gone = r.add("email_newsletter")
    r.catalogue.archive(TENANT, gone.action_id, "")
    decision = r.decider.decide(
        TENANT, ask("discount_10", "call_back", "push_reminder", "email_newsletter", "not_in_model")
    )
    assert decision.returned == []
    found = {c.candidate.action_id: c.filter for c in decision.candidates}
    assert {a: (f.reason, f.rule) for a, f in found.items() if f} == {
        "discount_10": (FilterReason.PLACEMENT, "placements"),
        "call_back": (FilterReason.VALIDITY_WINDOW, "end_time"),
        "push_reminder": (FilterReason.VALIDITY_WINDOW, "start_time"),
        "email_newsletter": (FilterReason.ACTION_ARCHIVED, "state"),
        "not_in_model": (FilterReason.UNKNOWN_ACTION, "model.action_ids"),
    }
    placement = found["discount_10"]
    assert placement is not None
    assert placement.description == "the action fills cart_upsell, not placement 'home_hero'"
    assert all(c.factors is None for c in decision.candidates)  # filtered before scoring


def test_catalogue_cache_rereads_after_its_ttl_and_serves_its_copy_while_the_store_is_down(
    tmp_path: Path, model: ServingModel
) -> None:
    r = rig(tmp_path, model)
    r.add("discount_10")
    clock = [0.0]
    cache = CatalogueCache(r.catalogue, ttl_seconds=5.0, monotonic=lambda: clock[0])
    assert list(cache.actions(TENANT)) == ["discount_10"]
    r.add("call_back")
    assert list(cache.actions(TENANT)) == ["discount_10"]  # within the TTL: the copy
    clock[0] = 5.0
    assert sorted(cache.actions(TENANT)) == ["call_back", "discount_10"]
    assert cache.actions("other-tenant") == {}
    with r.db.transaction() as tx:  # the store fails: its table is gone
        tx.execute("ALTER TABLE actions RENAME TO actions_away")
    clock[0] = 10.0
    assert sorted(cache.actions(TENANT)) == ["call_back", "discount_10"]  # the last copy
    with pytest.raises(CatalogueUnavailable):
        cache.actions("never-read")  # no copy: UNAVAILABLE
