"""The step graph of a flow definition: which step leads to which, by which field, and the checks made on
the graph as a whole — references to steps that do not exist, steps the entry step cannot reach, and cycles
in which no step waits (a person would loop through them at once, for ever)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from wayline.common.errors import FieldViolation
from wayline_orchestrator.flows.model import Definition

__all__ = ["WAITING_KINDS", "Edge", "edges", "graph_violations", "step_kind"]

# The kinds of step that hold a person for a while: a cycle through one of them is a loop in time, not an
# endless loop.
WAITING_KINDS = frozenset({"wait", "goal", "engagement_branch"})
KINDS = ("wait", "branch", "engagement_branch", "split", "action", "goal", "exit")


@dataclass(frozen=True)
class Edge:
    """A step's reference to the step that follows: `path` is the field, relative to the step."""

    path: str
    target: str


def step_kind(step: dict[str, Any]) -> str:
    """The kind the step sets ('' when none)."""
    return next((kind for kind in KINDS if kind in step), "")


def edges(step: dict[str, Any]) -> Iterator[Edge]:
    """Every non-empty step reference of a step (an empty one means the person exits there)."""
    kind = step_kind(step)
    body: dict[str, Any] = step.get(kind) or {}
    fields: list[tuple[str, Any]] = []
    if kind == "wait":
        fields = [("wait.next_step_id", body.get("next_step_id"))]
        event = body.get("event") or {}
        fields.append(("wait.event.timeout_step_id", event.get("timeout_step_id")))
    elif kind == "branch":
        fields = [
            (f"branch.branches[{i}].next_step_id", b.get("next_step_id"))
            for i, b in enumerate(body.get("branches", []))
        ]
        fields.append(("branch.default_step_id", body.get("default_step_id")))
    elif kind == "engagement_branch":
        fields = [
            ("engagement_branch.engaged_step_id", body.get("engaged_step_id")),
            ("engagement_branch.not_engaged_step_id", body.get("not_engaged_step_id")),
        ]
    elif kind == "split":
        fields = [
            (f"split.variants[{i}].next_step_id", v.get("next_step_id"))
            for i, v in enumerate(body.get("variants", []))
        ]
    elif kind == "action":
        fields = [
            ("action.next_step_id", body.get("next_step_id")),
            ("action.suppressed_step_id", body.get("suppressed_step_id")),
        ]
    elif kind == "goal":
        fields = [
            ("goal.next_step_id", body.get("next_step_id")),
            ("goal.timeout_step_id", body.get("timeout_step_id")),
        ]
    for path, target in fields:
        if target:
            yield Edge(path, str(target))


def _unknown_references(
    steps: list[dict[str, Any]], ids: dict[str, int], prefix: str
) -> Iterator[FieldViolation]:
    for index, step in enumerate(steps):
        for edge in edges(step):
            if edge.target not in ids:
                yield FieldViolation(
                    f"{prefix}.steps[{index}].{edge.path}",
                    f"no step has the id {edge.target!r}",
                    "UNKNOWN_STEP",
                )
        engagement = step.get("engagement_branch") or {}
        watched = engagement.get("action_step_id")
        if watched:
            path = f"{prefix}.steps[{index}].engagement_branch.action_step_id"
            if watched not in ids:
                yield FieldViolation(path, f"no step has the id {watched!r}", "UNKNOWN_STEP")
            elif step_kind(steps[ids[watched]]) != "action":
                yield FieldViolation(path, f"step {watched!r} is not an action step", "NOT_AN_ACTION_STEP")


def _reachable(steps: list[dict[str, Any]], ids: dict[str, int], entry: str) -> set[str]:
    seen: set[str] = set()
    todo = [entry] if entry in ids else []
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        todo.extend(e.target for e in edges(steps[ids[current]]) if e.target in ids)
    return seen


def _cycles_without_wait(steps: list[dict[str, Any]], ids: dict[str, int]) -> list[list[str]]:
    """The cycles (each as its step ids, in order) of the graph of steps that do not wait: the strongly
    connected components of that graph with more than one step, or one step leading to itself (Tarjan)."""
    instant = {s["id"] for s in steps if step_kind(s) not in WAITING_KINDS and s.get("id") in ids}
    graph = {
        sid: [e.target for e in edges(steps[ids[sid]]) if e.target in instant] for sid in sorted(instant)
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:  # recursion depth is bounded by the 200 steps a definition may hold
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component: list[str] = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1 or node in graph[node]:
                found.append(sorted(component, key=lambda s: ids[s]))

    for node in graph:
        if node not in index:
            visit(node)
    return sorted(found, key=lambda c: ids[c[0]])


def graph_violations(definition: Definition, prefix: str) -> list[FieldViolation]:
    """The graph's problems: unknown references, unreachable steps, cycles without a wait. Steps without an
    id, and all but the first of steps sharing an id, are left to the step rules."""
    steps: list[dict[str, Any]] = definition.get("steps", [])
    ids: dict[str, int] = {}
    for i, step in enumerate(steps):
        sid = step.get("id")
        if sid and sid not in ids:
            ids[sid] = i
    found = list(_unknown_references(steps, ids, prefix))
    entry = definition.get("entry_step_id", "")
    if entry and entry not in ids:
        found.append(
            FieldViolation(f"{prefix}.entry_step_id", f"no step has the id {entry!r}", "UNKNOWN_STEP")
        )
    elif entry:
        reachable = _reachable(steps, ids, entry)
        found.extend(
            FieldViolation(
                f"{prefix}.steps[{i}]",
                f"step {sid!r} cannot be reached from the entry step {entry!r}",
                "UNREACHABLE",
            )
            for sid, i in ids.items()
            if sid not in reachable
        )
    for cycle in _cycles_without_wait(steps, ids):
        loop = ", ".join(repr(s) for s in cycle)
        found.append(
            FieldViolation(
                f"{prefix}.steps[{ids[cycle[0]]}]",
                f"steps {loop} form a cycle without a wait, goal or engagement branch step",
                "CYCLE_WITHOUT_WAIT",
            )
        )
    return found
