"""`python -m bench decision-scoring`: the decision service's scoring path against bare onnxruntime on the
same model in the same run, micro-batching on and off under concurrency, and the cost of an explanation.

The model is `bench/decision_model.py`'s real package (60 features, 8 actions, 100 rounds of depth 6). A call
scores one customer's 8 candidates, as a decision does; its rows differ from call to call (500 feature rows in
turn, 3% missing).

1. Per-row cost: `ServingModel.score` (the service: rows from its template, one run of the merged graph)
   against bare onnxruntime running the package's two graphs on rows built with numpy by hand, in a session
   with default options and in one with the service's tuned options. The scenarios take turns call by call
   (so neighbours on the shared cores disturb them alike), in a tight loop and with an idle gap after every
   call as in a server; per-row figures are the call's p50 / 8. Target: the service ≤ 1.5x the bare cost.
2. Concurrency: 1, 16 and 64 threads calling score() in a closed loop, micro-batching off and on; calls/s,
   p50/p99 and rows per session run.
3. Explanations: exact TreeSHAP of the response graph for one candidate, first call (builds the explainer)
   and thereafter.
"""

from __future__ import annotations

import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
from rich.console import Console
from rich.table import Table

from bench.decision_model import ACTIONS, FEATURES, build_package, sample_features, trained
from wayline_decision.packages import PackageId
from wayline_decision.registry import RegisteredVersion
from wayline_decision.serving.loaded import MicroBatching, ServingModel, load_version, serving_options
from wayline_decision.validation import ValidationLimits, read_manifest

__all__ = ["main"]

CALLS = 2000
GAP_S = 0.001
BATCHING = MicroBatching(window_s=0.0, max_rows=256)
Score = Callable[[npt.NDArray[np.float32]], object]


def _load(directory: Path, batching: MicroBatching | None) -> ServingModel:
    manifest = read_manifest(directory)
    registered = RegisteredVersion(
        PackageId(manifest.model_id, manifest.version), manifest, "bench", datetime.now(UTC), str(directory)
    )
    return load_version(
        "bench", registered, directory, ValidationLimits(max_parity_tolerance=1e-3), batching=batching
    )


def _bare(directory: Path, options: ort.SessionOptions | None) -> Score:
    """The package's two graphs in plain sessions, rows built by hand: what a caller of onnxruntime writes."""
    providers = ["CPUExecutionProvider"]
    response = ort.InferenceSession(str(directory / "response.onnx"), options, providers=providers)
    value = ort.InferenceSession(str(directory / "value.onnx"), options, providers=providers)
    one_hot = np.eye(len(ACTIONS), dtype=np.float32)

    def score(features: npt.NDArray[np.float32]) -> object:
        rows = np.empty((len(ACTIONS), FEATURES + len(ACTIONS)), dtype=np.float32)
        rows[:, :FEATURES] = features
        rows[:, FEATURES:] = one_hot
        p = response.run(["probabilities"], {"features": rows})[0][:, 1]
        v = value.run(["variable"], {"features": rows})[0][:, 0]
        return p, v

    return score


def _per_row(
    scenarios: dict[str, Score], features: npt.NDArray[np.float32], gap_s: float
) -> dict[str, float]:
    """Each scenario's p50 call time in µs, the scenarios taking turns call by call."""
    timings: dict[str, list[float]] = {name: [] for name in scenarios}
    for warm in features[:100]:
        for score in scenarios.values():
            score(warm)
    for i in range(CALLS):
        row = features[i % len(features)]
        for name, score in scenarios.items():
            started = time.perf_counter()
            score(row)
            timings[name].append(time.perf_counter() - started)
            if gap_s:
                time.sleep(gap_s)
    return {name: statistics.median(t) * 1e6 for name, t in timings.items()}


