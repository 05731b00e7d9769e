"""Journeys (issue 8): the journey store at scale, every figure beside the raw chDB query in the same run.

`python -m bench journeys [--events 10000000] [--requests 500]`. Generated journeys (journeys_data.py,
cached on disk) are written to a real journeys server (its own process, chDB, identity's feed off) through
WriteEvents, and the same rows into a second chDB engine in the bench's process with the same schema
(journeys_raw.py). Then, each beside the raw SQL on the copy:
- bulk insert rows/s: 4 concurrent WriteEvents callers of 5,000 events, against insert_arrow of 1M rows;
- GetTimeline p50/p99 for random persons (a page of 100), 1 and 8 callers, after the first 1M events and
  again at the full size (the target is a flat p50 ≤ 10 ms);
- EvaluatePersonConditions p50/p99 for the same persons (an order, three purchases, the retention stage:
  what a flow's branch asks), 1 caller, at the same two sizes;
- the analytics RPCs that exist (funnel, paths, retention, bulk RFM): the median of 5 calls;
- GetTimeline while 1M more events are written;
- the analytics RPCs again once a quarter of the persons were merged into others (person-wide overrides on
  both sides; the raw queries read through the join a user would write), and GetTimeline of persons others
  were merged into, beside the same page by hand (their events and those of the persons merged into them);
- segment freshness lag under 5,000 events/s, once segments exist.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import partial
from itertools import cycle
from pathlib import Path

import grpc
import structlog
from google.protobuf import json_format
from rich.console import Console
from rich.table import Table

from bench.harness import Measurement, print_comparison
from bench.journeys_cache import Dataset, dataset
from bench.journeys_raw import RawCopy
from bench.journeys_rpc import METADATA, journeys_server, method, questions, settle, write_all
from bench.journeys_segments import build_breakdown_segments, delete_breakdown_segments, measure_freshness
from bench.journeys_timing import latencies, measure_blocking, median_ms, percentile
from bench.track import run_scenario
from wayline.common.timestamps import to_timestamp
from wayline.event.v1 import event_pb2
from wayline.identity.v1 import person_override_pb2
from wayline.journeys.v1 import condition_pb2
from wayline.journeys.v1 import journeys_service_pb2 as pb

__all__ = ["DEFAULT_CACHE", "main"]

DEFAULT_CACHE = Path.home() / ".cache" / "wayline-bench"
_RUNS = 5
_TIMELINE_PERSONS = 500
_TIMELINE_CALLS = 500  # per row, whatever --requests says: enough for a p99, and the 10M run stays short
_SCAN_CALLS = 100
_TRAIT_PAGE = 1_000  # BatchGetPersonProperties' most persons a call, a page of a segment's members
_TRAIT_PAGES = 10
_TRAIT_CALLS = 30
_SCAN = f"raw SQL, WHERE person_id ({_SCAN_CALLS} calls)"
_EXTRA = 1_000_000
_FRESHNESS_SECONDS = 60
_MERGE_EVERY = 4  # a quarter of the persons merged into another, before the freshness row
_OVERRIDES_PER_CALL = 10_000  # ApplyPersonOverrides' limit


def _branch_conditions() -> list[condition_pb2.PersonCondition]:
    """A flow branch's question about a person: an order, three purchases, the retention stage."""
    return [
        json_format.ParseDict(c, condition_pb2.PersonCondition())
        for c in (
            {"event_count": {"event": {"event_name": "Order Completed"}, "count": "1"}},
            {
                "customer_value": {
                    "metric": "CUSTOMER_VALUE_METRIC_PURCHASE_COUNT",
                    "currency_code": "EUR",
                    "count": "3",
                }
            },
            {"lifecycle_stage": {"stages": ["LIFECYCLE_STAGE_RETENTION"]}},
        )
    ]


