"""Options whose values no call can carry are usage errors naming the option (exit 2), before any call is
made: each case below was a traceback or an answer that could not tell the user what to change."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from wayline_cli.main import app

_WIDE = {"COLUMNS": "250"}  # the error box on one line
_NOWHERE = ["--gateway", "127.0.0.1:1"]  # never dialled: the value is refused first
_KEY = ["--api-key", "wl_test_key"]


@pytest.mark.parametrize(
    "command",
    [
        ["timeline", "user_id:u"],
        ["profile", "user_id:u"],
        ["keys", "list", "acme"],
        ["models", "list"],
        ["flows", "list"],
        ["segments", "list"],
        ["contacts", "policy", "get"],
        ["actions", "list"],
        ["connectors", "list"],
    ],
    ids=" ".join,
)
@pytest.mark.parametrize("key", ["clé", "k\u00a0ey", "tab\tkey"], ids=["latin-1", "no-break-space", "tab"])
def test_an_api_key_gRPC_metadata_cannot_carry_is_a_usage_error(command: list[str], key: str) -> None:
    # Before: gRPC refused the metadata and the command printed `INTERNAL: Invalid metadata`.
    result = CliRunner().invoke(app, [*command, "--api-key", key, *_NOWHERE], env=_WIDE)
    assert result.exit_code == 2, result.output
    assert "an API key is printable ASCII" in result.output


@pytest.mark.parametrize("gateway", ["", "  ", "gate way:50051", "gâteau:50051"])
def test_a_gateway_gRPC_cannot_dial_is_a_usage_error(gateway: str) -> None:
    # Before: "" gave `UNKNOWN: Failed to create channel to '': the target uri is not valid: dns:///`.
    result = CliRunner().invoke(app, ["timeline", "user_id:u", *_KEY, "--gateway", gateway], env=_WIDE)
    assert result.exit_code == 2, result.output
    assert "is no host:port" in result.output


@pytest.mark.parametrize("zone", ["1" * 300, "right/UTC", "America", "Mars/Olympus"])
def test_trends_refuses_a_time_zone_the_api_refuses(zone: str) -> None:
    # A name longer than a file name raised OSError (a traceback); the API refuses `right/UTC`, which loads.
    result = CliRunner().invoke(app, ["trends", "Order Completed", "--tz", zone, *_KEY, *_NOWHERE], env=_WIDE)
    assert result.exit_code == 2, result.output
    assert "is no IANA time zone" in result.output


@pytest.mark.parametrize("command", [["flows", "get", "welcome"], ["flows", "stats", "welcome"]])
def test_a_flow_version_past_int32_is_a_usage_error(command: list[str]) -> None:
    # protobuf refused to set it: `ValueError: Value out of range` out of the command.
    result = CliRunner().invoke(
        app, [*command, "--version", "99999999999999999999", *_KEY, *_NOWHERE], env=_WIDE
    )
    assert result.exit_code == 2, result.output
    assert "--version" in result.output
