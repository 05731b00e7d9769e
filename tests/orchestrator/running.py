"""An orchestrator on a fake clock with its timer loop polling fast, its runtime's tables readable, started
once per module on each engine (SQLite embedded, a real PostgreSQL); and the flow the statistics and
simulation tests share: a branch, a split with a control, an action a frequency cap suppresses, and a goal
step."""

from __future__ import annotations

import dataclasses
import itertools
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from tests.conftest import common_settings, start_server
from tests.orchestrator.helpers import EMAIL, Auth, Stub, cap, days, set_policy
from tests.orchestrator.runtime_calls import FakeClock
from tools.postgres_server import create_schema
from wayline.common.server import Server
from wayline.common.sql import PostgresDatabase, SqliteDatabase, open_database
from wayline.orchestrator.v1 import contact_policy_pb2 as policy_pb
from wayline_orchestrator.flows import FlowState, FlowStore, definition_digest
from wayline_orchestrator.flows.runtime import RuntimeStore
from wayline_orchestrator.flows.runtime.runs import split_bucket
from wayline_orchestrator.service import orchestrator_service
from wayline_orchestrator.settings import OrchestratorSettings

__all__ = [
    "ENGINES",
    "NO_PEERS",
    "Running",
    "cap_emails",
    "choose_persons",
    "run_per_engine",
    "start_running",
    "trial_flow",
]

# The engines an orchestrator store runs on: a module-scoped fixture with these params runs each test on both.
ENGINES = ["sqlite", "postgresql"]

# An orchestrator's peer addresses in tests: none unless a test gives them, so that no test dials a default
# address nobody listens on (gRPC backs off reconnecting, for every channel of the process to that address).
NO_PEERS = {"journeys_address": "", "decision_address": "", "identity_address": "", "ingest_address": ""}

# The timer loop polls often and takes short leases, so a fake clock's advance is acted on within the test.
_FAST_TIMERS: dict[str, Any] = {"timer_poll_interval_seconds": 0.05, "timer_lease_seconds": 1}


@dataclass
class Running:
    """A started orchestrator, the fake clock it runs on, and its database (opened a second time, to read)."""

    server: Server
    clock: FakeClock
    store: RuntimeStore
    db: SqliteDatabase | PostgresDatabase
    settings: OrchestratorSettings

    def restart(self, while_down: Callable[[], None]) -> None:
        """Stop the server, call `while_down`, and start it again on the same settings, clock and database
        (on a new port: callers dial `server.address` anew)."""
        self.server.stop(0)
        while_down()
        self.server = start_server(orchestrator_service(self.settings, self.clock), self.settings)

    def stop(self) -> None:
        self.server.stop(0)
        self.db.close()


def start_running(data_dir: Path, database_url: str = "", **settings: Any) -> Running:
    """An orchestrator on `data_dir` (and on `database_url` when given): no peers and fast timers unless
    `settings` (OrchestratorSettings fields) say otherwise."""
    orchestrator = OrchestratorSettings(
        **common_settings(data_dir),  # type: ignore[arg-type]
        database_url=SecretStr(database_url) if database_url else None,
        **(_FAST_TIMERS | NO_PEERS | settings),
    )
    clock = FakeClock()
    server = start_server(orchestrator_service(orchestrator, clock), orchestrator)
    db = open_database(database_url or None, orchestrator.service_dir / "orchestrator.db")
    return Running(server, clock, RuntimeStore(db), db, orchestrator)


def run_per_engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, **settings: Any
) -> Iterator[Running]:
    """The body of a `running` fixture parametrised over ENGINES: an orchestrator on the engine of
    `request.param` (a fresh PostgreSQL database), stopped when the fixture is torn down."""
    url = create_schema(request.getfixturevalue("postgres_url")) if request.param == "postgresql" else ""
    running = start_running(tmp_path_factory.mktemp("orchestrator"), url, **settings)
    yield running
    running.stop()


def trial_flow() -> dict[str, Any]:
    """On `Signed Up`: pro plans go to a split (`a` gets the offer, the control does not), the others get a
    welcome email and then the offer (which a one-email-a-day cap suppresses); everyone then waits at the
    goal step `bought` for `Order Completed`."""
    email = {"channel": "CHANNEL_EMAIL"}
    pro = {
        "trigger_property": {
            "property": "properties.plan",
            "operator": "FILTER_OPERATOR_EQUALS",
            "values": ["pro"],
        }
    }
    return {
        "trigger": {"event": {"event": {"event_name": "Signed Up"}}},
        "entry_step_id": "route",
        "steps": [
            {
                "id": "route",
                "branch": {
                    "branches": [{"label": "pro", "condition": pro, "next_step_id": "split"}],
                    "default_step_id": "welcome",
                },
            },
            {"id": "welcome", "action": {**email, "action_id": "welcome", "next_step_id": "offer"}},
            {"id": "offer", "action": {**email, "action_id": "offer", "next_step_id": "bought"}},
            {
                "id": "split",
                "split": {
                    "variants": [
                        {"label": "a", "weight": 50.0, "next_step_id": "offer"},
                        {"label": "control", "weight": 50.0, "next_step_id": "bought", "control": True},
                    ]
                },
            },
            {"id": "bought", "goal": {"event": {"event_name": "Order Completed"}}},
        ],
    }


def choose_persons(flow_id: str, in_a: int, in_control: int) -> tuple[list[str], list[str]]:
    """New person ids the trial flow's split sends to `a` and to the control (split buckets are a hash)."""
    a: list[str] = []
    control: list[str] = []
    for _ in itertools.count():
        person = f"p-{uuid.uuid4().hex[:10]}"
        bucket = split_bucket(flow_id, "split", person)
        if bucket < 50.0 and len(a) < in_a:
            a.append(person)
        elif bucket >= 50.0 and len(control) < in_control:
            control.append(person)
        if len(a) == in_a and len(control) == in_control:
            return a, control
    raise AssertionError("unreachable")


def cap_emails(stub: Stub, auth: Auth) -> policy_pb.ContactPolicy:
    """One marketing email a day per person."""
    policy = policy_pb.ContactPolicy(frequency_caps=[cap(1, days(1), EMAIL)])
    return set_policy(stub, auth, policy, "frequency_caps")


def publish_behind_the_checks(running: Running, auth: Auth, flow_id: str, definition: dict[str, Any]) -> None:
    """Write `definition` as the flow's draft and as its next published version, straight to the database: a
    flow saved and published before a check of definitions existed (tests of what such a flow does now)."""
    tenant = dict(auth)["x-wayline-tenant"]
    flows = FlowStore(running.db)
    stored = flows.get(tenant, flow_id)
    assert stored is not None
    changed = dataclasses.replace(
        stored,
        definition=definition,
        state=FlowState.PUBLISHED,
        published_version=stored.published_version + 1,
        published_digest=definition_digest(definition),
        revision=stored.revision + 1,
    )
    assert flows.replace(tenant, changed, stored.revision, publish=definition)
