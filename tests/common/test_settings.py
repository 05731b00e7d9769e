"""Settings: prefixes, shared fields, documented defaults, the internal token shared through the data dir."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from wayline.common.settings import ServiceSettings, load_or_create_internal_token
from wayline_gateway.settings import GatewaySettings
from wayline_ingest.settings import IngestSettings
from wayline_journeys.settings import JourneysSettings


def test_service_fields_read_their_prefix_and_shared_fields_read_wayline(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("WAYLINE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("WAYLINE_INGEST_PORT", "6001")
    monkeypatch.setenv("WAYLINE_GATEWAY_PORT", "6002")
    monkeypatch.setenv("WAYLINE_INGEST_JOURNEYS_ADDRESS", "journeys:50063")
    ingest, gateway = IngestSettings(), GatewaySettings()
    assert (ingest.port, gateway.port) == (6001, 6002)
    assert ingest.journeys_address == "journeys:50063"
    assert ingest.data_dir == gateway.data_dir == tmp_path


def test_journeys_takes_the_clickhouse_url_from_either_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAYLINE_CLICKHOUSE_URL", "http://ch:8123")
    assert JourneysSettings().clickhouse_url == "http://ch:8123"
    monkeypatch.setenv("WAYLINE_JOURNEYS_CLICKHOUSE_URL", "http://other:8123")
    assert JourneysSettings().clickhouse_url == "http://other:8123"


def test_invalid_setting_is_refused_with_its_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAYLINE_INGEST_PORT", "not-a-port")
    with pytest.raises(ValueError, match="port"):
        IngestSettings()


@pytest.mark.parametrize(
    "settings_class", [ServiceSettings, GatewaySettings, IngestSettings, JourneysSettings]
)
def test_every_setting_is_documented(settings_class: type[ServiceSettings]) -> None:
    undocumented = [name for name, field in settings_class.model_fields.items() if not field.description]
    assert undocumented == []


def test_services_starting_together_agree_on_one_internal_token(tmp_path: Path) -> None:
    tokens: list[str] = []
    threads = [
        threading.Thread(target=lambda: tokens.append(load_or_create_internal_token(tmp_path)))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(tokens)) == 1
    assert (tmp_path / "internal-token").stat().st_mode & 0o777 == 0o600
