"""protobuf ⇄ identity's domain types. Enumerations cross as the lower-case names of the contract's values
without their prefix (`IGNORE_REASON_MERGE_BLOCKED` ⇄ `merge_blocked`)."""

from __future__ import annotations

from wayline.common.errors import FieldViolation, InvalidArgument
from wayline.common.timestamps import to_datetime, to_micros, to_timestamp
from wayline.event.v1 import event_pb2
from wayline.identity.v1 import identity_rules_pb2 as rules_pb
from wayline.identity.v1 import identity_service_pb2 as pb
from wayline.identity.v1 import person_override_pb2 as override_pb
from wayline.identity.v1 import profile_pb2 as profile_pb
from wayline_identity.erasure import Erasure
from wayline_identity.model import (
    Conflict,
    IgnoreReason,
    Key,
    MergeRecord,
    Override,
    Profile,
    Resolution,
    ResolutionInput,
)
from wayline_identity.rules import Rules, TypeRule, rules_etag
from wayline_identity.simulate import SimulatedMerge

__all__ = [
    "MAX_BATCH",
    "add_resolutions",
    "erasure_pb",
    "identifier_key",
    "identifier_pb",
    "merge_pb",
    "override_pb_of",
    "profile_pb_of",
    "resolution_inputs",
    "rules_from_pb",
    "rules_pb_of",
    "simulated_pb",
    "time_range",
]

MAX_BATCH = 1000


def _suffix(enum: object, value: int, prefix: str) -> str:
    return enum.Name(value).removeprefix(prefix).lower()  # type: ignore[attr-defined, no-any-return]


def _normalization(name: str) -> rules_pb.Normalization.ValueType:
    return rules_pb.Normalization.Value("NORMALIZATION_" + name.upper())


def _event_type(name: str) -> event_pb2.EventType.ValueType:
    return event_pb2.EventType.Value("EVENT_TYPE_" + name.upper())


def identifier_key(identifier: event_pb2.Identifier) -> Key:
    return identifier.type, identifier.value


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
            item.timestamp.seconds * 1_000_000 + item.timestamp.nanos // 1000,
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
        for j, (kind, _) in enumerate(keys):
            if not kind:
                violations.append(FieldViolation(f"inputs[{i}].identifiers[{j}].type", "must be set"))
        if not converted.time and not inputs[i].HasField("timestamp"):
            violations.append(FieldViolation(f"inputs[{i}].timestamp", "must be set"))
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


def profile_pb_of(profile: Profile) -> profile_pb.Profile:
    return profile_pb.Profile(
        person_id=profile.person_id,
        identifiers=[
            profile_pb.ProfileIdentifier(
                identifier=identifier_pb(i.identifier),
                first_seen_time=to_timestamp(i.first_seen),
                last_seen_time=to_timestamp(i.last_seen),
                first_event_id=i.first_event_id,
                origin_person_id=i.origin_person_id,
            )
            for i in profile.identifiers
        ],
        first_seen_time=to_timestamp(profile.first_seen),
        last_seen_time=to_timestamp(profile.last_seen),
        merged_person_ids=profile.merged_person_ids,
        merge_history=[merge_pb(r) for r in profile.merge_history],
        merge_history_truncated=profile.merge_history_truncated,
        create_time=to_timestamp(profile.create_time),
        update_time=to_timestamp(profile.update_time),
        conflicts=[_conflict_pb(c) for c in profile.conflicts],
    )


def rules_from_pb(message: rules_pb.IdentityRules, prefix: str = "identity_rules") -> Rules:
    violations: list[FieldViolation] = []
    types = []
    for i, rule in enumerate(message.identifier_types):
        steps = []
        for j, step in enumerate(rule.normalizations):
            if step == rules_pb.NORMALIZATION_UNSPECIFIED:
                violations.append(
                    FieldViolation(f"{prefix}.identifier_types[{i}].normalizations[{j}]", "must be set")
                )
            else:
                steps.append(_suffix(rules_pb.Normalization, step, "NORMALIZATION_"))
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
        if kind == event_pb2.EVENT_TYPE_UNSPECIFIED:
            violations.append(FieldViolation(f"{prefix}.linking_event_types[{i}]", "must be set"))
        linking.append(_suffix(event_pb2.EventType, kind, "EVENT_TYPE_"))
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


def time_range(message: event_pb2.TimeRange) -> tuple[int | None, int | None]:
    return (
        to_micros(to_datetime(message.start)) if message.HasField("start") else None,
        to_micros(to_datetime(message.end)) if message.HasField("end") else None,
    )


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
