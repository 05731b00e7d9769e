// A flow's graph for the Flows page: its steps laid out left to right from the definition (GetFlow), with the
// live counts of GetFlowStats on the nodes and the persons who took each path on the edges. Paths the
// definition does not draw but persons took (a suppressed send skipping ahead, a step of an older version)
// are laid over it, dashed.

import { CHANNEL_COLOURS, PALETTE, escapeHtml } from "../../charts.js";
import { enumLabel, formatNumber } from "../../dom.js";

export const END = "~end"; // the node of a path that leads nowhere: the person leaves the flow
const COLUMN_WIDTH = 190;
const ROW_HEIGHT = 90;

// The kind of a step: the name of the one `kind` field its proto3 JSON carries.
const KINDS = ["wait", "branch", "engagementBranch", "split", "action", "goal", "exit"];
const KIND_LABELS = {
  wait: "Wait",
  branch: "Branch",
  engagementBranch: "Engagement branch",
  split: "Split",
  action: "Action",
  goal: "Goal",
  exit: "Exit",
};
const KIND_COLOURS = {
  wait: "#777777",
  branch: PALETTE[6],
  engagementBranch: PALETTE[9],
  split: PALETTE[3],
  goal: PALETTE[2],
  exit: "#555555",
};

export function stepKind(step) {
  return KINDS.find((kind) => step?.[kind] !== undefined && step?.[kind] !== null) ?? "";
}

export function kindLabel(step) {
  const kind = stepKind(step);
  if (kind === "action") return `Action (${enumLabel(step.action.channel, "CHANNEL_")})`;
  return KIND_LABELS[kind] ?? "Step";
}

// The paths a step's definition draws: [{label, to}] with the labels the runtime records (BranchCount.label).
export function designedPaths(step) {
  const paths = [];
  const add = (label, to) => paths.push({ label, to: to || "" });
  const kind = stepKind(step);
  const body = step[kind] ?? {};
  if (kind === "wait") {
    add("next", body.nextStepId);
    if (body.event) add("timeout", body.event.timeoutStepId);
  } else if (kind === "branch") {
    for (const branch of body.branches ?? []) add(branch.label, branch.nextStepId);
    add("default", body.defaultStepId);
  } else if (kind === "engagementBranch") {
    add("engaged", body.engagedStepId);
    add("not_engaged", body.notEngagedStepId);
  } else if (kind === "split") {
    for (const variant of body.variants ?? []) add(variant.label, variant.nextStepId);
  } else if (kind === "action") {
    add("next", body.nextStepId);
    if (body.onSuppressed === "SUPPRESSION_BEHAVIOR_BRANCH") add("suppressed", body.suppressedStepId);
  } else if (kind === "goal") {
    add("next", body.nextStepId);
    if (body.timeout) add("timeout", body.timeoutStepId);
  }
  return paths;
}

// Every edge of the flow: the designed ones with the count of persons who took them (0 when none did), then
// the observed ones the definition lacks. [{from, label, to, count, designed}]; `to` "" is the flow's end.
export function flowEdges(steps, stepStats) {
  const counted = new Map();
  for (const step of stepStats) {
    for (const branch of step.branches ?? []) {
      counted.set(`${step.stepId}\u0000${branch.label}\u0000${branch.nextStepId}`, Number(branch.count));
    }
  }
  const edges = [];
  const seen = new Set();
  for (const step of steps) {
    for (const path of designedPaths(step)) {
      const key = `${step.id}\u0000${path.label}\u0000${path.to}`;
      if (seen.has(key)) continue;
      seen.add(key);
      edges.push({ from: step.id, label: path.label, to: path.to, count: counted.get(key) ?? 0, designed: true });
    }
  }
  for (const step of stepStats) {
    for (const branch of step.branches ?? []) {
      const key = `${step.stepId}\u0000${branch.label}\u0000${branch.nextStepId}`;
      if (seen.has(key)) continue;
      seen.add(key);
      edges.push({
        from: step.stepId,
        label: branch.label,
        to: branch.nextStepId,
        count: Number(branch.count),
        designed: false,
      });
    }
  }
  return edges;
}

// Columns by distance from the entry step (breadth first, so a loop back does not push a step right);
// steps the entry does not reach (other versions' steps) go in a column after the others; the end last.
function columns(entryStepId, stepIds, edges) {
  const column = new Map();
  const next = new Map(stepIds.map((id) => [id, []]));
  for (const edge of edges) if (edge.to && next.has(edge.from)) next.get(edge.from).push(edge.to);
  const queue = [];
  if (next.has(entryStepId)) {
    column.set(entryStepId, 0);
    queue.push(entryStepId);
  }
  while (queue.length > 0) {
    const id = queue.shift();
    for (const to of next.get(id) ?? []) {
      if (!column.has(to) && next.has(to)) {
        column.set(to, column.get(id) + 1);
        queue.push(to);
      }
    }
  }
  let last = Math.max(-1, ...column.values());
  const unreached = stepIds.filter((id) => !column.has(id));
  if (unreached.length > 0) {
    last += 1;
    for (const id of unreached) column.set(id, last);
  }
  column.set(END, last + 1);
  return column;
}

