"""Flow execution over real sockets, on SQLite and PostgreSQL: ObserveEvents enters persons into published
flows (once per event, under the re-entry rules) and wakes their waits; the timer loop, on a fake clock,
ends waits and timeouts; actions go through the contact policy into the ledger and the outbox; versions
published while persons are inside leave them on theirs."""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.orchestrator.flow_samples import abandoned_cart
from tests.orchestrator.helpers import Auth, Stub
from tests.orchestrator.running import Running
from tests.orchestrator.runtime_calls import State, eventually, publish, send, track
from wayline.common.server import Server
from wayline.event.v1 import event_pb2
from wayline.orchestrator.v1 import contact_policy_pb2 as policy_pb
from wayline.orchestrator.v1 import orchestrator_service_pb2 as pb
from wayline_orchestrator.flows.runtime.runs import split_bucket

HOUR = 3600


@pytest.fixture(scope="module")
def orchestrator(running: Running) -> Server:
    """The orchestrator `stub` calls: the one on the fake clock."""
    return running.server


def _person() -> str:
    return f"p-{uuid.uuid4().hex[:8]}"


def _action(step_id: str, following: str = "", **extra: Any) -> dict[str, Any]:
    body = {"channel": "CHANNEL_EMAIL", "action_id": step_id, "next_step_id": following, **extra}
    return {"id": step_id, "action": body}


def _flow(steps: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "trigger": {"event": {"event": {"event_name": "Signed Up"}}},
        "entry_step_id": steps[0]["id"],
        "steps": steps,
        **extra,
    }


def _sent(state: State) -> list[tuple[str, str]]:
    return sorted((m.person_id, m.step_id) for m in state.messages())


def test_observe_events_enters_once_per_event_and_never_again(
    running: Running, stub: Stub, auth: Auth, state: State
) -> None:
    publish(stub, auth, "welcome", _flow([_action("hello")]))
    person = _person()
    send(stub, auth, track(person, "Signed Up", running.clock()))
    send(stub, auth, track(person, "Signed Up", running.clock()))  # REENTRY_POLICY_NEVER by default
    send(stub, auth, track(_person(), "Page Viewed", running.clock()))
    assert state.statuses("welcome") == [(person, "EXITED", "completed")]
    assert _sent(state) == [(person, "hello")]
    assert state.messages()[0].idempotency_key == f"welcome/1/{person}/1/hello"


def test_observe_events_enters_once_for_an_event_delivered_twice(
    running: Running, stub: Stub, auth: Auth, state: State
) -> None:
    rules = {"reentry": "REENTRY_POLICY_AFTER_EXIT"}  # no cooldown: only the event id stops a second entry
    publish(stub, auth, "twice", _flow([_action("hello")], entry_rules=rules))
    person = _person()
    signed_up = track(person, "Signed Up", running.clock())
    send(stub, auth, signed_up)
    send(stub, auth, signed_up)
    assert len(state.entries("twice")) == 1
    send(stub, auth, track(person, "Signed Up", running.clock()))
    assert [e.number for e in state.entries("twice")] == [1, 2]
    assert len(state.messages()) == 2


def test_observe_events_reenters_after_exit_once_the_cooldown_passed(
    running: Running, stub: Stub, auth: Auth, state: State
) -> None:
    rules = {"reentry": "REENTRY_POLICY_AFTER_EXIT", "reentry_cooldown": "86400s"}
    publish(stub, auth, "again", _flow([_action("hello")], entry_rules=rules))
    person = _person()
    send(stub, auth, track(person, "Signed Up", running.clock()))
    send(stub, auth, track(person, "Signed Up", running.clock()))  # within the cooldown
    assert len(state.entries("again")) == 1
    running.clock.advance(25 * HOUR)
    send(stub, auth, track(person, "Signed Up", running.clock()))
    assert [e.number for e in state.entries("again")] == [1, 2]
    assert [m.idempotency_key for m in state.messages()] == [
        f"again/1/{person}/1/hello",
        f"again/1/{person}/2/hello",
    ]


