"""Each eligibility rule over the facts, allowed and removed, with the rule and sentence traced; the fixed
order; and failing closed when a fact cannot be read (here: no service configured to ask)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.decision.decide.support import TENANT, ask, ids, rig
from wayline_decision.actions import Action, Eligibility
from wayline_decision.decide.eligibility import fact_filter
from wayline_decision.decide.facts import ContactVerdict, ContactViolation, Fact, Facts, fact_needs
from wayline_decision.decide.model import Candidate, Filter, FilterReason, Outcome
from wayline_decision.serving.loaded import ServingModel

MARKETING = "CONTACT_PURPOSE_MARKETING"
EMAIL_MARKETING = ("CHANNEL_EMAIL", MARKETING)


def _catalogued(**eligibility: object) -> Candidate:
    action = Action("discount_10", channel="CHANNEL_WEB", eligibility=Eligibility(**eligibility))  # type: ignore[arg-type]
    return Candidate("discount_10", "CHANNEL_WEB", catalogued=action)


def _contact() -> Candidate:
    return Candidate("discount_10", "CHANNEL_EMAIL", is_contact=True, purpose=MARKETING)


def _blocked(reason: str, rule: str, sentence: str) -> ContactVerdict:
    return ContactVerdict(False, (ContactViolation(f"CONTACT_BLOCK_REASON_{reason}", rule, sentence),))


FULL = Facts(
    segments=frozenset({"segments/vip"}),
    lifecycle_stage="LIFECYCLE_STAGE_RETENTION",
    identifier_types=frozenset({"email", "user_id"}),
    contacts={EMAIL_MARKETING: ContactVerdict(True)},
)


@pytest.mark.parametrize(
    ("candidate", "facts", "expected"),
    [
        (Candidate("x", "CHANNEL_WEB", required_segments=("segments/vip",)), FULL, None),
        (
            Candidate("x", "CHANNEL_WEB", required_segments=("segments/new",)),
            FULL,
            Filter(
                FilterReason.SEGMENT_REQUIRED, "segments/new", "the person is not a member of segments/new"
            ),
        ),
        (Candidate("x", "CHANNEL_WEB", excluded_segments=("segments/churned",)), FULL, None),
        (
            Candidate("x", "CHANNEL_WEB", excluded_segments=("segments/vip",)),
            FULL,
            Filter(FilterReason.SEGMENT_EXCLUDED, "segments/vip", "the person is a member of segments/vip"),
        ),
        (_catalogued(lifecycle_stages=("LIFECYCLE_STAGE_RETENTION",)), FULL, None),
        (
            _catalogued(lifecycle_stages=("LIFECYCLE_STAGE_ONBOARDING", "LIFECYCLE_STAGE_ENGAGEMENT")),
            FULL,
            Filter(
                FilterReason.LIFECYCLE_STAGE,
                "eligibility.lifecycle_stages",
                "the person is in stage retention, not onboarding, engagement",
            ),
        ),
        (_catalogued(required_reachable_channel="CHANNEL_EMAIL"), FULL, None),
        (
            _catalogued(required_reachable_channel="CHANNEL_SMS"),
            FULL,
            Filter(
                FilterReason.NOT_REACHABLE,
                "eligibility.required_reachable_channel",
                "the person has no phone to reach them on sms",
            ),
        ),
        (_contact(), FULL, None),
        (
            _contact(),
            Facts(
                contacts={
                    EMAIL_MARKETING: _blocked("FREQUENCY_CAP", "frequency_caps[1]", "3 of 3 email contacts")
                }
            ),
            Filter(FilterReason.FREQUENCY_CAP, "contact_policy.frequency_caps[1]", "3 of 3 email contacts"),
        ),
        (
            _contact(),
            Facts(contacts={EMAIL_MARKETING: _blocked("QUIET_HOURS", "quiet_hours[0]", "22:00 to 08:00")}),
            Filter(FilterReason.QUIET_HOURS, "contact_policy.quiet_hours[0]", "22:00 to 08:00"),
        ),
        (
            _contact(),
            Facts(contacts={EMAIL_MARKETING: _blocked("NO_CONSENT", "consent", "no marketing consent")}),
            Filter(FilterReason.NO_CONSENT, "contact_policy.consent", "no marketing consent"),
        ),
        (
            _contact(),
            Facts(
                contacts={
                    EMAIL_MARKETING: _blocked("CHANNEL_PREFERENCE", "channel_preference", "prefers sms")
                }
            ),
            Filter(FilterReason.CHANNEL_PREFERENCE, "contact_policy.channel_preference", "prefers sms"),
        ),
    ],
)
def test_fact_rules_allow_or_remove_with_the_rule_and_a_sentence(
    candidate: Candidate, facts: Facts, expected: Filter | None
) -> None:
    assert fact_filter(candidate, facts) == expected


def test_required_consent_looks_only_at_consent() -> None:
    web = Action(
        "discount_10",
        channel="CHANNEL_WEB",
        eligibility=Eligibility(required_consent=MARKETING),
    )
    candidate = Candidate("discount_10", "CHANNEL_WEB", catalogued=web)
    capped = Facts(
        contacts={("CHANNEL_WEB", MARKETING): _blocked("FREQUENCY_CAP", "frequency_caps[0]", "capped")}
    )
    assert fact_filter(candidate, capped) is None  # a banner is not a contact: caps do not apply
    refused = Facts(contacts={("CHANNEL_WEB", MARKETING): _blocked("NO_CONSENT", "consent", "withdrawn")})
    assert fact_filter(candidate, refused) == Filter(
        FilterReason.NO_CONSENT, "eligibility.required_consent", "withdrawn"
    )
    assert fact_needs([candidate], identifier_types_known=False).contacts == {("CHANNEL_WEB", MARKETING)}


def test_rules_apply_in_their_order() -> None:
    action = Action(
        "discount_10",
        channel="CHANNEL_EMAIL",
        eligibility=Eligibility(lifecycle_stages=("LIFECYCLE_STAGE_ONBOARDING",)),
        counts_as_contact=True,
        purpose=MARKETING,
    )
    candidate = Candidate(
        "discount_10",
        "CHANNEL_EMAIL",
        excluded_segments=("segments/vip",),
        is_contact=True,
        purpose=MARKETING,
        catalogued=action,
    )
    blocked = Facts(
        segments=frozenset({"segments/vip"}),
        lifecycle_stage="LIFECYCLE_STAGE_RETENTION",
        contacts={EMAIL_MARKETING: _blocked("QUIET_HOURS", "quiet_hours[0]", "night")},
    )
    first = fact_filter(candidate, blocked)
    assert first is not None
    assert first.reason is FilterReason.SEGMENT_EXCLUDED
    blocked.segments = frozenset()
    second = fact_filter(candidate, blocked)
    assert second is not None
    assert second.reason is FilterReason.LIFECYCLE_STAGE
    blocked.lifecycle_stage = "LIFECYCLE_STAGE_ONBOARDING"
    third = fact_filter(candidate, blocked)
    assert third is not None
    assert third.reason is FilterReason.QUIET_HOURS


@pytest.mark.parametrize(
    ("candidate", "fact", "rule"),
    [
        (Candidate("x", "CHANNEL_WEB", required_segments=("segments/vip",)), Fact.SEGMENTS, "segments"),
        (Candidate("x", "CHANNEL_WEB", excluded_segments=("segments/vip",)), Fact.SEGMENTS, "segments"),
        (
            _catalogued(lifecycle_stages=("LIFECYCLE_STAGE_RETENTION",)),
            Fact.LIFECYCLE,
            "eligibility.lifecycle_stages",
        ),
        (_catalogued(required_consent=MARKETING), Fact.CONTACT_POLICY, "eligibility.required_consent"),
        (
            _catalogued(required_reachable_channel="CHANNEL_EMAIL"),
            Fact.PROFILE,
            "eligibility.required_reachable_channel",
        ),
        (_contact(), Fact.CONTACT_POLICY, "contact_policy"),
    ],
)
def test_a_fact_that_could_not_be_read_removes_the_candidates_that_need_it(
    candidate: Candidate, fact: Fact, rule: str
) -> None:
    facts = Facts(unavailable={fact: "journeys did not answer within 50 ms"})
    found = fact_filter(candidate, facts)
    assert found is not None
    assert (found.reason, found.rule) == (FilterReason.FACT_UNAVAILABLE, rule)
    assert (
        found.description
        == f"{fact.value} unavailable (journeys did not answer within 50 ms), so {rule} cannot be checked"
    )


def test_decide_fails_closed_without_the_fact_services(tmp_path: Path, model: ServingModel) -> None:
    r = rig(tmp_path, model)  # no journeys, identity or orchestrator configured
    r.add("discount_10", eligibility=Eligibility(required_segments=("segments/vip",)))
    r.add("email_newsletter", channel="CHANNEL_EMAIL", counts_as_contact=True, purpose=MARKETING)
    decision = r.decider.decide(TENANT, ask("discount_10", "email_newsletter", "call_back", max_actions=3))
    assert ids(decision.returned) == ["call_back"]
    filtered = {c.candidate.action_id: c.filter for c in decision.candidates if c.outcome is Outcome.FILTERED}
    segment, contact = filtered["discount_10"], filtered["email_newsletter"]
    assert segment is not None
    assert contact is not None
    assert (segment.reason, segment.rule) == (FilterReason.FACT_UNAVAILABLE, "segments")
    assert "no journeys address is configured (WAYLINE_DECISION_JOURNEYS_ADDRESS)" in segment.description
    assert (contact.reason, contact.rule) == (FilterReason.FACT_UNAVAILABLE, "contact_policy")
    assert "no orchestrator address is configured" in contact.description
    # Filtered after scoring: the trace shows what they would have scored.
    assert all(c.factors is not None for c in decision.candidates)


def test_only_the_facts_the_surviving_candidates_need_are_asked_for() -> None:
    wide = Action(
        "a", channel="CHANNEL_WEB", eligibility=Eligibility(lifecycle_stages=("LIFECYCLE_STAGE_RETENTION",))
    )
    needs = fact_needs(
        [
            Candidate("a", "CHANNEL_WEB", required_segments=("segments/x",), catalogued=wide),
            Candidate(
                "b", "CHANNEL_SMS", excluded_segments=("segments/y",), is_contact=True, purpose=MARKETING
            ),
        ],
        identifier_types_known=False,
    )
    assert needs.segments == {"segments/x", "segments/y"}
    assert needs.lifecycle
    assert not needs.profile
    assert needs.contacts == {("CHANNEL_SMS", MARKETING)}
    assert not fact_needs([Candidate("c", "CHANNEL_WEB")], identifier_types_known=False)
