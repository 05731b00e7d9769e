"""`python -m bench [scenario] [--requests N]`: run benchmarks, each beside its same-run baseline."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from bench import (
    console,
    decide,
    decision_gateway,
    decision_scoring,
    decision_state,
    feed_followers,
    gateway,
    hot_swap,
    http_collector,
    identity,
    identity_stream,
    ingest,
    journeys,
    journeys_erasure,
    journeys_inserts,
    ml,
    ml_store,
    orchestrator,
    track,
)

SCENARIOS: dict[str, Callable[[argparse.Namespace], object]] = {
    "track": lambda args: track.main(args.requests),
    "ingest": lambda args: ingest.main(args.requests, minutes=args.minutes),
    "identity": lambda args: identity.main(
        args.requests,
        sizes=tuple(int(size) for size in args.profiles.split(",")),
        engines=tuple(args.engines.split(",")),
        visits=identity_stream.Visits(args.session_events, args.session_gap),
    ),
    "http": lambda args: http_collector.main(args.requests),
    "journeys": lambda args: journeys.main(args.requests, args.events, args.seed, args.cache_dir),
    "journeys-inserts": lambda args: journeys_inserts.main(args.requests, args.cache_dir),
    "journeys-erasure": lambda args: journeys_erasure.main(args.erasures, args.cache_dir, args.erasure_batch),
    "console": lambda args: console.main(args.events, args.seed, args.cache_dir),
    "gateway": lambda args: gateway.main(args.requests, rounds=args.rounds),
    "feed-followers": lambda args: feed_followers.main(args.tenants, args.idle_seconds),
    "ml": lambda args: ml.main(tuple(args.ml_configs.split(","))),
    "ml-store": lambda args: ml_store.main(args.people),
    "decision-scoring": lambda args: decision_scoring.main(),
    "decision-state": lambda args: decision_state.main(args.persons),
    "decide": lambda args: decide.main(args.requests),
    "decision-rollout": lambda args: hot_swap.main(),
    "decision-gateway": lambda args: decision_gateway.main(
        args.requests,
        persons=args.persons_online,
        rate=args.rate,
        nginx=args.nginx,
        decision_cpus=args.decision_cpus,
    ),
    "orchestrator": lambda args: orchestrator.main(
        orchestrator.Sizes(
            persons=args.ledger_persons,
            requests=args.requests,
            flow_persons=args.flow_persons,
            timers=args.timers,
            window_s=args.timer_window,
            timer_polls=tuple(float(poll) for poll in args.timer_polls.split(",")),
        ),
        database_url=args.database_url,
        postgres=args.postgres,
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("scenario", nargs="?", choices=sorted(SCENARIOS), help="one scenario (default: all)")
    parser.add_argument("--requests", type=int, default=2000, help="timed requests per row")
    parser.add_argument(
        "--minutes", type=float, default=0.0, help="ingest: length of the RSS soak after the rows"
    )
    parser.add_argument(
        "--events", type=int, default=10_000_000, help="journeys: generated events (cached on disk)"
    )
    parser.add_argument("--seed", type=int, default=1, help="journeys: the generator's seed")
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=journeys.DEFAULT_CACHE,
        help="journeys: where generated data is kept",
    )
    parser.add_argument(
        "--erasures", type=int, default=40, help="journeys-erasure: persons erased one after another"
    )
    parser.add_argument(
        "--tenants", type=int, default=1000, help="feed-followers: tenants of one event each, then idle"
    )
    parser.add_argument(
        "--idle-seconds", type=float, default=20.0, help="feed-followers: the idle window measured"
    )
    parser.add_argument(
        "--erasure-batch", type=int, default=10, help="journeys-erasure: persons a call in the batched rows"
    )
    parser.add_argument("--rounds", type=int, default=1, help="gateway: repeat every row, interleaved")
    parser.add_argument(
        "--ml-configs", default="default,large", help="ml: table sizes, comma-separated (default, large)"
    )
    parser.add_argument(
        "--profiles", default="10000,100000,1000000", help="identity: profile counts, comma-separated"
    )
    parser.add_argument(
        "--engines", default="sqlite,postgresql", help="identity: databases to run on (sqlite, postgresql)"
    )
    parser.add_argument(
        "--session-events",
        type=float,
        default=identity_stream.SESSION_EVENTS_MEAN,
        help="identity: the stream's events per session, on average",
    )
    parser.add_argument(
        "--session-gap",
        type=float,
        default=identity_stream.GAP_MEAN_SECONDS,
        help="identity: the stream's seconds between two events of a session, on average",
    )
    parser.add_argument("--people", type=int, default=3000, help="ml-store: generated persons (90 days)")
    parser.add_argument(
        "--persons", type=int, default=200, help="decision-state: persons of 300 events each (40 days)"
    )
    parser.add_argument(
        "--persons-online", type=int, default=500, help="decision-gateway: persons known online, decided for"
    )
    parser.add_argument("--rate", type=float, default=500.0, help="decision-gateway: the paced row's calls/s")
    parser.add_argument(
        "--nginx",
        action="store_true",
        help="decision-gateway: the rows again through two gateways with the nginx data plane (ADR 105)",
    )
    parser.add_argument(
        "--decision-cpus",
        default="",
        help="decision-gateway: the CPUs the decision service runs on (cpuset list, e.g. 1; ADR 108)",
    )
    parser.add_argument(
        "--ledger-persons", type=int, default=20_000, help="orchestrator: persons with contact history"
    )
    parser.add_argument(
        "--flow-persons",
        type=int,
        default=10_000,
        help="orchestrator: persons entering the abandoned-cart flow",
    )
    parser.add_argument("--timers", type=int, default=2_000, help="orchestrator: timers due over the window")
    parser.add_argument(
        "--timer-window", type=float, default=60.0, help="orchestrator: seconds the due timers spread over"
    )
    parser.add_argument(
        "--timer-polls",
        default="1",
        help="orchestrator: the timer loop's poll intervals (s) to run, comma-separated",
    )
    parser.add_argument(
        "--postgres", action="store_true", help="orchestrator: also on a throwaway PostgreSQL server"
    )
    parser.add_argument(
        "--database-url", default="", help="orchestrator: also on PostgreSQL, a fresh database on this server"
    )
    args = parser.parse_args()
    for name, run in SCENARIOS.items():
        if args.scenario in (None, name):
            run(args)


if __name__ == "__main__":
    main()