def test_wait_duration_holds_until_the_timer_fires(
    running: Running, stub: Stub, auth: Auth, state: State
) -> None:
    steps = [{"id": "pause", "wait": {"duration": "7200s", "next_step_id": "hello"}}, _action("hello")]
    publish(stub, auth, "later", _flow(steps))
    person = _person()
    send(stub, auth, track(person, "Signed Up", running.clock()))
    assert state.statuses("later") == [(person, "WAITING", "")]
    running.clock.advance(1 * HOUR)
    send(stub, auth, track(_person(), "Page Viewed", running.clock()))
    assert _sent(state) == []
    running.clock.advance(1 * HOUR + 1)
    eventually(lambda: state.statuses("later") == [(person, "EXITED", "completed")])
    assert _sent(state) == [(person, "hello")]


def test_wait_for_event_wakes_on_the_event_or_times_out(
    running: Running, stub: Stub, auth: Auth, state: State
) -> None:
    wait = {
        "event": {"event": {"event_name": "Email Verified"}, "timeout": "3600s", "timeout_step_id": "nudge"},
        "next_step_id": "thanks",
    }
    publish(stub, auth, "verify", _flow([{"id": "wait", "wait": wait}, _action("thanks"), _action("nudge")]))
    quick, slow = _person(), _person()
    send(stub, auth, track(quick, "Signed Up", running.clock()), track(slow, "Signed Up", running.clock()))
    send(stub, auth, track(quick, "Email Verified", running.clock()))
    assert _sent(state) == [(quick, "thanks")]
    running.clock.advance(HOUR + 1)
    eventually(lambda: len(state.messages()) == 2)
    assert _sent(state) == sorted([(quick, "thanks"), (slow, "nudge")])
    # The timer of the woken wait was removed with the wake: it never fires.
    assert [t for t in running.store.timers(state.tenant) if t.person_id == quick] == []


def test_split_assigns_a_stable_variant_and_branches_read_the_trigger_and_later_events(
    running: Running, stub: Stub, auth: Auth, state: State
) -> None:
    steps = [
        {
            "id": "split",
            "split": {
                "variants": [
                    {"label": "a", "weight": 50.0, "next_step_id": "hold"},
                    {"label": "b", "weight": 50.0, "next_step_id": "hold", "control": True},
                ]
            },
        },
        {"id": "hold", "wait": {"duration": "60s", "next_step_id": "route"}},
        {
            "id": "route",
            "branch": {
                "branches": [
                    {
                        "label": "big",
                        "condition": {
                            "trigger_property": {
                                "property": "properties.plan",
                                "operator": "FILTER_OPERATOR_EQUALS",
                                "values": ["pro"],
                            }
                        },
                        "next_step_id": "pro",
                    },
                    {
                        "label": "browsed",
                        "condition": {"event_since_entry": {"event": {"event_name": "Page Viewed"}}},
                        "next_step_id": "browser",
                    },
                ],
                "default_step_id": "other",
            },
        },
        _action("pro"),
        _action("browser"),
        _action("other"),
    ]
    publish(stub, auth, "route", _flow(steps))
    pro, browser, other = _person(), _person(), _person()
    now = running.clock()
    send(
        stub,
        auth,
        track(pro, "Signed Up", now, plan="pro"),
        track(browser, "Signed Up", now, plan="free"),
        track(other, "Signed Up", now),
    )
    send(stub, auth, track(browser, "Page Viewed", now))
    running.clock.advance(61)
    eventually(lambda: len(state.messages()) == 3)
    assert _sent(state) == sorted([(pro, "pro"), (browser, "browser"), (other, "other")])
    runs = state.runs("route")
    variants = {r.person_id: r.detail["label"] for r in runs if r.outcome == "VARIANT"}
    assert len(variants) == 3
    for person, label in variants.items():
        assert label == ("a" if split_bucket("route", "split", person) < 50 else "b")
    labels = {r.person_id: r.detail["label"] for r in runs if r.outcome == "BRANCH"}
    assert labels == {pro: "big", browser: "browsed", other: ""}


def _require_email_consent(stub: Stub, auth: Auth) -> None:
    rule = policy_pb.ConsentRule(channel=event_pb2.CHANNEL_EMAIL, mode=policy_pb.CONSENT_MODE_OPT_IN)
    policy = policy_pb.ContactPolicy(consent_rules=[rule])
    request = pb.UpdateContactPolicyRequest(contact_policy=policy)
    stub.UpdateContactPolicy(request, metadata=auth, timeout=10)


