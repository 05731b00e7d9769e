"""The funnel walks that take time linear in a person's events (up to sorting): ORDERED without gaps and
exclusions, STRICT, and ANY. The general walk of funnel_sql.py visits, for every start, every event of its
window, so a person with many first-step events costs the square of their events; these compute the same
results (docs/funnels.md) from whole-array operations instead, and funnel_sql.py uses them when they apply.

Why they agree with the definitions:
- ORDERED without gaps or exclusions: from a start, taking each step's first matching event after the
  previous one (greedy) gives, at every step, the earliest event that any attempt from that start can use
  there (by induction: an attempt's event of step k follows its event of step k-1, which is no earlier than
  the greedy one). So the greedy attempt reaches the furthest step within the window, and it is also the
  reported attempt (its step-K event comes first, then its step K-1 event, and so on). Every attempt is
  clean, as there is no exclusion.
- STRICT: an attempt from position s is s, s+1, ..., so only its length is open. Its own events are the only
  ones between its steps, so an exclusion rules an attempt that reached step k out only when k < to_step and
  an event exposing step k follows s+k within the window.
- ANY: each step's first matching event from the start, as defined.

Per person (and breakdown value for EACH_STEP), with the events in sequence order as arrays `ts` (µs), `ms`
(step bits), `xs` (exclusion bits) and positions 1..L:
- `q0`: the starts (as keys, see _NONE), `t0` their times, and `E` the last position within each start's
  window;
- "the first step-k event after each of the positions q" (q non-decreasing, as the greedy steps of
  successive starts are) is one sort of the keys 2p of the step-k events together with the keys 2q+1,
  after which each query takes the next even key (`arrayReverseFill`). A lambda that captured the person's
  arrays would copy them once per element it visits; none here does.
- each start's furthest step, then the best start (the furthest, the earliest on ties) and its step times.
"""

from __future__ import annotations

from wayline_journeys.funnels import FunnelOrder, FunnelQuery

__all__ = ["linear_walk", "walks_linearly"]

# Positions are doubled: an event at position p is the key 2p, and "after position p" the key 2p+1, so that
# one sort merges events with queries. _NONE, odd and above every key, stands for "no such event".
_NONE = 2**32 + 1


def walks_linearly(query: FunnelQuery) -> bool:
    """Whether `linear_walk` computes this funnel."""
    if query.order is FunnelOrder.ORDERED:
        plain = all(s.min_gap_us == 0 and s.max_gap_us is None for s in query.steps[1:])
        return plain and not query.exclusions
    return True


def _nest(base: str, stages: list[list[str]]) -> str:
    """Each stage is its own SELECT, so that ClickHouse never expands one alias inside another."""
    for columns in stages:
        base = f"SELECT *, {', '.join(columns)} FROM ({base})"
    return base


def _first_from(bit: int, queries: str, alias: str) -> list[list[str]]:
    """For each key of `queries` (odd, non-decreasing), the key 2p of the first event with step bit `bit`
    that sorts after it, or _NONE."""
    events = f"arrayFilter((x, m) -> bitTest(m, {bit}), p2, ms)"
    filled = f"arrayReverseFill(x -> x % 2 = 0, mk_{alias})"
    found = f"arrayFilter((f, x) -> x % 2 != 0, {filled}, mk_{alias})"
    return [
        [f"arraySort(arrayConcat({events}, {queries})) AS mk_{alias}"],
        [f"arrayMap(x -> if(x % 2 = 0, x, {_NONE}), {found}) AS {alias}"],
    ]


def _counts_until(times: str, limits: str, alias: str) -> list[list[str]]:
    """For each limit of `limits` (non-decreasing µs), how many of the sorted `times` are at or before it."""
    merged = f"arraySort(arrayConcat(arrayMap(t -> 2 * t, {times}), arrayMap(t -> 2 * t + 1, {limits})))"
    counts = f"arrayCumSum(arrayMap(x -> toUInt32(x % 2 = 0), wk_{alias}))"
    return [
        [f"{merged} AS wk_{alias}"],
        [f"arrayFilter((c, x) -> x % 2 != 0, {counts}, wk_{alias}) AS {alias}"],
    ]


def _starts(query: FunnelQuery, start: str) -> list[list[str]]:
    """p2 (every event's key), q0 (the starts' keys), t0 (their times) and E (the last position in each
    start's window); `start` is the condition on an event's step bits `m` and time `t`."""
    window = f"arrayMap(t -> t + {query.window_us}, t0)"
    return [
        ["arrayMap(i -> 2 * toInt64(i), arrayEnumerate(ms)) AS p2"],
        [
            f"arrayFilter((x, m, t) -> {start}, p2, ms, ts) AS q0",
            f"arrayFilter((t, m) -> {start}, ts, ms) AS t0",
        ],
        *_counts_until("ts", window, "E"),
    ]


def _best(levels: str, chain: list[str]) -> list[list[str]]:
    """The furthest level over the starts (`levels`, aligned with q0), the earliest start on ties, and its
    attempt: `chain` are the keys of its steps (expressions over the start's index `b`)."""
    positions = ", ".join(f"intDiv({key}, 2)" for key in chain)
    times = ", ".join(f"ts[intDiv({key}, 2)]" for key in chain)
    return [
        [f"{levels} AS Ks"],
        ["arrayMax(Ks) AS K"],
        ["arrayFirstIndex(x -> x = K, Ks) AS b"],
        [
            f"(toInt64(K), arraySlice([{times}], 1, K + 1), vs[intDiv(q0[b], 2)], "
            f"vs[[{positions}][K + 1]]) AS best",
        ],
    ]


