"""The segment RPCs: requests → validated fields (every bad field reported), definitions and statuses →
messages, and the page tokens (AIP-158) of the three lists.

A condition is stored as the PersonCondition's protobuf JSON, so what was written reads back as the same
message; the evaluator converts it again with the same validation (`parse_condition`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from google.protobuf import json_format

from wayline.common.errors import FieldViolation, InvalidArgument
from wayline.common.paging import decode_page_token, encode_page_token, invalid_page_token, page_size
from wayline.common.timestamps import to_timestamp
from wayline.journeys.v1 import condition_pb2, segment_pb2
from wayline.journeys.v1 import journeys_service_pb2 as pb
from wayline_journeys.analytics_converters import time_range
from wayline_journeys.conditions import Condition
from wayline_journeys.conditions_converters import SEGMENT_NAME, person_condition
from wayline_journeys.person_refs_converters import person_ref
from wayline_journeys.retention import RetentionPeriod
from wayline_journeys.retention_converters import calendar_period, time_zone
from wayline_journeys.segment_registry import WRITABLE, ChangeCounts, ChangePage, Freshness
from wayline_journeys.segments import (
    MemberPage,
    Membership,
    SegmentDefinition,
    SegmentFields,
    SegmentStatus,
    referenced,
)

__all__ = [
    "change_counts_request",
    "change_counts_response",
    "changes_request",
    "changes_response",
    "create_request",
    "list_request",
    "members_request",
    "members_response",
    "memberships_request",
    "memberships_response",
    "parse_condition",
    "segment_id_of",
    "segment_message",
    "update_request",
]

MAX_DISPLAY_NAME = 200
MAX_DESCRIPTION = 2_000
_SEGMENT_ID = re.compile(r"[a-z][a-z0-9-]{1,61}[a-z0-9]")
_MAX_REPORTED = 100


def segment_id_of(name: str, path: str) -> str:
    """The id of `segments/{segment_id}`; INVALID_ARGUMENT (with `path`) for anything else."""
    found = SEGMENT_NAME.fullmatch(name)
    if found is None:
        raise InvalidArgument(
            f"{path} must be segments/{{segment_id}}", [FieldViolation(path, "not a segment name")]
        )
    return found.group(1)


def _references(message: condition_pb2.PersonCondition, path: str) -> Iterator[tuple[str, str]]:
    """(path, name) of every segment-membership condition of the tree."""
    kind = message.WhichOneof("condition")
    if kind == "segment_membership":
        yield f"{path}.segment_membership.segment", message.segment_membership.segment
    elif kind == "group":
        for i, inner in enumerate(message.group.conditions):
            yield from _references(inner, f"{path}.group.conditions[{i}]")


def _fields(
    segment: segment_pb2.Segment, segment_id: str, paths: set[str], violations: list[FieldViolation]
) -> SegmentFields:
    if "display_name" in paths and len(segment.display_name) > MAX_DISPLAY_NAME:
        violations.append(FieldViolation("segment.display_name", f"at most {MAX_DISPLAY_NAME} characters"))
    if "description" in paths and len(segment.description) > MAX_DESCRIPTION:
        violations.append(FieldViolation("segment.description", f"at most {MAX_DESCRIPTION} characters"))
    condition: Condition | None = None
    if "condition" in paths:
        if not segment.HasField("condition"):
            violations.append(FieldViolation("segment.condition", "a segment needs a condition", "REQUIRED"))
        else:
            condition = person_condition(
                segment.condition, "segment.condition", violations, segments=True, customer_values=True
            )
            violations += [
                FieldViolation(path, "a segment cannot refer to itself", "SELF_REFERENCE")
                for path, name in _references(segment.condition, "segment.condition")
                if segment_id and name == f"segments/{segment_id}"
            ]
    return SegmentFields(
        display_name=segment.display_name,
        description=segment.description,
        condition=json_format.MessageToJson(segment.condition, indent=None) if condition else "",
        refers=tuple(sorted(referenced(condition))) if condition else (),
    )


def _raise(violations: list[FieldViolation]) -> None:
    if violations:
        raise InvalidArgument("the segment is invalid; see the field violations", violations[:_MAX_REPORTED])


def create_request(request: pb.CreateSegmentRequest) -> tuple[str, SegmentFields]:
    """(segment id, '' for one the server chooses; the fields)."""
    violations = []
    if request.segment_id and not _SEGMENT_ID.fullmatch(request.segment_id):
        violations.append(
            FieldViolation(
                "segment_id", "lower-kebab-case: a-z, 0-9 and '-', 3 to 63, starting with a letter"
            )
        )
    fields = _fields(request.segment, request.segment_id, set(WRITABLE), violations)
    _raise(violations)
    return request.segment_id, fields


def update_request(request: pb.UpdateSegmentRequest) -> tuple[str, SegmentFields, list[str]]:
    """(segment id, fields, mask paths)."""
    segment_id = segment_id_of(request.segment.name, "segment.name")
    paths = list(request.update_mask.paths)
    violations = [
        FieldViolation(f"update_mask.paths[{i}]", f"writable fields: {', '.join(WRITABLE)}")
        for i, path in enumerate(paths)
        if path not in WRITABLE
    ]
    fields = _fields(request.segment, segment_id, set(paths or WRITABLE), violations)
    _raise(violations)
    return segment_id, fields, paths


def parse_condition(stored: str) -> Condition:
    """A stored condition, converted again; ValueError when it no longer converts."""
    violations: list[FieldViolation] = []
    message = json_format.Parse(stored, condition_pb2.PersonCondition())
    condition = person_condition(message, "condition", violations, segments=True, customer_values=True)
    if condition is None:
        raise ValueError("; ".join(f"{v.field}: {v.description}" for v in violations[:5]))
    return condition


def _set_time(field: object, value: datetime | None) -> None:
    if value is not None:
        field.CopyFrom(to_timestamp(value))  # type: ignore[attr-defined]


def status_message(status: SegmentStatus) -> segment_pb2.SegmentStatus:
    found = segment_pb2.SegmentStatus(
        state=int(status.state),  # type: ignore[arg-type]
        member_count=status.member_count,
        error_message=status.error_message,
    )
    _set_time(found.data_as_of, status.data_as_of)
    _set_time(found.windows_as_of, status.windows_as_of)
    _set_time(found.last_full_evaluation_time, status.last_full_evaluation_time)
    return found


def segment_message(definition: SegmentDefinition, status: SegmentStatus) -> segment_pb2.Segment:
    found = segment_pb2.Segment(
        name=definition.name,
        display_name=definition.display_name,
        description=definition.description,
        status=status_message(status),
        revision=definition.revision,
        create_time=to_timestamp(definition.create_time),
        update_time=to_timestamp(definition.update_time),
        etag=definition.etag,
    )
    json_format.Parse(definition.condition, found.condition)
    return found


def list_request(request: pb.ListSegmentsRequest) -> tuple[str, int]:
    """(the id to list after, the page size)."""
    limit = page_size(request.page_size, default=50, maximum=1_000)
    if not request.page_token:
        return "", limit
    after = decode_page_token(request.page_token, "ListSegments").get("a")
    if not isinstance(after, str):
        raise invalid_page_token("ListSegments")
    return after, limit


def list_token(page: list[tuple[SegmentDefinition, SegmentStatus]], more: bool) -> str:
    return encode_page_token({"a": page[-1][0].segment_id}) if more and page else ""


def members_request(request: pb.ListSegmentMembersRequest) -> tuple[str, str, str, int]:
    """(segment id, the segment lifetime the token was issued for or '', the person to list after, size)."""
    segment_id = segment_id_of(request.segment, "segment")
    limit = page_size(request.page_size, default=1_000, maximum=10_000)
    if not request.page_token:
        return segment_id, "", "", limit
    token = decode_page_token(request.page_token, "ListSegmentMembers")
    uid, after = token.get("u"), token.get("a")
    if not isinstance(uid, str) or not isinstance(after, str) or token.get("s") != segment_id:
        raise invalid_page_token("ListSegmentMembers")
    return segment_id, uid, after, limit


def members_response(
    definition: SegmentDefinition, status: SegmentStatus, page: MemberPage
) -> pb.ListSegmentMembersResponse:
    token = ""
    if page.more and page.members:
        token = encode_page_token(
            {"s": definition.segment_id, "u": definition.uid, "a": page.members[-1].person_id}
        )
    return pb.ListSegmentMembersResponse(
        members=[
            segment_pb2.SegmentMember(person_id=m.person_id, enter_time=to_timestamp(m.enter_time))
            for m in page.members
        ],
        next_page_token=token,
        total_size=page.total_size,
        status=status_message(status),
    )


def memberships_request(
    request: pb.GetSegmentMembershipsRequest,
) -> tuple[str, tuple[str, str] | None, list[str]]:
    """(person id, or the identifier to resolve; the segment ids to consider, empty for every segment)."""
    violations: list[FieldViolation] = []
    ref = person_ref(request.person, "person", violations)
    segment_ids = []
    for i, name in enumerate(request.segments):
        found = SEGMENT_NAME.fullmatch(name)
        if found is None:
            violations.append(FieldViolation(f"segments[{i}]", "must be segments/{segment_id}"))
        else:
            segment_ids.append(found.group(1))
    _raise(violations)
    return ref.person_id, ref.identifier, segment_ids


def memberships_response(
    person_id: str, memberships: list[Membership], fresh: Freshness
) -> pb.GetSegmentMembershipsResponse:
    found = pb.GetSegmentMembershipsResponse(
        person_id=person_id,
        memberships=[
            segment_pb2.SegmentMembership(
                segment=f"segments/{m.segment_id}", enter_time=to_timestamp(m.enter_time)
            )
            for m in memberships
        ],
    )
    _set_time(found.data_as_of, fresh.data_as_of)
    _set_time(found.windows_as_of, fresh.windows_as_of)
    return found


def changes_request(request: pb.ListSegmentMembershipChangesRequest) -> tuple[int, str, int]:
    """(the sequence to read after, the segment id or '', the page size)."""
    violations = []
    if request.after_sequence < 0:
        violations.append(FieldViolation("after_sequence", "must not be negative", "OUT_OF_RANGE"))
    _raise(violations)
    segment_id = segment_id_of(request.segment, "segment") if request.segment else ""
    limit = page_size(request.page_size, default=1_000, maximum=10_000)
    after = request.after_sequence
    if request.page_token:
        token = decode_page_token(request.page_token, "ListSegmentMembershipChanges")
        after = token.get("q")  # type: ignore[assignment]
        if not isinstance(after, int) or token.get("s") != segment_id:
            raise invalid_page_token("ListSegmentMembershipChanges")
    return after, segment_id, limit


def changes_response(segment_id: str, page: ChangePage) -> pb.ListSegmentMembershipChangesResponse:
    found = pb.ListSegmentMembershipChangesResponse(
        changes=[
            segment_pb2.SegmentMembershipChange(
                segment=f"segments/{c.segment_id}",
                person_id=c.person_id,
                change_type=int(c.change_type),  # type: ignore[arg-type]
                change_time=to_timestamp(c.change_time),
                sequence=c.sequence,
            )
            for c in page.changes
        ],
        next_page_token=(
            encode_page_token({"q": page.changes[-1].sequence, "s": segment_id})
            if page.more and page.changes
            else ""
        ),
    )
    _set_time(found.data_as_of, page.freshness.data_as_of)
    _set_time(found.windows_as_of, page.freshness.windows_as_of)
    return found


@dataclass(frozen=True)
class ChangeCountsQuery:
    segment_id: str
    start: datetime | None
    end: datetime | None
    period: RetentionPeriod
    time_zone: str


def change_counts_request(request: pb.CountSegmentMembershipChangesRequest) -> ChangeCountsQuery:
    """The query of a CountSegmentMembershipChangesRequest; INVALID_ARGUMENT names every bad field."""
    violations: list[FieldViolation] = []
    segment_id = ""
    if not SEGMENT_NAME.fullmatch(request.segment):
        violations.append(FieldViolation("segment", "not a segment name (segments/{segment_id})"))
    else:
        segment_id = segment_id_of(request.segment, "segment")
    period = calendar_period(request.period, "period", violations)
    span = time_range(request.time_range, "time_range", violations)
    zone = time_zone(request.time_zone, "time_zone", violations)
    if violations:
        raise InvalidArgument("the count is invalid; see the field violations", violations)
    return ChangeCountsQuery(segment_id, span.start, span.end, period or RetentionPeriod.WEEK, zone)


def change_counts_response(found: ChangeCounts) -> pb.CountSegmentMembershipChangesResponse:
    response = pb.CountSegmentMembershipChangesResponse(
        counts=[
            segment_pb2.SegmentMembershipChangeCount(
                period_start=to_timestamp(c.period_start), entered_count=c.entered, exited_count=c.exited
            )
            for c in found.counts
        ]
    )
    _set_time(response.data_as_of, found.freshness.data_as_of)
    _set_time(response.windows_as_of, found.freshness.windows_as_of)
    return response
