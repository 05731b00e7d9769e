"""`wayline import` survives interruptions: a rerun continues after the last acknowledged batch, resends at
most the batch in flight (stored once, by its deterministic ids), and waits out an unavailable pipeline."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc
import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]
import pyarrow.parquet as pq  # type: ignore[import-untyped,unused-ignore]
import pytest

from tests.cli.test_import import timeline, wayline_import, write_csv
from tests.conftest import API_KEY, TENANT, common_settings, gateway_settings, start_server
from wayline.common.server import Server
from wayline.event.v1 import event_pb2
from wayline.ingest.v1 import ingest_service_pb2 as ingest_pb
from wayline_cli.importing import BatchSender, ImportJob, open_job, run_import
from wayline_gateway.service import gateway_service
from wayline_ingest.service import ingest_service
from wayline_ingest.settings import IngestSettings

Auth = tuple[tuple[str, str], ...]
MAPS = ["identifiers.user_id=customer", "timestamp=at", "name=event", "properties.n=n"]
SETS = ["channel=in_store"]


class Crash(Exception):
    """Stands for the process dying: raised after the server acknowledged a batch, before its checkpoint."""


def job_for(export: Path) -> ImportJob:
    return open_job(export, maps=MAPS, sets=SETS, batch_size=4)


def history(path: Path, user_id: str, rows: int) -> Path:
    """`rows` rows; row 2 has a time nobody can read, row 10 has no event name (the server refuses it)."""
    return write_csv(
        path,
        ["customer", "at", "event", "n"],
        [
            [
                user_id,
                "not a time" if n == 2 else f"2019-05-{n:02d}T09:00:00Z",
                "" if n == 10 else "Purchase",
                str(n),
            ]
            for n in range(1, rows + 1)
        ],
    )


def test_import_resumes_after_a_crash_and_stores_every_row_exactly_once(
    gateway_server: Server, gateway_channel: grpc.Channel, auth: Auth, user_id: str, tmp_path: Path
) -> None:
    export = history(tmp_path / "pos.csv", user_id, 14)  # batches of 4 rows: 1-4, 5-8, 9-12, 13-14
    job = job_for(export)
    with job.source, grpc.insecure_channel(gateway_server.address) as channel, pytest.raises(Crash):
        run_import(job, BatchSender(channel, API_KEY).send, on_acknowledged=lambda n: _crash_at(n, 3))
    checkpoint = json.loads(job.state_path.read_text())
    assert checkpoint["rows_done"] == 8  # the third batch was stored but never checkpointed
    with job.report_path.open("a") as report:  # as if the process died between report and checkpoint
        report.write("11,x,name,REQUIRED,written but never checkpointed,event,{}\n")

    sent: list[int] = []
    job = job_for(export)
    with job.source, grpc.insecure_channel(gateway_server.address) as channel:
        sender = BatchSender(channel, API_KEY)

        def send(events: Sequence[event_pb2.Event]) -> ingest_pb.TrackBatchResponse:
            sent.append(len(events))
            return sender.send(events)

        result = run_import(job, send)
    assert result.skipped == 8
    assert sent == [4, 2]  # rows 9-12 again (safe: same ids), then 13-14; nothing before row 9

    expected = [str(n) for n in range(1, 15) if n not in (2, 10)]
    timeline(gateway_channel, auth, user_id, expect=len(expected))
    time.sleep(1.0)  # let any duplicate the resend could have made reach the store
    stored = timeline(gateway_channel, auth, user_id, expect=len(expected))
    assert sorted((str(e.properties["n"]) for e in stored), key=int) == expected
    assert len({e.event_id for e in stored}) == len(expected)
    totals = result.checkpoint
    assert (totals.accepted, totals.rejected_locally, totals.rejected_by_server) == (12, 1, 1)
    report_rows = [line.split(",")[:4] for line in job.report_path.read_text().splitlines()[1:]]
    assert [row[0] for row in report_rows] == ["2", "10"]  # each bad row once, the stray line cut off


def test_import_rerun_of_a_finished_import_sends_nothing(
    gateway_server: Server, user_id: str, tmp_path: Path
) -> None:
    export = history(tmp_path / "pos.csv", user_id, 5)
    args = [f"--map={m}" for m in MAPS] + [f"--set={s}" for s in SETS]
    code, output = wayline_import(gateway_server, str(export), *args)
    assert code == 1, output  # row 2 is rejected

    job = job_for(export)
    calls: list[int] = []

    def send(events: Sequence[event_pb2.Event]) -> ingest_pb.TrackBatchResponse:
        calls.append(len(events))
        raise AssertionError("a finished import must not send again")

    with job.source:
        result = run_import(job, send)
    assert calls == []
    assert (result.skipped, result.checkpoint.accepted, result.checkpoint.rejected_locally) == (5, 4, 1)


@pytest.mark.parametrize("suffix", ["jsonl", "parquet"])
def test_import_resumes_json_lines_and_parquet_mid_file(
    gateway_server: Server,
    gateway_channel: grpc.Channel,
    auth: Auth,
    user_id: str,
    tmp_path: Path,
    suffix: str,
) -> None:
    count = 30
    rows = [
        {"customer": user_id, "at": f"2018-01-{n:02d}", "event": "Visit", "n": n} for n in range(1, count + 1)
    ]
    export = tmp_path / f"crm.{suffix}"
    if suffix == "parquet":  # row groups of rows 1-7, 8-14, 15-21, 22-28, 29-30
        pq.write_table(pa.Table.from_pylist(rows), export, row_group_size=7)
    else:
        export.write_text("".join(json.dumps(row) + "\n" for row in rows))
    job = open_job(export, maps=MAPS, sets=SETS, batch_size=8)
    with job.source, grpc.insecure_channel(gateway_server.address) as channel, pytest.raises(Crash):
        run_import(job, BatchSender(channel, API_KEY).send, on_acknowledged=lambda n: _crash_at(n, 2))

    sent: list[list[float]] = []
    job = open_job(export, maps=MAPS, sets=SETS, batch_size=8)
    with job.source, grpc.insecure_channel(gateway_server.address) as channel:
        sender = BatchSender(channel, API_KEY)

        def send(events: Sequence[event_pb2.Event]) -> ingest_pb.TrackBatchResponse:
            sent.append([e.properties["n"] for e in events])  # type: ignore[misc]
            return sender.send(events)

        result = run_import(job, send)
    assert result.skipped == 8  # the checkpoint was past row 8 only (in Parquet's second row group)
    assert sent[0][0] == 9
    assert [n for batch in sent for n in batch] == list(range(9, count + 1))
    stored = timeline(gateway_channel, auth, user_id, expect=count)
    time.sleep(1.0)
    stored = timeline(gateway_channel, auth, user_id, expect=count)
    assert sorted(float(e.properties["n"]) for e in stored) == list(range(1, count + 1))  # type: ignore[arg-type]


def _crash_at(batch: int, crash: int) -> None:
    if batch == crash:
        raise Crash


@dataclass
class LonelyGateway:
    """A gateway whose ingest is down until `start_ingest` is called."""

    gateway: Server
    start_ingest: Callable[[], None]


@pytest.fixture
def own_pipeline(journeys_server: Server, tmp_path: Path) -> Iterator[Callable[..., LonelyGateway]]:
    """Makes a gateway of its own whose ingest (with the given settings) starts only when asked to."""
    servers: list[Server] = []

    def make(**ingest: object) -> LonelyGateway:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        ingest_settings = IngestSettings(
            **{**common_settings(tmp_path / "ingest"), "port": port, **ingest},
            journeys_address=journeys_server.address,
            identity_address="",
        )
        settings = gateway_settings(
            tmp_path / "gateway",
            {"ingest": f"127.0.0.1:{port}", "journeys": journeys_server.address},
            API_KEY,
            TENANT,
        )
        servers.append(start_server(gateway_service(settings), settings))
        return LonelyGateway(
            servers[-1],
            lambda: servers.append(start_server(ingest_service(ingest_settings), ingest_settings)),
        )

    yield make
    for server in reversed(servers):
        server.stop(0)


@pytest.fixture
def lonely_gateway(own_pipeline: Callable[..., LonelyGateway]) -> LonelyGateway:
    return own_pipeline()


def test_import_splits_a_batch_the_server_refuses_whole(
    own_pipeline: Callable[..., LonelyGateway], tmp_path: Path, user_id: str
) -> None:
    pipeline = own_pipeline(max_batch_events=3)
    pipeline.start_ingest()
    export = history(tmp_path / "pos.csv", user_id, 12)  # row 10 has no name
    job = open_job(export, maps=MAPS, sets=SETS, batch_size=12)
    with job.source, grpc.insecure_channel(pipeline.gateway.address) as channel:
        result = run_import(job, BatchSender(channel, API_KEY).send)
    totals = result.checkpoint
    assert (totals.accepted, totals.rejected_locally, totals.rejected_by_server) == (10, 1, 1)
    reported = [line.split(",")[:3] for line in job.report_path.read_text().splitlines()[1:]]
    assert [(row, field) for row, _, field in reported] == [("2", "timestamp"), ("10", "name")]


@pytest.mark.slow
def test_import_waits_out_an_unavailable_ingest_honouring_retry_info(
    lonely_gateway: LonelyGateway, tmp_path: Path, user_id: str
) -> None:
    export = history(tmp_path / "pos.csv", user_id, 6)
    later = threading.Timer(2.0, lonely_gateway.start_ingest)
    later.start()
    delays: list[float] = []
    job = job_for(export)
    try:
        with job.source, grpc.insecure_channel(lonely_gateway.gateway.address) as channel:
            sender = BatchSender(channel, API_KEY, on_retry=lambda code, delay, attempt: delays.append(delay))
            result = run_import(job, sender.send)
    finally:
        later.join()
    assert delays, "the first batch should have met an unavailable ingest"
    assert set(delays) == {1.0}  # the gateway's RetryInfo, not the client's own jittered backoff
    assert (result.checkpoint.accepted, result.checkpoint.complete) == (5, True)


@pytest.mark.slow
def test_import_stops_with_exit_code_3_when_ingest_stays_down(
    lonely_gateway: LonelyGateway, tmp_path: Path, user_id: str
) -> None:
    export = history(tmp_path / "pos.csv", user_id, 3)
    args = [f"--map={m}" for m in MAPS] + [f"--set={s}" for s in SETS] + ["--max-attempts=3"]
    code, output = wayline_import(lonely_gateway.gateway, str(export), *args)
    assert code == 3, output
    assert "UNAVAILABLE" in output
    assert "(attempt 2)" in output
    assert "(attempt 3)" not in output  # the third try was the last: no retry after it
    assert "rerun" in output
    assert not (tmp_path / "pos.csv.wayline-import.json").exists()  # nothing was acknowledged