@pytest.mark.parametrize(
    ("behaviour", "expected"),
    [
        ("SUPPRESSION_BEHAVIOR_SKIP", [("after", "EXITED", "completed")]),
        ("SUPPRESSION_BEHAVIOR_BRANCH", [("fallback", "EXITED", "completed")]),
        ("SUPPRESSION_BEHAVIOR_EXIT", [("", "EXITED", "suppressed")]),
    ],
)
def test_action_suppressed_by_the_policy_records_why_and_follows_its_behaviour(
    running: Running,
    stub: Stub,
    auth: Auth,
    state: State,
    behaviour: str,
    expected: list[tuple[str, str, str]],
) -> None:
    _require_email_consent(stub, auth)
    extra: dict[str, Any] = {"on_suppressed": behaviour}
    if behaviour == "SUPPRESSION_BEHAVIOR_BRANCH":
        extra["suppressed_step_id"] = "fallback"
    steps = [
        _action("mail", "after", **extra),
        {"id": "after", "action": {"channel": "CHANNEL_PUSH", "action_id": "after"}},
    ]
    if behaviour == "SUPPRESSION_BEHAVIOR_BRANCH":
        steps.append({"id": "fallback", "action": {"channel": "CHANNEL_SMS", "action_id": "fallback"}})
    publish(stub, auth, "policed", _flow(steps))
    person = _person()
    send(stub, auth, track(person, "Signed Up", running.clock()))
    sent_step, status, reason = expected[0]
    assert state.statuses("policed") == [(person, status, reason)]
    assert _sent(state) == ([(person, sent_step)] if sent_step else [])
    suppressed = [r for r in state.runs("policed") if r.outcome == "SUPPRESSED"]
    assert [r.step_id for r in suppressed] == ["mail"]
    assert suppressed[0].detail["violations"][0]["reason"] == "NO_CONSENT"


def test_goal_converts_and_ends_the_entry(running: Running, stub: Stub, auth: Auth, state: State) -> None:
    steps = [{"id": "pause", "wait": {"duration": "86400s", "next_step_id": "hello"}}, _action("hello")]
    goal = {"event": {"event_name": "Order Completed"}, "window": "172800s", "exit_on_conversion": True}
    publish(stub, auth, "convert", _flow(steps, goal=goal))
    buyer, other = _person(), _person()
    send(stub, auth, track(buyer, "Signed Up", running.clock()), track(other, "Signed Up", running.clock()))
    send(stub, auth, track(buyer, "Order Completed", running.clock()))
    assert state.statuses("convert") == sorted([(buyer, "CONVERTED", "goal"), (other, "WAITING", "")])
    assert [t.person_id for t in running.store.timers(state.tenant)] == [other, other]  # wait, max duration


def test_a_version_published_while_persons_wait_leaves_them_on_theirs(
    running: Running, stub: Stub, auth: Auth, state: State
) -> None:
    steps = [{"id": "pause", "wait": {"duration": "3600s", "next_step_id": "v1"}}, _action("v1")]
    assert publish(stub, auth, "versions", _flow(steps)) == 1
    early, late = _person(), _person()
    send(stub, auth, track(early, "Signed Up", running.clock()))
    steps = [{"id": "pause", "wait": {"duration": "3600s", "next_step_id": "v2"}}, _action("v2")]
    assert publish(stub, auth, "versions", _flow(steps)) == 2
    send(stub, auth, track(late, "Signed Up", running.clock()))
    assert {e.person_id: e.version for e in state.entries("versions")} == {early: 1, late: 2}
    running.clock.advance(HOUR + 1)
    eventually(lambda: len(state.messages()) == 2)
    assert _sent(state) == sorted([(early, "v1"), (late, "v2")])


