"""A report's data: each RPC of requests.py called through the gateway with one key (so everything is that
key's tenant's, and a read scope is all it needs), each answer kept as the proto3 JSON the console's pages
draw (`message_to_json`), in the order the report shows them.

A list read page by page is kept as one answer: the first page's message with every page's items and no
next-page token. A section the tenant has no data for carries a sentence saying so (`empty`); the page still
holds the answer, so a reader can see what was asked and what came back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import grpc

from wayline.common.json_messages import message_to_json
from wayline.decision.v1 import decision_service_pb2 as decision_pb
from wayline.decision.v1 import decision_service_pb2_grpc as decision_grpc
from wayline.journeys.v1 import journeys_service_pb2 as journeys_pb
from wayline.journeys.v1 import journeys_service_pb2_grpc as journeys_grpc
from wayline.orchestrator.v1 import flow_pb2
from wayline.orchestrator.v1 import orchestrator_service_pb2 as orchestrator_pb
from wayline.orchestrator.v1 import orchestrator_service_pb2_grpc as orchestrator_grpc
from wayline_cli.report import requests
from wayline_cli.report.requests import ReportQuery

__all__ = ["Section", "UnknownFlowError", "collect"]

Auth = tuple[tuple[str, str], ...]
TIMEOUT = 60.0  # seconds per call: a report over a large tenant's range is worth the wait


@dataclass(frozen=True)
class Section:
    """One section of the report: `kind` names the page whose draw function shows `response`."""

    id: str  # the section's anchor, unique in the report
    # paths, funnel, retention, lifecycle, value, trends, sentiment, activity-lifecycle, segments, flow or
    # models
    kind: str
    title: str
    request: dict[str, Any] | None  # what was asked (for a flow: the GetFlowStats request)
    response: dict[str, Any] | None  # what came back; None when nothing was asked
    empty: str = ""  # why there is nothing to draw (the answer is not drawn), or empty when there is
    note: str = ""  # said above what is drawn

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "title": self.title,
            "request": self.request,
            "response": self.response,
            "empty": self.empty,
            "note": self.note,
        }


class UnknownFlowError(LookupError):
    """`--flow` named a flow the tenant does not have."""


class _Page(Protocol):
    next_page_token: str


Page = TypeVar("Page", bound=_Page)


@dataclass
class _Calls:
    channel: grpc.Channel
    auth: Auth
    journeys: journeys_grpc.JourneyServiceStub = field(init=False)
    orchestrator: orchestrator_grpc.OrchestratorServiceStub = field(init=False)
    decision: decision_grpc.DecisionServiceStub = field(init=False)

    def __post_init__(self) -> None:
        self.journeys = journeys_grpc.JourneyServiceStub(self.channel)
        self.orchestrator = orchestrator_grpc.OrchestratorServiceStub(self.channel)
        self.decision = decision_grpc.DecisionServiceStub(self.channel)


def _all_pages(list_page: Callable[[str], Page], items: Callable[[Page], Any]) -> Page:
    """Every page of a list as one answer: the first page with the others' items added."""
    whole = list_page("")
    token = whole.next_page_token
    while token:
        page = list_page(token)
        items(whole).extend(items(page))
        token = page.next_page_token
    whole.next_page_token = ""
    return whole


def collect(channel: grpc.Channel, auth: Auth, query: ReportQuery) -> list[Section]:
    """The report's sections, in order; an RPC error propagates (a report with a silently missing section
    would mislead whoever it is mailed to)."""
    calls = _Calls(channel, auth)
    return [
        _paths(calls, query),
        _funnel(calls, query),
        _retention(calls, query),
        _lifecycle(calls, query),
        _customer_value(calls, query),
        _activity(calls, query),
        _sentiment(calls, query),
        _buyers(calls, query),
        _segments(calls),
        *_flows(calls, query),
        _models(calls),
    ]


