"""gRPC's runtime switches (wayline/common/grpc_runtime.py): set before gRPC reads them, in every service's
process, never over an operator's own value, and each one known to the installed grpcio."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.common.service_process import IDENTITY_MAIN, serving
from wayline.common import grpc_runtime
from wayline.common.grpc_runtime import GRPC_EXPERIMENTS

SERVICES = ("gateway", "ingest", "identity", "journeys", "decision", "orchestrator")
_REPORT = (
    "import os; from wayline.common import grpc_runtime; "
    "print(repr(os.environ['GRPC_EXPERIMENTS']), grpc_runtime.in_effect())"
)


def run_python(code: str, experiments: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "GRPC_EXPERIMENTS"}
    if experiments is not None:
        env["GRPC_EXPERIMENTS"] = experiments
    return subprocess.run(
        [sys.executable, "-c", code], check=False, env=env, capture_output=True, text=True, timeout=60
    )


def test_this_test_process_runs_with_them() -> None:
    # tests/__init__.py imports wayline.common before the conftest imports grpc
    assert grpc_runtime.in_effect()
    assert os.environ["GRPC_EXPERIMENTS"]


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_entry_point_sets_them_before_grpc_is_imported(service: str) -> None:
    done = run_python(f"import wayline_{service}.__main__, grpc; {_REPORT}")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [repr(GRPC_EXPERIMENTS), "True"]


def test_an_operator_value_wins_and_an_empty_one_keeps_grpc_defaults() -> None:
    assert run_python(f"import wayline.common; {_REPORT}", "-event_engine_client").stdout.split() == [
        repr("-event_engine_client"),
        "True",
    ]
    assert run_python(f"import wayline.common; {_REPORT}", "").stdout.split() == [repr(""), "True"]


def test_grpc_imported_first_is_reported_not_in_effect() -> None:
    done = run_python(f"import grpc, wayline.common; {_REPORT}")
    assert done.stdout.split() == [repr(GRPC_EXPERIMENTS), "False"]


def test_the_installed_grpc_knows_every_experiment_named() -> None:
    # gRPC reads the variable at import and logs a name it does not know; a grpcio that drops one of ours
    # fails here, which is the moment to measure again (docs/benchmarks.md, "gRPC's EventEngine").
    code = "import wayline.common, grpc; grpc.insecure_channel('127.0.0.1:1').close()"
    known = run_python(code)
    assert known.returncode == 0, known.stderr
    assert "Unknown experiment" not in known.stderr
    unknown = run_python(code, GRPC_EXPERIMENTS + ",-no_such_experiment_here")
    assert "Unknown experiment: no_such_experiment_here" in unknown.stderr


def start_log(tmp_path: Path, code: str) -> dict[str, object]:
    """Start the identity service the way `code` does, until it serves: the value its `server.listening`
    line logs, and whether it warned that the experiments are not in effect."""
    with serving(tmp_path, code) as lines:
        listening = next(line for line in lines if line.get("event") == "server.listening")
        warned = any(line.get("event") == "server.grpc_experiments_not_in_effect" for line in lines)
    return {"grpc_experiments": listening.get("grpc_experiments"), "warned": warned}


def test_a_service_logs_the_value_it_runs_with(tmp_path: Path) -> None:
    started = start_log(tmp_path, IDENTITY_MAIN)
    assert started == {"grpc_experiments": GRPC_EXPERIMENTS, "warned": False}


def test_a_service_whose_grpc_came_first_warns(tmp_path: Path) -> None:
    code = "import grpc, runpy; runpy.run_module('wayline_identity', run_name='__main__')"
    assert start_log(tmp_path, code) == {"grpc_experiments": GRPC_EXPERIMENTS, "warned": True}
