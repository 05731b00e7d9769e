"""`wayline import` end to end over real sockets: files in, events stored, timelines read back through the
gateway (gateway → ingest → journeys); rejected rows reported with their row numbers and reasons."""

from __future__ import annotations

import csv
import json
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]
import pyarrow.parquet as pq  # type: ignore[import-untyped,unused-ignore]
import pytest
from typer.testing import CliRunner

from tests.conftest import API_KEY
from wayline.common.server import Server
from wayline.common.timestamps import to_datetime
from wayline.event.v1 import event_pb2
from wayline.journeys.v1 import journeys_service_pb2 as journeys_pb
from wayline.journeys.v1 import journeys_service_pb2_grpc as journeys_grpc
from wayline_cli.importing import BatchSender, open_job, run_import
from wayline_cli.importing.errors import UsageError
from wayline_cli.importing.mapper import NAMESPACE
from wayline_cli.importing.spec import build_spec
from wayline_cli.main import app

Auth = tuple[tuple[str, str], ...]


def wayline_import(gateway: Server, *args: str) -> tuple[int, str]:
    """Runs `wayline import` in this process (so against the fixture servers); exit code and output."""
    result = CliRunner().invoke(
        app, ["import", *args, "--gateway", gateway.address, "--api-key", API_KEY], env={"COLUMNS": "200"}
    )
    return result.exit_code, result.output


def timeline(
    channel: grpc.Channel, auth: Auth, value: str, *, expect: int, kind: str = "user_id"
) -> list[event_pb2.Event]:
    """Every event of the person holding `kind`=`value`, once at least `expect` have arrived (delivery from
    ingest's spool to journeys is asynchronous), or what is there after 20 seconds."""
    stub = journeys_grpc.JourneyServiceStub(channel)
    deadline = time.monotonic() + 20
    while True:
        events: list[event_pb2.Event] = []
        token = ""
        try:
            while True:
                page = stub.GetTimeline(
                    journeys_pb.GetTimelineRequest(
                        identifier=event_pb2.Identifier(type=kind, value=value),
                        page_size=1000,
                        page_token=token,
                    ),
                    metadata=auth,
                    timeout=10,
                )
                events.extend(page.events)
                token = page.next_page_token
                if not token:
                    break
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.NOT_FOUND:
                raise
        if len(events) >= expect or time.monotonic() > deadline:
            return events
        time.sleep(0.2)


