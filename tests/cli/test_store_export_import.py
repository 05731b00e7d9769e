"""`wayline store export|import` on real stores: a chDB journey store filled through journeys' gRPC write
path (several tenants, an override, a retried event, a decision, a segment), exported, imported into another
store, and journeys started on the copy gives the same answers per tenant.

chDB allows one engine path per process, so source and copy are two databases of the session's engine, named
with --database; a server run (chDB → ClickHouse) needs WAYLINE_CLICKHOUSE_URL.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from clickhouse_connect.driver.client import Client
from google.protobuf import json_format
from typer.testing import CliRunner

from tests.conftest import common_settings, start_server
from tests.journeys.conftest import T0, Journeys, override
from tests.journeys.segments_support import count, wait_ready
from wayline.common.server import Server
from wayline.common.timestamps import to_timestamp
from wayline.event.v1 import event_pb2
from wayline.journeys.v1 import analytics_pb2, funnel_pb2
from wayline.journeys.v1 import journeys_service_pb2 as pb
from wayline_cli.main import app
from wayline_cli.store.location import StoreLocation
from wayline_journeys.service import journeys_service
from wayline_journeys.settings import JourneysSettings
from wayline_journeys.store.client import connect_clickhouse
from wayline_journeys.store.person_timelines import MARKER_EVENT_ID
from wayline_journeys.store.schema import MIGRATIONS

TENANTS = ("store-acme", "store-globex")
StartJourneys = Callable[[str], Server]


def wayline(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["store", *args], env={"COLUMNS": "200"})
    return result.exit_code, " ".join(result.output.split())  # as one line, however rich wrapped it


@pytest.fixture(scope="module")
def start_journeys(suite_data_dir: Path) -> Iterator[StartJourneys]:
    """Starts journeys in this process on a database of the session's chDB engine; stopped at the end."""
    started: list[Server] = []

    def start(database: str) -> Server:
        settings = JourneysSettings(
            **common_settings(suite_data_dir),  # type: ignore[arg-type]
            clickhouse_database=database,
            identity_address="",  # overrides come from the test, not identity's feed
            segment_refresh_seconds=0.2,
            segment_settle_seconds=0.3,
        )
        server = start_server(journeys_service(settings), settings)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop(0)


def _event(person: str, name: str, minute: int, **properties: Any) -> event_pb2.Event:
    at = to_timestamp(T0 + timedelta(minutes=minute))
    found = event_pb2.Event(
        event_id=str(uuid.uuid4()),
        type=event_pb2.EVENT_TYPE_IDENTIFY if name == "Identify" else event_pb2.EVENT_TYPE_TRACK,
        name=name,
        channel=event_pb2.CHANNEL_WEB,
        timestamp=at,
        received_at=at,
        identifiers=[event_pb2.Identifier(type="user_id", value=f"u-{person}")],
        person_id=person,
    )
    json_format.ParseDict(properties, found.properties)
    return found


def fill(journeys: Journeys) -> dict[str, str]:
    """A tenant's history: three persons, one merged into another, a retried event, a decision, a segment."""
    ada, bob, cy = (f"{journeys.tenant}-{name}" for name in ("ada", "bob", "cy"))
    viewed = _event(ada, "Viewed", 1)
    retried = event_pb2.Event()
    retried.CopyFrom(viewed)
    retried.received_at.CopyFrom(to_timestamp(T0 + timedelta(minutes=2)))
    decision = _event(bob, "Decision Logged", 3, decision_id=f"{journeys.tenant}-d1", model="m", arm="a")
    journeys.write(
        _event(ada, "Identify", 0, plan="pro", first_name=journeys.tenant),
        viewed,
        _event(ada, "Purchased", 5),
        _event(bob, "Viewed", 2),
        decision,
        _event(cy, "Viewed", 4),
        _event(cy, "Purchased", 6),
    )
    journeys.write(retried)  # the same event again, received later: one copy in every answer
    journeys.apply(override(cy, ada, version=1))  # cy turns out to be ada
    segment = journeys.create_segment(count("Purchased"), segment_id="buyers")
    wait_ready(journeys, segment.name)
    return {"ada": ada, "bob": bob, "cy": cy, "decision": f"{journeys.tenant}-d1"}


