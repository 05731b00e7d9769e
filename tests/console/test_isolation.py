"""A read key of tenant A sees nothing of tenant B, through the HTTP JSON bridge the console calls, through
gRPC, and in the browser: B's persons are unknown to A, the email both tenants hold is a different person in
each with only that tenant's events, A's analytics count no event of B (B's event names, all `Beta ...`,
never appear in A's answers, and a funnel over them is empty for A while B's own key counts B's persons),
and B's key cannot read A's person by id."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import grpc
import pytest

from tests.console.browser import Console
from tests.console.calls import IDENTITY, JOURNEYS, Bridge, BridgeError, Rpc
from tests.console.loading import B_EVENT_PREFIX, ConsoleData, KnownPerson

Calls = Callable[[str], Bridge]
RpcCalls = Callable[[str], Rpc]

# What would betray tenant B in an answer to A: its event names and its emails (the shared one aside, which
# is A's too).
_B_MARKS = (B_EVENT_PREFIX, "b-only@", "b-visitor-")


def _by_email(person: KnownPerson) -> dict[str, Any]:
    return {"type": "email", "value": person.email}


def _leaks(answer: object) -> list[str]:
    text = json.dumps(answer)
    return [mark for mark in _B_MARKS if mark in text]


def _beta_funnel(data: ConsoleData) -> dict[str, Any]:
    """B's visitors' two steps: persons enter it only with B's events."""
    return {
        "steps": [
            {"label": "landing", "event": {"eventName": f"{B_EVENT_PREFIX}Landing"}},
            {"label": "signup", "event": {"eventName": f"{B_EVENT_PREFIX}Signup"}},
        ],
        "conversionWindow": "2592000s",
        "timeRange": data.time_range(),
    }


def _not_found(call: Callable[[], object]) -> BridgeError:
    with pytest.raises(BridgeError) as refused:
        call()
    assert (refused.value.status, refused.value.code) == (404, "not_found"), refused.value
    return refused.value


def test_b_persons_are_unknown_to_a_read_key(console_data: ConsoleData, bridge: Calls, rpc: RpcCalls) -> None:
    a = bridge(console_data.read_key_a)
    b_only = _by_email(console_data.b_only)
    _not_found(lambda: a.call(IDENTITY, "GetProfile", {"person": {"identifier": b_only}}))
    # An identifier no event of the tenant carries reads as an empty timeline of nobody.
    assert a.call(JOURNEYS, "GetTimeline", {"identifier": b_only}) == {
        "events": [],
        "nextPageToken": "",
        "personId": "",
    }
    with pytest.raises(grpc.RpcError) as refused:
        rpc(console_data.read_key_a).call(IDENTITY, "GetProfile", {"person": {"identifier": b_only}})
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND
    # B's own key finds the person: the refusal above is the tenant boundary, not a missing person.
    profile = bridge(console_data.read_key_b).call(IDENTITY, "GetProfile", {"person": {"identifier": b_only}})
    assert profile["profile"]["personId"] == console_data.b_only.person_id


def test_the_email_both_tenants_hold_is_each_tenants_own_person(
    console_data: ConsoleData, bridge: Calls, rpc: RpcCalls
) -> None:
    shared = {"identifier": _by_email(console_data.shared_a)}
    for key, person in (
        (console_data.read_key_a, console_data.shared_a),
        (console_data.read_key_b, console_data.shared_b),
    ):
        profile = bridge(key).call(IDENTITY, "GetProfile", {"person": shared})["profile"]
        assert profile["personId"] == person.person_id
        timeline = bridge(key).call(JOURNEYS, "GetTimeline", shared | {"pageSize": 1000})
        assert sorted(event["name"] for event in timeline["events"]) == sorted(person.event_names)
        # The bridge answers exactly what gRPC answers for the same key.
        assert timeline == rpc(key).json(JOURNEYS, "GetTimeline", shared | {"pageSize": 1000})
    assert console_data.shared_a.person_id != console_data.shared_b.person_id
    assert not any(name.startswith(B_EVENT_PREFIX) for name in console_data.shared_a.event_names)


