"""JourneyService over gRPC: thin — validate and convert, call the store, convert back. Every RPC of the
contract is implemented (mypy checks it: the generated base class's methods are abstract to it)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import grpc

from wayline.common.context import remaining_seconds, require_tenant
from wayline.journeys.v1 import journeys_service_pb2 as pb
from wayline.journeys.v1 import journeys_service_pb2_grpc as pb_grpc
from wayline_journeys.activity_lifecycle import lifecycle_results
from wayline_journeys.activity_lifecycle_converters import (
    activity_lifecycle_query,
    activity_lifecycle_response,
    lifecycle_persons_request,
    lifecycle_persons_response,
)
from wayline_journeys.converters import (
    columns_to_write,
    person_overrides,
    person_to_erase,
    persons_to_erase,
    timeline_query,
    timeline_response,
)
from wayline_journeys.customer_value import values_of_persons
from wayline_journeys.customer_value_converters import (
    PersonsQuery,
    customer_value_page_response,
    customer_value_query,
    customer_value_summary_query,
    customer_value_summary_response,
    customer_values_response,
)
from wayline_journeys.decision_converters import (
    count_request,
    counts_response,
    decision_id_of,
    decision_message,
    export_query,
)
from wayline_journeys.errors import PersonNotFound
from wayline_journeys.event_export import export_events
from wayline_journeys.event_export_converters import event_export_query, event_export_responses
from wayline_journeys.event_names_converters import event_names_query, event_names_response
from wayline_journeys.events import EventWrites, TimelineReads
from wayline_journeys.features import profile_features
from wayline_journeys.features_converters import profile_query, profile_response
from wayline_journeys.funnel_converters import funnel_query, funnel_response
from wayline_journeys.funnel_persons import persons_request, persons_response
from wayline_journeys.funnels import assemble, with_trend
from wayline_journeys.lifecycle import lifecycle_stages
from wayline_journeys.lifecycle_converters import lifecycle_query, lifecycle_response
from wayline_journeys.path_persons import path_persons_request, path_persons_response
from wayline_journeys.paths import InvalidCleaningRules
from wayline_journeys.paths_converters import (
    cleaning_rule_error,
    edges_request,
    edges_response,
    paths_query,
    paths_response,
)
from wayline_journeys.person_changes import PersonChanges
from wayline_journeys.person_conditions_converters import (
    batch_evaluate_request,
    batch_evaluate_response,
    batch_properties_request,
    batch_properties_response,
    evaluate_request,
    evaluate_response,
    properties_request,
    properties_response,
)
from wayline_journeys.read_models import ReadModels
from wayline_journeys.retention import retention_table
from wayline_journeys.retention_converters import retention_query, retention_response
from wayline_journeys.segments import SegmentState, SegmentStatus
from wayline_journeys.segments_converters import (
    change_counts_request,
    change_counts_response,
    changes_request,
    changes_response,
    create_request,
    list_request,
    list_token,
    members_request,
    members_response,
    memberships_request,
    memberships_response,
    segment_id_of,
    segment_message,
    update_request,
)
from wayline_journeys.stickiness import stickiness_results
from wayline_journeys.stickiness_converters import stickiness_query, stickiness_response
from wayline_journeys.store.overrides import PersonOverrideStore
from wayline_journeys.training_set import export_training_set
from wayline_journeys.training_set_converters import part_response, training_set_query
from wayline_journeys.trends import formula_results, previous_query, trend_results
from wayline_journeys.trends_converters import trends_query, trends_response, with_previous

__all__ = ["JourneyServicer"]


def _ignore(tenant: str) -> None:
    return None


class JourneyServicer(pb_grpc.JourneyServiceServicer):
    def __init__(
        self,
        events: EventWrites,
        timelines: TimelineReads,
        overrides: PersonOverrideStore,
        changes: PersonChanges,
        max_page_size: int,
        *,
        models: ReadModels,
        export_max_events: int = 5_000_000,
        note_tenant: Callable[[str], None] = _ignore,
    ) -> None:
        """`note_tenant` is told the tenant of every write (the override-feed follower follows it);
        `export_max_events` bounds one ExportEvents call."""
        self._models = models
        self._export_max_events = export_max_events
        self._events = events
        self._timelines = timelines
        self._overrides = overrides
        self._changes = changes
        self._max_page_size = max_page_size
        self._note_tenant = note_tenant

    def WriteEvents(  # noqa: N802 - gRPC method names are the contract's
        self, request: pb.WriteEventsRequest, context: grpc.ServicerContext
    ) -> pb.WriteEventsResponse:
        tenant = require_tenant()
        columns = columns_to_write(request.events)
        self._note_tenant(tenant)
        return pb.WriteEventsResponse(written_count=self._events.write(tenant, columns))

    def GetTimeline(  # noqa: N802
        self, request: pb.GetTimelineRequest, context: grpc.ServicerContext
    ) -> pb.GetTimelineResponse:
        query = timeline_query(require_tenant(), request, self._max_page_size)
        return timeline_response(query, self._timelines.timeline_page(query))

    def ApplyPersonOverrides(  # noqa: N802
        self, request: pb.ApplyPersonOverridesRequest, context: grpc.ServicerContext
    ) -> pb.ApplyPersonOverridesResponse:
        tenant = require_tenant()
        overrides = person_overrides(request)
        self._note_tenant(tenant)
        applied = self._changes.apply(tenant, overrides)
        return pb.ApplyPersonOverridesResponse(
            applied_count=applied.applied_count, max_version=applied.max_version
        )

    def DeletePersonEvents(  # noqa: N802
        self, request: pb.DeletePersonEventsRequest, context: grpc.ServicerContext
    ) -> pb.DeletePersonEventsResponse:
        tenant, person = require_tenant(), person_to_erase(request)
        return pb.DeletePersonEventsResponse(deleted_event_count=self._changes.erase(tenant, [person])[0])

    def BatchDeletePersonEvents(  # noqa: N802
        self, request: pb.BatchDeletePersonEventsRequest, context: grpc.ServicerContext
    ) -> pb.BatchDeletePersonEventsResponse:
        tenant, persons = require_tenant(), persons_to_erase(request)
        return pb.BatchDeletePersonEventsResponse(
            responses=[
                pb.DeletePersonEventsResponse(deleted_event_count=count)
                for count in self._changes.erase(tenant, persons)
            ]
        )

    def GetCustomerValue(  # noqa: N802
        self, request: pb.GetCustomerValueRequest, context: grpc.ServicerContext
    ) -> pb.GetCustomerValueResponse:
        tenant = require_tenant()
        query = customer_value_query(tenant, request, datetime.now(UTC))
        store = self._models.customer_value
        if isinstance(query, PersonsQuery):
            values = values_of_persons(store, tenant, query.spec, query.persons)
            return customer_values_response(query, values)
        page = store.page(
            tenant, query.spec, query.population, query.after, query.limit, rfm_segments=query.rfm_segments
        )
        return customer_value_page_response(query, page)

    def GetCustomerValueSummary(  # noqa: N802
        self, request: pb.GetCustomerValueSummaryRequest, context: grpc.ServicerContext
    ) -> pb.GetCustomerValueSummaryResponse:
        tenant = require_tenant()
        spec, population = customer_value_summary_query(request, datetime.now(UTC))
        summary = self._models.customer_value.summary(tenant, spec, population)
        return customer_value_summary_response(spec, summary)

    def GetLifecycleStages(  # noqa: N802
        self, request: pb.GetLifecycleStagesRequest, context: grpc.ServicerContext
    ) -> pb.GetLifecycleStagesResponse:
        tenant = require_tenant()
        model = request.model if request.HasField("model") else self._models.lifecycle_models.get(tenant)
        query = lifecycle_query(tenant, request, model, datetime.now(UTC))
        return lifecycle_response(query, lifecycle_stages(self._models.lifecycle, query), model)

    def GetLifecycleModel(  # noqa: N802
        self, request: pb.GetLifecycleModelRequest, context: grpc.ServicerContext
    ) -> pb.GetLifecycleModelResponse:
        model = self._models.lifecycle_models.get(require_tenant())
        return pb.GetLifecycleModelResponse(lifecycle_model=model)

    def UpdateLifecycleModel(  # noqa: N802
        self, request: pb.UpdateLifecycleModelRequest, context: grpc.ServicerContext
    ) -> pb.UpdateLifecycleModelResponse:
        model = self._models.lifecycle_models.update(require_tenant(), request)
        return pb.UpdateLifecycleModelResponse(lifecycle_model=model)

    def QueryPaths(  # noqa: N802
        self, request: pb.QueryPathsRequest, context: grpc.ServicerContext
    ) -> pb.QueryPathsResponse:
        tenant = require_tenant()
        query = paths_query(tenant, request)
        try:
            found = self._models.paths.query(query)
        except InvalidCleaningRules as error:
            raise cleaning_rule_error(error) from error
        return paths_response(tenant, request, found)

    def ListPathEdges(  # noqa: N802
        self, request: pb.ListPathEdgesRequest, context: grpc.ServicerContext
    ) -> pb.ListPathEdgesResponse:
        tenant = require_tenant()
        query, series, after, limit = edges_request(tenant, request)
        try:
            page = self._models.paths.edges(query, series, after, limit)
        except InvalidCleaningRules as error:
            raise cleaning_rule_error(error, "query.") from error
        return edges_response(tenant, request, series, page)

    def ListPathPersons(  # noqa: N802
        self, request: pb.ListPathPersonsRequest, context: grpc.ServicerContext
    ) -> pb.ListPathPersonsResponse:
        tenant = require_tenant()
        query, page = path_persons_request(tenant, request)
        try:
            found = self._models.paths.persons(query, page)
        except InvalidCleaningRules as error:
            raise cleaning_rule_error(error, "query.") from error
        return path_persons_response(tenant, request, found, page)

    def QueryRetention(  # noqa: N802
        self, request: pb.QueryRetentionRequest, context: grpc.ServicerContext
    ) -> pb.QueryRetentionResponse:
        query = retention_query(require_tenant(), request)
        rows = self._models.retention.counts(query)
        return retention_response(request, retention_table(rows, query, datetime.now(UTC)))

    def QueryTrends(  # noqa: N802
        self, request: pb.QueryTrendsRequest, context: grpc.ServicerContext
    ) -> pb.QueryTrendsResponse:
        now = datetime.now(UTC)
        query = trends_query(require_tenant(), request, now)
        results = trend_results(self._models.trends.cells(query), query, now)
        response = trends_response(query, results, formula_results(query, results))
        if not query.compare_to_previous:
            return response
        earlier = previous_query(query)
        found = trend_results(self._models.trends.cells(earlier), earlier, now)
        return with_previous(response, earlier, found, formula_results(earlier, found))

    def QueryStickiness(  # noqa: N802
        self, request: pb.QueryStickinessRequest, context: grpc.ServicerContext
    ) -> pb.QueryStickinessResponse:
        query = stickiness_query(require_tenant(), request, datetime.now(UTC))
        return stickiness_response(
            query, stickiness_results(self._models.stickiness.stickiness(query), query)
        )

    def QueryActivityLifecycle(  # noqa: N802
        self, request: pb.QueryActivityLifecycleRequest, context: grpc.ServicerContext
    ) -> pb.QueryActivityLifecycleResponse:
        now = datetime.now(UTC)
        query = activity_lifecycle_query(require_tenant(), request, now)
        cells = self._models.activity_lifecycle.activity_lifecycle(query)
        return activity_lifecycle_response(query, lifecycle_results(cells, query, now))

    def ListActivityLifecyclePersons(  # noqa: N802
        self, request: pb.ListActivityLifecyclePersonsRequest, context: grpc.ServicerContext
    ) -> pb.ListActivityLifecyclePersonsResponse:
        tenant = require_tenant()
        query, page = lifecycle_persons_request(tenant, request, datetime.now(UTC))
        found = self._models.activity_lifecycle.persons(query, page)
        return lifecycle_persons_response(tenant, request, found, page)

    def QueryFunnel(  # noqa: N802
        self, request: pb.QueryFunnelRequest, context: grpc.ServicerContext
    ) -> pb.QueryFunnelResponse:
        now = datetime.now(UTC)
        query = funnel_query(require_tenant(), request, now=now)
        result = assemble(query, self._models.funnels.query(query))
        if query.trend is not None:
            result = with_trend(query, result, self._models.funnels.trend(query), now)
        return funnel_response(query, result)

    def ListFunnelPersons(  # noqa: N802
        self, request: pb.ListFunnelPersonsRequest, context: grpc.ServicerContext
    ) -> pb.ListFunnelPersonsResponse:
        tenant = require_tenant()
        query, page = persons_request(tenant, request)
        return persons_response(tenant, request, self._models.funnels.persons(query, page), page)

    def ListEventNames(  # noqa: N802
        self, request: pb.ListEventNamesRequest, context: grpc.ServicerContext
    ) -> pb.ListEventNamesResponse:
        tenant = require_tenant()
        query = event_names_query(tenant, request)
        return event_names_response(tenant, request, query, self._models.event_names.names(query))

    def GetProfileFeatures(  # noqa: N802
        self, request: pb.GetProfileFeaturesRequest, context: grpc.ServicerContext
    ) -> pb.GetProfileFeaturesResponse:
        query = profile_query(require_tenant(), request, datetime.now(UTC))
        return profile_response(query, profile_features(self._models.features, query))

    def ExportTrainingSet(  # noqa: N802
        self, request: pb.ExportTrainingSetRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.ExportTrainingSetResponse]:
        query = training_set_query(require_tenant(), request, datetime.now(UTC))

        def keep_going() -> bool:
            remaining_seconds()  # raises DEADLINE_EXCEEDED once the caller's deadline has passed
            return context.is_active()  # False once the caller has gone away

        for part in export_training_set(self._models.features, query, keep_going):
            yield part_response(part)

    def ExportEvents(  # noqa: N802
        self, request: pb.ExportEventsRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.ExportEventsResponse]:
        query = event_export_query(require_tenant(), request)

        def keep_going() -> bool:
            remaining_seconds()  # raises DEADLINE_EXCEEDED once the caller's deadline has passed
            return context.is_active()  # False once the caller has gone away

        for chunk in export_events(self._models.event_export, query, self._export_max_events, keep_going):
            yield from event_export_responses(chunk)

    def GetDecisionEvents(  # noqa: N802
        self, request: pb.GetDecisionEventsRequest, context: grpc.ServicerContext
    ) -> pb.GetDecisionEventsResponse:
        found = self._models.decisions.decision_events(require_tenant(), decision_id_of(request))
        return pb.GetDecisionEventsResponse(decision=decision_message(found))

    def ExportDecisionEvents(  # noqa: N802
        self, request: pb.ExportDecisionEventsRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.ExportDecisionEventsResponse]:
        query = export_query(require_tenant(), request)
        for page in self._models.decisions.export_decisions(query):
            remaining_seconds()  # raises DEADLINE_EXCEEDED once the caller's deadline has passed
            if not context.is_active():
                return
            yield pb.ExportDecisionEventsResponse(decisions=[decision_message(d) for d in page])

    def CountDecisionOutcomes(  # noqa: N802
        self, request: pb.CountDecisionOutcomesRequest, context: grpc.ServicerContext
    ) -> pb.CountDecisionOutcomesResponse:
        model, start, end = count_request(request)
        return counts_response(self._models.decisions.count_outcomes(require_tenant(), model, start, end))

    def CreateSegment(  # noqa: N802
        self, request: pb.CreateSegmentRequest, context: grpc.ServicerContext
    ) -> pb.CreateSegmentResponse:
        segment_id, fields = create_request(request)
        if request.validate_only:
            checked = self._models.segments.check_create(require_tenant(), segment_id, fields)
            response = pb.CreateSegmentResponse(
                segment=segment_message(checked, SegmentStatus(SegmentState.BUILDING))
            )
            response.segment.ClearField("status")  # nothing is stored, so nothing is computed
            return response
        created = self._models.segments.create(require_tenant(), segment_id, fields)
        return pb.CreateSegmentResponse(segment=segment_message(*created))

    def GetSegment(  # noqa: N802
        self, request: pb.GetSegmentRequest, context: grpc.ServicerContext
    ) -> pb.GetSegmentResponse:
        found = self._models.segments.get(require_tenant(), segment_id_of(request.name, "name"))
        return pb.GetSegmentResponse(segment=segment_message(*found))

    def ListSegments(  # noqa: N802
        self, request: pb.ListSegmentsRequest, context: grpc.ServicerContext
    ) -> pb.ListSegmentsResponse:
        after, limit = list_request(request)
        page, total, more = self._models.segments.page(require_tenant(), after, limit)
        return pb.ListSegmentsResponse(
            segments=[segment_message(d, s) for d, s in page],
            next_page_token=list_token(page, more),
            total_size=total,
        )

    def UpdateSegment(  # noqa: N802
        self, request: pb.UpdateSegmentRequest, context: grpc.ServicerContext
    ) -> pb.UpdateSegmentResponse:
        segment_id, fields, mask = update_request(request)
        etag = request.segment.etag
        if request.validate_only:
            checked = self._models.segments.check_update(require_tenant(), segment_id, fields, mask, etag)
            response = pb.UpdateSegmentResponse(
                segment=segment_message(checked, SegmentStatus(SegmentState.BUILDING))
            )
            response.segment.ClearField("status")  # nothing is stored, so nothing is computed
            return response
        updated = self._models.segments.update(require_tenant(), segment_id, fields, mask, etag)
        return pb.UpdateSegmentResponse(segment=segment_message(*updated))

    def DeleteSegment(  # noqa: N802
        self, request: pb.DeleteSegmentRequest, context: grpc.ServicerContext
    ) -> pb.DeleteSegmentResponse:
        self._models.segments.delete(require_tenant(), segment_id_of(request.name, "name"), request.etag)
        return pb.DeleteSegmentResponse()

    def ListSegmentMembers(  # noqa: N802
        self, request: pb.ListSegmentMembersRequest, context: grpc.ServicerContext
    ) -> pb.ListSegmentMembersResponse:
        segment_id, uid, after, limit = members_request(request)
        found = self._models.segments.members(require_tenant(), segment_id, after, limit, uid)
        return members_response(*found)

    def GetSegmentMemberships(  # noqa: N802
        self, request: pb.GetSegmentMembershipsRequest, context: grpc.ServicerContext
    ) -> pb.GetSegmentMembershipsResponse:
        tenant = require_tenant()
        person_id, identifier, segment_ids = memberships_request(request)
        if identifier is not None:
            person_id = self._models.lifecycle.current_persons(tenant, [identifier]).get(identifier, "")
            if not person_id:
                raise PersonNotFound(f"no stored event carries the {identifier[0]} identifier")
        memberships, fresh = self._models.segments.memberships(tenant, person_id, segment_ids)
        return memberships_response(person_id, memberships, fresh)

    def ListSegmentMembershipChanges(  # noqa: N802
        self, request: pb.ListSegmentMembershipChangesRequest, context: grpc.ServicerContext
    ) -> pb.ListSegmentMembershipChangesResponse:
        after, segment_id, limit = changes_request(request)
        page = self._models.segments.changes(require_tenant(), after, segment_id, limit)
        return changes_response(segment_id, page)

    def CountSegmentMembershipChanges(  # noqa: N802
        self, request: pb.CountSegmentMembershipChangesRequest, context: grpc.ServicerContext
    ) -> pb.CountSegmentMembershipChangesResponse:
        q = change_counts_request(request)
        found = self._models.segments.change_counts(
            require_tenant(), q.segment_id, start=q.start, end=q.end, period=q.period, zone=q.time_zone
        )
        return change_counts_response(found)

    def EvaluatePersonConditions(  # noqa: N802
        self, request: pb.EvaluatePersonConditionsRequest, context: grpc.ServicerContext
    ) -> pb.EvaluatePersonConditionsResponse:
        ref, conditions = evaluate_request(request)
        return evaluate_response(self._models.persons.evaluate(require_tenant(), ref, conditions))

    def BatchEvaluatePersonConditions(  # noqa: N802
        self, request: pb.BatchEvaluatePersonConditionsRequest, context: grpc.ServicerContext
    ) -> pb.BatchEvaluatePersonConditionsResponse:
        refs, conditions = batch_evaluate_request(request)
        return batch_evaluate_response(self._models.persons.evaluate_of(require_tenant(), refs, conditions))

    def GetPersonProperties(  # noqa: N802
        self, request: pb.GetPersonPropertiesRequest, context: grpc.ServicerContext
    ) -> pb.GetPersonPropertiesResponse:
        ref, keys = properties_request(request)
        return properties_response(*self._models.persons.properties(require_tenant(), ref, keys))

    def BatchGetPersonProperties(  # noqa: N802
        self, request: pb.BatchGetPersonPropertiesRequest, context: grpc.ServicerContext
    ) -> pb.BatchGetPersonPropertiesResponse:
        refs, keys = batch_properties_request(request)
        return batch_properties_response(self._models.persons.properties_of(require_tenant(), refs, keys))
