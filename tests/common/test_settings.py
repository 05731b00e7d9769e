"""Settings: prefixes, shared fields, documented defaults, the internal token shared through the data dir."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.certificates import CertificateAuthority
from tools.service_settings import settings_classes
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


def test_tls_is_off_by_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("WAYLINE_DATA_DIR", str(tmp_path))
    settings = IngestSettings()
    assert settings.tls_cert_file is None
    assert settings.tls_ca_file is None
    assert settings.channel_tls() is None


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        (["WAYLINE_TLS_CERT_FILE"], "WAYLINE_TLS_CERT_FILE and WAYLINE_TLS_KEY_FILE go together"),
        (["WAYLINE_TLS_KEY_FILE"], "WAYLINE_TLS_CERT_FILE and WAYLINE_TLS_KEY_FILE go together"),
        (["WAYLINE_TLS_CLIENT_CA_FILE"], "WAYLINE_TLS_CLIENT_CA_FILE needs WAYLINE_TLS_CERT_FILE"),
        (
            ["WAYLINE_TLS_CLIENT_CERT_FILE", "WAYLINE_TLS_CLIENT_KEY_FILE"],
            "WAYLINE_TLS_CLIENT_CERT_FILE needs WAYLINE_TLS_CA_FILE",
        ),
        (
            ["WAYLINE_TLS_CA_FILE", "WAYLINE_TLS_CLIENT_KEY_FILE"],
            "WAYLINE_TLS_CLIENT_CERT_FILE and WAYLINE_TLS_CLIENT_KEY_FILE go together",
        ),
    ],
)
def test_half_configured_tls_is_refused_naming_the_variables(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, variables: list[str], message: str
) -> None:
    pair = CertificateAuthority(tmp_path, "ca").issue("ingest")
    # Each variable names a real file of its kind (by its last word), so only the missing partner is wrong.
    files = {"CERT": pair.cert, "KEY": pair.key, "CA": tmp_path / "ca.crt"}
    for variable in variables:
        monkeypatch.setenv(variable, str(files[variable.removesuffix("_FILE").rsplit("_", 1)[1]]))
    with pytest.raises(ValueError, match=message):
        IngestSettings()


def test_an_unreadable_tls_file_is_refused_at_load(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("WAYLINE_TLS_CA_FILE", str(tmp_path / "missing.crt"))
    with pytest.raises(ValueError, match=r"WAYLINE_TLS_CA_FILE: cannot read .*missing\.crt"):
        IngestSettings()


def test_a_key_that_is_not_the_certificates_is_refused_at_load(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ca = CertificateAuthority(tmp_path, "ca")
    one, other = ca.issue("one"), ca.issue("other")
    monkeypatch.setenv("WAYLINE_TLS_CERT_FILE", str(one.cert))
    monkeypatch.setenv("WAYLINE_TLS_KEY_FILE", str(other.key))
    with pytest.raises(ValueError, match="not a PEM certificate chain and its private key"):
        IngestSettings()


def test_a_service_with_half_configured_tls_exits_at_start_naming_the_variables(tmp_path: Path) -> None:
    pair = CertificateAuthority(tmp_path, "ca").issue("identity")
    env = dict(os.environ, WAYLINE_DATA_DIR=str(tmp_path), WAYLINE_TLS_CERT_FILE=str(pair.cert))
    result = subprocess.run(
        [sys.executable, "-m", "wayline_identity"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "WAYLINE_TLS_CERT_FILE and WAYLINE_TLS_KEY_FILE go together" in result.stderr


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


@pytest.mark.parametrize("service", sorted(settings_classes()))
def test_an_empty_tls_variable_unsets_the_file_in_every_service(
    service: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Env wins over a shared ConfigMap's envFrom: an empty WAYLINE_TLS_* turns TLS off for that pod. A
    service whose own validator reused the kit's validator name would silently replace it (decision did)."""
    monkeypatch.setenv("WAYLINE_DATA_DIR", str(tmp_path))
    for name in ("CERT_FILE", "KEY_FILE", "CA_FILE", "CLIENT_CA_FILE"):
        monkeypatch.setenv(f"WAYLINE_TLS_{name}", "")
    settings = settings_classes()[service]()
    assert (settings.tls_cert_file, settings.tls_key_file, settings.tls_ca_file) == (None, None, None)
    assert settings.channel_tls() is None
