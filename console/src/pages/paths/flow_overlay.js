// The observed transitions laid over a flow's designed graph: the flow's steps and the edges its definition
// draws between them (GetFlow), each with the number of persons the orchestrator recorded taking it
// (GetFlowStats: each step's branch counts, for entries in the time range).
//
// Why these counts and not event paths: a flow step is not an event (a wait, a branch, a split send nobody
// an event of their own), so mapping QueryPaths' event transitions onto steps would be a guess. The
// orchestrator records every move between steps; those are the observed transitions of the flow.

import { chart, PALETTE } from "../../charts.js";
import { dataTable, formatNumber, h } from "../../dom.js";

const EXIT = "(exit)";
const ENTRY = "(entry)";

// Every designed edge of a definition: [{from, to, label}] ("" for `to` means exit).
export function designedEdges(definition) {
  const edges = [];
  const add = (from, to, label) => edges.push({ from, to: to ?? "", label });
  if (definition?.entryStepId) add(ENTRY, definition.entryStepId, "entry");
  for (const step of definition?.steps ?? []) {
    const id = step.id;
    if (step.wait) {
      add(id, step.wait.nextStepId, "next");
      if (step.wait.event) add(id, step.wait.event.timeoutStepId, "timeout");
    } else if (step.branch) {
      for (const branch of step.branch.branches ?? []) add(id, branch.nextStepId, branch.label);
      add(id, step.branch.defaultStepId, "default");
    } else if (step.engagementBranch) {
      add(id, step.engagementBranch.engagedStepId, "engaged");
      add(id, step.engagementBranch.notEngagedStepId, "not_engaged");
    } else if (step.split) {
      for (const variant of step.split.variants ?? []) add(id, variant.nextStepId, variant.label);
    } else if (step.action) {
      add(id, step.action.nextStepId, "next");
      if (step.action.onSuppressed === "SUPPRESSION_BEHAVIOR_BRANCH") {
        add(id, step.action.suppressedStepId, "suppressed");
      }
    } else if (step.goal) {
      add(id, step.goal.nextStepId, "next");
      if (step.goal.timeout) add(id, step.goal.timeoutStepId, "timeout");
    }
  }
  return edges;
}

// The designed edges with their observed counts, plus any observed transition the design lacks (a draft
// edited since): [{from, to, label, count, designed}]. Edges join on (from, to, label).
export function overlayEdges(flow, stats) {
  const key = (from, to, label) => `${from}\u0000${to}\u0000${label}`;
  const found = new Map();
  for (const edge of designedEdges(flow?.definition)) {
    found.set(key(edge.from, edge.to, edge.label), { ...edge, count: 0, designed: true });
  }
  const entry = found.get(key(ENTRY, flow?.definition?.entryStepId ?? "", "entry"));
  if (entry) entry.count = Number(stats?.enteredCount ?? 0);
  for (const step of stats?.steps ?? []) {
    for (const branch of step.branches ?? []) {
      const k = key(step.stepId, branch.nextStepId ?? "", branch.label);
      const edge = found.get(k) ?? { from: step.stepId, to: branch.nextStepId ?? "", label: branch.label, count: 0, designed: false };
      edge.count += Number(branch.count);
      found.set(k, edge);
    }
  }
  return [...found.values()];
}

function layout(flow, edges) {
  // Columns by breadth-first distance from the entry; steps not reached (or only through cycles) after it.
  const depth = new Map([[ENTRY, 0]]);
  const queue = [ENTRY];
  while (queue.length) {
    const from = queue.shift();
    for (const edge of edges) {
      const to = edge.to || EXIT;
      if (edge.from === from && !depth.has(to) && to !== EXIT) {
        depth.set(to, depth.get(from) + 1);
        queue.push(to);
      }
    }
  }
  let deepest = Math.max(0, ...depth.values());
  for (const step of flow?.definition?.steps ?? []) if (!depth.has(step.id)) depth.set(step.id, ++deepest);
  if (edges.some((edge) => !edge.to)) depth.set(EXIT, deepest + 1);
  const rows = new Map();
  const position = new Map();
  for (const [id, column] of depth) {
    const row = rows.get(column) ?? 0;
    rows.set(column, row + 1);
    position.set(id, { x: column * 190, y: row * 90 });
  }
  return position;
}

function stepName(flow, id) {
  if (id === ENTRY || id === EXIT || id === "") return id || EXIT;
  const step = (flow?.definition?.steps ?? []).find((s) => s.id === id);
  return step?.displayName || id;
}

// Draws the overlay into root: a graph chart (steps, designed edges labelled with observed persons; edges
// nobody took are dashed) and the table of every edge. Returns the edges drawn.
export function drawFlowOverlay(root, { flow, stats }, options = {}) {
  const edges = overlayEdges(flow, stats);
  const positions = layout(flow, edges);
  const ids = [...positions.keys()];
  const container = h("div", { class: "paths-flow-chart", "data-testid": "paths-flow-chart" });
  root.append(container);
  const title = flow?.displayName || flow?.name || "flow";
  chart(
    container,
    {
      tooltip: { show: false },
      series: [
        {
          type: "graph",
          layout: "none",
          roam: false,
          symbolSize: 18,
          edgeSymbol: ["none", "arrow"],
          edgeSymbolSize: 8,
          label: { show: true, position: "bottom", width: 150, overflow: "truncate" },
          edgeLabel: { show: true, formatter: (params) => formatNumber(params.data.count) },
          data: ids.map((id, index) => ({
            name: id,
            x: positions.get(id).x,
            y: positions.get(id).y,
            label: { formatter: stepName(flow, id) },
            itemStyle: { color: id === ENTRY || id === EXIT ? "#777777" : PALETTE[index % PALETTE.length] },
          })),
          links: edges.map((edge) => ({
            source: edge.from,
            target: edge.to || EXIT,
            count: edge.count,
            lineStyle: {
              width: edge.count > 0 ? 2 : 1,
              type: edge.count > 0 ? "solid" : "dashed",
              color: edge.designed ? "#0072B2" : "#D55E00",
              curveness: edge.from === (edge.to || EXIT) ? 0.5 : 0.15,
            },
          })),
        },
      ],
    },
    {
      label: `The designed steps of ${title} with the persons the orchestrator recorded on each transition; the table below holds the numbers`,
      height: Math.max(280, Math.min(900, Math.max(...[...positions.values()].map((p) => p.y)) + 160)),
    },
  );
  root.append(
    dataTable({
      caption: `Transitions of ${title}: designed edges and the persons recorded taking them`,
      columns: [
        { key: "from", label: "From step", value: (edge) => stepName(flow, edge.from) },
        { key: "to", label: "To step", value: (edge) => stepName(flow, edge.to) },
        { key: "label", label: "Branch" },
        { key: "count", label: "Persons", numeric: true },
        { key: "designed", label: "In the design", value: (edge) => (edge.designed ? "yes" : "no (observed only)") },
      ],
      rows: edges,
      rowKey: (edge) => `${edge.from}→${edge.to || EXIT}:${edge.label}`,
      testid: options.testid ?? "paths-flow-table",
    }),
  );
  return edges;
}