def test_a_analytics_count_no_event_of_b(console_data: ConsoleData, bridge: Calls, rpc: RpcCalls) -> None:
    a, b = bridge(console_data.read_key_a), bridge(console_data.read_key_b)
    paths = a.call(JOURNEYS, "QueryPaths", {"depth": 5, "timeRange": console_data.time_range()})
    assert int(paths["series"][0]["personCount"]) > 0
    assert _leaks(paths) == []
    # A funnel over B's event names: empty for A, B's nine persons (eight visitors and b-only) for B.
    funnel = _beta_funnel(console_data)
    a_steps = a.call(JOURNEYS, "QueryFunnel", funnel)["series"][0]["steps"]
    b_steps = b.call(JOURNEYS, "QueryFunnel", funnel)["series"][0]["steps"]
    assert [int(step["count"]) for step in a_steps] == [0, 0]
    assert [int(step["count"]) for step in b_steps] == [9, 9]
    # A's key exports every event loaded for A (and any a test of A's added), none of B's.
    exported = {
        event.event_id: event.name
        for chunk in rpc(console_data.read_key_a).stream(
            JOURNEYS, "ExportEvents", {"timeRange": console_data.time_range()}
        )
        for event in chunk.events  # type: ignore[attr-defined]
    }
    assert console_data.event_ids_a <= exported.keys()
    assert not console_data.event_ids_b & exported.keys()
    assert not set(exported.values()) & console_data.b_event_names


def test_kept_answers_are_each_tenants_own(console_data: ConsoleData, bridge: Calls) -> None:
    """The bridge keeps recent answers for callers that accept their age (ADR 58): the same request from A
    and from B, each accepting a kept answer of ten minutes, gets each tenant's own numbers, whoever asked
    first."""
    funnel = _beta_funnel(console_data) | {"conversionWindow": "2591999s"}  # a request no other test sends
    accept = {"Cache-Control": "max-stale=600"}
    expected = {console_data.read_key_a: [0, 0], console_data.read_key_b: [9, 9]}
    for key in (
        console_data.read_key_a,
        console_data.read_key_b,
        console_data.read_key_b,
        console_data.read_key_a,
    ):
        steps = bridge(key).call(JOURNEYS, "QueryFunnel", funnel, accept)["series"][0]["steps"]
        assert [int(step["count"]) for step in steps] == expected[key]


def test_b_key_cannot_read_a_person_by_id(console_data: ConsoleData, bridge: Calls) -> None:
    b = bridge(console_data.read_key_b)
    ann = console_data.ann.person_id
    _not_found(lambda: b.call(IDENTITY, "GetProfile", {"person": {"personId": ann}}))
    # A person id the tenant has no event of reads as an empty timeline (GetTimeline's contract).
    assert b.call(JOURNEYS, "GetTimeline", {"personId": ann})["events"] == []
    assert bridge(console_data.read_key_a).call(JOURNEYS, "GetTimeline", {"personId": ann})["events"] != []


def _page_ids(console: Console) -> list[str]:
    links = console.nav.get_by_role("link")
    return [str(link.get_attribute("data-testid")).removeprefix("nav-") for link in links.all()]


def test_the_console_signed_in_as_a_shows_nothing_of_b(console: Console, console_data: ConsoleData) -> None:
    page = console.open()
    ids = _page_ids(console)
    assert len(ids) == 10, ids
    for page_id in ids:
        console.go(f"#/{page_id}")
        text = page.locator("main").inner_text()
        assert [mark for mark in _B_MARKS if mark in text] == [], page_id
        console.shot(page_id)
    # The browser's own calls, with the key the console keeps, hit the same boundary.
    answer = page.evaluate(
        """async (email) => {
            const response = await fetch("/wayline.identity.v1.IdentityService/GetProfile", {
                method: "POST",
                headers: {
                    "Content-Type": "application/json",
                    Authorization: `Bearer ${Object.values(sessionStorage)[0]}`,
                },
                body: JSON.stringify({person: {identifier: {type: "email", value: email}}}),
            });
            return {status: response.status, body: await response.json()};
        }""",
        console_data.b_only.email,
    )
    assert (answer["status"], answer["body"]["code"]) == (404, "not_found")
