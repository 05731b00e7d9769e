"""The journeys server under test: started as its own process, loaded through WriteEvents, and asked the
analytics questions of the benchmark (the same questions journeys_raw.py asks chDB directly)."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import Message

from bench.harness import cpu_seconds
from bench.journeys_data import END, START, TENANT
from bench.journeys_raw import (
    BREAKDOWN_SEGMENTS,
    FUNNEL_WINDOW_DAYS,
    PATH_DEPTH,
    PATH_START,
    RETENTION_WEEKS,
    SESSION_GAP_MINUTES,
)
from bench.journeys_vocabulary import FUNNEL
from bench.track import server_process
from wayline.common.context import INTERNAL_TOKEN_HEADER, TENANT_HEADER
from wayline.common.timestamps import to_timestamp
from wayline.event.v1 import event_pb2
from wayline.journeys.v1 import analytics_pb2, funnel_pb2, retention_pb2, trends_pb2
from wayline.journeys.v1 import journeys_service_pb2 as pb
from wayline_cli.suite import free_port, is_serving

__all__ = ["METADATA", "Question", "journeys_server", "method", "questions", "settle", "write_all"]

TOKEN = "bench-internal-token"
METADATA = ((INTERNAL_TOKEN_HEADER, TOKEN), (TENANT_HEADER, TENANT))
_SERVICE = "/wayline.journeys.v1.JourneyService/"
_OPTIONS = [("grpc.max_receive_message_length", 64 << 20), ("grpc.max_send_message_length", 64 << 20)]


def method(name: str) -> str:
    return _SERVICE + name


@contextlib.contextmanager
def journeys_server(data_dir: Path) -> Iterator[tuple[str, int]]:
    """A journeys server on chDB under `data_dir`, identity's override feed off; (address, pid)."""
    port = free_port()
    env = {
        **os.environ,
        "WAYLINE_DATA_DIR": str(data_dir),
        "WAYLINE_INTERNAL_TOKEN": TOKEN,
        "WAYLINE_LOG_LEVEL": "warning",
        "WAYLINE_CLICKHOUSE_URL": "",
        "WAYLINE_JOURNEYS_CLICKHOUSE_URL": "",
        "WAYLINE_JOURNEYS_PORT": str(port),
        "WAYLINE_JOURNEYS_METRICS_PORT": "0",
        "WAYLINE_JOURNEYS_IDENTITY_ADDRESS": "",
    }
    with server_process([sys.executable, "-m", "wayline_journeys"], port, env) as (address, process):
        deadline = time.monotonic() + 120
        while not is_serving(address):  # the port opens before the store is migrated and ready
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("the journeys server did not become SERVING")
            time.sleep(0.2)
        yield address, process.pid


def settle(pid: int | None, busy: Callable[[], bool] = lambda: False, limit: float = 300) -> float:
    """Wait until the process `pid` is nearly idle (its background merges done) and `busy()` is false;
    the seconds waited (at most `limit`)."""
    began = time.perf_counter()
    quiet = 0
    while time.perf_counter() - began < limit and quiet < 2:
        used = cpu_seconds(pid) if pid else 0.0
        time.sleep(1.0)
        idle = (not pid or cpu_seconds(pid) - used < 0.1) and not busy()
        quiet = quiet + 1 if idle else 0
    return time.perf_counter() - began


def write_all(address: str, requests: Sequence[bytes], callers: int = 4) -> float:
    """Send every serialised WriteEventsRequest with `callers` concurrent callers; the seconds taken."""
    pending = iter(requests)
    lock = threading.Lock()
    with grpc.insecure_channel(address, options=_OPTIONS) as channel:
        call = channel.unary_unary(method("WriteEvents"), request_serializer=None, response_deserializer=None)

        def caller() -> None:
            while True:
                with lock:
                    request = next(pending, None)
                if request is None:
                    return
                call(request, metadata=METADATA, timeout=600)

        began = time.perf_counter()
        with ThreadPoolExecutor(callers) as pool:
            for done in [pool.submit(caller) for _ in range(callers)]:
                done.result()
        return time.perf_counter() - began


@dataclass(frozen=True)
class Question:
    """An analytics RPC of the benchmark: its request, and one number of its answer to set beside the raw
    query's (a sanity check that both answer the same question, not a test: semantics differ in details)."""

    label: str
    rpc: str
    request: Message
    response: type[Message]
    check: Callable[[Any], int]
    raw: str  # the RawCopy method of the same question
    target_ms: float | None = None


def _range() -> event_pb2.TimeRange:
    return event_pb2.TimeRange(start=to_timestamp(START), end=to_timestamp(END))


def _funnel_question(
    label: str, breakdown: analytics_pb2.Breakdown, raw: str, target_ms: float | None = None
) -> Question:
    """The bench's 4-step funnel with `breakdown`; it says how many complete it (once per series)."""
    request = pb.QueryFunnelRequest(
        steps=[funnel_pb2.FunnelStep(event=analytics_pb2.EventMatcher(event_name=n)) for n in FUNNEL],
        conversion_window=Duration(seconds=FUNNEL_WINDOW_DAYS * 86_400),
        time_range=_range(),
        breakdown=breakdown,
    )
    return Question(
        label, "QueryFunnel", request, pb.QueryFunnelResponse, _completing, raw, target_ms=target_ms
    )


def _completing(response: pb.QueryFunnelResponse) -> int:
    return sum(series.steps[-1].count for series in response.series)


def _weekly(request: Message) -> Message:
    """`request` (a QueryFunnelRequest) with a weekly trend in UTC."""
    request.trend.period = retention_pb2.RETENTION_PERIOD_WEEK  # type: ignore[attr-defined]
    return request