def _concurrent(
    model: ServingModel, features: npt.NDArray[np.float32], threads: int
) -> tuple[float, float, float]:
    """calls/s, p50 ms, p99 ms of `threads` callers in a closed loop."""
    per_thread = max(200, 4000 // threads)
    latencies: list[float] = []
    lock = threading.Lock()
    indexes = list(range(len(ACTIONS)))
    barrier = threading.Barrier(threads + 1)

    def caller(offset: int) -> None:
        mine = []
        barrier.wait()
        for i in range(per_thread):
            started = time.perf_counter()
            model.score(features[(offset + i) % len(features)], indexes)
            mine.append(time.perf_counter() - started)
        with lock:
            latencies.extend(mine)

    workers = [threading.Thread(target=caller, args=(t * 37,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    barrier.wait()
    began = time.perf_counter()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - began
    latencies.sort()
    return (
        len(latencies) / elapsed,
        latencies[len(latencies) // 2] * 1e3,
        latencies[int(len(latencies) * 0.99)] * 1e3,
    )


def main() -> None:
    console = Console(width=120)
    models, _, _ = trained()
    console.log(f"model: {FEATURES} features, {len(ACTIONS)} actions, trees {models.rounds}")
    features = sample_features(500, seed=23)
    with tempfile.TemporaryDirectory(prefix="bench-decision-scoring-") as scratch:
        directory = build_package(Path(scratch) / "package")
        model = _load(directory, None)
        indexes = list(range(len(ACTIONS)))
        scenarios: dict[str, Score] = {
            "bare onnxruntime, default options": _bare(directory, None),
            "bare onnxruntime, tuned options": _bare(directory, serving_options()),
            "service ServingModel.score": lambda row: model.score(row, indexes),
        }
        table = Table(
            title="Per-row scoring cost (8 candidate rows per call; p50 per call / 8)", title_justify="left"
        )
        for column in ("scenario", "loop", "µs / call", "µs / row", "x bare default", "x bare tuned"):
            table.add_column(column, justify="left" if column in ("scenario", "loop") else "right")
        for loop, gap in (("tight", 0.0), (f"{GAP_S * 1e3:.0f} ms gaps", GAP_S)):
            p50 = _per_row(scenarios, features, gap)
            default, tuned = p50["bare onnxruntime, default options"], p50["bare onnxruntime, tuned options"]
            for name, micros in p50.items():
                table.add_row(
                    name,
                    loop,
                    f"{micros:.1f}",
                    f"{micros / len(ACTIONS):.1f}",
                    f"{micros / default:.2f}",
                    f"{micros / tuned:.2f}",
                )
        console.print(table)

        batched = _load(directory, BATCHING)
        table = Table(
            title="score() under concurrency, micro-batching off / on "
            f"(window {BATCHING.window_s * 1e6:.0f} µs, max {BATCHING.max_rows} rows)",
            title_justify="left",
        )
        for column in ("threads", "batching", "calls/s", "p50 ms", "p99 ms", "rows / run", "calls/s x off"):
            table.add_column(column, justify="right")
        for threads in (1, 16, 64):
            off = _concurrent(model, features, threads)
            assert batched.batcher is not None
            before = (batched.batcher.batches, batched.batcher.rows)
            on = _concurrent(batched, features, threads)
            runs = batched.batcher.batches - before[0]
            rows = batched.batcher.rows - before[1]
            table.add_row(
                str(threads), "off", f"{off[0]:,.0f}", f"{off[1]:.3f}", f"{off[2]:.3f}", "8.0", "1.00"
            )
            table.add_row(
                str(threads),
                "on",
                f"{on[0]:,.0f}",
                f"{on[1]:.3f}",
                f"{on[2]:.3f}",
                f"{rows / max(1, runs):.1f}",
                f"{on[0] / off[0]:.2f}",
            )
        console.print(table)
        batched.close()

        started = time.perf_counter()
        model.explain(features[0], 0)
        first = time.perf_counter() - started
        explain_times = []
        for i in range(200):
            started = time.perf_counter()
            model.explain(features[i % len(features)], i % len(ACTIONS))
            explain_times.append(time.perf_counter() - started)
        console.print(
            f"Explanation (exact TreeSHAP, response graph, {models.rounds['response']} trees, one row): "
            f"first call {first * 1e3:.1f} ms (builds the explainer), then p50 "
            f"{statistics.median(explain_times) * 1e3:.2f} ms"
        )
