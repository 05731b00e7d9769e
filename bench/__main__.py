"""`python -m bench [scenario] [--requests N]`: run benchmarks, each beside its same-run baseline."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from bench import identity, ingest, track

SCENARIOS: dict[str, Callable[[int, float], object]] = {
    "track": lambda requests, _minutes: track.main(requests),
    "ingest": lambda requests, minutes: ingest.main(requests, minutes=minutes),
    "identity": lambda requests, _minutes: identity.main(requests),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("scenario", nargs="?", choices=sorted(SCENARIOS), help="one scenario (default: all)")
    parser.add_argument("--requests", type=int, default=2000, help="timed requests per row")
    parser.add_argument(
        "--minutes", type=float, default=0.0, help="ingest: length of the RSS soak after the rows"
    )
    args = parser.parse_args()
    for name, run in SCENARIOS.items():
        if args.scenario in (None, name):
            run(args.requests, args.minutes)


if __name__ == "__main__":
    main()
