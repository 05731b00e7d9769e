"""A tenant's identity rules: which identifier types exist, how each is normalised, limited and ranked.

`Rules.normalise` is the door every identifier passes before it is matched: it returns the normalised key or
the reason it is ignored. The defaults are the contract's (identity_rules.proto); `violations` checks a
proposed rule set the way UpdateIdentityRules and SimulateIdentityRules refuse it.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from functools import cached_property, partial

import phonenumbers
import re2
import structlog

from wayline.common.errors import FieldViolation
from wayline.common.patterns import compile_pattern, pattern_problem, re2_message
from wayline_identity.model import IgnoreReason, Key

__all__ = ["DEFAULT_RULES", "NORMALIZATIONS", "Rules", "TypeRule", "rules_etag"]

log = structlog.get_logger("wayline.identity.rules")

# A value's full match against a type's validation pattern: a match object, or None when it does not match.
_FullMatch = Callable[[str], object]
# A listed type's normalisation: its steps in order (each returns None for an invalid value), its own
# blocked values (case-folded) and its validation pattern's full match.
_Plan = tuple[tuple[Callable[[str], str | None], ...], frozenset[str], _FullMatch | None]
# Called directly rather than through `_apply`: most identifiers are only trimmed.
_SIMPLE_STEPS: dict[str, Callable[[str], str]] = {
    "trim": str.strip,
    "lowercase": str.lower,
    "uppercase": str.upper,
}
_UNLISTED: _Plan = ((), frozenset(), None)

NORMALIZATIONS = ("trim", "lowercase", "uppercase", "phone_e164", "digits_only")
_TYPE_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")
_NORMALISED_CACHE = 200_000
_NIL_UUID = "00000000-0000-0000-0000-000000000000"
_DEFAULT_BLOCKED = ("null", "undefined", "none", "unknown", "nan", "0", "-1", "anonymous", "guest", _NIL_UUID)
# `validation_regex` is RE2, as identity_rules.proto says (wayline.common.patterns): RE2 matches in time
# linear in the value, where Python's backtracking `re` can take exponential time (`(a+)+$` on a long run of
# `a`s) on every resolution of the type.


@dataclass(frozen=True)
class TypeRule:
    type: str
    priority: int = 0
    max_per_profile: int = 0  # 0: no limit
    blocked_values: tuple[str, ...] = ()
    normalizations: tuple[str, ...] = ()
    validation_regex: str = ""
    non_linking: bool = False


@dataclass(frozen=True)
class Rules:
    identifier_types: tuple[TypeRule, ...]
    blocked_values: tuple[str, ...] = _DEFAULT_BLOCKED
    allow_unlisted_types: bool = True
    linking_event_types: tuple[str, ...] = ()  # empty: every type links
    default_phone_region: str = ""
    revision: int = 0
    update_time: datetime | None = field(default=None, compare=False)

    @cached_property
    def _by_type(self) -> dict[str, TypeRule]:
        return {rule.type: rule for rule in self.identifier_types}

    @cached_property
    def _blocked(self) -> frozenset[str]:
        return frozenset(value.casefold() for value in self.blocked_values)

    @cached_property
    def _patterns(self) -> dict[str, _FullMatch]:
        """Each type's validation pattern, compiled once per rules version."""
        return {r.type: _full_match(r) for r in self.identifier_types if r.validation_regex}

    @cached_property
    def _blocked_per_type(self) -> dict[str, frozenset[str]]:
        return {r.type: frozenset(v.casefold() for v in r.blocked_values) for r in self.identifier_types}

    @cached_property
    def _plans(self) -> dict[str, _Plan]:
        """Per listed type, what `_normalise` does, looked up once per identifier."""
        region = self.default_phone_region
        return {
            r.type: (
                tuple(
                    _SIMPLE_STEPS.get(step) or partial(_apply, step, region=region)
                    for step in r.normalizations
                ),
                self._blocked_per_type[r.type],
                self._patterns.get(r.type),
            )
            for r in self.identifier_types
        }

    def rule(self, kind: str) -> TypeRule | None:
        """The rule of `kind`; None for an unlisted type (usable only when unlisted types are allowed)."""
        return self._by_type.get(kind)

    @cached_property
    def _priorities(self) -> dict[str, int]:
        return {rule.type: rule.priority for rule in self.identifier_types}

    def rank(self, key: Key) -> tuple[int, Key]:
        """The order identifiers are walked in: the highest priority first, then by type and value."""
        return -self._priorities.get(key[0], 0), key

    def priority(self, kind: str) -> int:
        return self._priorities.get(kind, 0)

    def limit(self, kind: str) -> int:
        rule = self._by_type.get(kind)
        return rule.max_per_profile if rule else 0

    def links(self, kind: str) -> bool:
        rule = self._by_type.get(kind)
        return not (rule and rule.non_linking)

    def event_links(self, event_type: str) -> bool:
        return not self.linking_event_types or event_type in self.linking_event_types

    @cached_property
    def _normalised(self) -> dict[Key, Key | IgnoreReason]:
        return {}

    def normalise(self, identifier: Key) -> Key | IgnoreReason:
        """The identifier as matched, or why it is not used. Remembered per rule set (the same ids come back
        event after event; phone parsing alone costs tens of microseconds), up to _NORMALISED_CACHE ids."""
        remembered = self._normalised
        known = remembered.get(identifier)
        if known is not None:
            return known
        outcome = self._normalise(identifier)
        if len(remembered) >= _NORMALISED_CACHE:
            remembered.clear()
        remembered[identifier] = outcome
        return outcome

    def _normalise(self, identifier: Key) -> Key | IgnoreReason:
        kind, value = identifier
        plan = self._plans.get(kind)
        if plan is None:
            if not self.allow_unlisted_types:
                return IgnoreReason.UNKNOWN_TYPE
            plan = _UNLISTED
        steps, blocked_here, pattern = plan
        for step in steps:
            normalised = step(value)
            if normalised is None:
                return IgnoreReason.INVALID_VALUE
            value = normalised
        folded = value.strip().casefold()
        if not folded or folded in self._blocked or folded in blocked_here:
            return IgnoreReason.BLOCKED_VALUE
        if pattern is not None and pattern(value) is None:
            return IgnoreReason.INVALID_VALUE
        return identifier if value == identifier[1] else (kind, value)

    def violations(self, prefix: str = "identity_rules") -> list[FieldViolation]:
        """What makes these rules invalid, as field violations (empty when they are valid)."""
        found: list[FieldViolation] = []
        seen: set[str] = set()
        for i, rule in enumerate(self.identifier_types):
            at = f"{prefix}.identifier_types[{i}]"
            if not _TYPE_NAME.fullmatch(rule.type):
                found.append(FieldViolation(f"{at}.type", "must be lower_snake_case, 1 to 63 characters"))
            elif rule.type in seen:
                found.append(FieldViolation(f"{at}.type", f"type {rule.type!r} is listed twice"))
            seen.add(rule.type)
            if rule.max_per_profile < 0:
                found.append(FieldViolation(f"{at}.max_per_profile", "must be 0 (no limit) or more"))
            for j, step in enumerate(rule.normalizations):
                if step not in NORMALIZATIONS:
                    found.append(FieldViolation(f"{at}.normalizations[{j}]", "must be set"))
            problem = pattern_problem(rule.validation_regex) if rule.validation_regex else None
            if problem is not None:
                # RE2's own words, such as `invalid perl operator: (?=` for a lookahead.
                found.append(FieldViolation(f"{at}.validation_regex", problem))
        region = self.default_phone_region
        if region and region not in phonenumbers.SUPPORTED_REGIONS:
            found.append(
                FieldViolation(
                    f"{prefix}.default_phone_region", f"{region!r} is not an ISO 3166-1 region code"
                )
            )
        return found

    def spec(self) -> dict[str, object]:
        """The writable fields as plain data (stored as JSON, hashed into the etag)."""
        data = asdict(self)
        data.pop("revision")
        data.pop("update_time")
        return data

    @classmethod
    def from_spec(cls, data: dict[str, object], revision: int, update_time: datetime | None) -> Rules:
        types = tuple(
            TypeRule(
                **{k: tuple(v) if isinstance(v, list) else v for k, v in rule.items()}  # type: ignore[arg-type]
            )
            for rule in data["identifier_types"]  # type: ignore[attr-defined]
        )
        return cls(
            identifier_types=types,
            blocked_values=tuple(_strings(data["blocked_values"])),
            allow_unlisted_types=bool(data["allow_unlisted_types"]),
            linking_event_types=tuple(_strings(data["linking_event_types"])),
            default_phone_region=str(data["default_phone_region"]),
            revision=revision,
            update_time=update_time,
        )