def _paths(calls: _Calls, query: ReportQuery) -> Section:
    request = requests.paths_request(query)
    response = calls.journeys.QueryPaths(request, metadata=calls.auth, timeout=TIMEOUT)
    counted = any(series.path_count for series in response.series)
    start = f" from {query.paths_start}" if query.paths_start else ""
    return Section(
        "paths",
        "paths",
        f"Paths{start}",
        message_to_json(request),
        message_to_json(response),
        "" if counted else f"No path{start} started in this range.",
    )


def _funnel_steps(calls: _Calls, query: ReportQuery) -> tuple[tuple[str, ...], str]:
    """The funnel's steps and what the report says about where they came from."""
    if query.funnel_steps:
        return query.funnel_steps, ""
    request = requests.event_names_request(query)
    names = calls.journeys.ListEventNames(request, metadata=calls.auth, timeout=TIMEOUT).event_names
    steps = tuple(name.name for name in names)
    return steps, (
        f"No --funnel given: the steps are the tenant's {len(steps)} most frequent events in the range, the "
        "most frequent first."
    )


def _funnel(calls: _Calls, query: ReportQuery) -> Section:
    steps, note = _funnel_steps(calls, query)
    if len(steps) < 2:
        return Section(
            "funnel",
            "funnel",
            "Funnel",
            None,
            None,
            "No funnel: fewer than two event names in this range (--funnel chooses the steps).",
        )
    request = requests.funnel_request(query, steps)
    response = calls.journeys.QueryFunnel(request, metadata=calls.auth, timeout=TIMEOUT)
    started = any(series.steps and series.steps[0].count for series in response.series)
    return Section(
        "funnel",
        "funnel",
        "Funnel: " + " → ".join(steps),
        message_to_json(request),
        message_to_json(response),
        "" if started else f"Nobody performed {steps[0]} in this range.",
        note,
    )


def _retention(calls: _Calls, query: ReportQuery) -> Section:
    request = requests.retention_request(query)
    response = calls.journeys.QueryRetention(request, metadata=calls.auth, timeout=TIMEOUT)
    cohorts = any(series.cohorts for series in response.series)
    return Section(
        "retention",
        "retention",
        "Weekly retention",
        message_to_json(request),
        message_to_json(response),
        "" if cohorts else "Nobody was first seen in this range.",
    )


def _lifecycle(calls: _Calls, query: ReportQuery) -> Section:
    request = requests.lifecycle_request(query)
    response = calls.journeys.GetLifecycleStages(request, metadata=calls.auth, timeout=TIMEOUT)
    populated = any(d.population_size for d in response.distributions) or response.population_size
    return Section(
        "lifecycle",
        "lifecycle",
        "Lifecycle stages over time",
        message_to_json(request),
        message_to_json(response),
        "" if populated else "Nobody had an event before the range's end.",
    )


def _customer_value(calls: _Calls, query: ReportQuery) -> Section:
    request = requests.customer_value_request(query)
    response = calls.journeys.GetCustomerValueSummary(request, metadata=calls.auth, timeout=TIMEOUT)
    return Section(
        "value",
        "value",
        f"Customer value in {query.currency}",
        message_to_json(request),
        message_to_json(response),
        "" if response.purchasers else f"Nobody purchased in {query.currency} in this range.",
    )


def _activity(calls: _Calls, query: ReportQuery) -> Section:
    title = "Activity by channel"
    request = requests.activity_request(query)
    if request is None:
        return Section("activity", "trends", title, None, None, requests.NO_TREND)
    response = calls.journeys.QueryTrends(request, metadata=calls.auth, timeout=TIMEOUT)
    counted = any(result.event_count for result in response.results)
    return Section(
        "activity",
        "trends",
        title,
        message_to_json(request),
        message_to_json(response),
        "" if counted else "No event in this range.",
    )


def _sentiment(calls: _Calls, query: ReportQuery) -> Section:
    title = "Sentiment by channel"
    request = requests.sentiment_request(query)
    if request is None:
        return Section("sentiment", "sentiment", title, None, None, requests.NO_TREND)
    response = calls.journeys.QueryTrends(request, metadata=calls.auth, timeout=TIMEOUT)
    # Series 1 of the preset counts the events with a score.
    scored = any(result.event_count for result in response.results if result.series_index == 1)
    return Section(
        "sentiment",
        "sentiment",
        title,
        message_to_json(request),
        message_to_json(response),
        "" if scored else "No event with a sentiment score in this range.",
    )


