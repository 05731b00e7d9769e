"""The analytics read models the servicer answers from, each behind a small Protocol declared by its domain
module (funnels.py, paths.py, ...) and implemented in store/<model>.py. service.py builds the ClickHouse
implementations; tests may build the servicer with any of them.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ReadModels"]


@dataclass(frozen=True)
class ReadModels:
    """One field per read model; each issue-8 read model adds its own."""