def test_the_abandoned_cart_example_runs_end_to_end(
    running: Running, stub: Stub, auth: Auth, state: State
) -> None:
    publish(stub, auth, "abandoned-cart", abandoned_cart()["definition"])
    buyer, emailed, pushed = _person(), _person(), _person()
    now = running.clock()
    prefers_push = track(pushed, "Channel Preference Updated", now, channel="push")
    send(stub, auth, prefers_push)
    send(
        stub,
        auth,
        *(
            track(p, "Cart Abandoned", now, cart_value=120, cart_url=f"https://shop.test/cart/{p}")
            for p in (buyer, emailed, pushed)
        ),
    )
    send(stub, auth, track(buyer, "Order Completed", now + 60))  # bought within the hour
    assert (buyer, "CONVERTED", "goal") in state.statuses("abandoned-cart")
    running.clock.advance(HOUR + 1)  # no purchase: the reminder, on the preferred channel
    eventually(lambda: len(state.messages()) == 2)
    reminders = {m.person_id: m for m in state.messages()}
    assert sorted(reminders) == sorted([emailed, pushed])
    email, push = reminders[emailed], reminders[pushed]
    assert (email.step_id, email.channel, email.connector, email.template_id) == (
        "email_reminder",
        "CHANNEL_EMAIL",
        "connectors/smtp",
        "cart-reminder-email",
    )
    assert email.personalisation == {"first_name": "there", "cart_url": f"https://shop.test/cart/{emailed}"}
    assert (push.step_id, push.channel, push.personalisation["cart_value"]) == (
        "push_reminder",
        "CHANNEL_PUSH",
        "120",
    )
    running.clock.advance(24 * HOUR + 1)  # a day later, the offer (no model, no journeys: free shipping)
    eventually(lambda: len(state.messages()) == 4)
    offers = sorted((m.person_id, m.step_id) for m in state.messages()[2:])
    assert offers == sorted([(emailed, "free_shipping_offer"), (pushed, "free_shipping_offer")])
    send(stub, auth, track(emailed, "Order Completed", running.clock()))
    statuses = {person: (status, reason) for person, status, reason in state.statuses("abandoned-cart")}
    assert statuses == {
        buyer: ("CONVERTED", "goal"),
        emailed: ("CONVERTED", "goal"),
        pushed: ("WAITING", ""),
    }
    assert len(state.messages()) == 4


def test_goal_step_waits_for_the_goal_and_exit_step_ends_with_its_reason(
    running: Running, stub: Stub, auth: Auth, state: State
) -> None:
    goal = {
        "event": {"event_name": "Order Completed"},
        "timeout": "3600s",
        "next_step_id": "thanks",
        "timeout_step_id": "give_up",
    }
    steps = [
        {"id": "purchase", "goal": goal},
        _action("thanks"),
        {"id": "give_up", "exit": {"reason": "no_sale"}},
    ]
    publish(stub, auth, "goals", _flow(steps))
    buyer, other = _person(), _person()
    send(stub, auth, track(buyer, "Signed Up", running.clock()), track(other, "Signed Up", running.clock()))
    send(stub, auth, track(buyer, "Order Completed", running.clock()))
    running.clock.advance(HOUR + 1)
    eventually(lambda: (other, "EXITED", "no_sale") in state.statuses("goals"))
    assert state.statuses("goals") == sorted(
        [(buyer, "CONVERTED", "completed"), (other, "EXITED", "no_sale")]
    )
    assert _sent(state) == [(buyer, "thanks")]


def test_action_suppressed_with_wait_sends_when_the_quiet_hours_end(
    running: Running, stub: Stub, auth: Auth, state: State
) -> None:
    minute = running.clock() // 60_000_000 % 1440
    quiet = policy_pb.QuietHours(
        channels=[event_pb2.CHANNEL_EMAIL], start_minute=minute, end_minute=(minute + 60) % 1440
    )
    request = pb.UpdateContactPolicyRequest(contact_policy=policy_pb.ContactPolicy(quiet_hours=[quiet]))
    stub.UpdateContactPolicy(request, metadata=auth, timeout=10)
    publish(stub, auth, "deferred", _flow([_action("mail", on_suppressed="SUPPRESSION_BEHAVIOR_WAIT")]))
    person = _person()
    send(stub, auth, track(person, "Signed Up", running.clock()))
    assert state.statuses("deferred") == [(person, "WAITING", "")]
    assert [
        r.detail["violations"][0]["reason"] for r in state.runs("deferred") if r.outcome == "SUPPRESSED"
    ] == ["QUIET_HOURS"]
    running.clock.advance(HOUR + 1)
    eventually(lambda: state.statuses("deferred") == [(person, "EXITED", "completed")])
    assert [m.idempotency_key for m in state.messages()] == [f"deferred/1/{person}/1/mail"]