def _full_match(rule: TypeRule) -> _FullMatch:
    try:
        return compile_pattern(rule.validation_regex).fullmatch  # type: ignore[no-any-return]
    except re2.error as exc:
        # Stored before UpdateIdentityRules checked patterns against RE2 (it used Python's `re`), and refused
        # by it now: kept with the engine it was accepted with, so that the tenant's values are judged as
        # before, until the rules are updated (which the check refuses while the pattern stays).
        log.warning(
            "identity.rules.pattern_not_re2",
            type=rule.type,
            pattern=rule.validation_regex,
            error=re2_message(exc),
        )
        return re.compile(rule.validation_regex).fullmatch


def _strings(value: object) -> list[str]:
    assert isinstance(value, list)
    return [str(v) for v in value]


def rules_etag(rules: Rules) -> str:
    """An opaque tag that changes whenever the rules do."""
    digest = hashlib.sha256(json.dumps(rules.spec(), sort_keys=True).encode()).hexdigest()[:16]
    return f"{rules.revision}-{digest}"


def _apply(step: str, value: str, region: str) -> str | None:
    if step == "trim":
        return value.strip()
    if step == "lowercase":
        return value.lower()
    if step == "uppercase":
        return value.upper()
    if step == "digits_only":
        return _digits(value)
    if step == "phone_e164":
        try:
            number = phonenumbers.parse(value, region or None)
        except phonenumbers.NumberParseException:
            return None
        if not phonenumbers.is_possible_number(number):
            return None
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    raise ValueError(f"unknown normalisation {step!r}")


def _digits(value: str) -> str:
    """The decimal digits of `value` as ASCII: a number typed with another script's digits (Arabic-Indic
    `١٢٣`, Devanagari, the full-width digits of a CJK keyboard) is the same identifier as `123`, as phone
    parsing already reads it. `str.isdigit` also keeps superscripts and circled numbers (`²`, `①`), which are
    no digits of a number, and would keep the other scripts' digits as they are."""
    return "".join(str(digit) for c in value if (digit := unicodedata.decimal(c, None)) is not None)


DEFAULT_RULES = Rules(
    identifier_types=(
        TypeRule("user_id", priority=100, max_per_profile=1, normalizations=("trim",)),
        TypeRule("crm_id", priority=90, max_per_profile=1, normalizations=("trim",)),
        TypeRule("loyalty_id", priority=85, max_per_profile=1, normalizations=("trim",)),
        TypeRule("email", priority=80, max_per_profile=5, normalizations=("trim", "lowercase")),
        TypeRule("phone", priority=70, max_per_profile=5, normalizations=("phone_e164",)),
        TypeRule("device_id", priority=20, max_per_profile=10, normalizations=("trim",)),
        TypeRule("anonymous_id", priority=10, max_per_profile=0, normalizations=("trim",)),
    ),
)
