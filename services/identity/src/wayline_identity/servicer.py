"""IdentityService over gRPC: a thin adapter. Requests are checked and converted (converters.py), the work
is done by the domain façade (identity.py), and the answers converted back."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime

import grpc

from wayline.common.context import current_call, require_tenant
from wayline.common.errors import FieldViolation, InvalidArgument
from wayline.common.paging import encode_page_token, invalid_page_token, page_size
from wayline.common.response_size import fitting
from wayline.common.timestamps import to_micros
from wayline.identity.v1 import identity_service_pb2 as pb
from wayline.identity.v1 import identity_service_pb2_grpc as pb_grpc
from wayline_identity import converters as c
from wayline_identity.identity import Identity

__all__ = ["IdentityServicer"]

_CONSUMER = re.compile(r"[a-z][a-z0-9_]{0,62}")
_MAX_HEADS = 10_000
_NEGATIVE = FieldViolation("page_size", "must be 0 or more")
_DEFAULT_SIMULATION_RANGE_MICROS = 30 * 86_400 * 1_000_000
_RULE_FIELDS = (
    "identifier_types",
    "blocked_values",
    "allow_unlisted_types",
    "linking_event_types",
    "default_phone_region",
)


def _filter_binding(request: pb.ListProfilesRequest) -> str:
    """A page token is only valid with the filters it was issued for."""
    filters = pb.ListProfilesRequest()
    filters.CopyFrom(request)
    filters.ClearField("page_token")
    filters.ClearField("page_size")
    return hashlib.sha256(filters.SerializeToString(deterministic=True)).hexdigest()[:16]


class IdentityServicer(pb_grpc.IdentityServiceServicer):
    def __init__(self, identity: Identity) -> None:
        self._identity = identity

    def ResolveIdentities(  # noqa: N802 - gRPC method names are the contract's
        self, request: pb.ResolveIdentitiesRequest, context: grpc.ServicerContext
    ) -> pb.ResolveIdentitiesResponse:
        tenant = require_tenant()
        outcome = self._identity.resolve(tenant, c.resolution_inputs(request))
        response = pb.ResolveIdentitiesResponse(
            merges=[c.merge_pb(m) for m in outcome.merges],
            person_overrides=[c.override_pb_of(o) for o in outcome.overrides],
        )
        c.add_resolutions(response, outcome.resolutions)
        return response

    def GetProfile(  # noqa: N802 - gRPC method names are the contract's
        self, request: pb.GetProfileRequest, context: grpc.ServicerContext
    ) -> pb.GetProfileResponse:
        tenant = require_tenant()
        person, identifier = c.person_ref(request.person, "person")
        return pb.GetProfileResponse(
            profile=c.profile_pb_of(self._identity.get_profile(tenant, person, identifier))
        )

    def ListProfileIdentifiers(  # noqa: N802 - gRPC method names are the contract's
        self, request: pb.ListProfileIdentifiersRequest, context: grpc.ServicerContext
    ) -> pb.ListProfileIdentifiersResponse:
        tenant = require_tenant()
        person, identifier = c.person_ref(request.person, "person")
        size = page_size(request.page_size, default=1000, maximum=10_000, violation=_NEGATIVE)
        token_person, after = c.identifiers_cursor(request.page_token) if request.page_token else ("", None)
        page = self._identity.list_identifiers(tenant, person, identifier, after=after, limit=size)
        if (
            token_person and token_person != page.person_id
        ):  # a token of another profile (or one since merged)
            raise invalid_page_token("ListProfileIdentifiers")
        return c.identifiers_page_pb(page)

    def ListProfiles(  # noqa: N802 - gRPC method names are the contract's
        self, request: pb.ListProfilesRequest, context: grpc.ServicerContext
    ) -> pb.ListProfilesResponse:
        tenant = require_tenant()
        filters = c.profile_filters(request)
        size = page_size(request.page_size, default=50, maximum=1000, violation=_NEGATIVE)
        binding = _filter_binding(request)
        after = c.profiles_cursor(request.page_token, binding) if request.page_token else None
        profiles, total = self._identity.list_profiles(
            tenant,
            limit=size + 1,
            after=after,
            identifier=filters.identifier,
            identifier_type=filters.identifier_type,
            last_seen=filters.last_seen,
            first_seen=filters.first_seen,
        )
        messages = [c.profile_pb_of(p) for p in profiles[:size]]
        kept = fitting(messages)  # profiles of a thousand identifiers each pass what a client receives
        next_token = ""
        if len(profiles) > kept:
            last = profiles[kept - 1]
            seen = to_micros(last.last_seen) if last.last_seen_us is None else last.last_seen_us
            next_token = encode_page_token({"f": binding, "s": seen, "p": last.person_id})
        return pb.ListProfilesResponse(profiles=messages[:kept], next_page_token=next_token, total_size=total)

    def MergeProfiles(  # noqa: N802 - gRPC method names are the contract's
        self, request: pb.MergeProfilesRequest, context: grpc.ServicerContext
    ) -> pb.MergeProfilesResponse:
        tenant = require_tenant()
        persons = c.person_ids(request.person_ids, "person_ids")
        reason = c.required(request.reason, "reason")
        profile, merges, overrides = self._identity.merge(
            tenant, persons, actor=actor(), reason=reason, validate_only=request.validate_only
        )
        return pb.MergeProfilesResponse(
            profile=c.profile_pb_of(profile),
            merges=[c.merge_pb(m) for m in merges],
            person_overrides=[c.override_pb_of(o) for o in overrides],
        )

    def UnmergeIdentifier(  # noqa: N802 - gRPC method names are the contract's
        self, request: pb.UnmergeIdentifierRequest, context: grpc.ServicerContext
    ) -> pb.UnmergeIdentifierResponse:
        tenant = require_tenant()
        person = c.required(request.person_id, "person_id")
        identifier = c.identifier(request.identifier, "identifier")
        reason = c.required(request.reason, "reason")
        kept, moved, done = self._identity.unmerge(
            tenant,
            person,
            identifier,
            actor=actor(),
            reason=reason,
            validate_only=request.validate_only,
        )
        return pb.UnmergeIdentifierResponse(
            profile=c.profile_pb_of(kept),
            new_profile=c.profile_pb_of(moved),
            record=c.merge_pb(done.record),
            person_overrides=[c.override_pb_of(o) for o in done.overrides],
        )

    def SplitProfile(  # noqa: N802 - gRPC method names are the contract's
        self, request: pb.SplitProfileRequest, context: grpc.ServicerContext
    ) -> pb.SplitProfileResponse:
        tenant = require_tenant()
        person = c.required(request.person_id, "person_id")
        merge_id = c.required(request.merge_id, "merge_id")
        reason = c.required(request.reason, "reason")
        kept, restored, done = self._identity.split(
            tenant, person, merge_id, actor=actor(), reason=reason, validate_only=request.validate_only
        )
        return pb.SplitProfileResponse(
            profile=c.profile_pb_of(kept),
            restored_profile=c.profile_pb_of(restored),
            record=c.merge_pb(done.record),
            person_overrides=[c.override_pb_of(o) for o in done.overrides],
        )

    def DeleteProfile(  # noqa: N802
        self, request: pb.DeleteProfileRequest, context: grpc.ServicerContext
    ) -> pb.DeleteProfileResponse:
        tenant = require_tenant()
        person = c.required(request.person_id, "person_id")
        c.required(request.reason, "reason")
        erased = self._identity.delete(tenant, person, actor())
        return pb.DeleteProfileResponse(
            deleted_person_ids=erased.person_ids,
            deleted_identifier_count=len(erased.identifiers),
            erasure=c.erasure_pb(self._identity.erasure(tenant, erased.erasure_id)),
        )

    def GetErasure(  # noqa: N802
        self, request: pb.GetErasureRequest, context: grpc.ServicerContext
    ) -> pb.GetErasureResponse:
        tenant = require_tenant()
        erasure_id = c.required(request.erasure_id, "erasure_id")
        return pb.GetErasureResponse(erasure=c.erasure_pb(self._identity.erasure(tenant, erasure_id)))

    def AcknowledgePersonOverrides(  # noqa: N802
        self, request: pb.AcknowledgePersonOverridesRequest, context: grpc.ServicerContext
    ) -> pb.AcknowledgePersonOverridesResponse:
        tenant = require_tenant()
        if not _CONSUMER.fullmatch(request.consumer):
            raise InvalidArgument(
                "consumer must be lower_snake_case", [FieldViolation("consumer", "for example `decision`")]
            )
        if request.applied_version < 0:
            raise InvalidArgument(
                "applied_version must not be negative",
                [FieldViolation("applied_version", "must be 0 or more")],
            )
        head = self._identity.acknowledge(tenant, request.consumer, request.applied_version)
        return pb.AcknowledgePersonOverridesResponse(max_version=head)

    def GetIdentityRules(  # noqa: N802 - gRPC method names are the contract's
        self, request: pb.GetIdentityRulesRequest, context: grpc.ServicerContext
    ) -> pb.GetIdentityRulesResponse:
        return pb.GetIdentityRulesResponse(
            identity_rules=c.rules_pb_of(self._identity.rules(require_tenant()))
        )

    def UpdateIdentityRules(  # noqa: N802 - gRPC method names are the contract's
        self, request: pb.UpdateIdentityRulesRequest, context: grpc.ServicerContext
    ) -> pb.UpdateIdentityRulesResponse:
        tenant = require_tenant()
        paths = list(request.update_mask.paths) or list(_RULE_FIELDS)
        unknown = [p for p in paths if p not in _RULE_FIELDS]
        if unknown:
            raise InvalidArgument(
                f"update_mask names fields that cannot be updated: {', '.join(unknown)}",
                [
                    FieldViolation("update_mask.paths", f"{p!r} is not one of {', '.join(_RULE_FIELDS)}")
                    for p in unknown
                ],
            )
        proposed = c.rules_from_pb(request.identity_rules)
        updated = self._identity.update_rules(tenant, proposed, paths, request.identity_rules.etag)
        return pb.UpdateIdentityRulesResponse(identity_rules=c.rules_pb_of(updated))

    def SimulateIdentityRules(  # noqa: N802
        self, request: pb.SimulateIdentityRulesRequest, context: grpc.ServicerContext
    ) -> pb.SimulateIdentityRulesResponse:
        tenant = require_tenant()
        if not 0 <= request.sample_size <= 1000:
            raise InvalidArgument(
                "sample_size must be 0 to 1,000", [FieldViolation("sample_size", "0 to 1,000")]
            )
        proposed = c.rules_from_pb(request.identity_rules)
        start, end = c.simulation_range(
            request.time_range, to_micros(datetime.now(UTC)), _DEFAULT_SIMULATION_RANGE_MICROS
        )
        result = self._identity.simulate(tenant, proposed, start, end, request.sample_size or 20)
        return pb.SimulateIdentityRulesResponse(
            evaluated_link_count=result.evaluated_link_count,
            added_merge_count=result.added_count,
            undone_merge_count=result.undone_count,
            added_merges=[c.simulated_pb(m) for m in result.added],
            undone_merges=[c.simulated_pb(m) for m in result.undone],
            profile_count_before=result.profile_count_before,
            profile_count_after=result.profile_count_after,
            newly_ignored_identifier_count=result.newly_ignored_identifier_count,
        )

    def ListPersonOverrides(  # noqa: N802 - gRPC method names are the contract's
        self, request: pb.ListPersonOverridesRequest, context: grpc.ServicerContext
    ) -> pb.ListPersonOverridesResponse:
        tenant = require_tenant()
        if request.after_version < 0:
            raise InvalidArgument(
                "after_version must not be negative", [FieldViolation("after_version", "must be 0 or more")]
            )
        size = page_size(request.page_size, default=1000, maximum=10_000, violation=_NEGATIVE)
        after = request.after_version
        if request.page_token:
            after = c.overrides_cursor(request.page_token, request.after_version)
        overrides, max_version = self._identity.overrides(tenant, after, size)
        next_token = ""
        if overrides and overrides[-1].version < max_version:
            next_token = encode_page_token({"a": request.after_version, "v": overrides[-1].version})
        return pb.ListPersonOverridesResponse(
            person_overrides=[c.override_pb_of(o) for o in overrides],
            next_page_token=next_token,
            max_version=max_version,
        )

    def GetOverrideFeedHeads(  # noqa: N802
        self, request: pb.GetOverrideFeedHeadsRequest, context: grpc.ServicerContext
    ) -> pb.GetOverrideFeedHeadsResponse:
        # No tenant: the call spans the tenants it names, and only other services may make it (its scope).
        empty = [i for i, name in enumerate(request.tenants) if not name]
        if empty:
            raise InvalidArgument(
                f"tenants holds {len(empty):,} empty names",
                [FieldViolation(f"tenants[{i}]", "must not be empty") for i in empty[:10]],
            )
        tenants = list(dict.fromkeys(request.tenants))
        if not 1 <= len(tenants) <= _MAX_HEADS:
            raise InvalidArgument(
                f"tenants must name 1 to {_MAX_HEADS:,} tenants; it names {len(tenants):,}",
                [FieldViolation("tenants", f"1 to {_MAX_HEADS:,} names")],
            )
        heads = self._identity.override_heads(tenants)
        return pb.GetOverrideFeedHeadsResponse(
            heads=[pb.OverrideFeedHead(tenant=t, max_version=heads[t]) for t in tenants]
        )


def actor() -> str:
    """Who makes a manual change, for the audit log: the caller's API key when the gateway names it."""
    call = current_call()
    return call.principal if call is not None else ""
