"""What `wayline report` asks each RPC: every request of a report is built here, from the command's options,
so the defaults a reader of the report sees are the ones written down below.

- Paths (QueryPaths): paths starting in the range, at most 5 steps (`DEFAULT_PATH_DEPTH`), from
  `--paths-start` when given (else from each session's first step), sessions cut after 30 minutes of
  inactivity (the RPC's default); the 10 most frequent paths and the 100 largest Sankey edges.
- Funnel (QueryFunnel): the `--funnel` steps by event name, in order, first step in the range, within the
  RPC's default 14-day conversion window. Without `--funnel`, the tenant's `DEFAULT_FUNNEL_STEPS` most
  frequent event names in the range (ListEventNames), the most frequent first: a funnel whose steps are
  ever rarer; no funnel when the range has fewer than two names. With its trend (conversion over time, in
  UTC): by day over ranges of a month at most, by week up to two years, else by month (`trend_period`,
  the period of every trend of the report); none when QueryFunnel would refuse it (more periods than it
  takes, or a range outside its calendar).
- Retention (QueryRetention): weekly cohorts of persons first seen in the range, any event as a return, 8
  weeks after the cohort's own.
- Lifecycle (GetLifecycleStages): the distribution of every person of the tenant over the stages of the
  tenant's model, at the start of each week of the range and at its end (at most `MAX_LIFECYCLE_TIMES`
  times: longer ranges step by as many weeks as it takes).
- Customer value (GetCustomerValueSummary): the purchasers in `--currency` (EUR by default) with purchases
  in the range, by RFM segment and grid cell, with the quantiles of their value; recency to the range's
  end. No customer is named: the report is mailed around.
- Activity (QueryTrends): every event of the range (how many) and the persons who performed one (how many
  distinct), per period in UTC as the funnel's trend (`trend_period`; where the funnel has no trend,
  nothing is asked and the section says why, `NO_TREND`), broken down by channel (the
  `TREND_BREAKDOWN_LIMIT` busiest channels; the others measured together as the `other` result).
- Sentiment (QueryTrends): `wayline trends --sentiment`'s series (`wayline_cli.trends.sentiment_request`)
  over every event with a score (ingest's score of its text): the mean score, the scored events and those
  negative, neutral and positive; the same range, periods and breakdown by channel as Activity.
- Buyers by activity (QueryActivityLifecycle): one series, `Buyers`, of every event with revenue in
  `--currency` (no event name: an order is whatever carries revenue, as the demo's lifecycle of orders),
  each period's buyers new (their first such event ever), returning, resurrecting and dormant, in UTC by
  week (`lifecycle_period`: by month where the trends are, over ranges of more than two years; a day's
  buyers are too few to tell returning from resurrecting), no breakdown (the RPC has none); nothing asked
  where the trends have no period (`NO_TREND`).
- Segments (ListSegments), flows (ListFlows, then GetFlow of each flow's latest published version, or its
  draft when never published, and GetFlowStats of every version together for entries in the range) and
  models (ListModels): every one the tenant has, or the flows `--flow` names.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from google.protobuf import timestamp_pb2

from wayline.common.timestamps import to_timestamp
from wayline.decision.v1 import decision_service_pb2 as decision_pb
from wayline.event.v1 import event_pb2
from wayline.journeys.v1 import analytics_pb2 as analytics
from wayline.journeys.v1 import funnel_pb2, retention_pb2, trends_pb2
from wayline.journeys.v1 import journeys_service_pb2 as journeys_pb
from wayline.orchestrator.v1 import flow_pb2
from wayline.orchestrator.v1 import orchestrator_service_pb2 as orchestrator_pb
from wayline_cli.trends import sentiment_request as sentiment_series
from wayline_journeys import funnels, trends
from wayline_journeys.funnels import FunnelTrend, trend_periods
from wayline_journeys.retention import CALENDAR_END, CALENDAR_START, RetentionPeriod, within_calendar

__all__ = [
    "BUYERS_LABEL",
    "DEFAULT_FUNNEL_STEPS",
    "DEFAULT_PATH_DEPTH",
    "MAX_LIFECYCLE_TIMES",
    "MAX_TREND_PERIODS",
    "NO_TREND",
    "TREND_BREAKDOWN_LIMIT",
    "ReportQuery",
    "activity_request",
    "buyers_lifecycle_request",
    "customer_value_request",
    "event_names_request",
    "flow_name",
    "flow_request",
    "flow_stats_request",
    "funnel_request",
    "funnel_trend",
    "lifecycle_period",
    "lifecycle_request",
    "list_flows_request",
    "list_models_request",
    "list_segments_request",
    "paths_request",
    "retention_request",
    "sentiment_request",
    "trend_period",
]

DEFAULT_PATH_DEPTH = 5
DEFAULT_FUNNEL_STEPS = 3
TOP_PATHS = 10
SANKEY_EDGES = 100
RETENTION_WEEKS = 8
MAX_LIFECYCLE_TIMES = 27  # half a year of weeks and the end: a readable number of bars
LIST_PAGE_SIZE = 1000  # the list RPCs' largest page: one call for most tenants
TREND_BREAKDOWN_LIMIT = 5  # channels kept apart in the activity and sentiment trends; the others are `other`
BUYERS_LABEL = "Buyers"  # the activity lifecycle's one series
# The most periods a trend of the report has: what both QueryFunnel and QueryTrends take.
MAX_TREND_PERIODS = min(funnels.MAX_TREND_PERIODS, trends.MAX_TREND_PERIODS)
# Why a trend section is empty when the range has no period (trend_period is None).
NO_TREND = (
    f"No trend: the range lies outside the years trends are dated in ({CALENDAR_START:%Y-%m-%d} to "
    f"{CALENDAR_END:%Y-%m-%d}) or spans more than {MAX_TREND_PERIODS} months."
)


@dataclass(frozen=True)
class ReportQuery:
    """What a report covers: a half-open time range [start, end) and what the options chose."""

    start: datetime
    end: datetime
    funnel_steps: tuple[str, ...] = ()
    paths_start: str = ""
    flows: tuple[str, ...] = ()  # flow ids or `flows/{id}` names; empty means every flow
    currency: str = "EUR"  # the customer value's and the buyers' currency (ISO 4217)

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("the range's bounds must carry a time zone")
        if self.end <= self.start:
            raise ValueError("the range must end after it starts")

    def time_range(self) -> event_pb2.TimeRange:
        return event_pb2.TimeRange(start=to_timestamp(self.start), end=to_timestamp(self.end))


def paths_request(query: ReportQuery) -> journeys_pb.QueryPathsRequest:
    request = journeys_pb.QueryPathsRequest(
        depth=DEFAULT_PATH_DEPTH,
        time_range=query.time_range(),
        top_paths_limit=TOP_PATHS,
        edge_limit=SANKEY_EDGES,
    )
    if query.paths_start:
        request.start_event.CopyFrom(analytics.EventMatcher(event_name=query.paths_start))
    return request


def event_names_request(query: ReportQuery) -> journeys_pb.ListEventNamesRequest:
    """The names a default funnel is made of."""
    return journeys_pb.ListEventNamesRequest(time_range=query.time_range(), page_size=DEFAULT_FUNNEL_STEPS)


# The trend's periods by the range's length: the longest range each suits (None: any length).
_TREND_PERIODS = (
    (timedelta(days=31), RetentionPeriod.DAY, retention_pb2.RETENTION_PERIOD_DAY),
    (timedelta(days=731), RetentionPeriod.WEEK, retention_pb2.RETENTION_PERIOD_WEEK),
    (None, RetentionPeriod.MONTH, retention_pb2.RETENTION_PERIOD_MONTH),
)


def trend_period(query: ReportQuery) -> retention_pb2.RetentionPeriod.ValueType | None:
    """The period of the report's trends over the range (UTC) by its length, or None where QueryFunnel and
    QueryTrends would refuse the range (more periods than they take, or outside their calendar)."""
    if not within_calendar(query.start, query.end):
        return None
    span = query.end - query.start
    for longest, period, value in _TREND_PERIODS:
        if longest is None or span <= longest:
            periods = trend_periods(FunnelTrend(period, "UTC", query.start, query.end))
            return value if len(periods) <= MAX_TREND_PERIODS else None
    return None


def funnel_trend(query: ReportQuery) -> funnel_pb2.FunnelTrend | None:
    """The funnel's trend over the range (UTC), or None where QueryFunnel would refuse one."""
    period = trend_period(query)
    return None if period is None else funnel_pb2.FunnelTrend(period=period)


