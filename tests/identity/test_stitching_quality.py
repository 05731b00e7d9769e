"""Stitching quality on generated people with known truth: precision and recall, reported in the test output
(`-s`) and held to what deterministic rules must give."""

from __future__ import annotations

from dataclasses import replace

from tests.identity.stitching import generate, pair_quality, reachable
from wayline_identity.identity import Identity
from wayline_identity.rules import DEFAULT_RULES


def test_stitching_quality_on_generated_people(identity: Identity) -> None:
    identity.update_rules(
        "q", replace(DEFAULT_RULES, default_phone_region="FR"), ["default_phone_region"], ""
    )
    generated = generate(people=300, seed=3, households=20)
    persons: list[str] = []
    for start in range(0, len(generated), 500):
        chunk = generated[start : start + 500]
        persons.extend(r.person_id for r in identity.resolve("q", [g.item for g in chunk]).resolutions)
    assert all(persons)  # every generated event carries at least one usable identifier
    canonical = {p: identity.person_of("q", p) for p in set(persons)}
    predicted = [canonical[p] for p in persons]
    rules = replace(DEFAULT_RULES, default_phone_region="FR")
    truth = [g.truth for g in generated]
    everything = pair_quality(truth, predicted)
    named = [i for i, g in enumerate(generated) if g.deterministic]
    groups = reachable(generated, rules)
    evidence = pair_quality([groups[i] for i in named], [predicted[i] for i in named])
    deterministic = pair_quality([truth[i] for i in named], [predicted[i] for i in named])
    print(
        f"\nstitching {everything.events} events of {len(set(truth))} people:"
        f" precision {everything.precision:.4f} recall {everything.recall:.4f};"
        f" events with a user id, email or phone ({deterministic.events}):"
        f" precision {deterministic.precision:.4f} recall {deterministic.recall:.4f},"
        f" of what their identifiers allow {evidence.recall:.4f}"
    )
    assert deterministic.precision == 1.0  # deterministic identifiers never join two people
    assert (
        evidence.recall == 1.0
    )  # every link the identifiers allow is made, through case, spaces and formats
    assert everything.precision > 0.95  # only anonymous events on shared tablets may land on the wrong member
