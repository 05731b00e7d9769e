"""ListFunnelPersons: the request → (FunnelQuery, PersonsPage), the ids → a page, and the page tokens.

A page token (AIP-158, the kit's encoding) holds the last person id returned and a fingerprint of the tenant
and of the request less its paging, so a token used with another funnel, step, outcome or series is refused
instead of paging something else.
"""

from __future__ import annotations

from wayline.common.errors import FieldViolation, InvalidArgument
from wayline.journeys.v1 import funnel_pb2
from wayline.journeys.v1 import journeys_service_pb2 as pb
from wayline_journeys.funnel_converters import funnel_query
from wayline_journeys.funnels import FunnelQuery, Outcome, PersonsPage
from wayline_journeys.person_pages import (
    breakdown_series,
    next_page,
    page_bounds,
    page_size_violations,
    request_fingerprint,
    unpaged,
)

__all__ = ["persons_request", "persons_response"]

_RPC = "ListFunnelPersons"
_OUTCOMES = {
    funnel_pb2.FUNNEL_PERSONS_OUTCOME_UNSPECIFIED: Outcome.CONVERTED,
    funnel_pb2.FUNNEL_PERSONS_OUTCOME_CONVERTED: Outcome.CONVERTED,
    funnel_pb2.FUNNEL_PERSONS_OUTCOME_DROPPED: Outcome.DROPPED,
}


def _fingerprint(tenant: str, request: pb.ListFunnelPersonsRequest) -> str:
    bound = unpaged(request)
    bound.funnel.person_sample_size = 0
    return request_fingerprint(tenant, bound)


def persons_request(tenant: str, request: pb.ListFunnelPersonsRequest) -> tuple[FunnelQuery, PersonsPage]:
    violations: list[FieldViolation] = []
    try:
        query = funnel_query(tenant, request.funnel, "funnel.")
    except InvalidArgument as error:
        violations.extend(error.violations)
        query = None
    outcome = _OUTCOMES.get(request.outcome)
    if outcome is None:
        violations.append(FieldViolation("outcome", "not a FunnelPersonsOutcome"))
    if not 0 <= request.step_index < max(len(request.funnel.steps), 1):
        violations.append(FieldViolation("step_index", "a step of the funnel", "OUT_OF_RANGE"))
    elif outcome is Outcome.DROPPED and request.step_index == 0:
        violations.append(FieldViolation("step_index", "nobody drops off before the first step"))
    violations.extend(page_size_violations(request))
    if violations or query is None or outcome is None:
        raise InvalidArgument("the request is not valid; see the field violations", violations)
    after, limit = page_bounds(request, _RPC, _fingerprint(tenant, request))
    series = breakdown_series(request.breakdown_value if request.HasField("breakdown_value") else None)
    return query, PersonsPage(request.step_index, outcome, series, after, limit)


def persons_response(
    tenant: str, request: pb.ListFunnelPersonsRequest, found: list[str], page: PersonsPage
) -> pb.ListFunnelPersonsResponse:
    shown, token = next_page(found, page.limit, _fingerprint(tenant, request))
    return pb.ListFunnelPersonsResponse(person_ids=shown, next_page_token=token)