def test_time_exits_and_exit_conditions_end_entries_with_their_reasons(
    running: Running, stub: Stub, auth: Auth, state: State
) -> None:
    steps = [{"id": "pause", "wait": {"duration": "86400s", "next_step_id": "hello"}}, _action("hello")]
    unsubscribed = {"event_since_entry": {"event": {"event_name": "Unsubscribed"}}}
    extra = {
        "time_exits": [{"time_in_flow": "7200s", "reason": "too_long"}],
        "exit_conditions": [unsubscribed],
    }
    publish(stub, auth, "exits", _flow(steps, **extra))
    leaver, stayer = _person(), _person()
    send(stub, auth, track(leaver, "Signed Up", running.clock()), track(stayer, "Signed Up", running.clock()))
    send(stub, auth, track(leaver, "Unsubscribed", running.clock()))
    assert (leaver, "EXITED", "exit_condition") in state.statuses("exits")
    running.clock.advance(2 * HOUR + 1)
    eventually(lambda: (stayer, "EXITED", "too_long") in state.statuses("exits"))
    assert _sent(state) == []
    assert running.store.timers(state.tenant) == []


def test_engagement_branch_follows_the_engagement_with_the_watched_message(
    running: Running, stub: Stub, auth: Auth, state: State
) -> None:
    engagement = {
        "action_step_id": "mail",
        "engagement": "ENGAGEMENT_TYPE_OPENED",
        "window": "3600s",
        "engaged_step_id": "thanks",
        "not_engaged_step_id": "nudge",
    }
    steps = [
        _action("mail", "opened"),
        {"id": "opened", "engagement_branch": engagement},
        {"id": "thanks", "action": {"channel": "CHANNEL_PUSH", "action_id": "thanks"}},
        {"id": "nudge", "action": {"channel": "CHANNEL_PUSH", "action_id": "nudge"}},
    ]
    publish(stub, auth, "engage", _flow(steps))
    reader, other = _person(), _person()
    send(stub, auth, track(reader, "Signed Up", running.clock()), track(other, "Signed Up", running.clock()))
    opened = track(reader, "Message Clicked", running.clock(), contact_id=f"engage/1/{reader}/1/mail")
    send(stub, auth, track(other, "Message Opened", running.clock(), contact_id="another-message"), opened)
    assert (reader, "thanks") in _sent(state)
    running.clock.advance(HOUR + 1)
    eventually(lambda: len(state.messages()) == 4)
    assert _sent(state) == sorted([(reader, "mail"), (reader, "thanks"), (other, "mail"), (other, "nudge")])


def test_wait_until_a_time_or_a_local_time(running: Running, stub: Stub, auth: Auth, state: State) -> None:
    steps = [
        {"id": "past", "wait": {"time": "2020-01-01T00:00:00Z", "next_step_id": "morning"}},
        {
            "id": "morning",
            "wait": {"local_time": {"hour": 9, "time_zone": "Asia/Tokyo"}, "next_step_id": "hello"},
        },
        _action("hello"),
    ]
    publish(stub, auth, "mornings", _flow(steps))
    person = _person()
    send(stub, auth, track(person, "Signed Up", running.clock()))
    assert [e.step_id for e in state.entries("mornings")] == ["morning"]  # a passed time continues at once
    due = next(t.due_time for t in running.store.timers(state.tenant) if t.step_id == "morning")
    local = datetime.fromtimestamp(due / 1e6, ZoneInfo("Asia/Tokyo"))
    assert (local.hour, local.minute) == (9, 0)
    assert 0 < due - running.clock() <= 86_400 * 1_000_000


