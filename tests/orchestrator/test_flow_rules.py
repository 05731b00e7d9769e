"""The flow definition's rules, each with the field path of its violation, on the domain module alone (no
server): a draft may be incomplete, publication refuses every problem."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.orchestrator.flow_samples import abandoned_cart, small_flow, win_back
from wayline_orchestrator.flows import draft_violations, publish_violations

P = "flow.definition"


def problems(definition: dict[str, Any]) -> set[tuple[str, str]]:
    return {(v.field, v.reason) for v in publish_violations(definition)}


def test_the_examples_are_valid() -> None:
    assert publish_violations(small_flow()) == []
    assert publish_violations(abandoned_cart()["definition"]) == []
    assert publish_violations(win_back()["definition"]) == []


def _steps(d: dict[str, Any]) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = d["steps"]
    return steps


CASES: dict[str, tuple[Callable[[dict[str, Any]], None], str, str]] = {
    "missing trigger": (lambda d: d.pop("trigger"), f"{P}.trigger", "REQUIRED"),
    "trigger event without name": (
        lambda d: d.update(trigger={"event": {"event": {}}}),
        f"{P}.trigger.event.event.event_name",
        "REQUIRED",
    ),
    "bad segment": (
        lambda d: d.update(trigger={"segment_entry": {"segment": "vip"}}),
        f"{P}.trigger.segment_entry.segment",
        "INVALID",
    ),
    "bad cron": (
        lambda d: d.update(trigger={"schedule": {"segment": "segments/vip", "cron": "61 * * * *"}}),
        f"{P}.trigger.schedule.cron",
        "INVALID",
    ),
    # int() refused the 5,000 digits with a ValueError (INTERNAL); other scripts' digits are no cron.
    "cron with a number of 5,000 digits": (
        lambda d: d.update(
            trigger={"schedule": {"segment": "segments/vip", "cron": "9" * 5000 + " * * * *"}}
        ),
        f"{P}.trigger.schedule.cron",
        "INVALID",
    ),
    "cron in arabic-indic digits": (
        lambda d: d.update(trigger={"schedule": {"segment": "segments/vip", "cron": "\u0665 * * * *"}}),
        f"{P}.trigger.schedule.cron",
        "INVALID",
    ),
    "short interval": (
        lambda d: d.update(trigger={"schedule": {"segment": "segments/vip", "interval": "60s"}}),
        f"{P}.trigger.schedule.interval",
        "OUT_OF_RANGE",
    ),
    "schedule without cadence": (
        lambda d: d.update(trigger={"schedule": {"segment": "segments/vip"}}),
        f"{P}.trigger.schedule",
        "REQUIRED",
    ),
    "bad time zone": (
        lambda d: d.update(
            trigger={
                "schedule": {"segment": "segments/vip", "cron": "0 9 * * 1", "time_zone": "Mars/Olympus"}
            }
        ),
        f"{P}.trigger.schedule.time_zone",
        "INVALID",
    ),
    "time zone that is a directory of the tz database": (
        lambda d: d.update(
            trigger={"schedule": {"segment": "segments/vip", "cron": "0 9 * * 1", "time_zone": "America"}}
        ),
        f"{P}.trigger.schedule.time_zone",
        "INVALID",
    ),
    "time zone too long for a file name": (
        lambda d: d.update(
            trigger={"schedule": {"segment": "segments/vip", "cron": "0 9 * * 1", "time_zone": "x" * 300}}
        ),
        f"{P}.trigger.schedule.time_zone",
        "INVALID",
    ),
    "schedule ends before it starts": (
        lambda d: d.update(
            trigger={
                "schedule": {
                    "segment": "segments/vip",
                    "cron": "0 9 * * 1",
                    "start_time": "2027-01-02T00:00:00Z",
                    "end_time": "2027-01-01T00:00:00Z",
                }
            }
        ),
        f"{P}.trigger.schedule.end_time",
        "INVALID",
    ),
    "cooldown without re-entry": (
        lambda d: d.update(entry_rules={"reentry_cooldown": "60s"}),
        f"{P}.entry_rules.reentry_cooldown",
        "INVALID",
    ),
    "missing entry step": (lambda d: d.pop("entry_step_id"), f"{P}.entry_step_id", "REQUIRED"),
    "unknown entry step": (lambda d: d.update(entry_step_id="nope"), f"{P}.entry_step_id", "UNKNOWN_STEP"),
    "duplicate step id": (lambda d: _steps(d)[4].update(id="tips"), f"{P}.steps[4].id", "DUPLICATE_ID"),
    "malformed step id": (lambda d: _steps(d)[4].update(id="Done!"), f"{P}.steps[4].id", "INVALID"),
    "step without kind": (lambda d: _steps(d)[4].pop("exit"), f"{P}.steps[4]", "REQUIRED"),
    "unknown step reference": (
        lambda d: _steps(d)[0]["wait"].update(next_step_id="ghost"),
        f"{P}.steps[0].wait.next_step_id",
        "UNKNOWN_STEP",
    ),
    "unreachable step": (
        lambda d: _steps(d)[3]["action"].update(next_step_id=""),
        f"{P}.steps[4]",
        "UNREACHABLE",
    ),
    "cycle without wait": (
        lambda d: _steps(d)[3]["action"].update(next_step_id="welcome"),
        f"{P}.steps[1]",
        "CYCLE_WITHOUT_WAIT",
    ),
    "self loop": (
        lambda d: _steps(d)[3]["action"].update(next_step_id="tips"),
        f"{P}.steps[3]",
        "CYCLE_WITHOUT_WAIT",
    ),
    "split not 100": (
        lambda d: _steps(d)[2]["split"]["variants"][0].update(weight=60.0),
        f"{P}.steps[2].split.variants",
        "SPLIT_WEIGHTS",
    ),
    "non-positive weight": (
        lambda d: _steps(d)[2]["split"]["variants"][0].update(weight=0.0),
        f"{P}.steps[2].split.variants[0].weight",
        "INVALID",
    ),
    "two controls": (
        lambda d: _steps(d)[2]["split"]["variants"][0].update(control=True),
        f"{P}.steps[2].split.variants",
        "INVALID",
    ),
    "one variant": (
        lambda d: _steps(d)[2]["split"]["variants"].pop(),
        f"{P}.steps[2].split.variants",
        "REQUIRED",
    ),
    "action without channel": (
        lambda d: _steps(d)[1]["action"].pop("channel"),
        f"{P}.steps[1].action.channel",
        "REQUIRED",
    ),
    "action without what to send": (
        lambda d: _steps(d)[1]["action"].pop("action_id"),
        f"{P}.steps[1].action",
        "REQUIRED",
    ),
    "bad connector": (
        lambda d: _steps(d)[1]["action"].update(connector={"connector": "smtp", "template_id": "t"}),
        f"{P}.steps[1].action.connector.connector",
        "INVALID",
    ),
    "personalisation source": (
        lambda d: _steps(d)[1]["action"].update(
            connector={
                "connector": "connectors/smtp",
                "template_id": "t",
                "personalisation": [{"name": "x", "source": "profile.x"}],
            }
        ),
        f"{P}.steps[1].action.connector.personalisation[0].source",
        "INVALID",
    ),
    "wait of zero": (
        lambda d: _steps(d)[0]["wait"].update(duration="0s"),
        f"{P}.steps[0].wait.duration",
        "OUT_OF_RANGE",
    ),
    "local time out of range": (
        lambda d: _steps(d)[0].update(wait={"local_time": {"hour": 24}, "next_step_id": "welcome"}),
        f"{P}.steps[0].wait.local_time.hour",
        "OUT_OF_RANGE",
    ),
    "engagement on a non-action": (
        lambda d: (
            _steps(d)[4].update(
                exit=None,
                engagement_branch={
                    "action_step_id": "split",
                    "engagement": "ENGAGEMENT_TYPE_OPENED",
                    "window": "60s",
                },
            )
            or _steps(d)[4].pop("exit")
        ),
        f"{P}.steps[4].engagement_branch.action_step_id",
        "NOT_AN_ACTION_STEP",
    ),
    "decision without actions": (
        lambda d: (
            _steps(d)[4].update(
                exit=None, branch={"branches": [{"condition": {"decision": {"placement": "p"}}}]}
            )
            or _steps(d)[4].pop("exit")
        ),
        f"{P}.steps[4].branch.branches[0].condition.decision.action_ids",
        "REQUIRED",
    ),
    "preference without channel": (
        lambda d: (
            _steps(d)[4].update(exit=None, branch={"branches": [{"condition": {"channel_preference": {}}}]})
            or _steps(d)[4].pop("exit")
        ),
        f"{P}.steps[4].branch.branches[0].condition.channel_preference.channels",
        "REQUIRED",
    ),
    "goal without event": (lambda d: d["goal"].pop("event"), f"{P}.goal.event.event_name", "REQUIRED"),
    "goal window past max duration": (
        lambda d: d.update(max_duration="86400s"),
        f"{P}.goal.window",
        "OUT_OF_RANGE",
    ),
    "empty time exit": (lambda d: d.update(time_exits=[{"reason": "x"}]), f"{P}.time_exits[0]", "REQUIRED"),
    "time exit past max duration": (
        lambda d: d.update(time_exits=[{"time_in_flow": "8000000s"}]),
        f"{P}.time_exits[0].time_in_flow",
        "OUT_OF_RANGE",
    ),
    "segment exit": (
        lambda d: d.update(time_exits=[{"segment_exit": {"segment": "segments/"}}]),
        f"{P}.time_exits[0].segment_exit.segment",
        "INVALID",
    ),
    "empty exit condition": (lambda d: d.update(exit_conditions=[{}]), f"{P}.exit_conditions[0]", "REQUIRED"),
    "priority": (lambda d: d.update(priority=1001), f"{P}.priority", "OUT_OF_RANGE"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_publish_rule_names_its_field(case: str) -> None:
    change, field, reason = CASES[case]
    definition = small_flow()
    change(definition)
    found = problems(definition)
    assert (field, reason) in found, found


def test_every_violation_is_reported_at_once() -> None:
    definition = small_flow()
    definition.pop("trigger")
    _steps(definition)[0]["wait"]["next_step_id"] = "ghost"
    _steps(definition)[2]["split"]["variants"][0]["weight"] = 10.0
    fields = {field for field, _ in problems(definition)}
    assert {f"{P}.trigger", f"{P}.steps[0].wait.next_step_id", f"{P}.steps[2].split.variants"} <= fields


def test_a_cycle_through_a_wait_is_allowed() -> None:
    definition = small_flow()
    _steps(definition)[3]["action"]["next_step_id"] = "wait"
    _steps(definition)[2]["split"]["variants"][1]["next_step_id"] = "done"
    assert problems(definition) == set()


def test_a_draft_may_be_incomplete_but_not_malformed() -> None:
    assert draft_violations({}) == []
    assert (
        draft_violations({"steps": [{"id": "a", "wait": {"next_step_id": "b"}}], "entry_step_id": "z"}) == []
    )
    malformed = {"steps": [{"id": "A"}, {"id": "b", "wait": {"duration": "-5s"}}], "priority": -1}
    assert {v.field for v in draft_violations(malformed)} == {
        f"{P}.steps[0].id",
        f"{P}.steps[1].wait.duration",
        f"{P}.priority",
    }


def test_too_many_steps_is_one_violation_not_a_crash() -> None:
    steps = [
        {"id": f"s{i}", "action": {"channel": "CHANNEL_EMAIL", "action_id": "a", "next_step_id": f"s{i + 1}"}}
        for i in range(5000)
    ]
    definition = {**small_flow(), "steps": steps, "entry_step_id": "s0"}
    assert (f"{P}.steps", "OUT_OF_RANGE") in problems(definition)
