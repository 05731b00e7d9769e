"""`wayline value` through a real gateway in front of the suite's journeys: the totals, segments, grid and
quantiles of GetCustomerValueSummary and the top customers, as text and as JSON, and a refused request."""

from __future__ import annotations

import json
import random
import string
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import grpc
import pytest
from typer.testing import CliRunner

from tests.conftest import API_KEY, TENANT
from tests.journeys.conftest import Journeys
from wayline.common.server import Server
from wayline.common.timestamps import to_timestamp
from wayline.event.v1 import event_pb2
from wayline_cli.main import app

# Each test's customers buy in a currency of their own, because the tests of a worker share one tenant: drawn
# at random with replacement, two fixtures could take the same code (1 in 676) and see each other's customers,
# or take ZZZ, the currency the no-purchaser test expects empty. Drawn without replacement, never ZZZ.
_NO_PURCHASER = "ZZZ"
_CODES = ["Z" + a + b for a in string.ascii_uppercase for b in string.ascii_uppercase]
_CURRENCIES = iter(random.sample([c for c in _CODES if c != _NO_PURCHASER], k=len(_CODES) - 1))
_START = datetime(2026, 9, 1, tzinfo=UTC)
_END = datetime(2026, 10, 1, tzinfo=UTC)


def _purchase(person: str, day: int, amount: Decimal, currency: str) -> event_pb2.Event:
    at = to_timestamp(_START + timedelta(days=day, hours=10))
    units = int(amount)
    return event_pb2.Event(
        event_id=str(uuid.uuid4()),
        type=event_pb2.EVENT_TYPE_TRACK,
        name="Order Completed",
        channel=event_pb2.CHANNEL_WEB,
        timestamp=at,
        received_at=at,
        person_id=person,
        revenue=event_pb2.Money(currency_code=currency, units=units, nanos=int((amount - units) * 10**9)),
    )


@pytest.fixture
def customers(journeys_server: Server, gateway_server: Server) -> tuple[str, list[tuple[str, Decimal]]]:
    """Six customers of the gateway's tenant in a currency of this test's own (the tenant is shared), each
    with a different value; (person, value) by decreasing value."""
    currency = next(_CURRENCIES)
    found = [(f"value-{uuid.uuid4().hex[:8]}", Decimal(10 * (k + 1)) + Decimal("0.5")) for k in range(6)]
    events = [_purchase(person, 2 + k * 4, value, currency) for k, (person, value) in enumerate(found)]
    events.append(_purchase(found[0][0], 25, Decimal(0), currency))  # zero value: no purchase
    with grpc.insecure_channel(journeys_server.address) as channel:
        Journeys(channel, TENANT).write(*events)
    return currency, sorted(found, key=lambda pv: -pv[1])


def wayline(gateway: Server, *args: str) -> tuple[int, str, str]:
    window = ("--since", "2026-09-01", "--until", "2026-10-01")
    target = ("--gateway", gateway.address, "--api-key", API_KEY)
    result = CliRunner().invoke(app, ["value", *args, *window, *target])
    # The in-process servers log to the same standard output: their lines are not the command's.
    out = "\n".join(
        line for line in result.stdout.splitlines() if "[info" not in line and "[warning" not in line
    )
    return result.exit_code, out, result.stderr


def test_value_prints_the_summary_and_the_most_valuable_customers(
    gateway_server: Server, customers: tuple[str, list[tuple[str, Decimal]]]
) -> None:
    currency, by_value = customers
    code, out, err = wayline(gateway_server, "--currency", currency, "--top", "3")
    assert code == 0, err
    total = sum(v for _, v in by_value)
    assert f"6 purchasers in {currency}, historic value {total:,.2f} {currency}, 6 purchases" in out
    assert "recency measured to 2026-10-01 00:00:00 UTC" in out
    assert "RFM segments" in out
    assert f"largest {by_value[0][1]:,.2f} {currency}" in out
    # The top three, most valuable first, and nobody else.
    listed = [p for p, _ in by_value if p in out]
    assert listed == [p for p, _ in by_value[:3]]
    assert out.index(by_value[0][0]) < out.index(by_value[1][0]) < out.index(by_value[2][0])


def test_value_as_json_is_the_summary_the_api_gives(
    gateway_server: Server, customers: tuple[str, list[tuple[str, Decimal]]]
) -> None:
    currency, by_value = customers
    code, out, err = wayline(gateway_server, "--currency", currency, "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["purchasers"] == "6"  # int64 as proto3 JSON writes it
    assert sum(int(s["persons"]) for s in summary["segments"]) == 6
    assert sum(int(c["persons"]) for c in summary["cells"]) == 6
    assert [q["quantile"] for q in summary["value_quantiles"]] == [0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1.0]
    assert summary["value_quantiles"][-1]["value"]["units"] == str(int(by_value[0][1]))
    assert summary["end_time"] == "2026-10-01T00:00:00Z"


def test_value_with_no_purchaser_says_so_and_a_bad_currency_is_refused(gateway_server: Server) -> None:
    code, out, err = wayline(gateway_server, "--currency", _NO_PURCHASER)
    assert code == 0, err
    assert "0 purchasers in ZZZ, historic value 0.00 ZZZ, 0 purchases" in out
    assert "RFM segments" not in out

    code, _, err = wayline(gateway_server, "--currency", "euro")
    assert code == 1
    assert "INVALID_ARGUMENT" in err
    assert "currency_code: an ISO 4217 code" in err


def test_value_lists_the_customers_of_a_chosen_rfm_segment(
    gateway_server: Server, customers: tuple[str, list[tuple[str, Decimal]]]
) -> None:
    currency, by_value = customers
    code, out, err = wayline(gateway_server, "--currency", currency, "--json")
    assert code == 0, err
    segments = json.loads(out)["segments"]
    name = segments[-1]["segment"].removeprefix("RFM_SEGMENT_").lower()  # the last segment the summary has
    members = int(segments[-1]["persons"])

    code, out, err = wayline(gateway_server, "--currency", currency, "--rfm", name.replace("_", " "))

    assert code == 0, err
    assert f"most valuable customers of {name.replace('_', ' ')}" in out
    assert len([p for p, _ in by_value if p in out]) == members < len(by_value)
    code, _, err = wayline(gateway_server, "--currency", currency, "--rfm", "whales")
    assert code == 2
    assert "'whales' is no RFM segment; one of: champions" in err