class _Run:
    def __init__(self, console: Console, address: str, pid: int, raw: RawCopy) -> None:
        self.console, self.address, self.pid, self.raw = console, address, pid, raw
        self.loaded = 0
        self.persons: list[str] = []
        self.merge_targets: list[str] = []  # persons others were merged into (merge_persons)
        self.load_rows: list[tuple[str, int, float, float]] = []

    def settle(self) -> None:
        waited = settle(self.pid) + settle(None, self.raw.busy)
        self.console.print(f"  background merges settled in {waited:.0f}s")

    def load(self, data: Dataset, chunks: Sequence[int]) -> None:
        """Write `chunks` to the server, let it settle, then insert the same rows into the raw copy. Each
        side's time runs from its first write to its last acknowledgement; the chunks are read from the
        cache between writes, outside the time, and merges after the last write are not counted."""
        served = raw = 0.0
        for chunk in chunks:
            served += write_all(self.address, data.requests(chunk))
        waited = settle(self.pid)
        rows = 0
        for chunk in chunks:
            table = data.rows(chunk)
            began = time.perf_counter()
            self.raw.insert(table)
            raw += time.perf_counter() - began
            rows += table.num_rows
        waited += settle(None, self.raw.busy)
        self.loaded += rows
        self.load_rows.append((f"{self.loaded - rows:,} → {self.loaded:,}", rows, served, raw))
        self.console.print(
            f"  loaded {rows:,} events: service {served:.1f}s, raw {raw:.1f}s "
            f"(merges settled in {waited:.0f}s)"
        )

    def print_loads(self, title: str) -> None:
        table = Table(title=title, title_justify="left")
        for column in ("events", "rows", "WriteEvents s", "WriteEvents rows/s", "raw insert s", "raw rows/s"):
            table.add_column(column, justify="right")
        table.add_column("service ÷ raw", justify="right")
        for label, rows, served, raw in self.load_rows:
            table.add_row(
                label,
                f"{rows:,}",
                f"{served:.1f}",
                f"{rows / served:,.0f}",
                f"{raw:.1f}",
                f"{rows / raw:,.0f}",
                f"{raw / served:.2f}",
            )
        self.console.print(table)

    def timelines(self, requests: int) -> None:
        if not self.persons:
            self.persons = self.raw.persons(_TIMELINE_PERSONS, seed=1)
        payloads = [
            pb.GetTimelineRequest(person_id=p, page_size=100).SerializeToString() for p in self.persons
        ]
        _check_timeline(self.address, payloads[0])
        rows: list[Measurement] = []
        anchored = self.raw.has_person_anchors
        by_person = self.raw.has_person_timelines
        via_anchors = "raw SQL via person_anchors"
        baseline = "raw SQL on person_timelines" if by_person else via_anchors if anchored else _SCAN
        calls = min(requests, _TIMELINE_CALLS)
        for concurrency in (1, 8):
            name, rpc = "GetTimeline over gRPC", method("GetTimeline")
            scenario = run_scenario(name, self.address, rpc, METADATA, payloads, concurrency, calls)
            rows.append(asyncio.run(scenario))
            if by_person:
                rows.append(
                    measure_blocking(baseline, self.raw.person_timeline, self.persons, concurrency, calls)
                )
            if anchored:
                anchors = partial(self.raw.timeline, anchored=True)
                rows.append(measure_blocking(via_anchors, anchors, self.persons, concurrency, calls))
            # Reads the whole tenant at every call: fewer calls, to keep the 10M run within minutes.
            rows.append(
                measure_blocking(_SCAN, self.raw.timeline, self.persons, concurrency, min(calls, _SCAN_CALLS))
            )
        print_comparison(
            f"GetTimeline at {self.loaded:,} events: {calls} calls per row, "
            f"{len(self.persons)} random persons, a page of 100",
            rows,
            baseline,
            self.console,
        )

    def person_conditions(self, requests: int) -> None:
        """EvaluatePersonConditions (a flow branch's question about one person: an order, three purchases,
        the retention stage) for random persons, 1 caller, beside the hand-written query of the same facts
        on the raw copy."""
        if not self.persons:
            self.persons = self.raw.persons(_TIMELINE_PERSONS, seed=1)
        conditions = _branch_conditions()
        payloads = [
            pb.EvaluatePersonConditionsRequest(
                person=event_pb2.PersonRef(person_id=p), conditions=conditions
            ).SerializeToString()
            for p in self.persons
        ]
        calls = min(requests, _TIMELINE_CALLS)
        name, rpc = "EvaluatePersonConditions over gRPC", method("EvaluatePersonConditions")
        baseline = "raw SQL via person_anchors"
        rows = [
            asyncio.run(run_scenario(name, self.address, rpc, METADATA, payloads, 1, calls)),
            measure_blocking(baseline, self.raw.person_conditions, self.persons, 1, calls),
        ]
        print_comparison(
            f"EvaluatePersonConditions at {self.loaded:,} events: {calls} calls per row, "
            f"{len(self.persons)} random persons, 3 conditions",
            rows,
            baseline,
            self.console,
        )

    def batch_conditions(self, requests: int) -> None:
        """The same question for a page of persons (a page of a segment's members entering a branching flow):
        BatchEvaluatePersonConditions for 1,000 random persons, beside the hand-written query of the same
        facts for the same page."""
        pages = self._pages()
        refs = [[event_pb2.PersonRef(person_id=p) for p in page] for page in pages]
        conditions = _branch_conditions()
        payloads = [
            pb.BatchEvaluatePersonConditionsRequest(persons=r, conditions=conditions).SerializeToString()
            for r in refs
        ]
        calls = min(requests, _TRAIT_CALLS)
        name = f"BatchEvaluatePersonConditions, {_TRAIT_PAGE:,} persons"
        baseline = f"raw SQL, the same {_TRAIT_PAGE:,} persons"
        rpc = method("BatchEvaluatePersonConditions")
        rows = [
            asyncio.run(run_scenario(name, self.address, rpc, METADATA, payloads, 1, calls)),
            measure_blocking(
                baseline,
                lambda i: self.raw.page_conditions(pages[int(i)]),
                [str(i) for i in range(len(pages))],
                1,
                calls,
            ),
        ]
        print_comparison(
            f"Person conditions of a page at {self.loaded:,} events: 3 conditions, {calls} calls per row",
            rows,
            baseline,
            self.console,
        )

    def _pages(self) -> list[list[str]]:
        """Pages of 1,000 random persons (BatchGet… RPCs' most), the same in every row."""
        persons = self.raw.persons(_TRAIT_PAGES * _TRAIT_PAGE, seed=2)
        return [persons[i : i + _TRAIT_PAGE] for i in range(0, len(persons), _TRAIT_PAGE)]

    def person_traits(self, requests: int) -> None:
        """Traits of a page of persons (what a flow reads to personalise a page of a segment's members'
        sends): BatchGetPersonProperties for 1,000 random persons, beside the hand-written query of the same
        page, and GetPersonProperties for one person (what each send cost before ADR 92)."""
        pages = self._pages()
        persons = [p for page in pages for p in page]
        keys = ["country", "plan"]

        def page_request(page: list[str]) -> bytes:
            refs = [event_pb2.PersonRef(person_id=p) for p in page]
            return pb.BatchGetPersonPropertiesRequest(persons=refs, keys=keys).SerializeToString()

        singles = [
            pb.GetPersonPropertiesRequest(
                person=event_pb2.PersonRef(person_id=p), keys=keys
            ).SerializeToString()
            for p in persons[:_TIMELINE_PERSONS]
        ]
        calls = min(requests, _TRAIT_CALLS)
        batch = f"BatchGetPersonProperties, {_TRAIT_PAGE:,} persons"
        baseline = f"raw SQL, the same {_TRAIT_PAGE:,} persons"
        rows = [
            asyncio.run(
                run_scenario(
                    batch,
                    self.address,
                    method("BatchGetPersonProperties"),
                    METADATA,
                    [page_request(p) for p in pages],
                    1,
                    calls,
                )
            ),
            measure_blocking(
                baseline,
                lambda i: self.raw.person_traits(pages[int(i)], keys),
                [str(i) for i in range(len(pages))],
                1,
                calls,
            ),
            asyncio.run(
                run_scenario(
                    "GetPersonProperties, 1 person",
                    self.address,
                    method("GetPersonProperties"),
                    METADATA,
                    singles,
                    1,
                    min(requests, _TIMELINE_CALLS),
                )
            ),
        ]
        print_comparison(
            f"Person traits at {self.loaded:,} events: country and plan, {calls} calls per page row",
            rows,
            baseline,
            self.console,
        )

    def analytics(self, merged: str = "") -> None:
        title = f"Analytics at {self.loaded:,} events{merged}: median of {_RUNS} calls"
        table = Table(title=title, title_justify="left")
        for column in (
            "question",
            "service ms",
            "raw ms",
            "service ÷ raw",
            "target",
            "service says",
            "raw says",
        ):
            table.add_column(column, justify="left" if column == "question" else "right")
        began = time.perf_counter()
        members = build_breakdown_segments(self.address)
        self.raw.set_segment_members(members)
        sizes = ", ".join(f"{name} {len(persons):,}" for name, persons in members.items())
        self.console.print(
            f"  segments of the breakdown built in {time.perf_counter() - began:.1f} s (members: {sizes})"
        )
        with (
            contextlib.ExitStack() as cleanup,
            grpc.insecure_channel(
                self.address, options=[("grpc.max_receive_message_length", 64 << 20)]
            ) as channel,
        ):
            cleanup.callback(delete_breakdown_segments, self.address)  # no evaluator work in later rows
            for q in questions():
                call = channel.unary_unary(
                    method(q.rpc),
                    request_serializer=lambda m: m.SerializeToString(),
                    response_deserializer=q.response.FromString,
                )
                try:
                    answer = call(q.request, metadata=METADATA, timeout=600)  # a warm-up, and the probe
                except grpc.RpcError as error:
                    code = error.code()
                    status = "not implemented yet" if code == grpc.StatusCode.UNIMPLEMENTED else code.name
                    self.console.print(
                        f"  {q.rpc}: {status} {'' if status.startswith('not') else error.details()}"
                    )
                    table.add_row(q.label, status, "", "", "", "", "")
                    continue
                served = median_ms(partial(call, q.request, metadata=METADATA, timeout=600), _RUNS)
                raw_query: Callable[[], int] = getattr(self.raw, q.raw)
                raw_says = raw_query()
                raw = median_ms(raw_query, _RUNS)
                table.add_row(
                    q.label,
                    f"{served:,.0f}",
                    f"{raw:,.0f}",
                    f"{served / raw:.2f}",
                    f"≤ {q.target_ms:,.0f} ms" if q.target_ms else "",
                    f"{q.check(answer):,}",
                    f"{raw_says:,}",
                )
        self.console.print(table)

    def merge_persons(self, every: int) -> str:
        """Merges every `every`-th person into another, on the raw copy and on the server alike (person-wide
        overrides, as identity's feed would apply them); the analytics table title's words for it."""
        written = self.raw.merge_persons(every)
        now = to_timestamp(datetime.now(UTC))
        overrides = [
            person_override_pb2.PersonOverride(
                person_id=merged, override_person_id=into, version=version, create_time=now, merge_id=merge_id
            )
            for merged, into, version, merge_id in written
        ]
        with grpc.insecure_channel(self.address) as channel:
            call = channel.unary_unary(
                method("ApplyPersonOverrides"),
                request_serializer=lambda m: m.SerializeToString(),
                response_deserializer=pb.ApplyPersonOverridesResponse.FromString,
            )
            for start in range(0, len(overrides), _OVERRIDES_PER_CALL):
                batch = overrides[start : start + _OVERRIDES_PER_CALL]
                call(pb.ApplyPersonOverridesRequest(person_overrides=batch), metadata=METADATA, timeout=600)
        self.settle()
        targets = sorted({into for _, into, _, _ in written})
        self.merge_targets = random.Random(1).sample(targets, min(_TIMELINE_PERSONS, len(targets)))
        return f", {len(written):,} persons merged into others"

    def merged_timelines(self, requests: int) -> None:
        """GetTimeline (1 caller) of persons others were merged into, beside the same page by hand on the raw
        copy. The service reads such a person through the overrides: an override row names them, so after the
        first statement the exact read follows, two statements more (store/timeline.py). Both sides must give
        the same events (the order of events of one microsecond may differ: compared sorted)."""
        if not self.merge_targets:
            return
        payloads = [
            pb.GetTimelineRequest(person_id=p, page_size=100).SerializeToString() for p in self.merge_targets
        ]
        with grpc.insecure_channel(self.address) as channel:
            call = channel.unary_unary(
                method("GetTimeline"), request_serializer=None, response_deserializer=None
            )
            for person, payload in zip(self.merge_targets[:20], payloads[:20], strict=True):
                served = pb.GetTimelineResponse.FromString(call(payload, metadata=METADATA, timeout=60))
                raw = self.raw.merged_timeline(person)
                if sorted(e.event_id for e in served.events) != sorted(str(row[0]) for row in raw):
                    raise RuntimeError(f"GetTimeline of merged person {person} differs from the raw page")
        calls = min(requests, _TIMELINE_CALLS)
        baseline = "raw SQL via person_anchors and the merges"
        name, rpc = "GetTimeline over gRPC", method("GetTimeline")
        rows = [
            asyncio.run(run_scenario(name, self.address, rpc, METADATA, payloads, 1, calls)),
            measure_blocking(baseline, self.raw.merged_timeline, self.merge_targets, 1, calls),
        ]
        print_comparison(
            f"GetTimeline of persons others were merged into, at {self.loaded:,} events: {calls} calls per "
            f"row, {len(self.merge_targets)} random such persons, a page of 100",
            rows,
            baseline,
            self.console,
        )

    def reads_while_writing(self, extra: Dataset) -> None:
        """GetTimeline (1 caller) before and while `extra` is written; the same on the raw copy."""
        payloads = [
            pb.GetTimelineRequest(person_id=p, page_size=100).SerializeToString() for p in self.persons
        ]
        table = Table(
            title=f"GetTimeline while {extra.events:,} more events are written", title_justify="left"
        )
        for column in (
            "engine",
            "idle p50 / p99 ms",
            "during p50 / p99 ms",
            "calls during",
            "write rows/s",
            "p50 during ÷ idle",
        ):
            table.add_column(column, justify="right")
        with grpc.insecure_channel(self.address) as channel:
            call = channel.unary_unary(
                method("GetTimeline"), request_serializer=None, response_deserializer=None
            )
            source = cycle(payloads)

            def served() -> object:
                return call(next(source), metadata=METADATA, timeout=60)

            requests = [r for chunk in range(extra.chunks) for r in extra.requests(chunk)]
            self._during(
                table, "service over gRPC", served, lambda: write_all(self.address, requests), extra.events
            )
        persons = cycle(self.persons)
        rows = [extra.rows(chunk) for chunk in range(extra.chunks)]

        def raw_insert() -> float:
            began = time.perf_counter()
            for part in rows:
                for start in range(0, part.num_rows, 20_000):  # about what group commit inserts at once
                    self.raw.insert(part.slice(start, 20_000))
            return time.perf_counter() - began

        anchored = self.raw.has_person_anchors

        def raw_page() -> object:
            person = next(persons)
            if self.raw.has_person_timelines:
                return self.raw.person_timeline(person)
            return self.raw.timeline(person, anchored)

        self._during(table, "raw chDB", raw_page, raw_insert, extra.events)
        self.loaded += extra.events
        self.console.print(table)

    def _during(
        self, table: Table, name: str, read: Callable[[], object], write: Callable[[], float], rows: int
    ) -> None:
        idle = latencies(read, lambda count: count < 200)
        took: list[float] = []
        writer = threading.Thread(target=lambda: took.append(write()))
        writer.start()
        during = latencies(read, lambda count: writer.is_alive())
        writer.join()
        table.add_row(
            name,
            f"{percentile(idle, 0.5):.1f} / {percentile(idle, 0.99):.1f}",
            f"{percentile(during, 0.5):.1f} / {percentile(during, 0.99):.1f}",
            f"{len(during):,}",
            f"{rows / took[0]:,.0f}",
            f"{percentile(during, 0.5) / percentile(idle, 0.5):.2f}",
        )
        self.settle()

    def freshness(self, cache: Path, persons: int, seed: int) -> None:
        with grpc.insecure_channel(self.address) as channel:
            probe = channel.unary_unary(
                method("ListSegments"), request_serializer=None, response_deserializer=None
            )
            try:
                probe(pb.ListSegmentsRequest().SerializeToString(), metadata=METADATA, timeout=60)
            except grpc.RpcError as error:
                missing = error.code() == grpc.StatusCode.UNIMPLEMENTED
                status = "not implemented yet" if missing else f"{error.code().name}: {error.details()}"
                self.console.print(f"Segment freshness: segments {status}")
                return
        load = dataset(cache, "freshness", 5_000 * (_FRESHNESS_SECONDS + 10), persons, seed, self.console)
        result = measure_freshness(self.address, load.requests(0), _FRESHNESS_SECONDS)
        self.console.print(
            f"Segment freshness at {result.events_per_second:,.0f} events/s written: "
            f"p50 {result.p50_ms:,.0f} ms, max {result.max_ms:,.0f} ms; "
            f"{result.seen} of {result.markers} markers seen"
        )