def answers(journeys: Journeys, people: dict[str, str]) -> dict[str, Any]:
    """What journeys says about a tenant, in comparable form."""
    as_dict = json_format.MessageToDict
    funnel = pb.QueryFunnelRequest(
        steps=[
            funnel_pb2.FunnelStep(event=analytics_pb2.EventMatcher(event_name="Viewed")),
            funnel_pb2.FunnelStep(event=analytics_pb2.EventMatcher(event_name="Purchased")),
        ],
        time_range=event_pb2.TimeRange(
            start=to_timestamp(T0 - timedelta(days=1)), end=to_timestamp(T0 + timedelta(days=1))
        ),
    )
    properties = pb.GetPersonPropertiesRequest(person=event_pb2.PersonRef(person_id=people["ada"]))
    decision = pb.GetDecisionEventsRequest(decision_id=people["decision"])
    md = journeys.metadata
    return {
        "timelines": {name: [as_dict(e) for e in journeys.timeline(people[name])] for name in ("ada", "bob")},
        "funnel": as_dict(journeys.stub.QueryFunnel(funnel, metadata=md, timeout=30)),
        "properties": as_dict(journeys.stub.GetPersonProperties(properties, metadata=md, timeout=10)),
        "decision": [
            e.event_id
            for e in journeys.stub.GetDecisionEvents(decision, metadata=md, timeout=10).decision.events
        ],
        "members": sorted(journeys.segment_members("segments/buyers")[0]),
    }


@dataclass(frozen=True)
class Exported:
    database: str
    dump: Path
    expected: dict[str, dict[str, Any]]
    """tenant → {"people": its persons' ids, "answers": what journeys said before the export}"""


@pytest.fixture(scope="module")
def chdb(suite_data_dir: Path) -> Iterator[Callable[[str], Client]]:
    """Connects to a database of the session's engine; every database connected to is dropped at the end."""
    opened: list[Client] = []
    databases: set[str] = set()

    def connect(database: str) -> Client:
        databases.add(database)
        opened.append(connect_clickhouse("", database, suite_data_dir / "journeys" / "chdb"))
        return opened[-1]

    yield connect
    for database in sorted(databases):
        connect(database).command(f"DROP DATABASE IF EXISTS `{database}`")
    for client in opened:
        client.close()


