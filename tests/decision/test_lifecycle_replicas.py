"""Replicas sharing one PostgreSQL database and one registry volume: a deployment made on one reaches the
other through the traffic table (its poller loads and swaps), a replica started later loads every deployed
version before it reports SERVING, and the traffic table's conditional writes keep concurrent changes whole
(on SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from pydantic import SecretStr

from tests.conftest import INTERNAL_TOKEN, common_settings, start_server
from tests.decision.lifecycle_calls import deploy, get_model, push, states
from tests.decision.ml_package import ml_package
from wayline.common.context import INTERNAL_TOKEN_HEADER, TENANT_HEADER
from wayline.common.server import Server
from wayline.common.sql import Database
from wayline.decision.v1 import decision_service_pb2 as pb
from wayline_decision.service import decision_service
from wayline_decision.serving.traffic import Traffic
from wayline_decision.serving.traffic_store import TrafficStore
from wayline_decision.settings import DecisionSettings

TENANT = "acme"
DIRECT = ((INTERNAL_TOKEN_HEADER, INTERNAL_TOKEN), (TENANT_HEADER, TENANT))


def replica(data_dir: Path, registry: Path, url: str) -> Server:
    settings = DecisionSettings(
        **common_settings(data_dir),  # type: ignore[arg-type]
        registry_dir=registry,
        database_url=SecretStr(url),
        traffic_poll_seconds=0.2,
    )
    return start_server(decision_service(settings), settings)


@pytest.fixture
def replicas(tmp_path: Path, fresh_postgres_url: str) -> Iterator[tuple[Server, Server, Path, str]]:
    registry = tmp_path / "registry"
    first = replica(tmp_path / "a", registry, fresh_postgres_url)
    second = replica(tmp_path / "b", registry, fresh_postgres_url)
    yield first, second, registry, fresh_postgres_url
    first.stop(0)
    second.stop(0)


def wait_for(check: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            pytest.fail("the replicas did not converge in time")
        time.sleep(0.05)


@pytest.mark.timeout(180)
def test_a_deployment_on_one_replica_reaches_the_other(
    replicas: tuple[Server, Server, Path, str], tmp_path: Path
) -> None:
    first, second, registry, url = replicas
    model_id = f"rep-{uuid.uuid4().hex[:6]}"
    with grpc.insecure_channel(first.address) as a, grpc.insecure_channel(second.address) as b:
        for version in ("1", "2"):
            push(a, ml_package(tmp_path / version, model_id=model_id, version=version), DIRECT)
        deploy(a, model_id, "1", auth=DIRECT)
        started = time.monotonic()
        wait_for(lambda: states(get_model(b, model_id, DIRECT))["1"] == "LOADED")
        deploy(b, model_id, "2", pb.DEPLOY_MODE_CANARY, 25, auth=DIRECT)
        wait_for(lambda: states(get_model(a, model_id, DIRECT))["2"] == "LOADED")
        converged = time.monotonic() - started
        for channel in (a, b):
            model = get_model(channel, model_id, DIRECT)
            assert (model.traffic.stable_version, model.traffic.canary_version) == ("1", "2")
            assert model.traffic.canary_percent == 25
        print(f"two replicas converged on two changes in {converged:.2f} s (poll 0.2 s)")

        # A replica started now loads the deployed versions before it reports SERVING.
        third = replica(tmp_path / "c", registry, url)
        try:
            with grpc.insecure_channel(third.address) as c:
                assert states(get_model(c, model_id, DIRECT)) == {"2": "LOADED", "1": "LOADED"}
        finally:
            third.stop(0)


@pytest.mark.parametrize("racers", [4])
def test_concurrent_traffic_writes_never_interleave(database: Database, racers: int) -> None:
    store = TrafficStore(database)
    store.migrate()
    winners: list[int] = []
    barrier = threading.Barrier(racers)

    def write(worker: int) -> None:
        barrier.wait()
        if store.replace(TENANT, Traffic("m", stable_version=str(worker), generation=1), 0):
            winners.append(worker)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(winners) == 1
    current = store.get(TENANT, "m")
    assert (current.stable_version, current.generation) == (str(winners[0]), 1)
    # A write against a stale generation loses; against the current one it wins.
    assert not store.replace(TENANT, Traffic("m", stable_version="x", generation=1), 0)
    assert not store.replace(TENANT, Traffic("m", stable_version="x", generation=3), 2)
    assert store.replace(TENANT, Traffic("m", stable_version="y", generation=2), 1)
    assert store.get(TENANT, "m").stable_version == "y"
    assert store.get("globex", "m") == Traffic("m")  # tenants apart
    assert list(store.everything()) == [(TENANT, "m")]
