"""The four tracking-plan RPCs of IngestService; the ingest servicer delegates to them one to one.

Thin by design: take the tenant from the call, convert the request, ask `TrackingPlans`, convert back.
Every error is one of the kit's typed errors raised below this layer (or by the converters), which the
server interceptor maps to the codes and reasons `ingest_service.proto` documents.
"""

from __future__ import annotations

import grpc

from wayline.common.context import require_tenant
from wayline.common.response_size import fitting
from wayline.ingest.v1 import ingest_service_pb2 as pb
from wayline_ingest.plans.converters import mask_fields, plan_id_from_name, plan_to_proto, spec_from_proto
from wayline_ingest.plans.paging import decode_page_token, encode_page_token, page_size
from wayline_ingest.plans.registry import TrackingPlans

__all__ = ["TrackingPlanRpcs"]


class TrackingPlanRpcs:
    def __init__(self, plans: TrackingPlans) -> None:
        self._plans = plans

    def CreateTrackingPlan(  # noqa: N802 - the RPC's name
        self, request: pb.CreateTrackingPlanRequest, context: grpc.ServicerContext
    ) -> pb.CreateTrackingPlanResponse:
        tenant = require_tenant()
        plan = self._plans.create(tenant, spec_from_proto(request.tracking_plan), request.tracking_plan_id)
        return pb.CreateTrackingPlanResponse(tracking_plan=plan_to_proto(plan))

    def GetTrackingPlan(  # noqa: N802 - the RPC's name
        self, request: pb.GetTrackingPlanRequest, context: grpc.ServicerContext
    ) -> pb.GetTrackingPlanResponse:
        tenant = require_tenant()
        plan = self._plans.get(tenant, plan_id_from_name(request.name, "name"))
        return pb.GetTrackingPlanResponse(tracking_plan=plan_to_proto(plan))

    def ListTrackingPlans(  # noqa: N802 - the RPC's name
        self, request: pb.ListTrackingPlansRequest, context: grpc.ServicerContext
    ) -> pb.ListTrackingPlansResponse:
        tenant = require_tenant()
        size = page_size(request.page_size)
        after = decode_page_token(request.page_token) if request.page_token else None
        page = self._plans.list(tenant, size, after)
        # A plan of many event schemas is large: the page ends at about 3 MB, what a client receives.
        plans = [plan_to_proto(p) for p in page.plans]
        kept = fitting(plans)
        after_last = page.plans[kept - 1].plan_id if kept < len(plans) else page.next_after
        return pb.ListTrackingPlansResponse(
            tracking_plans=plans[:kept],
            next_page_token=encode_page_token(after_last) if after_last else "",
            total_size=page.total_size,
        )

    def UpdateTrackingPlan(  # noqa: N802 - the RPC's name
        self, request: pb.UpdateTrackingPlanRequest, context: grpc.ServicerContext
    ) -> pb.UpdateTrackingPlanResponse:
        tenant = require_tenant()
        plan_id = plan_id_from_name(request.tracking_plan.name, "tracking_plan.name")
        fields = mask_fields(request.update_mask)
        plan = self._plans.update(
            tenant, plan_id, spec_from_proto(request.tracking_plan), fields, request.tracking_plan.etag
        )
        return pb.UpdateTrackingPlanResponse(tracking_plan=plan_to_proto(plan))
