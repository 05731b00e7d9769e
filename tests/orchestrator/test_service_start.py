"""The orchestrator's start is retried by the kit until its database answers; stop works at any point."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from tests.conftest import common_settings
from wayline_orchestrator.errors import LedgerUnavailable
from wayline_orchestrator.service import orchestrator_service
from wayline_orchestrator.settings import OrchestratorSettings


def test_an_orchestrator_whose_database_never_answered_stops_cleanly(tmp_path: Path) -> None:
    # PostgreSQL mode (the check cache's change listener is one of its loops) with nothing on the port
    settings = OrchestratorSettings(
        **common_settings(tmp_path),  # type: ignore[arg-type]
        database_url=SecretStr("postgresql://nobody@127.0.0.1:1/none"),
    )
    definition = orchestrator_service(settings)
    for _ in range(2):  # the kit's retries
        with pytest.raises(LedgerUnavailable):
            definition.start()
    definition.stop()  # no loop started, so none is stopped (joining the listener raised before)
