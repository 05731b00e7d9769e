"""`wayline import` tells what it could not import, and why: rows rejected locally or by the server go to the
report with their row numbers, and a mapping or key that cannot work is refused before anything is sent."""

from __future__ import annotations

import json
from pathlib import Path

import grpc
from typer.testing import CliRunner

from tests.cli.test_import import Auth, read_report, timeline, wayline_import, write_csv
from wayline.common.server import Server
from wayline.common.timestamps import to_datetime
from wayline_cli.main import app


def test_import_reports_rejected_rows_with_row_numbers_and_reasons(
    gateway_server: Server, gateway_channel: grpc.Channel, auth: Auth, user_id: str, tmp_path: Path
) -> None:
    export = write_csv(
        tmp_path / "mixed.csv",
        ["customer", "at", "event", "amount", "currency"],
        [
            [user_id, "2021-01-01T00:00:00Z", "Order Completed", "10.00", "EUR"],  # row 1: fine
            [user_id, "yesterday-ish", "Order Completed", "10.00", "EUR"],  # row 2: cannot be mapped
            ["", "2021-01-03T00:00:00Z", "Order Completed", "10.00", "EUR"],  # row 3: no identifier
            [user_id, "2021-01-04T00:00:00Z", "", "10.00", "EUR"],  # row 4: the server wants a name
            [user_id, "2021-01-05T00:00:00Z", "Order Completed", "5", "EURO"],  # row 5: bad currency
            [user_id, "2021-01-06T00:00:00Z", "Order Completed", "1", "EUR"],  # row 6: fine
        ],
    )
    report = tmp_path / "rejected.csv"
    code, output = wayline_import(
        gateway_server,
        str(export),
        *("--map", "identifiers.user_id=customer", "--map", "timestamp=at", "--map", "name=event"),
        *("--map", "revenue.amount=amount", "--map", "revenue.currency=currency", "--set", "channel=web"),
        *("--report", str(report)),
    )
    assert code == 1, output
    assert str(report) in output.replace("\n", "")

    lines = read_report(report)
    assert [(r["row"], r["field"], r["reason"], r["column"]) for r in lines] == [
        ("2", "timestamp", "INVALID_TIMESTAMP", "at"),
        ("3", "identifiers", "REQUIRED", "customer"),
        ("4", "name", "REQUIRED", "event"),
        ("5", "revenue.currency_code", "INVALID_CURRENCY", "currency"),
    ]
    assert json.loads(lines[0]["raw"])["at"] == "yesterday-ish"
    assert all(r["description"] and r["event_id"] for r in lines)
    stored = timeline(gateway_channel, auth, user_id, expect=2)
    assert sorted(to_datetime(e.timestamp).day for e in stored) == [1, 6]


def test_import_reports_lines_that_are_not_json_objects_and_goes_on(
    gateway_server: Server, gateway_channel: grpc.Channel, auth: Auth, user_id: str, tmp_path: Path
) -> None:
    export = tmp_path / "crm.jsonl"
    good = json.dumps({"id": user_id, "at": "2020-05-05T10:00:00Z"})
    export.write_text(f'{good}\n{{"id": "{user_id}", "at": \n[1, 2]\n{good.replace("05T10", "06T10")}\n')
    code, output = wayline_import(
        gateway_server,
        str(export),
        *("--map", "identifiers.user_id=id", "--map", "timestamp=at", "--set", "channel=other"),
        *("--set", "name=Contact Updated"),
    )
    assert code == 1, output
    lines = read_report(tmp_path / "crm.jsonl.wayline-rejected.csv")  # the default report path
    assert [(r["row"], r["reason"]) for r in lines] == [("2", "INVALID_JSON"), ("3", "NOT_AN_OBJECT")]
    assert lines[1]["raw"] == "[1, 2]"
    assert len(timeline(gateway_channel, auth, user_id, expect=2)) == 2


