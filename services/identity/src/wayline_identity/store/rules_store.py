"""Each tenant's identity rules, stored as JSON; the contract's defaults until a tenant changes them."""

from __future__ import annotations

import json

from wayline.common.sql import Transaction
from wayline.common.timestamps import from_micros
from wayline_identity.rules import DEFAULT_RULES, Rules

__all__ = ["load_rules", "save_rules"]


def load_rules(tx: Transaction, tenant: str) -> Rules:
    rows = tx.execute("SELECT spec, revision, update_time FROM identity_rules WHERE tenant = ?", (tenant,))
    if not rows:
        return DEFAULT_RULES
    spec, revision, update_time = rows[0]
    return Rules.from_spec(json.loads(spec), int(revision), from_micros(update_time))


def save_rules(tx: Transaction, tenant: str, rules: Rules, now: int) -> None:
    tx.execute(
        "INSERT INTO identity_rules (tenant, spec, revision, update_time) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (tenant) DO UPDATE SET spec = excluded.spec, revision = excluded.revision,"
        " update_time = excluded.update_time",
        (tenant, json.dumps(rules.spec(), sort_keys=True), rules.revision, now),
    )
