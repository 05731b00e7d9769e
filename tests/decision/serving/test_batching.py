"""Micro-batching: concurrent callers get exactly what they would alone, from shared session runs; a failed
run reaches every caller of its batch; closing strands no one."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from tests.decision.ml_package import ml_package
from wayline_decision.packages import PackageId
from wayline_decision.registry import RegisteredVersion
from wayline_decision.serving.batching import MicroBatcher
from wayline_decision.serving.loaded import MicroBatching, Scores, ServingModel, load_version
from wayline_decision.validation import ValidationLimits, read_manifest

LIMITS = ValidationLimits(max_parity_tolerance=1e-3)


def _load(directory: Path, batching: MicroBatching | None) -> ServingModel:
    manifest = read_manifest(directory)
    registered = RegisteredVersion(
        PackageId(manifest.model_id, manifest.version), manifest, "digest", datetime.now(UTC), str(directory)
    )
    return load_version("acme", registered, directory, LIMITS, batching=batching)


def _run_together(count: int, work: object) -> list[object]:
    """`work(i)` in `count` threads released at once; each thread's result or exception."""
    results: list[object] = [None] * count
    barrier = threading.Barrier(count)

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)  # type: ignore[operator]
        except Exception as error:  # noqa: BLE001 - the test inspects what each caller got
            results[i] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads), "a caller hung"
    return results


def test_concurrent_batched_scores_equal_unbatched_ones(tmp_path: Path) -> None:
    directory = ml_package(tmp_path / "p", model_id="offers", version="1")
    plain = _load(directory, None)
    batched = _load(directory, MicroBatching(window_s=0.02, max_rows=10_000))
    generator = np.random.default_rng(4)
    features = generator.normal(size=(32, len(plain.feature_names))).astype(np.float32)
    features[generator.uniform(size=features.shape) < 0.1] = np.nan
    n = len(plain.action_ids)
    # Each caller asks for its own subset and order of candidates, so a mis-sliced batch would show.
    subsets = [[(i + j) % n for j in range(1 + i % n)] for i in range(32)]
    assert batched.batcher is not None
    runs_before = batched.batcher.batches
    got = _run_together(32, lambda i: batched.score(features[i], subsets[i]))
    for i, scores in enumerate(got):
        assert isinstance(scores, Scores)
        expected = plain.score(features[i], subsets[i])
        np.testing.assert_array_equal(scores.propensity, expected.propensity)
        np.testing.assert_array_equal(scores.value, expected.value)
    assert batched.batcher.batches - runs_before < 32  # calls shared runs


def test_a_failed_run_reaches_every_caller_of_its_batch() -> None:
    runs: list[int] = []

    def run(rows: npt.NDArray[np.float32]) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        runs.append(len(rows))
        if np.isinf(rows).any():  # one caller's bad row fails the whole run
            raise RuntimeError("the session failed")
        return rows[:, 0].astype(np.float64), rows[:, 1].astype(np.float64)

    batcher = MicroBatcher(run, window_s=0.5, max_rows=8)
    rows = [np.full((2, 2), float(i), dtype=np.float32) for i in range(4)]
    rows[2][0, 0] = np.inf
    got = _run_together(4, lambda i: batcher.run(rows[i]))
    assert runs == [8]  # the four calls filled one batch, which ran at once without waiting out the window
    assert all(isinstance(result, RuntimeError) for result in got)
    rows[2][0, 0] = 2.0
    healthy = _run_together(4, lambda i: batcher.run(rows[i]))
    for i, result in enumerate(healthy):
        assert isinstance(result, tuple)
        np.testing.assert_array_equal(result[0], [float(i), float(i)])


def test_closing_wakes_a_waiting_leader_and_later_calls_run_alone(tmp_path: Path) -> None:
    directory = ml_package(tmp_path / "p", model_id="offers", version="1")
    model = _load(directory, MicroBatching(window_s=30.0, max_rows=10_000))
    features = np.zeros(len(model.feature_names), dtype=np.float32)
    done = threading.Event()
    result: list[object] = []

    def lonely() -> None:  # opens a batch and would wait 30 s for company
        result.append(model.score(features, [0, 1]))
        done.set()

    thread = threading.Thread(target=lonely)
    thread.start()
    assert not done.wait(0.3)
    model.close()
    assert done.wait(5), "closing left the leader waiting"
    thread.join(timeout=5)
    assert model.batcher is not None
    runs = model.batcher.batches
    assert model.score(features, [0]).propensity.shape == (1,)
    assert model.batcher.batches == runs  # after close: straight to the session


def test_a_batcher_refuses_a_negative_window() -> None:
    with pytest.raises(ValueError, match="window_s"):
        MicroBatcher(lambda rows: (rows[:, 0], rows[:, 0]), window_s=-1, max_rows=1)  # type: ignore[arg-type,return-value]