def test_import_reports_numbers_no_json_number_holds_and_goes_on(
    gateway_server: Server, gateway_channel: grpc.Channel, auth: Auth, user_id: str, tmp_path: Path
) -> None:
    """A property is a double once stored: an integer past its range (which stopped the import with an
    OverflowError), an integer typed as one but past 2**53 (which would arrive changed), and a JSON cell
    nested deeper than the decoder goes (a RecursionError) are rejected rows, reported, and the rest is
    imported."""
    export = tmp_path / "orders.jsonl"
    rows = [
        {"id": user_id, "at": "2020-05-05T10:00:00Z", "n": 1, "code": "7", "doc": "{}"},
        {"id": user_id, "at": "2020-05-06T10:00:00Z", "n": 10**400, "code": "7", "doc": "{}"},
        {"id": user_id, "at": "2020-05-07T10:00:00Z", "n": 2, "code": str(2**53 + 1), "doc": "{}"},
        {"id": user_id, "at": "2020-05-08T10:00:00Z", "n": 3, "code": "7", "doc": "[" * 100_000},
        {"id": user_id, "at": "2020-05-09T10:00:00Z", "n": 4, "code": str(2**53), "doc": '{"a": 1}'},
    ]
    export.write_text("".join(json.dumps(row) + "\n" for row in rows))
    code, output = wayline_import(
        gateway_server,
        str(export),
        *("--map", "identifiers.user_id=id", "--map", "timestamp=at", "--set", "channel=other"),
        *(
            "--set",
            "name=Order Completed",
            "--map",
            "properties.n=n",
            "--map",
            "properties.code:integer=code",
        ),
        *("--map", "properties.doc:json=doc"),
    )
    assert code == 1, output
    lines = read_report(tmp_path / "orders.jsonl.wayline-rejected.csv")
    assert [(r["row"], r["field"], r["reason"]) for r in lines] == [
        ("2", "properties.n", "INVALID_AUTO"),
        ("3", "properties.code", "INVALID_INTEGER"),
        ("4", "properties.doc", "INVALID_JSON"),
    ]
    stored = timeline(gateway_channel, auth, user_id, expect=2)
    assert sorted(float(e.properties["code"]) for e in stored) == [7, 2**53]  # type: ignore[arg-type]


def test_import_refuses_a_mapping_that_cannot_work_before_sending(
    gateway_server: Server, gateway_channel: grpc.Channel, auth: Auth, user_id: str, tmp_path: Path
) -> None:
    export = write_csv(tmp_path / "x.csv", ["customer", "at"], [[user_id, "2021-01-01"]])
    base = ("--map", "identifiers.user_id=customer", "--map", "timestamp=at", "--set", "name=X")
    code, output = wayline_import(gateway_server, str(export), *base, "--map", "channel=medium")
    assert code == 2
    assert "no column 'medium'" in output
    code, output = wayline_import(gateway_server, str(export), *base)
    assert code == 2
    assert "no channel" in output
    code, output = wayline_import(
        gateway_server, str(export), *base, "--set", "channel=web", "--map", "propertys.x=at"
    )
    assert code == 2
    assert "unknown target 'propertys.x'" in output
    assert timeline(gateway_channel, auth, user_id, expect=0) == []


def test_import_with_an_unknown_api_key_is_a_usage_error(gateway_server: Server, tmp_path: Path) -> None:
    export = write_csv(tmp_path / "x.csv", ["customer", "at"], [["u-1", "2021-01-01"]])
    result = CliRunner().invoke(
        app,
        [
            *("import", str(export), "--gateway", gateway_server.address),
            *("--map", "identifiers.user_id=customer", "--map", "timestamp=at"),
            *("--set", "name=X", "--set", "channel=web"),
        ],
        env={"WAYLINE_API_KEY": "wl_wrong", "COLUMNS": "200"},
    )
    assert result.exit_code == 2, result.output
    assert "UNAUTHENTICATED" in result.output