def _ordered(query: FunnelQuery) -> list[list[str]]:
    n = len(query.steps)
    stages: list[list[str]] = []
    for k in range(1, n):
        stages += _first_from(k, f"arrayMap(q -> bitOr(q, 1), q{k - 1})", f"q{k}")
    # Keys grow along an attempt, so the steps within the window are a prefix: count them.
    args = ", ".join(f"q{k}" for k in range(1, n))
    reached = " + ".join(f"toInt64(q{k} <= 2 * e)" for k in range(1, n))
    levels = f"arrayMap((e, {args}) -> {reached}, E, {args})"
    return stages + _best(levels, [f"q{k}[b]" for k in range(n)])


def _any(query: FunnelQuery) -> list[list[str]]:
    n = len(query.steps)
    stages: list[list[str]] = []
    for k in range(n):
        stages += _first_from(k, "arrayMap(q -> q - 1, q0)", f"f{k}")
    args = ", ".join(f"f{k}" for k in range(n))
    performed = " + ".join(f"toInt64(f{k} <= 2 * e)" for k in range(n))
    firsts = ", ".join(f"f{k}[b]" for k in range(n))
    stages += [
        [f"arrayMap((e, {args}) -> {performed} - 1, E, {args}) AS Ks"],
        ["arrayMax(Ks) AS K"],
        ["arrayFirstIndex(x -> x = K, Ks) AS b"],
        ["2 * E[b] AS last"],
        [f"arraySort(arrayFilter(f -> f <= last, [{firsts}])) AS R"],
    ]
    times = ", ".join(f"ts[intDiv(R[{i + 1}], 2)]" for i in range(n))
    stages.append(
        [
            f"(toInt64(K), arraySlice([{times}], 1, K + 1), vs[intDiv(q0[b], 2)], vs[intDiv(R[K + 1], 2)]) "
            f"AS best"
        ]
    )
    return stages


def _strict(query: FunnelQuery, start: str) -> list[list[str]]:
    n = len(query.steps)
    at_starts = f"(c, m, t) -> {start}"
    stages: list[list[str]] = []
    fits = []
    for k in range(1, n):
        step = query.steps[k]
        conditions = [f"bitTest(m, {k})", f"t - ts0 <= {query.window_us}"]
        if step.min_gap_us:
            conditions.append(f"t - tp >= {step.min_gap_us}")
        if step.max_gap_us is not None:
            conditions.append(f"t - tp <= {step.max_gap_us}")
        shifted = f"arrayShiftLeft(ms, {k}), arrayShiftLeft(ts, {k}), arrayShiftLeft(ts, {k - 1}), ts"
        fits.append(
            f"arrayFilter({at_starts}, arrayMap((m, t, tp, ts0) -> {' AND '.join(conditions)}, {shifted}), "
            f"ms, ts) AS c{k}"
        )
    stages.append(fits)
    # The attempt from each start reaches step k when its first k steps fit.
    reached = ", ".join(f"NOT c{k}, {k - 1}" for k in range(1, n))
    args = ", ".join(f"c{k}" for k in range(1, n))
    stages.append([f"arrayMap(({args}) -> multiIf({reached}, {n - 1}), {args}) AS reach"])
    window = f"arrayMap(t -> t + {query.window_us}, t0)"
    clean = []
    for level in range(n):
        mask = query.open_exclusions(level)
        if not mask:
            continue
        exposing = f"arrayFilter((t, x) -> bitAnd(x, {mask}) != 0, ts, xs)"
        stages += _counts_until(exposing, window, f"w{level}")
        running = f"arrayCumSum(arrayMap(x -> toUInt32(bitAnd(x, {mask}) != 0), xs))"
        clean.append(
            f"arrayFilter({at_starts}, arrayShiftLeft({running}, {level}), ms, ts) AS u{level}",
        )
        # The attempt that stops at `level` is clean when no exposing event follows it in the window.
    if clean:
        stages.append(clean)
    exposed = {level for level in range(n) if query.open_exclusions(level)}
    args = ", ".join(["reach", *(f"w{v}, u{v}" for v in sorted(exposed))])
    params = ", ".join(["r", *(f"w{v}, u{v}" for v in sorted(exposed))])
    choices = ", ".join(
        f"r >= {level}{f' AND w{level} = u{level}' if level in exposed else ''}, {level}"
        for level in reversed(range(n))
    )
    levels = f"arrayMap(({params}) -> multiIf({choices}, -1), {args})"
    return stages + _best(levels, [f"q0[b] + {2 * k}" for k in range(n)])


def linear_walk(query: FunnelQuery, units: str, start: str, keys: str = "") -> str:
    """Per unit of `units` (columns person_id, bv, vs, ms, ts, xs, then `keys`, e.g. ", pd") that has a
    clean start: person_id, bv, `keys` and best = (K, step times, the start's value, the value of the
    reported attempt's last event). `start` is the condition on the step bits `m` and time `t` of an event
    that starts attempts (it may name the units' scalar columns)."""
    stages = _starts(query, start)
    if query.order is FunnelOrder.ORDERED:
        stages += _ordered(query)
    elif query.order is FunnelOrder.ANY:
        stages += _any(query)
    else:
        stages += _strict(query, start)
    walked = _nest(f"SELECT person_id, bv, vs, ms, ts, xs{keys} FROM ({units})", stages)
    return f"SELECT person_id, bv{keys}, best FROM ({walked}) WHERE notEmpty(q0) AND K >= 0"