def _completing_per_week(response: pb.QueryFunnelResponse) -> int:
    return sum(point.step_counts[-1] for series in response.series for point in series.trend)


def questions() -> list[Question]:
    channel = analytics_pb2.Breakdown(dimension=analytics_pb2.BREAKDOWN_DIMENSION_CHANNEL)
    by_segment = analytics_pb2.Breakdown(
        dimension=analytics_pb2.BREAKDOWN_DIMENSION_SEGMENT,
        segments=[f"segments/{segment_id}" for segment_id, _ in BREAKDOWN_SEGMENTS],
    )
    return [
        _funnel_question(
            "4-step funnel, 7-day window, by channel (persons completing)", channel, "funnel", 1500
        ),
        _funnel_question(
            f"the same funnel by segment ({len(BREAKDOWN_SEGMENTS)} overlapping; persons completing, "
            "once per segment)",
            by_segment,
            "funnel_by_segment",
        ),
        Question(
            "the same funnel week by week, no breakdown (trend; persons completing, once per week)",
            "QueryFunnel",
            _weekly(_funnel_question("", analytics_pb2.Breakdown(), "").request),
            pb.QueryFunnelResponse,
            _completing_per_week,
            "funnel_trend",
        ),
        Question(
            f"paths: {PATH_DEPTH} steps from {PATH_START}, 30-min sessions (paths)",
            "QueryPaths",
            pb.QueryPathsRequest(
                start_event=analytics_pb2.EventMatcher(event_name=PATH_START),
                depth=PATH_DEPTH,
                session_gap=Duration(seconds=SESSION_GAP_MINUTES * 60),
                time_range=_range(),
            ),
            pb.QueryPathsResponse,
            lambda r: sum(s.path_count for s in r.series),
            "paths",
        ),
        Question(
            f"retention: weekly, first seen, {RETENTION_WEEKS} weeks (persons in cohorts)",
            "QueryRetention",
            pb.QueryRetentionRequest(
                period=retention_pb2.RETENTION_PERIOD_WEEK,
                period_count=RETENTION_WEEKS,
                type=retention_pb2.RETENTION_TYPE_BOUNDED,
                time_range=_range(),
            ),
            pb.QueryRetentionResponse,
            lambda r: sum(c.cohort_size for s in r.series for c in s.cohorts),
            "retention",
        ),
        Question(
            "bulk RFM: first page of 1,000 purchasers in EUR (purchasers)",
            "GetCustomerValue",
            pb.GetCustomerValueRequest(currency_code="EUR", time_range=_range(), page_size=1000),
            pb.GetCustomerValueResponse,
            lambda r: r.total_size,
            "rfm",
        ),
        Question(
            "RFM summary: every purchaser in EUR by segment and grid cell, value quantiles (purchasers)",
            "GetCustomerValueSummary",
            pb.GetCustomerValueSummaryRequest(currency_code="EUR", time_range=_range()),
            pb.GetCustomerValueSummaryResponse,
            lambda r: r.purchasers,
            "rfm_summary",
        ),
        Question(
            "trends: weekly by channel; events, persons ordering, EUR revenue, its median (events)",
            "QueryTrends",
            pb.QueryTrendsRequest(
                series=[
                    trends_pb2.TrendSeries(),
                    trends_pb2.TrendSeries(
                        event=analytics_pb2.EventMatcher(event_name=FUNNEL[-1]),
                        math=trends_pb2.TREND_MATH_UNIQUE_PERSONS,
                    ),
                    trends_pb2.TrendSeries(
                        math=trends_pb2.TREND_MATH_SUM, property="revenue", currency_code="EUR"
                    ),
                    trends_pb2.TrendSeries(
                        math=trends_pb2.TREND_MATH_MEDIAN, property="revenue", currency_code="EUR"
                    ),
                ],
                time_range=_range(),
                period=retention_pb2.RETENTION_PERIOD_WEEK,
                breakdown=analytics_pb2.Breakdown(dimension=analytics_pb2.BREAKDOWN_DIMENSION_CHANNEL),
            ),
            pb.QueryTrendsResponse,
            lambda r: sum(x.event_count for x in r.results if x.series_index == 0),
            "trends",
        ),
        Question(
            "trends: rolling monthly active persons by day over the range (persons on its last day)",
            "QueryTrends",
            pb.QueryTrendsRequest(
                series=[trends_pb2.TrendSeries(math=trends_pb2.TREND_MATH_MONTHLY_ACTIVE_PERSONS)],
                time_range=_range(),
                period=retention_pb2.RETENTION_PERIOD_DAY,
            ),
            pb.QueryTrendsResponse,
            lambda r: int(r.results[0].points[-1].value),
            "rolling_mau",
        ),
        Question(
            "stickiness: persons by how many weeks of the range they had an event in (persons)",
            "QueryStickiness",
            pb.QueryStickinessRequest(
                series=[trends_pb2.TrendSeries()],
                time_range=_range(),
                period=retention_pb2.RETENTION_PERIOD_WEEK,
            ),
            pb.QueryStickinessResponse,
            lambda r: r.results[0].total_persons,
            "stickiness",
        ),
        Question(
            "activity lifecycle: each week's persons ordering, new to dormant (new persons)",
            "QueryActivityLifecycle",
            pb.QueryActivityLifecycleRequest(
                series=[trends_pb2.TrendSeries(event=analytics_pb2.EventMatcher(event_name=FUNNEL[-1]))],
                time_range=_range(),
                period=retention_pb2.RETENTION_PERIOD_WEEK,
            ),
            pb.QueryActivityLifecycleResponse,
            lambda r: sum(p.new_persons for p in r.results[0].points),
            "activity_lifecycle",
        ),
    ]