@pytest.fixture(scope="module")
def exported(
    start_journeys: StartJourneys,
    chdb: Callable[[str], Client],
    suite_data_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Exported:
    """A source store filled through journeys, each tenant's answers, and its export (journeys stopped
    first, as the runbook says)."""
    database = f"store_src_{uuid.uuid4().hex[:8]}"
    chdb(database)  # dropped at the end
    server = start_journeys(database)
    expected: dict[str, dict[str, Any]] = {}
    with grpc.insecure_channel(server.address) as channel:
        for tenant in TENANTS:
            journeys = Journeys(channel, tenant)
            people = fill(journeys)
            expected[tenant] = {"people": people, "answers": answers(journeys, people)}
    server.stop(0)
    dump = tmp_path_factory.mktemp("store") / "dump"
    code, output = wayline("export", str(dump), "--data-dir", str(suite_data_dir), "--database", database)
    assert code == 0, output
    return Exported(database, dump, expected)


def new_database(chdb: Callable[[str], Client]) -> str:
    database = f"store_dst_{uuid.uuid4().hex[:8]}"
    chdb(database)
    return database


def test_the_export_holds_each_table_of_state_once_with_its_manifest(exported: Exported) -> None:
    manifest = json.loads((exported.dump / "manifest.json").read_text())
    assert manifest["schema_version"] == len(MIGRATIONS)
    assert manifest["database"] == exported.database
    assert manifest["source"].startswith("chdb:")
    rows = {t["table"]: t["rows"] for t in manifest["tables"]}
    # State, not what views derive from it (they are refilled on import) nor the migrations' own record.
    assert set(rows) == {
        "erased_persons",
        "events",
        "lifecycle_models",
        "override_cursors",
        "person_overrides",
        "segment_membership_changes",
        "segment_memberships",
        "segment_status",
        "segments",
    }
    assert rows["events"] == 7 * len(TENANTS)  # the retried copy collapsed into one
    assert rows["person_overrides"] == len(TENANTS)
    assert rows["segments"] == len(TENANTS)
    for table in manifest["tables"]:
        path = exported.dump / table["file"]
        assert path.stat().st_size == table["bytes"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == table["sha256"]
    # Native in gzip: a block starts with its column count (a varint), then each column's name and type.
    overrides = next(t for t in manifest["tables"] if t["table"] == "person_overrides")
    native = gzip.decompress((exported.dump / overrides["file"]).read_bytes())
    assert native[0] == len(overrides["columns"]) == 9
    assert b"override_person_id" in native
    assert b"Nullable(DateTime64(6, 'UTC'))" in native


def test_a_copy_answers_every_tenant_as_the_original(
    exported: Exported,
    start_journeys: StartJourneys,
    chdb: Callable[[str], Client],
    suite_data_dir: Path,
) -> None:
    copy_database = new_database(chdb)
    code, output = wayline(
        "import", str(exported.dump), "--data-dir", str(suite_data_dir), "--database", copy_database
    )
    assert code == 0, output
    assert "9 tables imported" in output
    # The views refilled what they derive from the imported events.
    client = chdb(copy_database)
    assert client.query("SELECT count() FROM decision_events FINAL").result_rows == [(len(TENANTS),)]
    assert client.query("SELECT count() FROM person_anchors FINAL").result_rows == [(3 * len(TENANTS),)]
    timelines = client.query(
        "SELECT countIf(event_id != toUUID({marker:String})), countIf(event_id = toUUID({marker:String})) "
        "FROM person_timelines FINAL",
        parameters={"marker": MARKER_EVENT_ID},
    ).result_rows
    stored = client.query("SELECT count() FROM events FINAL WHERE person_id != ''").result_rows[0][0]
    named = client.query(
        "SELECT uniqExact(tenant_id, person) FROM person_overrides "
        "ARRAY JOIN [person_id, override_person_id] AS person WHERE person != ''"
    ).result_rows[0][0]
    assert stored > 0
    assert timelines == [(stored, named)]

    copy = start_journeys(copy_database)
    with grpc.insecure_channel(copy.address) as channel:
        for tenant in TENANTS:
            journeys = Journeys(channel, tenant)
            wait_ready(journeys, "segments/buyers")
            want = exported.expected[tenant]
            assert answers(journeys, want["people"]) == want["answers"], tenant
    # Each tenant's answers are its own: its ada (cy merged into her) is the one buyer.
    first = exported.expected[TENANTS[0]]
    assert first["answers"]["members"] == [first["people"]["ada"]]


def test_an_import_refuses_a_store_with_rows_and_resume_completes_one(
    exported: Exported, chdb: Callable[[str], Client], suite_data_dir: Path
) -> None:
    where = ["--data-dir", str(suite_data_dir)]
    code, output = wayline("import", str(exported.dump), *where, "--database", exported.database)
    assert code == 1
    assert "already holds rows in" in output
    assert "events (" in output

    target = new_database(chdb)
    assert wayline("import", str(exported.dump), *where, "--database", target)[0] == 0
    client = chdb(target)
    client.command("TRUNCATE TABLE segments")  # as if the import had stopped before this table
    client.command("DELETE FROM segment_status WHERE tenant_id = {t:String}", parameters={"t": TENANTS[0]})
    code, output = wayline("import", str(exported.dump), *where, "--database", target, "--resume")
    assert code == 0, output
    assert "already loaded" in output
    assert "truncated and loaded again" in output
    manifest = json.loads((exported.dump / "manifest.json").read_text())
    for table in manifest["tables"]:
        found = client.query(f"SELECT count() FROM `{table['table']}`").result_rows[0][0]
        assert found == table["rows"], table["table"]

    # An export directory is written once.
    code, output = wayline("export", str(exported.dump), *where, "--database", exported.database)
    assert code == 1
    assert "already holds an export" in output


def test_a_damaged_export_is_refused_before_anything_is_loaded(
    exported: Exported, chdb: Callable[[str], Client], suite_data_dir: Path, tmp_path: Path
) -> None:
    dump = tmp_path / "dump"
    shutil.copytree(exported.dump, dump)
    events = dump / "events.native.gz"
    data = bytearray(events.read_bytes())
    data[len(data) // 2] ^= 0xFF
    events.write_bytes(bytes(data))
    (dump / "segments.native.gz").unlink()

    target = new_database(chdb)
    where = ["--data-dir", str(suite_data_dir), "--database", target]
    code, output = wayline("import", str(dump), *where)
    assert code == 1
    assert "events.native.gz does not match its checksum" in output
    assert "segments.native.gz (table segments) is missing" in output
    tables = chdb(target).query("SELECT count() FROM system.tables WHERE database = currentDatabase()")
    assert tables.result_rows == [(0,)]  # not even the schema was created

    (dump / "manifest.json").unlink()
    code, output = wayline("import", str(dump), *where)
    assert code == 1
    assert "manifest.json is missing" in output


def test_the_store_is_given_exactly_once(tmp_path: Path) -> None:
    code, output = wayline("export", str(tmp_path / "dump"))
    assert code == 2
    assert "exactly one of --clickhouse-url and --data-dir" in output
    code, output = wayline("export", str(tmp_path / "dump"), "--data-dir", str(tmp_path / "nowhere"))
    assert code == 1
    assert "no chDB store at" in output
    assert not (tmp_path / "nowhere").exists()  # nothing created where no store was
    # A name longer than the system allows: OSError out of the command (Path.is_dir raises it on 3.11).
    too_long = "d" * 300
    code, output = wayline("export", str(tmp_path / "dump"), "--data-dir", too_long)
    assert code == 1
    assert "export failed: File name too long" in output
    code, output = wayline(
        "export", str(tmp_path / "dump"), "--data-dir", str(tmp_path), "--clickhouse-url", "http://h:8123"
    )
    assert code == 2


def test_the_shell_environment_does_not_change_the_store(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The options say where the store is; journeys' variables in the operator's shell do not move it."""
    monkeypatch.setenv("WAYLINE_CLICKHOUSE_URL", "http://elsewhere:8123")
    monkeypatch.setenv("WAYLINE_JOURNEYS_CLICKHOUSE_DATABASE", "other")
    monkeypatch.setenv("WAYLINE_DATA_DIR", str(tmp_path / "other"))
    location = StoreLocation.of(data_dir=tmp_path, database="wayline")
    assert location.embedded
    assert location.embedded_path == tmp_path / "journeys" / "chdb"
    assert location.settings.clickhouse_database == "wayline"
    server = StoreLocation.of(clickhouse_url="http://user:secret@ch:8123/x", database="wayline", cluster="c")
    assert server.describe() == "http://user@ch:8123/x (database wayline, cluster c)"  # never the password


def test_an_embedded_store_open_in_another_process_is_refused(exported: Exported, tmp_path: Path) -> None:
    """A running journeys holds chDB's lock on <store>/status; export and import see it and refuse."""
    path = tmp_path / "journeys" / "chdb"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, clickhouse_connect\n"
            f"c = clickhouse_connect.get_client(interface='chdb', path={str(path)!r})\n"
            "c.command('SELECT 1'); print('open', flush=True); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "open"
        assert StoreLocation.of(data_dir=tmp_path, database="wayline").embedded_path == path
        code, output = wayline("export", str(tmp_path / "dump"), "--data-dir", str(tmp_path))
        assert code == 1
        assert f"open in process {holder.pid}" in output
        assert not (tmp_path / "dump" / "manifest.json").exists()
        code, output = wayline("import", str(exported.dump), "--data-dir", str(tmp_path))
        assert code == 1
        assert f"open in process {holder.pid}" in output
    finally:
        holder.communicate("", timeout=30)


@pytest.mark.skipif(
    not os.environ.get("WAYLINE_CLICKHOUSE_URL"),
    reason="set WAYLINE_CLICKHOUSE_URL=http://user:password@host:8123 (and"
    " WAYLINE_JOURNEYS_CLICKHOUSE_CLUSTER for a cluster) to import into a ClickHouse server",
)
def test_chdb_to_a_server_and_back_to_files(exported: Exported, tmp_path: Path) -> None:
    """chDB → a server (a cluster when WAYLINE_JOURNEYS_CLICKHOUSE_CLUSTER is set) → an export of the server
    with the same tables and row counts."""
    url = os.environ["WAYLINE_CLICKHOUSE_URL"]
    cluster = os.environ.get("WAYLINE_JOURNEYS_CLICKHOUSE_CLUSTER", "")
    target = f"store_server_{uuid.uuid4().hex[:8]}"
    where = ["--clickhouse-url", url, "--database", target, *(["--cluster", cluster] if cluster else [])]
    try:
        code, output = wayline("import", str(exported.dump), *where)
        assert code == 0, output
        code, output = wayline("export", str(tmp_path / "again"), *where)
        assert code == 0, output
        before = json.loads((exported.dump / "manifest.json").read_text())
        after = json.loads((tmp_path / "again" / "manifest.json").read_text())
        assert {t["table"]: t["rows"] for t in after["tables"]} == {
            t["table"]: t["rows"] for t in before["tables"]
        }
        assert [t["columns"] for t in after["tables"]] == [t["columns"] for t in before["tables"]]
    finally:
        admin = connect_clickhouse(url, "default", tmp_path)
        on_cluster = f" ON CLUSTER `{cluster}` SYNC" if cluster else ""
        admin.command(f"DROP DATABASE IF EXISTS `{target}`{on_cluster}")
        admin.close()