@pytest.mark.parametrize("mode", ["PAUSE_MODE_HOLD", "PAUSE_MODE_DRAIN"])
def test_a_paused_flow_takes_no_entries_and_holds_or_drains_the_persons_inside(
    running: Running, stub: Stub, auth: Auth, state: State, mode: str
) -> None:
    steps = [{"id": "pause", "wait": {"duration": "60s", "next_step_id": "hello"}}, _action("hello")]
    publish(stub, auth, "paused", _flow(steps))
    inside, late = _person(), _person()
    send(stub, auth, track(inside, "Signed Up", running.clock()))
    request = pb.PauseFlowRequest(name="flows/paused", mode=pb.PauseMode.Value(mode))
    stub.PauseFlow(request, metadata=auth, timeout=10)
    send(stub, auth, track(late, "Signed Up", running.clock()))
    assert [e.person_id for e in state.entries("paused")] == [inside]
    running.clock.advance(61)
    if mode == "PAUSE_MODE_DRAIN":
        eventually(lambda: _sent(state) == [(inside, "hello")])
        return
    time.sleep(0.5)  # several polls of the timer loop
    assert _sent(state) == []
    stub.PublishFlow(pb.PublishFlowRequest(name="flows/paused"), metadata=auth, timeout=10)
    running.clock.advance(61)  # the held timer's lease (1 s here) has long passed
    eventually(lambda: _sent(state) == [(inside, "hello")])


def test_a_goal_step_with_skip_ahead_takes_a_converted_person_there_from_anywhere(
    running: Running, stub: Stub, auth: Auth, state: State
) -> None:
    steps = [
        {"id": "pause", "wait": {"duration": "86400s", "next_step_id": "pitch"}},
        _action("pitch", "bought"),
        {
            "id": "bought",
            "goal": {
                "event": {"event_name": "Order Completed"},
                "skip_ahead": True,
                "next_step_id": "thanks",
            },
        },
        _action("thanks"),
    ]
    publish(stub, auth, "skip", _flow(steps))
    buyer = _person()
    send(stub, auth, track(buyer, "Signed Up", running.clock()))
    send(stub, auth, track(buyer, "Order Completed", running.clock()))
    assert state.statuses("skip") == [(buyer, "CONVERTED", "completed")]
    assert _sent(state) == [(buyer, "thanks")]
    assert running.store.timers(state.tenant) == []


def test_an_event_delivered_twice_wakes_one_wait(
    running: Running, stub: Stub, auth: Auth, state: State
) -> None:
    def wait_for(step_id: str, following: str) -> dict[str, Any]:
        event = {"event": {"event_name": "Opened"}, "timeout": "86400s", "timeout_step_id": ""}
        return {"id": step_id, "wait": {"event": event, "next_step_id": following}}

    publish(
        stub,
        auth,
        "opens",
        _flow([wait_for("first", "second"), wait_for("second", "hello"), _action("hello")]),
    )
    person = _person()
    send(stub, auth, track(person, "Signed Up", running.clock()))
    opened = track(person, "Opened", running.clock())
    send(stub, auth, opened)
    send(stub, auth, opened)  # the same event again: the second wait still waits
    assert [(e.step_id, e.status.value) for e in state.entries("opens")] == [("second", "WAITING")]
    send(stub, auth, track(person, "Opened", running.clock()))
    assert _sent(state) == [(person, "hello")]


def test_a_goal_without_exit_counts_conversions_within_its_window_only(
    running: Running, stub: Stub, auth: Auth, state: State
) -> None:
    steps = [{"id": "pause", "wait": {"duration": "7200s", "next_step_id": "hello"}}, _action("hello")]
    goal = {"event": {"event_name": "Order Completed"}, "window": "3600s"}
    publish(stub, auth, "window", _flow(steps, goal=goal))
    early, late = _person(), _person()
    send(stub, auth, track(early, "Signed Up", running.clock()), track(late, "Signed Up", running.clock()))
    send(stub, auth, track(early, "Order Completed", running.clock()))
    running.clock.advance(HOUR + 1)
    send(stub, auth, track(late, "Order Completed", running.clock()))  # after the window
    assert state.statuses("window") == sorted([(early, "WAITING", ""), (late, "WAITING", "")])
    running.clock.advance(HOUR)
    eventually(lambda: len(state.messages()) == 2)  # converted persons go on: the goal does not end them
    eventually(lambda: all(not e.live for e in state.entries("window")))
    assert state.statuses("window") == sorted(
        [(early, "CONVERTED", "completed"), (late, "EXITED", "completed")]
    )