function nodeColour(step) {
  const kind = stepKind(step);
  if (kind === "action") return CHANNEL_COLOURS[step.action.channel] ?? CHANNEL_COLOURS.CHANNEL_OTHER;
  return KIND_COLOURS[kind] ?? "#999999";
}

// The ECharts option of the graph. `selected` is the step id shown in detail (drawn with a thick border).
export function graphOption({ flow, stats }, { selected = "" } = {}) {
  const steps = flow?.definition?.steps ?? [];
  const stepStats = stats?.steps ?? [];
  const statsById = new Map(stepStats.map((s) => [s.stepId, s]));
  const byId = new Map(steps.map((s) => [s.id, s]));
  const ids = [...steps.map((s) => s.id), ...stepStats.map((s) => s.stepId).filter((id) => !byId.has(id))];
  const edges = flowEdges(steps, stepStats);
  const column = columns(flow?.definition?.entryStepId ?? "", ids, edges);
  const rows = new Map();
  const position = (id) => {
    const x = column.get(id) ?? 0;
    const y = rows.get(x) ?? 0;
    rows.set(x, y + 1);
    return [x * COLUMN_WIDTH, y * ROW_HEIGHT];
  };
  const nodes = ids.map((id) => {
    const step = byId.get(id);
    const counts = statsById.get(id) ?? {};
    const [x, y] = position(id);
    const lines = [id, step ? kindLabel(step) : "Earlier version", `${formatNumber(counts.enteredCount ?? 0)} entered`];
    if (Number(counts.activeCount ?? 0) > 0) lines.push(`${formatNumber(counts.activeCount)} here now`);
    if (Number(counts.suppressedCount ?? 0) > 0) lines.push(`${formatNumber(counts.suppressedCount)} suppressed`);
    return {
      id,
      name: id,
      x,
      y,
      value: Number(counts.enteredCount ?? 0),
      symbol: "roundRect",
      symbolSize: [150, 22 + 14 * lines.length],
      itemStyle: {
        color: step ? nodeColour(step) : "#bbbbbb",
        borderColor: id === selected ? "#1b1f24" : "#ffffff",
        borderWidth: id === selected ? 3 : 1,
      },
      label: { show: true, color: "#ffffff", fontSize: 11, lineHeight: 14, formatter: lines.join("\n") },
      tooltipLines: lines,
    };
  });
  const usesEnd = edges.some((e) => !e.to);
  if (usesEnd) {
    const [x, y] = position(END);
    nodes.push({
      id: END,
      name: "End",
      x,
      y,
      symbol: "circle",
      symbolSize: 36,
      itemStyle: { color: "#d0d7de" },
      label: { show: true, color: "#1b1f24", formatter: "End" },
      tooltipLines: ["End: the person leaves the flow"],
    });
  }
  const pairs = new Map();
  const links = edges.map((edge) => {
    const target = edge.to || END;
    const pair = `${edge.from}\u0000${target}`;
    const index = pairs.get(pair) ?? 0;
    pairs.set(pair, index + 1);
    const label = `${edge.label}: ${formatNumber(edge.count)}`;
    return {
      source: edge.from,
      target,
      value: edge.count,
      lineStyle: {
        type: edge.designed ? "solid" : "dashed",
        width: 1 + Math.min(6, Math.log10(1 + edge.count) * 2),
        curveness: index * 0.25 + (column.get(target) <= column.get(edge.from) ? 0.35 : 0),
        color: edge.designed ? "#57606a" : "#D55E00",
      },
      label: { show: true, formatter: label, fontSize: 10, color: "#1b1f24" },
      tooltipLines: [`${edge.from} → ${edge.to || "end"}`, label, edge.designed ? "designed path" : "taken, not in this version's design"],
    };
  });
  return {
    tooltip: {
      formatter: (item) => (item.data?.tooltipLines ?? []).map(escapeHtml).join("<br>"),
    },
    series: [
      {
        type: "graph",
        layout: "none",
        roam: "move", // drag to pan a large flow; the wheel keeps scrolling the page
        draggable: false,
        edgeSymbol: ["none", "arrow"],
        edgeSymbolSize: 8,
        edgeLabel: { show: true },
        emphasis: { focus: "adjacency" },
        data: nodes,
        links,
      },
    ],
  };
}
