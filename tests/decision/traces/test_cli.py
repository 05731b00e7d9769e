"""`wayline decisions get` and `wayline decisions export` through a real gateway in front of a decision
service wired to real identity, ingest and journeys."""

from __future__ import annotations

import datetime
import json
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
import typer
from google.protobuf import json_format
from typer.testing import CliRunner

from tests.conftest import API_KEY, TENANT, gateway_settings, start_server
from tests.decision.traces.conftest import DecisionUnderTest, make_trace, wait_stored
from wayline.common.server import Server
from wayline.decision.v1 import decision_pb2
from wayline.journeys.v1 import journeys_service_pb2_grpc as journeys_grpc
from wayline_cli.decisions import parse_time
from wayline_cli.main import app
from wayline_gateway.service import gateway_service


@pytest.fixture(scope="module")
def gateway(decision: DecisionUnderTest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    settings = gateway_settings(
        tmp_path_factory.mktemp("gateway"), {"decision": decision.server.address}, API_KEY, TENANT
    )
    server = start_server(gateway_service(settings), settings)
    yield server
    server.stop(0)


@pytest.fixture
def tenant() -> str:
    """The gateway's own tenant (its key's), in which `person` makes the test's person."""
    return TENANT


def wayline(gateway: Server, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["decisions", *args, "--gateway", gateway.address, "--api-key", API_KEY])
    own = [line for line in result.stdout.splitlines() if "[info" not in line and "[warning" not in line]
    return result.exit_code, "\n".join(own), result.stderr


def test_decisions_get_and_export_through_the_gateway(
    decision: DecisionUnderTest,
    gateway: Server,
    journeys: journeys_grpc.JourneyServiceStub,
    person: Callable[[], str],
) -> None:
    someone = person()
    model = f"models/cli-{uuid.uuid4().hex[:8]}"
    start = time.time_ns() // 1000 - 60_000_000
    traces = [make_trace(someone, decide_us=start + i * 1_000_000, model=model) for i in range(3)]
    for trace in traces:
        decision.traces.sink.record(TENANT, trace)
    code, out, err = wayline(gateway, "get", traces[0].decision_id)
    assert code == 0, err
    assert json_format.Parse(out, decision_pb2.Decision()) == traces[0]
    for trace in traces:
        wait_stored(journeys, TENANT, trace.decision_id)
    code, out, err = wayline(gateway, "export", "--since", "1h", "--model", model.removeprefix("models/"))
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert [line["decision_id"] for line in lines] == [t.decision_id for t in traces]
    assert "3 decisions" in err
    code, _, err = wayline(gateway, "get", str(uuid.uuid4()))
    assert code == 1
    assert "NOT_FOUND" in err


def test_parse_time_takes_rfc_3339_and_durations() -> None:
    now = datetime.datetime(2026, 12, 1, 12, tzinfo=datetime.UTC)
    assert parse_time("7d", now) == datetime.datetime(2026, 11, 24, 12, tzinfo=datetime.UTC)
    assert parse_time("90m", now) == datetime.datetime(2026, 12, 1, 10, 30, tzinfo=datetime.UTC)
    assert parse_time("2026-11-30", now) == datetime.datetime(2026, 11, 30, tzinfo=datetime.UTC)
    assert parse_time("2026-11-30T08:00:00Z", now) == datetime.datetime(2026, 11, 30, 8, tzinfo=datetime.UTC)


@pytest.mark.parametrize("text", ["1000000d", "9" * 5000 + "s", "\u0667d"])
def test_parse_time_refuses_a_duration_no_time_is_as_a_usage_error(text: str) -> None:
    """Before the year 1 (an OverflowError), past int()'s 4,300 digits (a ValueError), or in another
    script's digits: a usage error naming the value, not a traceback."""
    with pytest.raises(typer.BadParameter):
        parse_time(text, datetime.datetime(2026, 12, 1, tzinfo=datetime.UTC))
