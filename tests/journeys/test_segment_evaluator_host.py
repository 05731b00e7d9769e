"""Several journeys replicas share one store, and exactly one of them evaluates segments: each tenant's change
sequence has one writer. The replica is named by host (a StatefulSet's first pod)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from wayline_journeys.settings import JourneysSettings


@pytest.fixture
def settings_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> type[JourneysSettings]:
    monkeypatch.setenv("WAYLINE_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("WAYLINE_JOURNEYS_SEGMENT_EVALUATOR_HOST", raising=False)
    return JourneysSettings


def test_a_single_replica_evaluates_when_no_host_is_named(settings_for: type[JourneysSettings]) -> None:
    assert settings_for().evaluates_segments


def test_only_the_named_replica_evaluates(
    settings_for: type[JourneysSettings], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WAYLINE_JOURNEYS_SEGMENT_EVALUATOR_HOST", socket.gethostname())
    assert settings_for().evaluates_segments
    monkeypatch.setenv("WAYLINE_JOURNEYS_SEGMENT_EVALUATOR_HOST", f"{socket.gethostname()}-other")
    assert not settings_for().evaluates_segments


def test_a_refresh_of_zero_turns_the_evaluator_off_even_on_the_named_replica(
    settings_for: type[JourneysSettings], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WAYLINE_JOURNEYS_SEGMENT_EVALUATOR_HOST", socket.gethostname())
    monkeypatch.setenv("WAYLINE_JOURNEYS_SEGMENT_REFRESH_SECONDS", "0")
    assert not settings_for().evaluates_segments