def funnel_request(query: ReportQuery, steps: tuple[str, ...]) -> journeys_pb.QueryFunnelRequest:
    """The funnel of `steps`, event names in order, with its trend when the range allows one."""
    request = journeys_pb.QueryFunnelRequest(
        steps=[
            funnel_pb2.FunnelStep(label=name, event=analytics.EventMatcher(event_name=name)) for name in steps
        ],
        order=funnel_pb2.FUNNEL_ORDER_ORDERED,
        time_range=query.time_range(),
    )
    trend = funnel_trend(query)
    if trend is not None:
        request.trend.CopyFrom(trend)
    return request


def retention_request(query: ReportQuery) -> journeys_pb.QueryRetentionRequest:
    return journeys_pb.QueryRetentionRequest(
        period=retention_pb2.RETENTION_PERIOD_WEEK,
        period_count=RETENTION_WEEKS,
        type=retention_pb2.RETENTION_TYPE_BOUNDED,
        time_range=query.time_range(),
    )


def lifecycle_times(query: ReportQuery) -> list[datetime]:
    """The range's start, every week after it while in the range, and its end: at most
    MAX_LIFECYCLE_TIMES, the step widened by whole weeks when the range is longer."""
    weeks = max(1, -(-(query.end - query.start) // timedelta(weeks=1)))
    step = timedelta(weeks=-(-weeks // (MAX_LIFECYCLE_TIMES - 1)))
    times = []
    moment = query.start
    while moment < query.end:
        times.append(moment)
        moment += step
    return [*times, query.end]


def lifecycle_request(query: ReportQuery) -> journeys_pb.GetLifecycleStagesRequest:
    times: list[timestamp_pb2.Timestamp] = [to_timestamp(t) for t in lifecycle_times(query)]
    return journeys_pb.GetLifecycleStagesRequest(
        include_distribution=True, as_of=to_timestamp(query.end), distribution_times=times
    )


def list_segments_request(page_token: str = "") -> journeys_pb.ListSegmentsRequest:
    return journeys_pb.ListSegmentsRequest(page_size=LIST_PAGE_SIZE, page_token=page_token)


def list_flows_request(page_token: str = "") -> orchestrator_pb.ListFlowsRequest:
    return orchestrator_pb.ListFlowsRequest(page_size=LIST_PAGE_SIZE, page_token=page_token)


def list_models_request(page_token: str = "") -> decision_pb.ListModelsRequest:
    return decision_pb.ListModelsRequest(page_size=LIST_PAGE_SIZE, page_token=page_token)


def flow_name(flow: str) -> str:
    """`flows/{id}` for an id or a name."""
    return flow if flow.startswith("flows/") else f"flows/{flow}"


def flow_request(flow: flow_pb2.Flow) -> orchestrator_pb.GetFlowRequest:
    """The version whose counts the report shows: the latest published one, or the draft."""
    return orchestrator_pb.GetFlowRequest(name=flow.name, version=flow.published_version)


def flow_stats_request(query: ReportQuery, name: str) -> orchestrator_pb.GetFlowStatsRequest:
    return orchestrator_pb.GetFlowStatsRequest(name=name, version=0, time_range=query.time_range())


def customer_value_request(query: ReportQuery) -> journeys_pb.GetCustomerValueSummaryRequest:
    return journeys_pb.GetCustomerValueSummaryRequest(
        currency_code=query.currency, time_range=query.time_range()
    )


def _trends_request(
    query: ReportQuery, series: list[trends_pb2.TrendSeries]
) -> journeys_pb.QueryTrendsRequest | None:
    """`series` over the range per `trend_period` in UTC, by channel; None when the range has no period."""
    period = trend_period(query)
    if period is None:
        return None
    return journeys_pb.QueryTrendsRequest(
        series=series,
        time_range=query.time_range(),
        period=period,
        time_zone="UTC",
        breakdown=analytics.Breakdown(
            dimension=analytics.BREAKDOWN_DIMENSION_CHANNEL, limit=TREND_BREAKDOWN_LIMIT
        ),
    )


def activity_request(query: ReportQuery) -> journeys_pb.QueryTrendsRequest | None:
    """Every event, and the persons who performed one, per period by channel; None without a period."""
    return _trends_request(
        query,
        [
            trends_pb2.TrendSeries(label="Events", math=trends_pb2.TREND_MATH_TOTAL),
            trends_pb2.TrendSeries(label="Persons", math=trends_pb2.TREND_MATH_UNIQUE_PERSONS),
        ],
    )


def sentiment_request(query: ReportQuery) -> journeys_pb.QueryTrendsRequest | None:
    """The sentiment preset of every event with a score, per period by channel; None without a period."""
    return _trends_request(query, sentiment_series([]))


def lifecycle_period(query: ReportQuery) -> retention_pb2.RetentionPeriod.ValueType | None:
    """The period of the buyers' activity lifecycle: weeks, or the trends' months over longer ranges; None
    where the trends have no period (QueryActivityLifecycle checks the range as QueryTrends does)."""
    period = trend_period(query)
    if period is None or period == retention_pb2.RETENTION_PERIOD_MONTH:
        return period
    return retention_pb2.RETENTION_PERIOD_WEEK


def buyers_lifecycle_request(query: ReportQuery) -> journeys_pb.QueryActivityLifecycleRequest | None:
    """Each period's buyers in the report's currency (every event with revenue in it) by how their buying
    changed, in UTC; None without a period."""
    period = lifecycle_period(query)
    if period is None:
        return None
    return journeys_pb.QueryActivityLifecycleRequest(
        series=[trends_pb2.TrendSeries(label=BUYERS_LABEL, currency_code=query.currency)],
        time_range=query.time_range(),
        period=period,
        time_zone="UTC",
    )