def _check_timeline(address: str, payload: bytes) -> None:
    with grpc.insecure_channel(address) as channel:
        call = channel.unary_unary(method("GetTimeline"), request_serializer=None, response_deserializer=None)
        if not pb.GetTimelineResponse.FromString(call(payload, metadata=METADATA, timeout=60)).events:
            raise RuntimeError("GetTimeline returned no event for a person the raw copy has events of")


def main(requests: int, events: int = 10_000_000, seed: int = 1, cache: Path = DEFAULT_CACHE) -> None:
    # The raw copy migrates with the store's code in this process; its info lines would bury the tables.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    console = Console(width=160)
    persons = max(1, events // 50)
    began = time.perf_counter()
    main_set = dataset(cache, "main", events, persons, seed, console)
    extra = dataset(cache, "extra", min(_EXTRA, events), persons, seed, console)
    with contextlib.ExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="wayline-bench-journeys-")))
        raw = RawCopy(scratch / "raw")
        stack.callback(raw.close)
        address, pid = stack.enter_context(journeys_server(scratch / "server"))
        run = _Run(console, address, pid, raw)
        for stage in (range(1), range(1, main_set.chunks)):  # the first chunk (1M events), then the rest
            if stage:
                run.load(main_set, stage)
                run.timelines(requests)
                run.person_conditions(requests)
                run.person_traits(requests)
                run.batch_conditions(requests)
        run.print_loads(f"Bulk insert: {events:,} events over {persons:,} persons (seed {seed})")
        run.analytics()
        run.reads_while_writing(extra)
        # After every row that reads a tenant without merges, while both sides still hold the same events (the
        # freshness row writes to the server only): the same questions once a share of the persons were
        # merged into others, as in a tenant where identity stitched devices and logins.
        run.analytics(run.merge_persons(_MERGE_EVERY))
        run.merged_timelines(requests)
        run.freshness(cache, persons, seed)
    console.print(f"journeys bench: {time.perf_counter() - began:.0f}s in all")
