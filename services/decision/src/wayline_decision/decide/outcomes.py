"""What became of each candidate: ranked (chosen, returned or not) or filtered, with its factors."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from wayline_decision.decide.model import Candidate, Factors, Filter, Outcome

__all__ = ["CandidateRecord", "outcomes"]


@dataclass(frozen=True, slots=True)
class CandidateRecord:
    candidate: Candidate
    outcome: Outcome
    rank: int = 0  # among the eligible, 1 for the best; 0 when filtered
    factors: Factors | None = None  # None when filtered before scoring
    filter: Filter | None = None


def outcomes(
    candidates: Sequence[Candidate],
    ranked: Sequence[tuple[Candidate, Factors]],
    returned: Sequence[tuple[Candidate, Factors]],
    filters: Mapping[int, Filter],
    scored: Mapping[int, Factors],
) -> tuple[list[CandidateRecord], list[CandidateRecord]]:
    """Every candidate's record (the ranked in order, then the filtered in candidate order) and the
    returned ones' records in the order returned."""
    returned_ids = {c.action_id for c, _ in returned}
    chosen = returned[0][0].action_id if returned else None
    records: list[CandidateRecord] = []
    by_id: dict[str, CandidateRecord] = {}
    for position, (candidate, factors) in enumerate(ranked, 1):
        if candidate.action_id == chosen:
            outcome = Outcome.CHOSEN
        elif candidate.action_id in returned_ids:
            outcome = Outcome.RETURNED
        else:
            outcome = Outcome.NOT_RETURNED
        record = CandidateRecord(candidate, outcome, position, factors)
        records.append(record)
        by_id[candidate.action_id] = record
    for index, candidate in enumerate(candidates):
        found = filters.get(index)
        if found is not None:
            records.append(CandidateRecord(candidate, Outcome.FILTERED, 0, scored.get(index), found))
    return records, [by_id[c.action_id] for c, _ in returned]