def write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[object]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def read_report(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def test_import_csv_through_the_cli_stores_every_row(
    gateway_server: Server, gateway_channel: grpc.Channel, auth: Auth, user_id: str, tmp_path: Path
) -> None:
    export = write_csv(
        tmp_path / "pos.csv",
        ["Kunde", "Zeit", "Artikel", "Menge", "Betrag", "Filiale"],
        [
            [user_id, "2021-03-04 10:15:00", "A-12", "2", "59.90", "berlin-01"],
            [user_id, "2021-03-05T11:00:00+00:00", "B-7", "1", "-12.34", "berlin-02"],
            [user_id, "1614945600", "C-1", "3", "0.10", "berlin-01"],
            [user_id, "2021-03-06", "D-9", "1", "98765432.123456789", "berlin-03"],  # beyond a float's digits
        ],
    )
    code, output = wayline_import(
        gateway_server,
        str(export),
        *("--map", "identifiers.user_id=Kunde", "--map", "timestamp=Zeit", "--map", "properties.sku=Artikel"),
        *("--map", "properties.quantity=Menge", "--map", "revenue.amount=Betrag"),
        *("--map", "context.location.store_id=Filiale", "--set", "revenue.currency=EUR"),
        *("--set", "channel=in-store", "--set", "name=Order Completed", "--timezone", "Europe/Berlin"),
    )
    assert code == 0, output
    assert "accepted" in output

    events = timeline(gateway_channel, auth, user_id, expect=4)
    by_sku = {str(e.properties["sku"]): e for e in events}
    assert sorted(by_sku) == ["A-12", "B-7", "C-1", "D-9"]
    first = by_sku["A-12"]
    assert first.name == "Order Completed"
    assert first.channel == event_pb2.CHANNEL_IN_STORE
    assert first.properties["quantity"] == "2"  # CSV cells stay strings without a type
    assert to_datetime(first.timestamp) == datetime(2021, 3, 4, 9, 15, tzinfo=UTC)  # naive, read in Berlin
    assert (first.revenue.currency_code, first.revenue.units, first.revenue.nanos) == ("EUR", 59, 900_000_000)
    assert first.context.location.store_id == "berlin-01"
    refund = by_sku["B-7"]
    assert (refund.revenue.units, refund.revenue.nanos) == (-12, -340_000_000)
    assert to_datetime(by_sku["C-1"].timestamp) == datetime(2021, 3, 5, 12, 0, tzinfo=UTC)  # epoch seconds
    assert (by_sku["C-1"].revenue.units, by_sku["C-1"].revenue.nanos) == (0, 100_000_000)
    assert (by_sku["D-9"].revenue.units, by_sku["D-9"].revenue.nanos) == (98_765_432, 123_456_789)


def test_import_json_lines_keeps_numbers_and_nested_keys(
    gateway_server: Server, gateway_channel: grpc.Channel, auth: Auth, user_id: str, tmp_path: Path
) -> None:
    export = tmp_path / "calls.jsonl"
    lines = [
        {"customer": {"id": user_id}, "at": 1_615_000_000_000, "minutes": 12, "score": 4.5, "vip": True},
        {"customer": {"id": user_id}, "at": "2021-03-07", "minutes": 3, "score": 2.0, "vip": False},
    ]
    for line in lines:
        line["call"] = f"{user_id}-call-{line['minutes']}"  # the call centre's own id: not a UUID
    export.write_text("\n".join(json.dumps(line) for line in lines) + "\n\n")
    code, output = wayline_import(
        gateway_server,
        str(export),
        *("--map", "identifiers.user_id=customer.id", "--map", "timestamp=at"),
        *("--map", "properties.call.minutes=minutes", "--map", "properties.score=score"),
        *("--map", "properties.vip=vip", "--set", "channel=call_centre", "--set", "name=Call Handled"),
        *("--map", "event_id=call"),
    )
    assert code == 0, output

    events = sorted(timeline(gateway_channel, auth, user_id, expect=2), key=lambda e: e.timestamp.seconds)
    assert [e.channel for e in events] == [event_pb2.CHANNEL_CALL_CENTER] * 2
    assert to_datetime(events[0].timestamp) == datetime(2021, 3, 6, 3, 6, 40, tzinfo=UTC)  # epoch ms
    assert to_datetime(events[1].timestamp) == datetime(2021, 3, 7, tzinfo=UTC)  # a date
    assert (
        events[0].properties.get_or_create_struct("call")["minutes"] == 12
    )  # numbers stay numbers, nested keys nest
    assert events[0].properties["score"] == 4.5
    assert events[0].properties["vip"] is True
    # ids from the file's own id, the same in any export that holds the same call
    assert [e.event_id for e in events] == [
        str(uuid.uuid5(NAMESPACE, f"id:{line['call']}")) for line in lines
    ]


def test_import_parquet_reads_typed_columns_in_batches(
    gateway_server: Server, gateway_channel: grpc.Channel, auth: Auth, user_id: str, tmp_path: Path
) -> None:
    count = 30
    table = pa.table(
        {
            "customer": [user_id] * count,
            "sold_at": pa.array(
                [datetime(2022, 1, 1, 8, tzinfo=UTC).replace(minute=i) for i in range(count)],
                pa.timestamp("us", tz="UTC"),
            ),
            "basket": pa.array(list(range(count)), pa.int64()),
            "total": pa.array([f"{i}.25" for i in range(count)]).cast(pa.decimal128(10, 2)),
        }
    )
    export = tmp_path / "crm.parquet"
    pq.write_table(table, export, row_group_size=7)  # several row groups
    job = open_job(
        export,
        maps=[
            "identifiers.user_id=customer",
            "timestamp=sold_at",
            "properties.basket=basket",
            "revenue.amount=total",
        ],
        sets=["channel=web", "name=Checkout", "revenue.currency=usd"],
        batch_size=8,
    )
    with job.source, grpc.insecure_channel(gateway_server.address) as channel:
        result = run_import(job, BatchSender(channel, API_KEY).send)
    assert (result.checkpoint.accepted, result.checkpoint.rejected) == (count, 0)

    events = timeline(gateway_channel, auth, user_id, expect=count)
    assert len(events) == count
    latest = max(events, key=lambda e: e.timestamp.seconds)
    assert to_datetime(latest.timestamp) == datetime(2022, 1, 1, 8, count - 1, tzinfo=UTC)
    assert latest.properties["basket"] == count - 1
    assert (latest.revenue.currency_code, latest.revenue.units, latest.revenue.nanos) == (
        "USD",
        29,
        250_000_000,
    )


def test_import_mapping_file_gives_several_identifiers_and_typed_properties(
    gateway_server: Server, gateway_channel: grpc.Channel, auth: Auth, user_id: str, tmp_path: Path
) -> None:
    email = f"{user_id}@example.com"
    export = write_csv(
        tmp_path / "crm.csv",
        ["crm", "mail", "card", "when", "points", "ratio", "active", "event"],
        [
            [user_id, email, "L-1", "2020-02-02T12:00:00Z", "120", "0.5", "yes", "Points Earned"],
            [user_id, email, "", "2020-02-03T12:00:00Z", "80", "1.25", "no", "Points Earned"],
        ],
    )
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(
        "timezone: UTC\n"
        "fields:\n"
        "  identifiers.crm_id: crm\n"
        "  identifiers.email: mail\n"
        "  identifiers.loyalty_id: card\n"
        "  timestamp: when\n"
        "  name: event\n"
        "  channel: {value: other}\n"
        "  properties.points: {column: points, type: integer}\n"
        "  properties.ratio: {column: ratio, type: number}\n"
        "  properties.active: {column: active, type: boolean}\n"
    )
    code, output = wayline_import(gateway_server, str(export), "--mapping", str(mapping))
    assert code == 0, output

    events = sorted(
        timeline(gateway_channel, auth, email, expect=2, kind="email"), key=lambda e: e.timestamp.seconds
    )
    assert [[(i.type, i.value) for i in e.identifiers] for e in events] == [
        [("crm_id", user_id), ("email", email), ("loyalty_id", "L-1")],
        [("crm_id", user_id), ("email", email)],  # the empty card cell gives no identifier
    ]
    assert [e.properties["points"] for e in events] == [120, 80]
    assert [e.properties["ratio"] for e in events] == [0.5, 1.25]
    assert [e.properties["active"] for e in events] == [True, False]


def test_import_stores_history_from_1987_as_backfill(
    gateway_server: Server, gateway_channel: grpc.Channel, auth: Auth, user_id: str, tmp_path: Path
) -> None:
    export = write_csv(
        tmp_path / "history.csv",
        ["customer", "date", "what"],
        [[user_id, "1987-06-15", "Account Opened"], [user_id, "1999-12-31 23:59", "Catalogue Ordered"]],
    )
    code, output = wayline_import(
        gateway_server,
        str(export),
        *("--map", "identifiers.user_id=customer", "--map", "timestamp=date", "--map", "name=what"),
        *("--set", "channel=other"),
    )
    assert code == 0, output

    events = sorted(timeline(gateway_channel, auth, user_id, expect=2), key=lambda e: e.timestamp.seconds)
    assert [to_datetime(e.timestamp) for e in events] == [
        datetime(1987, 6, 15, tzinfo=UTC),
        datetime(1999, 12, 31, 23, 59, tzinfo=UTC),
    ]


@pytest.mark.parametrize("zone", ["Mars/Olympus", "America", "x" * 300], ids=["unknown", "directory", "long"])
def test_import_refuses_a_time_zone_that_names_no_zone(zone: str) -> None:
    """Also the names ZoneInfo refuses with an OSError (a directory of the tz database, a name too long for a
    file): a usage error, not a traceback."""
    with pytest.raises(UsageError, match="unknown time zone"):
        build_spec(
            mapping_file=None, maps=(), sets=(), timezone=zone, columns=("user_id",), columns_fixed=True
        )
