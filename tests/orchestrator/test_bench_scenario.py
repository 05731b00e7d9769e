"""`python -m bench orchestrator` at a tiny size, on SQLite: a real server in its own process, the ledger
filled, CheckContact answered, persons entering the abandoned-cart flow and staying inside it, every timer of
the timer flow fired, none before its due time. The figures' values are the machine's business; this checks
that the scenario measures what it says it measures."""

from __future__ import annotations

from bench.orchestrator import Sizes, main

PERSONS = 200
TIMERS = 20


def test_the_orchestrator_bench_runs_every_part_at_a_tiny_size() -> None:
    sizes = Sizes(
        persons=PERSONS,
        requests=60,
        flow_persons=PERSONS,
        batch=64,  # not a divisor of the persons: the last call is short
        timers=TIMERS,
        window_s=1.0,
        timer_lead_s=0.5,
        timer_polls=(0.2,),
    )
    figures = main(sizes)["sqlite"]
    checks = figures["checks"]
    assert sorted((m.scenario, m.concurrency, m.requests) for m in checks) == [
        ("CheckContact", 0, 60),  # paced at Decide's target rate
        ("CheckContact", 1, 60),
        ("CheckContact", 16, 60),
        ("bare thread-pool echo", 0, 60),
        ("bare thread-pool echo", 1, 60),
        ("bare thread-pool echo", 16, 60),
    ]
    assert [(m.scenario, m.concurrency, m.requests) for m in figures["paced_sync"]] == [
        ("bare thread-pool echo", 0, 60),
        ("CheckContact, no cache", 0, 60),  # a second server, the check cache off
        ("CheckContact, as left", 0, 60),  # the check cache as the rows before left it
        ("CheckContact, warm", 0, 60),  # after every person was checked once
    ]
    assert 0 < figures["paced_sync_repeated"] <= 1  # the share of its persons checked before
    answers = figures["answers"]
    assert answers["checked"] > 0
    assert 0 < answers["allowed"] < answers["checked"]  # the policy allows some contacts and forbids others
    flows = figures["flows"]
    assert [(served.events, echoed.events) for served, echoed in flows.rows] == [(PERSONS, PERSONS)] * 3
    assert flows.live_entries == PERSONS  # the wake-ups kept everyone inside
    assert flows.timers == 3 * PERSONS  # each waits an hour, and has its max-duration and stale-cart exits
    assert [m.scenario for m in figures["beside_writes"]] == [
        "bare thread-pool echo, writes alongside",
        "CheckContact, writes alongside",
    ]
    assert [(m.scenario, m.requests) for m in figures["writes_apart"]] == [
        ("bare thread-pool echo, writes in a second process", 60),
        ("CheckContact, writes in a second process", 60),
    ]
    lag = figures["lags"][0.2]
    assert (lag.timers, lag.fired) == (TIMERS, TIMERS)
    assert lag.p50_ms >= 0
    assert lag.max_ms >= lag.p99_ms >= lag.p50_ms
