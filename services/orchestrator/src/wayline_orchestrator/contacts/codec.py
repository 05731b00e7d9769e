"""The JSON documents the ledger's store keeps for a policy and for the parts of a contact no query filters
on: one place that turns them into the domain's types and back, so a new field is a code change, not a
migration."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from wayline_orchestrator.contacts.model import (
    ChannelPreference,
    ConsentRule,
    Contact,
    ContactPolicy,
    FrequencyCap,
    QuietHours,
)

__all__ = ["CONTACT_BODY_FIELDS", "contact_body", "policy_body", "policy_of"]

# The fields of a contact kept in its JSON body; the others are columns.
CONTACT_BODY_FIELDS = ("action_id", "source", "flow", "flow_version", "flow_step_id", "decision_id")


def policy_body(policy: ContactPolicy) -> str:
    rules = dataclasses.asdict(policy)
    for output_only in ("revision", "update_time"):
        rules.pop(output_only)
    return json.dumps(rules, sort_keys=True)


def policy_of(body: str, revision: int, update_time: int) -> ContactPolicy:
    rules: dict[str, Any] = json.loads(body)
    preference = rules["channel_preference"]
    return ContactPolicy(
        frequency_caps=tuple(
            FrequencyCap(**{**cap, "purposes": tuple(cap["purposes"])}) for cap in rules["frequency_caps"]
        ),
        quiet_hours=tuple(
            QuietHours(**{**q, "channels": tuple(q["channels"]), "purposes": tuple(q["purposes"])})
            for q in rules["quiet_hours"]
        ),
        consent_rules=tuple(ConsentRule(**rule) for rule in rules["consent_rules"]),
        channel_preference=ChannelPreference(
            enforce=preference["enforce"], default_order=tuple(preference["default_order"])
        ),
        revision=revision,
        update_time=update_time,
    )


def contact_body(contact: Contact) -> str:
    return json.dumps({name: getattr(contact, name) for name in CONTACT_BODY_FIELDS}, sort_keys=True)
