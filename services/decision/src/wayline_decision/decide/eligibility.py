"""Eligibility: the rules a candidate must pass, in a fixed order; the first that fails removes it.

Local rules first (no I/O), so that facts are fetched only for candidates that survive them:
 1. archived           the catalogued action is archived                          ACTION_ARCHIVED
 2. unknown action     the model does not score the action                        UNKNOWN_ACTION
 3. validity window    the catalogued action's start_time/end_time                VALIDITY_WINDOW
 4. placement          the catalogued action's placements                         PLACEMENT
Then the fact rules, over what journeys, identity and the orchestrator said:
 5. required segments  eligibility.required_segments (and the request's)          SEGMENT_REQUIRED
 6. excluded segments  eligibility.excluded_segments (and the request's)          SEGMENT_EXCLUDED
 7. lifecycle stage    eligibility.lifecycle_stages                               LIFECYCLE_STAGE
 8. required consent   eligibility.required_consent (the policy's consent)        NO_CONSENT
 9. reachability       eligibility.required_reachable_channel (the profile)       NOT_REACHABLE
10. contact policy     for contacts: caps, quiet hours, consent, preference       the violation's kind
A rule whose fact could not be read removes the candidate (FACT_UNAVAILABLE): segments too, because a
required segment gates who may have an offer and an excluded one is usually a suppression list (complaints,
recent buyers) — showing an offer to the wrong person is worse than showing the next one.
"""

from __future__ import annotations

from collections.abc import Mapping

from wayline_decision.actions import ActionState
from wayline_decision.decide.facts import ContactVerdict, Fact, Facts
from wayline_decision.decide.model import Candidate, Filter, FilterReason

__all__ = ["REACHABLE_BY", "fact_filter", "local_filter"]

# The identifier types that make a person reachable on a channel; a channel not listed needs any profile.
REACHABLE_BY: Mapping[str, frozenset[str]] = {
    "CHANNEL_EMAIL": frozenset({"email"}),
    "CHANNEL_SMS": frozenset({"phone"}),
    "CHANNEL_CALL_CENTER": frozenset({"phone"}),
    "CHANNEL_PUSH": frozenset({"device_id"}),
    "CHANNEL_MOBILE_APP": frozenset({"device_id"}),
}

_BLOCKS: Mapping[str, FilterReason] = {
    "CONTACT_BLOCK_REASON_FREQUENCY_CAP": FilterReason.FREQUENCY_CAP,
    "CONTACT_BLOCK_REASON_QUIET_HOURS": FilterReason.QUIET_HOURS,
    "CONTACT_BLOCK_REASON_NO_CONSENT": FilterReason.NO_CONSENT,
    "CONTACT_BLOCK_REASON_CHANNEL_PREFERENCE": FilterReason.CHANNEL_PREFERENCE,
}


def _short(name: str, prefix: str) -> str:
    return name.removeprefix(prefix).lower().replace("_", " ")


def local_filter(c: Candidate, scored_ids: Mapping[str, int], placement: str, now_us: int) -> Filter | None:
    """Rules 1 to 4."""
    action = c.catalogued
    if action is not None and action.state is ActionState.ARCHIVED:
        return Filter(FilterReason.ACTION_ARCHIVED, "state", f"actions/{c.action_id} is archived")
    if c.action_id not in scored_ids:
        return Filter(
            FilterReason.UNKNOWN_ACTION, "model.action_ids", f"the model does not score {c.action_id!r}"
        )
    if action is None:
        return None
    if action.start_time is not None and now_us < action.start_time:
        return Filter(
            FilterReason.VALIDITY_WINDOW, "start_time", "the action's validity window has not begun"
        )
    if action.end_time is not None and now_us >= action.end_time:
        return Filter(FilterReason.VALIDITY_WINDOW, "end_time", "the action's validity window has ended")
    if action.placements and placement not in action.placements:
        listed = ", ".join(action.placements)
        return Filter(
            FilterReason.PLACEMENT, "placements", f"the action fills {listed}, not placement {placement!r}"
        )
    return None


def _unavailable(rule: str, fact: Fact, facts: Facts) -> Filter:
    why = facts.unavailable.get(fact, "not read")
    return Filter(
        FilterReason.FACT_UNAVAILABLE, rule, f"{fact.value} unavailable ({why}), so {rule} cannot be checked"
    )


def _contact(verdict: ContactVerdict | None, facts: Facts, rule: str, consent_only: bool) -> Filter | None:
    if verdict is None:
        return _unavailable(rule, Fact.CONTACT_POLICY, facts)
    for violation in verdict.violations:
        reason = _BLOCKS.get(violation.reason, FilterReason.FREQUENCY_CAP)
        if consent_only and reason is not FilterReason.NO_CONSENT:
            continue
        path = rule if consent_only else f"contact_policy.{violation.rule}".rstrip(".")
        return Filter(reason, path, violation.description)
    if not verdict.allowed and not consent_only:
        return Filter(FilterReason.FREQUENCY_CAP, "contact_policy", "the contact policy forbids the contact")
    return None


def _segments(c: Candidate, facts: Facts) -> Filter | None:
    if not (c.required_segments or c.excluded_segments):
        return None
    members = facts.segments
    if members is None:
        return _unavailable("segments", Fact.SEGMENTS, facts)
    for segment in c.required_segments:
        if segment not in members:
            return Filter(FilterReason.SEGMENT_REQUIRED, segment, f"the person is not a member of {segment}")
    for segment in c.excluded_segments:
        if segment in members:
            return Filter(FilterReason.SEGMENT_EXCLUDED, segment, f"the person is a member of {segment}")
    return None


def fact_filter(c: Candidate, facts: Facts) -> Filter | None:
    """Rules 5 to 10, over `facts`."""
    contacts = facts.contacts
    found = _segments(c, facts)
    if found is not None:
        return found
    action = c.catalogued
    if action is not None:
        eligibility = action.eligibility
        if eligibility.lifecycle_stages:
            rule = "eligibility.lifecycle_stages"
            stage = facts.lifecycle_stage
            if stage is None:
                return _unavailable(rule, Fact.LIFECYCLE, facts)
            if stage not in eligibility.lifecycle_stages:
                wanted = ", ".join(_short(s, "LIFECYCLE_STAGE_") for s in eligibility.lifecycle_stages)
                return Filter(
                    FilterReason.LIFECYCLE_STAGE,
                    rule,
                    f"the person is in stage {_short(stage, 'LIFECYCLE_STAGE_')}, not {wanted}",
                )
        if eligibility.required_consent != "CONTACT_PURPOSE_UNSPECIFIED":
            key = (c.channel, eligibility.required_consent)
            verdict = None if contacts is None else contacts.get(key)
            found = _contact(verdict, facts, "eligibility.required_consent", consent_only=True)
            if found is not None:
                return found
        channel = eligibility.required_reachable_channel
        if channel != "CHANNEL_UNSPECIFIED":
            rule = "eligibility.required_reachable_channel"
            types = facts.identifier_types
            if types is None:
                return _unavailable(rule, Fact.PROFILE, facts)
            by = REACHABLE_BY.get(channel)
            if not types or (by is not None and not types & by):
                needed = " or ".join(sorted(by)) if by else "any identifier"
                return Filter(
                    FilterReason.NOT_REACHABLE,
                    rule,
                    f"the person has no {needed} to reach them on {_short(channel, 'CHANNEL_')}",
                )
    if c.is_contact:
        verdict = None if contacts is None else contacts.get((c.channel, c.purpose))
        return _contact(verdict, facts, "contact_policy", consent_only=False)
    return None
