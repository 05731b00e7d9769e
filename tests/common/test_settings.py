"""Settings: prefixes, shared fields, documented defaults, the internal token shared through the data dir."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from wayline.common.internal_token import load_or_create_internal_token, with_internal_token
from wayline.common.settings import ServiceSettings
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


def test_reading_settings_creates_nothing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    monkeypatch.setenv("WAYLINE_DATA_DIR", str(data_dir))
    monkeypatch.delenv("WAYLINE_INTERNAL_TOKEN", raising=False)
    settings = IngestSettings()
    assert settings.service_dir == data_dir / "ingest"
    with pytest.raises(RuntimeError, match="WAYLINE_INTERNAL_TOKEN"):
        settings.require_internal_token()
    assert not data_dir.exists()


def test_start_up_creates_the_token_once_and_later_services_read_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("WAYLINE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("WAYLINE_INTERNAL_TOKEN", raising=False)
    first, second = with_internal_token(IngestSettings()), with_internal_token(GatewaySettings())
    token = (tmp_path / "data" / "internal-token").read_text()
    assert first.require_internal_token() == second.require_internal_token() == token


def test_a_token_from_the_environment_wins_and_no_file_is_made(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("WAYLINE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("WAYLINE_INTERNAL_TOKEN", "from-a-secret")
    assert with_internal_token(IngestSettings()).require_internal_token() == "from-a-secret"
    assert not (tmp_path / "data").exists()
