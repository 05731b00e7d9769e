"""protobuf ⇄ identity's domain types. Enumerations cross as the lower-case names of the contract's values
without their prefix (`IGNORE_REASON_MERGE_BLOCKED` ⇄ `merge_blocked`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from google.protobuf.timestamp_pb2 import Timestamp

from wayline.common.errors import FieldViolation, InvalidArgument
from wayline.common.paging import decode_page_token, encode_page_token, invalid_page_token
from wayline.common.timestamps import (
    MAX_TIMESTAMP_SECONDS,
    MIN_TIMESTAMP_SECONDS,
    timestamp_violation,
    to_timestamp,
)
from wayline.event.v1 import event_pb2
from wayline.identity.v1 import identity_rules_pb2 as rules_pb
from wayline.identity.v1 import identity_service_pb2 as pb
from wayline.identity.v1 import person_override_pb2 as override_pb
from wayline.identity.v1 import profile_pb2 as profile_pb
from wayline_identity.erasure import Erasure
from wayline_identity.model import (
    Conflict,
    IdentifierPage,
    IgnoreReason,
    Key,
    MergeRecord,
    Override,
    Profile,
    ProfileIdentifier,
    Resolution,
    ResolutionInput,
)
from wayline_identity.rules import Rules, TypeRule, rules_etag
from wayline_identity.simulate import SimulatedMerge

__all__ = [
    "MAX_BATCH",
    "MAX_IDENTIFIER_TYPE",
    "MAX_IDENTIFIER_VALUE",
    "ProfileFilters",
    "add_resolutions",
    "erasure_pb",
    "identifier",
    "identifier_key",
    "identifier_pb",
    "identifiers_cursor",
    "identifiers_page_pb",
    "merge_pb",
    "override_pb_of",
    "overrides_cursor",
    "person_ids",
    "person_ref",
    "profile_filters",
    "profile_pb_of",
    "profiles_cursor",
    "required",
    "resolution_inputs",
    "rules_from_pb",
    "rules_pb_of",
    "simulated_pb",
    "simulation_range",
    "time_range",
]

MAX_BATCH = 1000
# event.proto's Identifier: a type is at most 64 characters, a value at most 512.
MAX_IDENTIFIER_TYPE, MAX_IDENTIFIER_VALUE = 64, 512
# PostgreSQL's text cannot hold U+0000 (psycopg raises DataError, which a caller would see as INTERNAL): every
# string that reaches the store is refused with it, on SQLite too, so that both engines answer alike.
_NUL = "\x00"
_NO_NUL = "must not contain the NUL character (U+0000)"
# Timestamp's range in microseconds, what an input's time is checked against (an integer comparison per
# input: this is the hot path), and the time given to an input whose nanos are out of range, which lies
# outside it so that one comparison catches both.
_MIN_MICROS = MIN_TIMESTAMP_SECONDS * 1_000_000
_MAX_MICROS = MAX_TIMESTAMP_SECONDS * 1_000_000 + 999_999
_INVALID_TIME = _MAX_MICROS + 1
_NANOS = 1_000_000_000


def _normalization(name: str) -> rules_pb.Normalization.ValueType:
    return rules_pb.Normalization.Value("NORMALIZATION_" + name.upper())


def _event_type(name: str) -> event_pb2.EventType.ValueType:
    return event_pb2.EventType.Value("EVENT_TYPE_" + name.upper())


def identifier_key(identifier: event_pb2.Identifier) -> Key:
    return identifier.type, identifier.value


def _identifier_violations(kind: str, value: str, path: str) -> list[FieldViolation]:
    """Why an identifier at `path` is malformed (event.proto's Identifier); empty when it is not."""
    found = []
    if not kind:
        found.append(FieldViolation(f"{path}.type", "must be set"))
    elif len(kind) > MAX_IDENTIFIER_TYPE:
        found.append(FieldViolation(f"{path}.type", f"at most {MAX_IDENTIFIER_TYPE} characters", "TOO_LONG"))
    elif _NUL in kind:
        found.append(FieldViolation(f"{path}.type", _NO_NUL))
    if len(value) > MAX_IDENTIFIER_VALUE:
        found.append(
            FieldViolation(f"{path}.value", f"at most {MAX_IDENTIFIER_VALUE} characters", "TOO_LONG")
        )
    elif _NUL in value:
        found.append(FieldViolation(f"{path}.value", _NO_NUL))
    return found


def identifier(message: event_pb2.Identifier, path: str) -> Key:
    """The identifier a request names (to look up, or to unmerge), checked: both parts set and well formed."""
    kind, value = message.type, message.value
    found = _identifier_violations(kind, value, path)
    if not value:
        found.append(FieldViolation(f"{path}.value", "must be set"))
    if found:
        raise InvalidArgument(f"{path} is malformed; see the field violations", found)
    return kind, value


def required(value: str, path: str) -> str:
    """A string field that must be set (an id, a reason), checked."""
    if not value:
        raise InvalidArgument(f"{path} is required", [FieldViolation(path, "must be set")])
    if _NUL in value:
        raise InvalidArgument(f"{path} is malformed", [FieldViolation(path, _NO_NUL)])
    return value


def person_ref(ref: event_pb2.PersonRef, path: str) -> tuple[str, Key | None]:
    """The person a PersonRef names: (person id, None) or ("", identifier)."""
    which = ref.WhichOneof("ref")
    if which == "person_id" and ref.person_id:
        return required(ref.person_id, f"{path}.person_id"), None
    if which == "identifier":
        return "", identifier(ref.identifier, f"{path}.identifier")
    raise InvalidArgument(
        "name the person by person_id or by an identifier", [FieldViolation(path, "must be set")]
    )


def person_ids(ids: Sequence[str], path: str) -> list[str]:
    """MergeProfiles' persons: 2 to 10 distinct ids, in order, each once."""
    persons = list(dict.fromkeys(ids))
    if not 2 <= len(persons) <= 10 or not all(persons):
        raise InvalidArgument(
            "name 2 to 10 distinct persons to merge", [FieldViolation(path, "2 to 10 distinct person ids")]
        )
    for i, person in enumerate(ids):
        if _NUL in person:
            raise InvalidArgument(f"{path} is malformed", [FieldViolation(f"{path}[{i}]", _NO_NUL)])
    return persons


def identifier_pb(key: Key) -> event_pb2.Identifier:
    return event_pb2.Identifier(type=key[0], value=key[1])


# Enum names by value, looked up once: this is the hot path of ingestion.
_EVENT_TYPES = {
    v.number: v.name.removeprefix("EVENT_TYPE_").lower() for v in event_pb2.EventType.DESCRIPTOR.values
}
_IGNORE_REASONS = {r: rules_pb.IgnoreReason.Value("IGNORE_REASON_" + r.value.upper()) for r in IgnoreReason}


def resolution_inputs(request: pb.ResolveIdentitiesRequest) -> list[ResolutionInput]:
    """The request's inputs, checked (InvalidArgument with every violation). Converted first and checked
    after, on the converted tuples: this is the hot path of ingestion, and the common, valid batch then
    reads each protobuf field once."""
    inputs = request.inputs
    event_types = _EVENT_TYPES
    items = [
        ResolutionInput(
            item.event_id,
            # The nanos are read (and checked) first; out of range, the time is one the range check refuses.
            ts.seconds * 1_000_000 + nanos // 1000
            if 0 <= (nanos := (ts := item.timestamp).nanos) < _NANOS
            else _INVALID_TIME,
            event_types.get(item.event_type, "unspecified"),
            tuple([(x.type, x.value) for x in item.identifiers]),
            tuple([(x.type, x.value) for x in item.previous_identifiers]),
        )
        for item in inputs
    ]
    violations: list[FieldViolation] = []
    if len(items) > MAX_BATCH:
        violations.append(FieldViolation("inputs", f"at most {MAX_BATCH} inputs per call, got {len(items)}"))
    for i, converted in enumerate(items):
        keys = converted.identifiers
        if not keys:
            violations.append(
                FieldViolation(f"inputs[{i}].identifiers", "at least one identifier is required")
            )
        # Cheap comparisons inline; the detailed report only for an identifier that fails them.
        for field, pairs in (("identifiers", keys), ("previous_identifiers", converted.previous_identifiers)):
            for j, (kind, value) in enumerate(pairs):
                if (
                    not kind
                    or len(kind) > MAX_IDENTIFIER_TYPE
                    or len(value) > MAX_IDENTIFIER_VALUE
                    or _NUL in kind
                    or _NUL in value
                ):
                    violations.extend(_identifier_violations(kind, value, f"inputs[{i}].{field}[{j}]"))
        if _NUL in converted.event_id:
            violations.append(FieldViolation(f"inputs[{i}].event_id", _NO_NUL))
        time = converted.time
        if not time and not inputs[i].HasField("timestamp"):
            violations.append(FieldViolation(f"inputs[{i}].timestamp", "must be set"))
        elif not _MIN_MICROS <= time <= _MAX_MICROS:
            # Stored as the profile's first or last seen time, a time outside Timestamp's range could never
            # be read back: the profile would answer INTERNAL from then on.
            bad = timestamp_violation(inputs[i].timestamp, f"inputs[{i}].timestamp")
            if bad is not None:
                violations.append(bad)
    if violations:
        raise InvalidArgument("the batch is malformed; see the field violations", violations)
    return items


def add_resolutions(response: pb.ResolveIdentitiesResponse, resolutions: list[Resolution]) -> None:
    """Append `resolutions` to `response` (built in place: much cheaper than message constructors)."""
    for resolution in resolutions:
        out = response.resolutions.add(
            index=resolution.index,
            event_id=resolution.event_id,
            person_id=resolution.person_id,
            person_created=resolution.person_created,
        )
        for kind, value in resolution.identifiers:
            out.identifiers.add(type=kind, value=value)
        for ignored in resolution.ignored:
            entry = out.ignored_identifiers.add(reason=_IGNORE_REASONS[ignored.reason])
            entry.identifier.type, entry.identifier.value = ignored.identifier


def merge_pb(record: MergeRecord) -> profile_pb.MergeRecord:
    return profile_pb.MergeRecord(
        merge_id=record.merge_id,
        kind=profile_pb.MergeKind.Value("MERGE_KIND_" + record.kind.value.upper()),
        target_person_id=record.target_person_id,
        source_person_id=record.source_person_id,
        identifier=identifier_pb(record.identifier) if record.identifier else None,
        event_id=record.event_id,
        create_time=to_timestamp(record.create_time),
        actor=record.actor,
        reason=record.reason,
        reverted_merge_id=record.reverted_merge_id,
        reverted_by_merge_id=record.reverted_by_merge_id,
    )


def override_pb_of(override: Override) -> override_pb.PersonOverride:
    return override_pb.PersonOverride(
        person_id=override.person_id,
        identifier=identifier_pb(override.identifier) if override.identifier else None,
        override_person_id=override.override_person_id,
        version=override.version,
        create_time=to_timestamp(override.create_time),
        merge_id=override.merge_id,
        erased=override.erased,
    )


def _conflict_pb(conflict: Conflict) -> profile_pb.MergeConflict:
    return profile_pb.MergeConflict(
        other_person_id=conflict.other_person_id,
        identifier_type=conflict.identifier_type,
        reason=rules_pb.IGNORE_REASON_MERGE_BLOCKED,
        explanation=conflict.explanation,
        first_event_id=conflict.first_event_id,
        last_event_id=conflict.last_event_id,
        first_time=to_timestamp(conflict.first_time),
        last_time=to_timestamp(conflict.last_time),
        event_count=conflict.event_count,
    )


def _identifier_pb(held: ProfileIdentifier) -> profile_pb.ProfileIdentifier:
    return profile_pb.ProfileIdentifier(
        identifier=identifier_pb(held.identifier),
        first_seen_time=to_timestamp(held.first_seen),
        last_seen_time=to_timestamp(held.last_seen),
        first_event_id=held.first_event_id,
        origin_person_id=held.origin_person_id,
    )


def profile_pb_of(profile: Profile) -> profile_pb.Profile:
    return profile_pb.Profile(
        person_id=profile.person_id,
        identifiers=[_identifier_pb(i) for i in profile.identifiers],
        first_seen_time=to_timestamp(profile.first_seen),
        last_seen_time=to_timestamp(profile.last_seen),
        merged_person_ids=profile.merged_person_ids,
        merge_history=[merge_pb(r) for r in profile.merge_history],
        merge_history_truncated=profile.merge_history_truncated,
        create_time=to_timestamp(profile.create_time),
        update_time=to_timestamp(profile.update_time),
        conflicts=[_conflict_pb(c) for c in profile.conflicts],
        identifier_count=len(profile.identifiers)
        if profile.identifier_count is None
        else profile.identifier_count,
        merged_person_count=len(profile.merged_person_ids)
        if profile.merged_person_count is None
        else profile.merged_person_count,
    )


# The values this build knows, by number. The wire carries any number in an enum field (a newer client's, or
# garbage); an unknown one is a violation, not a failed name lookup.
_NORMALIZATION_NAMES = {
    v.number: v.name.removeprefix("NORMALIZATION_").lower()
    for v in rules_pb.Normalization.DESCRIPTOR.values
    if v.number != rules_pb.NORMALIZATION_UNSPECIFIED
}
_LINKING_EVENT_TYPES = {n: name for n, name in _EVENT_TYPES.items() if n != event_pb2.EVENT_TYPE_UNSPECIFIED}


def rules_from_pb(message: rules_pb.IdentityRules, prefix: str = "identity_rules") -> Rules:
    violations: list[FieldViolation] = []
    types = []
    for i, rule in enumerate(message.identifier_types):
        steps = []
        for j, step in enumerate(rule.normalizations):
            name = _NORMALIZATION_NAMES.get(step)
            if name is not None:
                steps.append(name)
            elif step == rules_pb.NORMALIZATION_UNSPECIFIED:
                violations.append(
                    FieldViolation(f"{prefix}.identifier_types[{i}].normalizations[{j}]", "must be set")
                )
            else:
                violations.append(
                    FieldViolation(
                        f"{prefix}.identifier_types[{i}].normalizations[{j}]",
                        f"{step} is not a Normalization value",
                    )
                )
        types.append(
            TypeRule(
                rule.type,
                rule.priority,
                rule.max_per_profile,
                tuple(rule.blocked_values),
                tuple(steps),
                rule.validation_regex,
                rule.non_linking,
            )
        )
    linking = []
    for i, kind in enumerate(message.linking_event_types):
        name = _LINKING_EVENT_TYPES.get(kind)
        if name is not None:
            linking.append(name)
        elif kind == event_pb2.EVENT_TYPE_UNSPECIFIED:
            violations.append(FieldViolation(f"{prefix}.linking_event_types[{i}]", "must be set"))
        else:
            violations.append(
                FieldViolation(f"{prefix}.linking_event_types[{i}]", f"{kind} is not an EventType value")
            )
    rules = Rules(
        identifier_types=tuple(types),
        blocked_values=tuple(message.blocked_values),
        allow_unlisted_types=message.allow_unlisted_types,
        linking_event_types=tuple(linking),
        default_phone_region=message.default_phone_region,
    )
    violations.extend(rules.violations(prefix))
    if violations:
        raise InvalidArgument("the identity rules are invalid; see the field violations", violations)
    return rules


def rules_pb_of(rules: Rules) -> rules_pb.IdentityRules:
    return rules_pb.IdentityRules(
        identifier_types=[
            rules_pb.IdentifierTypeRule(
                type=r.type,
                priority=r.priority,
                max_per_profile=r.max_per_profile,
                blocked_values=r.blocked_values,
                normalizations=[_normalization(s) for s in r.normalizations],
                validation_regex=r.validation_regex,
                non_linking=r.non_linking,
            )
            for r in rules.identifier_types
        ],
        blocked_values=rules.blocked_values,
        allow_unlisted_types=rules.allow_unlisted_types,
        linking_event_types=[_event_type(t) for t in rules.linking_event_types],
        default_phone_region=rules.default_phone_region,
        revision=rules.revision,
        update_time=to_timestamp(rules.update_time) if rules.update_time else None,
        etag=rules_etag(rules),
    )


def _range_violations(message: event_pb2.TimeRange, path: str) -> list[FieldViolation]:
    """Why a TimeRange at `path` is malformed: a bound outside Timestamp's range, or (event.proto) both bounds
    set and `start` not before `end`."""
    found = [
        bad
        for name in ("start", "end")
        if message.HasField(name)
        and (bad := timestamp_violation(getattr(message, name), f"{path}.{name}")) is not None
    ]
    if not found and message.HasField("start") and message.HasField("end"):
        start, end = message.start, message.end
        if (start.seconds, start.nanos) >= (end.seconds, end.nanos):
            found.append(FieldViolation(path, "start must be before end"))
    return found


def _micros(ts: Timestamp) -> int:
    return ts.seconds * 1_000_000 + ts.nanos // 1000


def _bounds(message: event_pb2.TimeRange) -> tuple[int | None, int | None]:
    """A checked TimeRange's bounds in microseconds, None for an unset one."""
    return (
        _micros(message.start) if message.HasField("start") else None,
        _micros(message.end) if message.HasField("end") else None,
    )


def time_range(message: event_pb2.TimeRange, path: str) -> tuple[int | None, int | None]:
    """A TimeRange's bounds in microseconds (None for an unset one), checked."""
    found = _range_violations(message, path)
    if found:
        raise InvalidArgument(f"{path} is malformed; see the field violations", found)
    return _bounds(message)


class ProfileFilters(NamedTuple):
    """ListProfiles' filters, checked and converted."""

    identifier: Key | None
    identifier_type: str
    last_seen: tuple[int | None, int | None]
    first_seen: tuple[int | None, int | None]


def profile_filters(request: pb.ListProfilesRequest) -> ProfileFilters:
    """ListProfiles' filters, checked: InvalidArgument with every violation."""
    found: list[FieldViolation] = []
    kind, value = request.identifier_type, request.identifier_value
    if value and not kind:
        found.append(FieldViolation("identifier_type", "must be set with identifier_value"))
    if len(kind) > MAX_IDENTIFIER_TYPE:
        found.append(
            FieldViolation("identifier_type", f"at most {MAX_IDENTIFIER_TYPE} characters", "TOO_LONG")
        )
    elif _NUL in kind:
        found.append(FieldViolation("identifier_type", _NO_NUL))
    if len(value) > MAX_IDENTIFIER_VALUE:
        found.append(
            FieldViolation("identifier_value", f"at most {MAX_IDENTIFIER_VALUE} characters", "TOO_LONG")
        )
    elif _NUL in value:
        found.append(FieldViolation("identifier_value", _NO_NUL))
    found += _range_violations(request.last_seen_range, "last_seen_range")
    found += _range_violations(request.first_seen_range, "first_seen_range")
    if found:
        raise InvalidArgument("the filters are malformed; see the field violations", found)
    return ProfileFilters(
        (kind, value) if value else None,
        kind,
        _bounds(request.last_seen_range),
        _bounds(request.first_seen_range),
    )


def simulation_range(message: event_pb2.TimeRange, now: int, default: int) -> tuple[int, int]:
    """SimulateIdentityRules' range in microseconds: an unset end is `now`, an unset start `default` before
    the end; checked, the range it gives included (it must not be empty)."""
    start, end = time_range(message, "time_range")
    end = end if end is not None else now + 1
    start = start if start is not None else end - default
    if start >= end:
        raise InvalidArgument(
            "time_range is empty or inverted", [FieldViolation("time_range", "start must be before end")]
        )
    return start, end


def profiles_cursor(token: str, binding: str) -> tuple[int, str]:
    """Where a ListProfiles page token resumes: after (last seen time, person id). INVALID_PAGE_TOKEN unless
    it is one this service issues for the filters `binding` fingerprints. A bool is no time here (JSON `true`
    decodes to an int subclass, which PostgreSQL will not compare with a BIGINT), and no issued person id
    holds a NUL (PostgreSQL's text cannot). The time is the profile's as stored, any int64 (decode_page_token
    refuses others): one stored before times were checked lies past Timestamp's range (ADR 78)."""
    fields = decode_page_token(token, "ListProfiles")
    seen, person = fields.get("s"), fields.get("p")
    if fields.get("f") != binding or type(seen) is not int or not isinstance(person, str) or _NUL in person:
        raise invalid_page_token("ListProfiles")
    return seen, person


IdentifierKey = tuple[int, int, str, str]


def identifiers_cursor(token: str) -> tuple[str, IdentifierKey]:
    """(the person, the place after which the page resumes) of a ListProfileIdentifiers page token;
    INVALID_PAGE_TOKEN unless it is one this service issues: the place is (negated type priority, first seen
    in microseconds, type, value), with ints that are no bools (JSON `true` decodes to an int subclass)."""
    fields = decode_page_token(token, "ListProfileIdentifiers")
    person, key = fields.get("p"), fields.get("k")
    if not isinstance(person, str) or not isinstance(key, list) or len(key) != 4:
        raise invalid_page_token("ListProfileIdentifiers")
    priority, seen, kind, value = key
    if (
        type(priority) is not int
        or type(seen) is not int
        or not isinstance(kind, str)
        or not isinstance(value, str)
    ):
        raise invalid_page_token("ListProfileIdentifiers")
    return person, (priority, seen, kind, value)


def identifiers_page_pb(page: IdentifierPage) -> pb.ListProfileIdentifiersResponse:
    token = encode_page_token({"p": page.person_id, "k": list(page.last_key)}) if page.last_key else ""
    return pb.ListProfileIdentifiersResponse(
        person_id=page.person_id,
        identifiers=[_identifier_pb(i) for i in page.identifiers],
        next_page_token=token,
        total_size=page.total,
    )


def overrides_cursor(token: str, after_version: int) -> int:
    """The version a ListPersonOverrides page token resumes after. INVALID_PAGE_TOKEN unless it is one this
    service issues for `after_version`: the last version of a page read after it, so above it (and an int,
    not a bool, for the reason profiles_cursor says)."""
    fields = decode_page_token(token, "ListPersonOverrides")
    issued_for, version = fields.get("a"), fields.get("v")
    if (
        type(issued_for) is not int
        or issued_for != after_version
        or type(version) is not int
        or version <= after_version
    ):
        raise invalid_page_token("ListPersonOverrides")
    return version


def simulated_pb(merge: SimulatedMerge) -> pb.SimulatedMerge:
    return pb.SimulatedMerge(
        merge_id=merge.merge_id,
        source_person_id=merge.source_person_id,
        target_person_id=merge.target_person_id,
        identifier=identifier_pb(merge.identifier) if merge.identifier else None,
        event_id=merge.event_id,
        explanation=merge.explanation,
    )


def _erasure_state(state: str) -> pb.ErasureState.ValueType:
    return pb.ErasureState.Value("ERASURE_STATE_" + state.upper())


def erasure_pb(erasure: Erasure) -> pb.Erasure:
    return pb.Erasure(
        erasure_id=erasure.erasure_id,
        person_ids=erasure.person_ids,
        state=_erasure_state(erasure.state),
        steps=[
            pb.ErasureStep(
                store=step.store,
                state=_erasure_state(step.state),
                deleted_count=step.deleted_count,
                attempt_count=step.attempt_count,
                last_error=step.last_error,
                update_time=to_timestamp(step.update_time),
            )
            for step in erasure.steps
        ],
        actor=erasure.actor,
        create_time=to_timestamp(erasure.create_time),
        complete_time=to_timestamp(erasure.complete_time) if erasure.complete_time else None,
    )
