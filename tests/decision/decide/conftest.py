"""Loaded models shared by the Decide tests: loading validates and warms a package, trained once."""

from __future__ import annotations

import pytest

from tests.decision.decide.support import load_model
from wayline_decision.serving.loaded import ServingModel


@pytest.fixture(scope="session")
def model(tmp_path_factory: pytest.TempPathFactory) -> ServingModel:
    return load_model(tmp_path_factory.mktemp("offers") / "p")


@pytest.fixture(scope="session")
def shadow_model(tmp_path_factory: pytest.TempPathFactory) -> ServingModel:
    return load_model(tmp_path_factory.mktemp("offers-2") / "p", version="2")