def _buyers(calls: _Calls, query: ReportQuery) -> Section:
    title = f"Buyers in {query.currency} by activity"
    request = requests.buyers_lifecycle_request(query)
    if request is None:
        return Section("buyers", "activity-lifecycle", title, None, None, requests.NO_TREND)
    response = calls.journeys.QueryActivityLifecycle(request, metadata=calls.auth, timeout=TIMEOUT)
    # As the page draws it: nothing to draw when no period holds a buyer of any status (then nobody bought
    # in the range, nor in the period before it, whose buyers would be the first period's dormant ones).
    counted = any(
        point.new_persons or point.returning_persons or point.resurrecting_persons or point.dormant_persons
        for result in response.results
        for point in result.points
    )
    return Section(
        "buyers",
        "activity-lifecycle",
        title,
        message_to_json(request),
        message_to_json(response),
        "" if counted else f"Nobody purchased in {query.currency} in this range.",
    )


def _segments(calls: _Calls) -> Section:
    def page(token: str) -> journeys_pb.ListSegmentsResponse:
        return calls.journeys.ListSegments(
            requests.list_segments_request(token), metadata=calls.auth, timeout=TIMEOUT
        )

    response = _all_pages(page, lambda answer: answer.segments)
    return Section(
        "segments",
        "segments",
        "Segments",
        message_to_json(requests.list_segments_request()),
        message_to_json(response),
        "" if response.segments else "The tenant has no segments.",
    )


def _chosen_flows(calls: _Calls, query: ReportQuery) -> list[flow_pb2.Flow]:
    def page(token: str) -> orchestrator_pb.ListFlowsResponse:
        return calls.orchestrator.ListFlows(
            requests.list_flows_request(token), metadata=calls.auth, timeout=TIMEOUT
        )

    listed = list(_all_pages(page, lambda answer: answer.flows).flows)
    if not query.flows:
        return listed
    by_name = {flow.name: flow for flow in listed}
    wanted = [requests.flow_name(flow) for flow in query.flows]
    unknown = [name for name in wanted if name not in by_name]
    if unknown:
        raise UnknownFlowError(f"the tenant has no flow named {', '.join(unknown)}")
    return [by_name[name] for name in dict.fromkeys(wanted)]


def _flows(calls: _Calls, query: ReportQuery) -> list[Section]:
    chosen = _chosen_flows(calls, query)
    if not chosen:
        return [Section("flows", "flow", "Flows", None, None, "The tenant has no flows.")]
    sections = []
    for number, listed in enumerate(chosen, start=1):
        flow = calls.orchestrator.GetFlow(
            requests.flow_request(listed), metadata=calls.auth, timeout=TIMEOUT
        ).flow
        stats_request = requests.flow_stats_request(query, flow.name)
        stats = calls.orchestrator.GetFlowStats(stats_request, metadata=calls.auth, timeout=TIMEOUT).stats
        version = f"version {flow.version}" if flow.version else "draft"
        sections.append(
            Section(
                f"flow-{number}",
                "flow",
                f"Flow: {flow.display_name or flow.name} ({version})",
                message_to_json(stats_request),
                {"flow": message_to_json(flow), "stats": message_to_json(stats)},
                note="" if stats.entered_count else "Nobody entered this flow in this range.",
            )
        )
    return sections


def _models(calls: _Calls) -> Section:
    def page(token: str) -> decision_pb.ListModelsResponse:
        return calls.decision.ListModels(
            requests.list_models_request(token), metadata=calls.auth, timeout=TIMEOUT
        )

    response = _all_pages(page, lambda answer: answer.models)
    return Section(
        "models",
        "models",
        "Models",
        message_to_json(requests.list_models_request()),
        message_to_json(response),
        "" if response.models else "The tenant has no models.",
    )
