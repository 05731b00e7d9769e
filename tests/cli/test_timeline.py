"""`wayline timeline` through a real gateway in front of the suite's journeys: by person id and by identifier,
filtered by channel, event name and time, in either order, paged up to --limit, as a table and as JSON Lines,
and a bad subject or channel refused before any call."""

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
from wayline_cli.timeline import subject_request

_START = datetime(2026, 10, 5, 9, 0, tzinfo=UTC)


def _event(
    person: str, name: str, channel: int, hours: int, identifier: tuple[str, str], **props: str
) -> event_pb2.Event:
    event = event_pb2.Event(
        event_id=str(uuid.uuid4()),
        type=event_pb2.EVENT_TYPE_TRACK,
        name=name,
        channel=channel,  # type: ignore[arg-type]
        timestamp=to_timestamp(_START + timedelta(hours=hours)),
        received_at=to_timestamp(_START + timedelta(hours=hours)),
        identifiers=[event_pb2.Identifier(type=identifier[0], value=identifier[1])],
        person_id=person,
    )
    event.properties.update(props)
    return event


@pytest.fixture
def customer(journeys_server: Server, gateway_server: Server) -> tuple[str, str, list[event_pb2.Event]]:
    """A person of the gateway's tenant with five events on three channels, oldest first."""
    person = str(uuid.uuid4())
    email = ("email", f"cli-{person[:8]}@example.com")
    # A value with a colon of its own, which rich would also print as an emoji (🍪) if it read it as markup.
    cookie = ("anonymous_id", f"cookie:{person[:8]}")
    events = [
        _event(person, "Product Viewed", event_pb2.CHANNEL_WEB, 0, cookie, sku="SKU-1"),
        _event(person, "Email Opened", event_pb2.CHANNEL_EMAIL, 24, email),
        _event(person, "Email Clicked", event_pb2.CHANNEL_EMAIL, 25, email),
        _event(person, "Product Added", event_pb2.CHANNEL_MOBILE_APP, 48, email, sku="[bold]SKU-1[/bold]"),
        _event(person, "Order Completed", event_pb2.CHANNEL_WEB, 49, email, order_id="o-1"),
    ]
    with grpc.insecure_channel(journeys_server.address) as channel:
        Journeys(channel, TENANT).write(*events)
    return person, f"{email[0]}:{email[1]}", events


def wayline(gateway: Server, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["timeline", *args, "--gateway", gateway.address, "--api-key", API_KEY])
    return result.exit_code, result.stdout, result.stderr


def ids_in_json(out: str) -> list[str]:
    return [json.loads(line)["event_id"] for line in out.splitlines() if line.startswith("{")]


def test_a_timeline_by_person_or_identifier_newest_first(
    gateway_server: Server, customer: tuple[str, str, list[event_pb2.Event]]
) -> None:
    person, email, events = customer
    newest_first = [e.event_id for e in reversed(events)]
    code, out, err = wayline(gateway_server, person, "--json")
    assert code == 0, err
    assert ids_in_json(out) == newest_first
    assert f"person {person}: 5 events, newest first" in err
    # By identifier: the whole timeline of the person holding it, not only the events carrying it.
    code, out, err = wayline(gateway_server, email, "--json")
    assert code == 0, err
    assert ids_in_json(out) == newest_first
    first = json.loads(out.splitlines()[-1])
    assert first["name"] == "Product Viewed"
    assert first["properties"] == {"sku": "SKU-1"}
    # As a table: every event's row, with the identifiers it carried and its properties.
    code, out, err = wayline(gateway_server, person)
    assert code == 0, err
    assert [line.split("│")[3].strip() for line in out.splitlines() if line.count("│") == 6] == [
        e.name for e in reversed(events)
    ]
    assert '{"order_id":"o-1"}' in out
    assert '{"sku":"[bold]SKU-1[/bold]"}' in out  # as sent, not as markup
    assert f"cookie:{person[:8]}" in out


def test_filters_order_and_limit(
    gateway_server: Server, customer: tuple[str, str, list[event_pb2.Event]]
) -> None:
    person, _, events = customer
    by_id = {e.name: e.event_id for e in events}
    code, out, err = wayline(
        gateway_server, person, "--json", "--channel", "email", "--channel", "mobile_app"
    )
    assert code == 0, err
    assert ids_in_json(out) == [by_id["Product Added"], by_id["Email Clicked"], by_id["Email Opened"]]
    code, out, err = wayline(
        gateway_server,
        person,
        "--json",
        "--event",
        "Order Completed",
        "--event",
        "Product Viewed",
        "--oldest-first",
    )
    assert code == 0, err
    assert ids_in_json(out) == [by_id["Product Viewed"], by_id["Order Completed"]]
    assert "oldest first" in err
    since = (_START + timedelta(hours=24)).isoformat()
    until = (_START + timedelta(hours=48)).isoformat()
    code, out, err = wayline(
        gateway_server, person, "--json", "--since", since, "--until", until, "--oldest-first"
    )
    assert code == 0, err
    assert ids_in_json(out) == [by_id["Email Opened"], by_id["Email Clicked"]]  # the end is excluded
    # Two events only, read in pages of at most two: the newest two, and a hint that there are more.
    code, out, err = wayline(gateway_server, person, "--json", "--limit", "2")
    assert code == 0, err
    assert ids_in_json(out) == [by_id["Order Completed"], by_id["Product Added"]]
    assert "more with a higher --limit" in err


def test_a_bad_subject_or_channel_is_refused_and_an_unknown_person_has_no_events(
    gateway_server: Server,
) -> None:
    code, _, err = wayline(gateway_server, "email:")
    assert code == 2
    assert "type:value" in err
    code, _, err = wayline(gateway_server, str(uuid.uuid4()), "--channel", "fax")
    assert code == 2
    assert "'fax' is not a channel" in err
    assert "mobile_app" in err
    nobody = str(uuid.uuid4())
    code, out, err = wayline(gateway_server, nobody, "--json")
    assert code == 0, err
    assert ids_in_json(out) == []
    assert f"person {nobody}: 0 events" in err


def test_the_subject_names_a_person_or_an_identifier() -> None:
    assert subject_request("8b2cc060-7b2e").person_id == "8b2cc060-7b2e"
    found = subject_request("anonymous_id:cookie:42")
    assert (found.identifier.type, found.identifier.value) == ("anonymous_id", "cookie:42")
    assert found.WhichOneof("subject") == "identifier"
