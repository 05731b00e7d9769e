"""`wayline trends` through a real gateway in front of the suite's journeys: counts and sums per day, a
breakdown, a formula, the previous range, stickiness, the activity lifecycle, the sentiment preset's shares,
JSON, and refused requests. The gateway's tenant is shared, so the events carry names of this test's own."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from typer.testing import CliRunner

from tests.conftest import API_KEY, TENANT
from tests.journeys.conftest import Journeys
from wayline.common.server import Server
from wayline.common.timestamps import to_timestamp
from wayline.event.v1 import event_pb2
from wayline_cli.main import app

_START = datetime(2026, 9, 1, tzinfo=UTC)
_WINDOW = ("--since", "2026-09-01", "--until", "2026-09-04", "--period", "day")


def _event(
    name: str, person: str, day: int, channel: event_pb2.Channel.ValueType, **fields: object
) -> event_pb2.Event:
    at = to_timestamp(_START + timedelta(days=day, hours=10))
    return event_pb2.Event(
        event_id=str(uuid.uuid4()),
        type=event_pb2.EVENT_TYPE_TRACK,
        name=name,
        channel=channel,
        timestamp=at,
        received_at=at,
        person_id=person,
        **fields,  # type: ignore[arg-type]
    )


@pytest.fixture
def names(journeys_server: Server, gateway_server: Server) -> tuple[str, str]:
    """A purchase name and a contact name of this test's own: purchases of 10, 20 and 30 EUR on the first
    day (two persons) and 5 EUR on the third; contacts scored -0.6, 0.0 and 0.7 by chat, 0.2 by phone."""
    purchase, contact = f"Bought {uuid.uuid4().hex[:6]}", f"Talked {uuid.uuid4().hex[:6]}"
    eur = [event_pb2.Money(currency_code="EUR", units=u) for u in (10, 20, 30, 5)]
    events = [
        _event(purchase, "trend-a", 0, event_pb2.CHANNEL_WEB, revenue=eur[0]),
        _event(purchase, "trend-a", 0, event_pb2.CHANNEL_WEB, revenue=eur[1]),
        _event(purchase, "trend-b", 0, event_pb2.CHANNEL_IN_STORE, revenue=eur[2]),
        _event(purchase, "trend-b", 2, event_pb2.CHANNEL_WEB, revenue=eur[3]),
        *(
            _event(contact, "trend-a", 1, event_pb2.CHANNEL_CHATBOT, sentiment_score=score)
            for score in (-0.6, 0.0, 0.7)
        ),
        _event(contact, "trend-b", 1, event_pb2.CHANNEL_CALL_CENTER, sentiment_score=0.2),
        _event(contact, "trend-b", 1, event_pb2.CHANNEL_CALL_CENTER),  # no score: not in the shares
    ]
    with grpc.insecure_channel(journeys_server.address) as channel:
        Journeys(channel, TENANT).write(*events)
    return purchase, contact


def wayline(gateway: Server, *args: str) -> tuple[int, str, str]:
    target = ("--gateway", gateway.address, "--api-key", API_KEY)
    result = CliRunner().invoke(app, ["trends", *args, *target])
    out = "\n".join(
        line for line in result.stdout.splitlines() if "[info" not in line and "[warning" not in line
    )
    return result.exit_code, out, result.stderr


def _row(out: str, first: str) -> list[str]:
    """The cells of the table row starting with `first`."""
    line = next(line for line in out.splitlines() if line.strip("│┃ ").startswith(first))
    return [cell.strip() for cell in line.replace("┃", "│").strip("│ ").split("│")]


def test_trends_counts_and_sums_per_day(gateway_server: Server, names: tuple[str, str]) -> None:
    purchase, _ = names
    code, out, err = wayline(gateway_server, purchase, *_WINDOW)
    assert code == 0, err
    assert [_row(out, d)[1] for d in ("2026-09-01", "2026-09-02", "2026-09-03")] == ["3", "0", "1"]
    assert _row(out, "whole range")[1] == "4"

    code, out, err = wayline(gateway_server, purchase, *_WINDOW, "--math", "persons")
    assert code == 0, err
    assert [_row(out, "2026-09-01")[1], _row(out, "whole range")[1]] == ["2", "2"]

    code, out, err = wayline(
        gateway_server, purchase, *_WINDOW, "--math", "sum", "--property", "revenue", "--currency", "EUR"
    )
    assert code == 0, err
    assert "sum of revenue per day" in out
    assert [_row(out, "2026-09-01")[1], _row(out, "whole range")[1]] == ["60.00", "65.00"]

    code, out, err = wayline(gateway_server, purchase, *_WINDOW, "--math", "weekly-active")
    assert code == 0, err
    # Both buyers bought on the first day: active that day and the six after it.
    assert [_row(out, d)[1] for d in ("2026-09-01", "2026-09-02", "2026-09-03", "whole range")] == ["2"] * 4

    hours = ("--since", "2026-09-01T09:00:00Z", "--until", "2026-09-01T12:00:00Z", "--period", "hour")
    code, out, err = wayline(gateway_server, purchase, *hours, "--tz", "Asia/Kolkata")
    assert code == 0, err
    # Hours of Kolkata's clock (UTC+5:30): 14:00 starts at 08:30 UTC, so the range holds four of them.
    labels = ("2026-09-01 14:00", "2026-09-01 15:00", "2026-09-01 16:00", "2026-09-01 17:00")
    assert [_row(out, h)[1] for h in labels] == ["0", "3", "0", "0"]

    code, out, err = wayline(gateway_server, purchase, *_WINDOW, "--by", "channel")
    assert code == 0, err
    assert _row(out, "day") == ["day", "web", "in_store"]  # by events: web 3, in store 1
    assert _row(out, "whole range")[1:] == ["3", "1"]


def test_trends_formula_is_a_column_of_its_own(gateway_server: Server, names: tuple[str, str]) -> None:
    purchase, contact = names
    code, out, err = wayline(gateway_server, purchase, contact, *_WINDOW, "--formula", "A / B")
    assert code == 0, err
    assert _row(out, "day")[1:] == [purchase, contact, "= A / B"]
    # Purchases per contact: 3 and 0 on the first day (no value), 0 and 5, then 1 and 0; 4 and 5 in all.
    assert [_row(out, d)[3] for d in ("2026-09-01", "2026-09-02", "2026-09-03")] == ["—", "0.00", "—"]
    assert _row(out, "whole range")[1:] == ["4", "5", "0.80"]

    code, _, err = wayline(gateway_server, purchase, *_WINDOW, "--formula", "A + C")
    assert code == 1
    assert "formulas[0].expression: C names no series (only A here) at character 5" in err


def test_trends_compare_prints_the_previous_range(gateway_server: Server, names: tuple[str, str]) -> None:
    purchase, _ = names
    code, out, err = wayline(
        gateway_server,
        purchase,
        "--since",
        "2026-09-02",
        "--until",
        "2026-09-04",
        "--period",
        "day",
        "--compare",
    )
    assert code == 0, err
    assert "The previous range, from 2026-08-31 00:00 to 2026-09-02 00:00:" in out
    # 2 and 3 September: 0 and 1 purchase; the two days before: none on 31 August, 3 on 1 September.
    assert [_row(out, d)[1] for d in ("2026-09-02", "2026-09-03")] == ["0", "1"]
    assert [_row(out, d)[1] for d in ("2026-08-31", "2026-09-01")] == ["0", "3"]


def test_trends_stickiness_counts_persons_by_active_days(
    gateway_server: Server, names: tuple[str, str]
) -> None:
    purchase, _ = names
    code, out, err = wayline(gateway_server, purchase, *_WINDOW, "--stickiness")
    assert code == 0, err
    assert "3 days" in out
    # trend-a bought on the first day only; trend-b on the first and the third.
    assert _row(out, "1")[1] == "1 (50%)"
    assert _row(out, "2")[1] == "1 (50%)"
    assert _row(out, "3")[1] == "0 (0%)"
    assert _row(out, "persons")[1] == "2"

    code, _, err = wayline(gateway_server, purchase, *_WINDOW, "--stickiness", "--math", "sum")
    assert code == 2
    assert "no --math, --formula" in err


def test_trends_lifecycle_sorts_each_days_persons(gateway_server: Server, names: tuple[str, str]) -> None:
    purchase, _ = names
    code, out, err = wayline(gateway_server, purchase, *_WINDOW, "--lifecycle")
    assert code == 0, err
    # Both first bought on 1 September (new), neither on the 2nd (dormant), trend-b again on the 3rd.
    columns = ["new", "returning", "resurrecting", "dormant", "active", "quick ratio"]
    assert all(c in out for c in columns)
    assert _row(out, "2026-09-01")[1:] == ["2", "0", "0", "0", "2", "—"]
    assert _row(out, "2026-09-02")[1:] == ["0", "0", "0", "-2", "0", "0.00"]
    assert _row(out, "2026-09-03")[1:] == ["0", "0", "1", "0", "1", "—"]

    code, out, err = wayline(
        gateway_server, purchase, *_WINDOW, "--lifecycle", "--persons", "dormant", "--at", "2026-09-02"
    )
    assert code == 0, err
    assert f"Dormant persons of {purchase}, the day of 2026-09-02: 2" in out
    assert out.split(": 2\n", 1)[1].split() == ["trend-a", "trend-b"]
    code, out, err = wayline(gateway_server, purchase, *_WINDOW, "--lifecycle", "--persons", "resurrecting")
    assert code == 0, err  # the last day by default
    assert out.split(": 1\n", 1)[1].split() == ["trend-b"]
    code, _, err = wayline(gateway_server, purchase, *_WINDOW, "--lifecycle", "--persons", "gone")
    assert code == 2
    code, _, err = wayline(
        gateway_server, purchase, *_WINDOW, "--lifecycle", "--persons", "new", "--at", "2026-08-01"
    )
    assert code == 2
    assert "2026-09-01, 2026-09-02, 2026-09-03" in err

    code, _, err = wayline(gateway_server, purchase, *_WINDOW, "--lifecycle", "--by", "channel")
    assert code == 2
    assert "no breakdown" in err
    code, _, err = wayline(gateway_server, purchase, *_WINDOW, "--lifecycle", "--stickiness")
    assert code == 2
    assert "one of --stickiness and --lifecycle" in err


def test_trends_sentiment_gives_each_band_its_share(gateway_server: Server, names: tuple[str, str]) -> None:
    _, contact = names
    code, out, err = wayline(gateway_server, contact, *_WINDOW, "--sentiment")
    assert code == 0, err
    # Four scored contacts on 2 September: -0.6 negative, 0.0 neutral, 0.7 and 0.2 positive; mean 0.075.
    assert _row(out, "2026-09-02") == ["2026-09-02", "4", "0.075", "25%", "25%", "50%", "+25%"]
    assert _row(out, "whole range")[1:] == ["4", "0.075", "25%", "25%", "50%", "+25%"]

    code, out, err = wayline(gateway_server, contact, *_WINDOW, "--sentiment", "--by", "channel")
    assert code == 0, err
    assert "Sentiment on chatbot" in out
    assert "Sentiment on call_center" in out


def test_trends_as_json_is_the_response_the_api_gives(gateway_server: Server, names: tuple[str, str]) -> None:
    purchase, _ = names
    code, out, err = wayline(
        gateway_server,
        purchase,
        *_WINDOW,
        "--math",
        "median",
        "--property",
        "revenue",
        "--currency",
        "EUR",
        "--json",
    )
    assert code == 0, err
    response = json.loads(out)
    (result,) = response["results"]
    assert [p.get("value") for p in result["points"]] == [20.0, None, 5.0]
    assert result["total"] == 15.0  # the median of 5, 10, 20 and 30
    assert response["end_time"] == "2026-09-04T00:00:00Z"


def test_trends_refuses_what_the_api_refuses(gateway_server: Server) -> None:
    code, _, err = wayline(gateway_server, *_WINDOW, "--math", "sum")
    assert code == 1
    assert "INVALID_ARGUMENT" in err
    assert "series[0].property: SUM measures a numeric property" in err
    code, _, err = wayline(gateway_server, *_WINDOW, "--math", "mode")
    assert code == 2
    assert "one of total, persons" in err
