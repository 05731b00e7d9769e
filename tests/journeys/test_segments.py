"""CreateSegment, GetSegment, ListSegments, UpdateSegment and DeleteSegment over gRPC: resource names,
revisions and etags, update masks, references between segments, paging, and every validation error."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import grpc
import pytest
from google.protobuf import field_mask_pb2, struct_pb2

from tests.journeys.conftest import Journeys, error_reason, field_violations
from tests.journeys.segments_support import count, delete_all_segments, get, member_of, wait_ready
from wayline.journeys.v1 import analytics_pb2, condition_pb2, customer_value_pb2, segment_pb2
from wayline.journeys.v1 import journeys_service_pb2 as pb


@pytest.fixture(autouse=True)
def _segments_deleted_afterwards(journeys: Journeys) -> Iterator[None]:
    """The session's evaluator stops evaluating this test's segments once it is over."""
    yield
    delete_all_segments(journeys)


def create(journeys: Journeys, segment: segment_pb2.Segment, segment_id: str = "") -> segment_pb2.Segment:
    response: pb.CreateSegmentResponse = journeys.stub.CreateSegment(
        pb.CreateSegmentRequest(segment=segment, segment_id=segment_id),
        metadata=journeys.metadata,
        timeout=10,
    )
    return response.segment


def update(journeys: Journeys, segment: segment_pb2.Segment, *paths: str) -> segment_pb2.Segment:
    request = pb.UpdateSegmentRequest(segment=segment, update_mask=field_mask_pb2.FieldMask(paths=paths))
    response: pb.UpdateSegmentResponse = journeys.stub.UpdateSegment(
        request, metadata=journeys.metadata, timeout=10
    )
    return response.segment


def delete(journeys: Journeys, name: str, etag: str = "") -> None:
    journeys.stub.DeleteSegment(
        pb.DeleteSegmentRequest(name=name, etag=etag), metadata=journeys.metadata, timeout=10
    )


def failure(call: object, *args: object) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call(*args)  # type: ignore[operator]
    return caught.value


def test_create_segment_stores_it_and_builds_its_membership(journeys: Journeys) -> None:
    condition = count("Signed Up")
    created = journeys.create_segment(condition, "new-signups", display_name="New signups")

    assert created.name == "segments/new-signups"
    assert (created.display_name, created.revision, created.condition) == ("New signups", 1, condition)
    assert created.etag
    assert created.create_time == created.update_time
    assert created.status.state in (segment_pb2.SEGMENT_STATE_BUILDING, segment_pb2.SEGMENT_STATE_READY)
    ready = wait_ready(journeys, created.name)
    assert ready.status.HasField("data_as_of")
    assert ready.status.HasField("windows_as_of")
    assert ready.status.HasField("last_full_evaluation_time")
    assert (ready.etag, ready.revision, ready.status.member_count) == (created.etag, 1, 0)


def test_create_segment_chooses_an_id_when_none_is_given(journeys: Journeys) -> None:
    created = journeys.create_segment(count("Signed Up"))

    assert created.name.startswith("segments/segment-")
    assert get(journeys, created.name).name == created.name


def test_create_segment_refuses_a_taken_id(journeys: Journeys) -> None:
    journeys.create_segment(count("A"), "taken")

    error = failure(journeys.create_segment, count("B"), "taken")

    assert error.code() == grpc.StatusCode.ALREADY_EXISTS


def test_create_segment_names_every_invalid_field(journeys: Journeys) -> None:
    deep = count("A")
    for _ in range(8):
        deep = condition_pb2.PersonCondition(group=condition_pb2.ConditionGroup(conditions=[deep]))
    value = condition_pb2.PersonCondition(
        customer_value=condition_pb2.CustomerValueCondition(
            metric=condition_pb2.CUSTOMER_VALUE_METRIC_RFM_SEGMENT, currency_code="eur"
        )
    )
    own = condition_pb2.PersonCondition(
        group=condition_pb2.ConditionGroup(conditions=[count("A"), member_of("segments/myself"), value])
    )
    cases = {
        "segment_id": (
            pb.CreateSegmentRequest(segment_id="No_Caps", segment=segment_pb2.Segment(condition=count("A")))
        ),
        "segment.display_name": pb.CreateSegmentRequest(
            segment=segment_pb2.Segment(display_name="x" * 201, condition=count("A"))
        ),
        "segment.condition": pb.CreateSegmentRequest(segment=segment_pb2.Segment()),
    }
    for field, request in cases.items():
        error = failure(journeys.stub.CreateSegment, request, None, journeys.metadata)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, field
        assert field in field_violations(error), (field, field_violations(error))

    error = failure(journeys.create_segment, deep)
    assert field_violations(error) == {"segment.condition": "TOO_DEEP"}

    error = failure(journeys.create_segment, own, "myself")
    assert field_violations(error) == {
        "segment.condition.group.conditions[1].segment_membership.segment": "SELF_REFERENCE",
        "segment.condition.group.conditions[2].customer_value.currency_code": "INVALID",
        "segment.condition.group.conditions[2].customer_value.rfm_segments": "REQUIRED",
    }

    bad_name = failure(journeys.create_segment, member_of("segment/x"))
    assert field_violations(bad_name) == {"segment.condition.segment_membership.segment": "INVALID"}

    # An impossible time with RFC 3339's shape: refused, not stored and then failed by the store.
    impossible = count("A")
    impossible.event_count.event.property_filters.append(
        analytics_pb2.PropertyFilter(
            property="properties.when",
            operator=analytics_pb2.FILTER_OPERATOR_GREATER_THAN,
            values=[struct_pb2.Value(string_value="2026-02-30T00:00:00Z")],
        )
    )
    error = failure(journeys.create_segment, impossible)
    assert field_violations(error) == {
        "segment.condition.event_count.event.property_filters[0].values[0]": "INVALID"
    }
    assert not journeys.stub.ListSegments(
        pb.ListSegmentsRequest(), metadata=journeys.metadata, timeout=10
    ).segments


def test_create_segment_validate_only_checks_without_creating(journeys: Journeys) -> None:
    def check(condition: condition_pb2.PersonCondition, segment_id: str) -> pb.CreateSegmentResponse:
        request = pb.CreateSegmentRequest(
            segment=segment_pb2.Segment(display_name="Checked", condition=condition),
            segment_id=segment_id,
            validate_only=True,
        )
        response: pb.CreateSegmentResponse = journeys.stub.CreateSegment(
            request, metadata=journeys.metadata, timeout=10
        )
        return response

    answer = check(count("Signed Up"), "checked-only")
    assert (answer.segment.name, answer.segment.display_name) == ("segments/checked-only", "Checked")
    assert answer.segment.condition == count("Signed Up")
    assert not answer.segment.HasField("status")  # nothing stored, nothing computed
    assert failure(get, journeys, "segments/checked-only").code() == grpc.StatusCode.NOT_FOUND
    names = [
        s.name
        for s in journeys.stub.ListSegments(
            pb.ListSegmentsRequest(page_size=100), metadata=journeys.metadata, timeout=10
        ).segments
    ]
    assert "segments/checked-only" not in names

    # Refused as a creation would be: a taken id, a missing reference, an invalid field.
    journeys.create_segment(count("A"), "checked-taken")
    assert failure(check, count("B"), "checked-taken").code() == grpc.StatusCode.ALREADY_EXISTS
    assert failure(check, member_of("segments/nowhere"), "checked-ref").code() == grpc.StatusCode.NOT_FOUND
    assert failure(check, count("B"), "Not An Id").code() == grpc.StatusCode.INVALID_ARGUMENT
    # And a creation after the check still works: the check reserved nothing.
    assert journeys.create_segment(count("Signed Up"), "checked-only").name == "segments/checked-only"


def test_create_segment_refuses_a_reference_to_a_missing_segment(journeys: Journeys) -> None:
    error = failure(journeys.create_segment, member_of("segments/nowhere"))

    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert error_reason(error) == "SEGMENT_NOT_FOUND"


def test_update_segment_refuses_a_cycle_of_references(journeys: Journeys) -> None:
    journeys.create_segment(count("A"), "first")
    journeys.create_segment(member_of("segments/first"), "second")
    journeys.create_segment(member_of("segments/second"), "third")

    changed = segment_pb2.Segment(name="segments/first", condition=member_of("segments/third"))
    error = failure(update, journeys, changed, "condition")

    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_reason(error) == "SEGMENT_CYCLE"
    assert get(journeys, "segments/first").condition == count("A")


def test_update_segment_validate_only_checks_without_changing(journeys: Journeys) -> None:
    created = journeys.create_segment(count("A"), "update-checked", display_name="before")

    def check(segment: segment_pb2.Segment, *paths: str) -> segment_pb2.Segment:
        request = pb.UpdateSegmentRequest(
            segment=segment, update_mask=field_mask_pb2.FieldMask(paths=paths), validate_only=True
        )
        response: pb.UpdateSegmentResponse = journeys.stub.UpdateSegment(
            request, metadata=journeys.metadata, timeout=10
        )
        return response.segment

    wanted = segment_pb2.Segment(
        name=created.name, display_name="after", condition=count("B"), etag=created.etag
    )
    answer = check(wanted, "display_name", "condition")
    assert (answer.display_name, answer.condition, answer.revision) == ("after", count("B"), 2)
    assert not answer.HasField("status")  # nothing stored, nothing computed
    stored = get(journeys, created.name)
    assert (stored.display_name, stored.condition, stored.revision, stored.etag) == (
        "before",
        count("A"),
        1,
        created.etag,
    )
    # Refused as an update would be: a stale etag, a reference to itself, a missing segment.
    stale = segment_pb2.Segment(name=created.name, display_name="x", etag="0-stale")
    assert failure(check, stale, "display_name").code() == grpc.StatusCode.ABORTED
    itself = segment_pb2.Segment(name=created.name, condition=member_of(created.name))
    assert failure(check, itself, "condition").code() == grpc.StatusCode.INVALID_ARGUMENT
    missing = segment_pb2.Segment(name="segments/update-nowhere", display_name="x")
    assert failure(check, missing, "display_name").code() == grpc.StatusCode.NOT_FOUND
    # And the update after the check still applies (the etag it read is still the current one).
    assert update(journeys, wanted, "display_name", "condition").display_name == "after"


def test_update_segment_changes_the_masked_fields_and_checks_the_etag(journeys: Journeys) -> None:
    created = journeys.create_segment(count("A"), "masked", display_name="before")
    changed = segment_pb2.Segment(
        name=created.name, display_name="after", description="about", condition=count("B"), etag=created.etag
    )

    renamed = update(journeys, changed, "display_name")

    assert (renamed.display_name, renamed.description, renamed.condition) == ("after", "", count("A"))
    assert renamed.revision == 2
    assert renamed.etag != created.etag
    assert renamed.update_time.ToDatetime() > created.update_time.ToDatetime()
    stale = failure(update, journeys, changed, "description")  # still the first etag
    assert stale.code() == grpc.StatusCode.ABORTED
    assert error_reason(stale) == "ETAG_MISMATCH"

    changed.etag = renamed.etag
    everything = update(journeys, changed)  # an empty mask: every writable field
    assert (everything.display_name, everything.description, everything.condition) == (
        "after",
        "about",
        count("B"),
    )
    assert everything.revision == 3

    unknown = failure(update, journeys, changed, "revision")
    assert field_violations(unknown) == {"update_mask.paths[0]": "INVALID"}
    missing = failure(
        update, journeys, segment_pb2.Segment(name="segments/absent", display_name="x"), "display_name"
    )
    assert missing.code() == grpc.StatusCode.NOT_FOUND
    malformed = failure(update, journeys, segment_pb2.Segment(name="absent"), "display_name")
    assert field_violations(malformed) == {"segment.name": "INVALID"}


def test_delete_segment_refuses_a_segment_in_use_and_a_stale_etag(journeys: Journeys) -> None:
    base = journeys.create_segment(count("A"), "base")
    user = journeys.create_segment(member_of(base.name), "user")

    in_use = failure(delete, journeys, base.name)
    assert in_use.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_reason(in_use) == "SEGMENT_IN_USE"
    stale = failure(delete, journeys, user.name, "1-00000000")
    assert stale.code() == grpc.StatusCode.ABORTED

    delete(journeys, user.name, user.etag)
    delete(journeys, base.name)

    assert failure(get, journeys, base.name).code() == grpc.StatusCode.NOT_FOUND
    assert failure(delete, journeys, base.name).code() == grpc.StatusCode.NOT_FOUND
    again = journeys.create_segment(count("B"), "base")  # a new lifetime of the id
    assert again.revision == 1
    assert again.etag != base.etag
    assert again.condition == count("B")


def test_get_segment_refuses_a_malformed_or_unknown_name(journeys: Journeys) -> None:
    assert failure(get, journeys, "segments/Nope").code() == grpc.StatusCode.INVALID_ARGUMENT
    missing = failure(get, journeys, "segments/nope")
    assert missing.code() == grpc.StatusCode.NOT_FOUND
    assert error_reason(missing) == "SEGMENT_NOT_FOUND"


def test_list_segments_pages_by_name(journeys: Journeys) -> None:
    for segment_id in ("delta", "alpha", "echo", "charlie", "bravo"):
        journeys.create_segment(count("A"), segment_id)
    delete(journeys, "segments/charlie")

    names, request, totals = [], pb.ListSegmentsRequest(page_size=2), set()
    while True:
        page: pb.ListSegmentsResponse = journeys.stub.ListSegments(
            request, metadata=journeys.metadata, timeout=10
        )
        assert len(page.segments) <= 2
        names += [s.name for s in page.segments]
        totals.add(page.total_size)
        if not page.next_page_token:
            break
        request.page_token = page.next_page_token

    assert names == [f"segments/{s}" for s in ("alpha", "bravo", "delta", "echo")]
    assert totals == {4}
    bad = failure(
        journeys.stub.ListSegments, pb.ListSegmentsRequest(page_token="nonsense"), None, journeys.metadata
    )
    assert field_violations(bad) == {"page_token": "INVALID"}
    other_tenant = journeys.for_tenant(journeys.tenant + "-other")
    empty: pb.ListSegmentsResponse = other_tenant.stub.ListSegments(
        pb.ListSegmentsRequest(), metadata=other_tenant.metadata, timeout=10
    )
    assert (list(empty.segments), empty.total_size) == ([], 0)


def test_create_segment_accepts_customer_value_conditions(journeys: Journeys) -> None:
    value = condition_pb2.CustomerValueCondition(
        metric=condition_pb2.CUSTOMER_VALUE_METRIC_RFM_SEGMENT,
        currency_code="EUR",
        rfm_segments=[customer_value_pb2.RFM_SEGMENT_CHAMPIONS],
    )
    value.window.FromTimedelta(timedelta(days=365))
    created = journeys.create_segment(condition_pb2.PersonCondition(customer_value=value))

    assert wait_ready(journeys, created.name).condition.customer_value == value
