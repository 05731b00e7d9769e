"""The garbage collector in a service process (wayline/common/garbage.py): what start built is frozen out of
later collections, and each collection's pause reaches the metrics."""

from __future__ import annotations

import gc
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader

from tests.common.service_process import serving
from wayline.common.garbage import PauseMetrics
from wayline_cli.suite import free_port


def serving_line(lines: list[dict[str, object]]) -> dict[str, object]:
    return next(line for line in lines if line.get("event") == "server.serving")


def test_a_service_freezes_what_its_start_built(tmp_path: Path) -> None:
    with serving(tmp_path) as lines:
        frozen = serving_line(lines)["gc_frozen_objects"]
    # The identity process holds about 70k container objects once started (modules, descriptors, gRPC).
    assert isinstance(frozen, int)
    assert frozen > 20_000


def test_an_operator_can_turn_the_freeze_off(tmp_path: Path) -> None:
    with serving(tmp_path, environment={"WAYLINE_IDENTITY_GC_FREEZE_AT_START": "false"}) as lines:
        assert serving_line(lines)["gc_frozen_objects"] == 0


def test_a_full_collection_after_the_freeze_skips_the_frozen_objects() -> None:
    # In a process of its own: freezing this test process would keep its garbage cycles forever.
    code = """
import gc
from wayline.common import garbage
kept = [[i] for i in range(100_000)]  # long-lived containers, as a started service holds
gc.collect()
before = len(gc.get_objects(generation=2))
frozen = garbage.freeze()
after = len(gc.get_objects(generation=2))
cycle = [None]; cycle[0] = cycle; del cycle  # garbage made after the freeze is still collected
print(before, frozen, after, gc.collect())
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    before, frozen, after, collected = map(int, result.stdout.split())
    assert before > 100_000
    assert frozen >= before
    assert after == 0
    assert collected >= 1


def pause_points(reader: InMemoryMetricReader) -> dict[str, HistogramDataPoint]:
    data = reader.get_metrics_data()
    if data is None:  # nothing recorded yet
        return {}
    return {
        str(point.attributes["generation"]): point
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == "process.gc.pause"
        for point in metric.data.data_points
        if isinstance(point, HistogramDataPoint) and point.attributes is not None
    }


def test_older_collections_are_timed_by_generation_until_closed() -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    pauses = PauseMetrics(provider.get_meter("test"), interval=3600)
    held = [[i] for i in range(50_000)]  # a full collection with something to scan
    gc.collect(0)
    gc.collect(1)
    gc.collect(2)
    assert pause_points(reader) == {}  # queued, recorded by the pauses' own thread
    pauses.close()  # records what is queued
    points = pause_points(reader)
    assert "0" not in points  # young collections are not timed (see the module)
    assert points["1"].count >= 1
    assert points["2"].count >= 1
    assert points["2"].sum > 0
    del held
    gc.collect()
    assert pause_points(reader)["2"].count == points["2"].count
    provider.shutdown()


def test_a_collection_inside_the_metrics_sdk_does_not_hang_it() -> None:
    # A collection starts on whatever thread allocates: here often inside the SDK's aggregation, under its
    # lock, while the other thread scrapes. Recording from the callback itself hung this within seconds.
    code = """
import gc, threading
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from wayline.common.garbage import PauseMetrics
reader = InMemoryMetricReader()
provider = MeterProvider(metric_readers=[reader])
pauses = PauseMetrics(provider.get_meter("test"), interval=0.001)
gc.set_threshold(1, 1, 1)  # a collection of generation 1 at nearly every allocation
scraped = threading.Event()
def scrape():
    for _ in range(2000):
        reader.get_metrics_data()
    scraped.set()
threading.Thread(target=scrape, daemon=True).start()
kept = []
while not scraped.is_set():
    kept = [*kept[-1000:], [len(kept)]]
pauses.close()
print(gc.get_stats()[1]["collections"])
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert int(result.stdout) > 1000


def full_collections_on_page(port: int) -> float:
    page = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    counts = [
        float(line.rsplit(" ", 1)[1])
        for line in page.splitlines()
        if line.startswith("process_gc_pause_milliseconds_count") and 'generation="2"' in line
    ]
    return max(counts, default=0.0)


def test_a_service_publishes_its_pauses(tmp_path: Path) -> None:
    port = free_port()
    with serving(tmp_path, environment={"WAYLINE_IDENTITY_METRICS_PORT": str(port)}):
        # The freeze's own collection is a full one, made before the service served; its pause is
        # recorded within the recorder's interval (a second).
        deadline = time.monotonic() + 10
        while (full := full_collections_on_page(port)) < 1 and time.monotonic() < deadline:
            time.sleep(0.1)
    assert full >= 1
