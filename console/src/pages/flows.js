// The Flows page (#/flows, #/flows?flow=<id>): every flow with its headline counts, and one flow's graph with
// live counts per step (refreshed every few seconds while the page is open, and on demand), its suppressions
// by reason and its experiments. drawFlow() draws one flow from GetFlow and GetFlowStats responses, for the
// page and for `wayline report`.

import { SERVICES } from "../api.js";
import { chart, disposeCharts } from "../charts.js";
import { dataTable, emptyState, enumLabel, formatNumber, formatTime, h, keyFigures } from "../dom.js";
import { drawExperiments } from "./flows/experiments.js";
import { END, flowEdges, graphOption, kindLabel } from "./flows/graph.js";
import { drawSuppressions, reasonLabel } from "./flows/suppressions.js";

const REFRESH_SECONDS = 5;

function flowId(name) {
  return String(name ?? "").replace(/^flows\//, "");
}

function heading(level, text, attrs = {}) {
  return h(`h${Math.min(6, level)}`, attrs, text);
}

// One step's detail: its counts, the paths out of it and its suppressions by reason.
function drawStep(root, stepId, { flow, stats }, level) {
  const step = (flow?.definition?.steps ?? []).find((s) => s.id === stepId);
  const counts = (stats?.steps ?? []).find((s) => s.stepId === stepId) ?? {};
  const edges = flowEdges(flow?.definition?.steps ?? [], stats?.steps ?? []).filter((e) => e.from === stepId);
  root.append(
    heading(level, `Step ${stepId}`, { "data-testid": "flow-step-title" }),
    h("p", {}, step ? kindLabel(step) : "A step of an earlier version"),
    keyFigures(
      [
        { label: "Entered", value: formatNumber(counts.enteredCount ?? 0), testid: "flow-step-entered" },
        { label: "Here now", value: formatNumber(counts.activeCount ?? 0), testid: "flow-step-active" },
        { label: "Sent", value: formatNumber(counts.sentCount ?? 0), testid: "flow-step-sent" },
        { label: "Suppressed", value: formatNumber(counts.suppressedCount ?? 0), testid: "flow-step-suppressed" },
        { label: "Errors", value: formatNumber(counts.errorCount ?? 0), testid: "flow-step-errors" },
        { label: "Converted", value: formatNumber(counts.convertedCount ?? 0), testid: "flow-step-converted" },
      ],
      { label: `Counts of step ${stepId}` },
    ),
    dataTable({
      caption: `Paths out of ${stepId}`,
      testid: "flow-step-paths-table",
      rowKey: (row) => `${row.label}/${row.to}`,
      columns: [
        { key: "label", label: "Path" },
        { key: "to", label: "To", format: (value) => value || "End of the flow" },
        { key: "count", label: "Persons", numeric: true },
      ],
      rows: edges,
      empty: "No path out of this step.",
    }),
    dataTable({
      caption: `Suppressed contacts at ${stepId} by reason`,
      testid: "flow-step-reasons-table",
      rowKey: (row) => row.reason,
      columns: [
        { key: "reason", label: "Reason", format: reasonLabel },
        { key: "count", label: "Contacts", numeric: true },
      ],
      rows: (counts.suppressions ?? []).map((c) => ({ reason: c.reason, count: Number(c.count) })),
      empty: "No contact was suppressed here.",
    }),
  );
}

// Draws one flow ({flow, stats}: a Flow from GetFlow and FlowStats from GetFlowStats) into root.
// options: headingLevel (of its section headings, default 3), selectedStep (a step id shown in detail),
// onSelectStep(stepId) (clicking a node or a step's Details button; without it the detail is drawn in place).
export function drawFlow(root, { flow, stats }, options = {}) {
  const level = options.headingLevel ?? 3;
  let selected = options.selectedStep ?? "";
  const steps = flow?.definition?.steps ?? [];
  const stepStats = stats?.steps ?? [];
  const name = flow?.displayName || flowId(flow?.name ?? stats?.flow);
  const detail = h("div", { "data-testid": "flow-step-detail", "aria-live": "polite" });
  const graph = h("div", { "data-testid": "flow-graph" });
  let instance = null;
  const select = (stepId) => {
    if (!stepId || stepId === END) return;
    if (options.onSelectStep) {
      options.onSelectStep(stepId);
      return;
    }
    selected = stepId;
    detail.replaceChildren();
    drawStep(detail, stepId, { flow, stats }, level + 1);
    instance?.setOption(graphOption({ flow, stats }, { selected }));
  };

  root.append(
    keyFigures(
      [
        { label: "Entered", value: formatNumber(stats?.enteredCount ?? 0), testid: "flow-entered" },
        { label: "In the flow now", value: formatNumber(stats?.activeCount ?? 0), testid: "flow-active" },
        { label: "Converted", value: formatNumber(stats?.convertedCount ?? 0), testid: "flow-converted" },
        { label: "Exited", value: formatNumber(stats?.exitedCount ?? 0), testid: "flow-exited" },
        { label: "Suppressed contacts", value: formatNumber(stats?.suppressedCount ?? 0), testid: "flow-suppressed" },
      ],
      { testid: "flow-figures", label: `Counts of ${name}` },
    ),
    heading(level, "Steps"),
    graph,
  );
  instance = chart(graph, graphOption({ flow, stats }, { selected }), {
    label: `The steps of ${name} from left to right, with how many persons entered each and took each path`,
    height: 420,
  });
  instance.on("click", (event) => {
    if (event.dataType === "node") select(event.data?.id);
  });
  const designed = new Set(steps.map((s) => s.id));
  const rows = [
    ...steps.map((s) => ({ step: s, id: s.id })),
    ...stepStats.filter((s) => !designed.has(s.stepId)).map((s) => ({ step: null, id: s.stepId })),
  ].map(({ step, id }) => {
    const counts = stepStats.find((s) => s.stepId === id) ?? {};
    return {
      id,
      kind: step ? kindLabel(step) : "Earlier version",
      enteredCount: Number(counts.enteredCount ?? 0),
      activeCount: Number(counts.activeCount ?? 0),
      sentCount: Number(counts.sentCount ?? 0),
      suppressedCount: Number(counts.suppressedCount ?? 0),
      errorCount: Number(counts.errorCount ?? 0),
      convertedCount: Number(counts.convertedCount ?? 0),
    };
  });
  root.append(
    dataTable({
      caption: `Counts per step of ${name}`,
      testid: "flow-steps-table",
      rowKey: (row) => row.id,
      columns: [
        { key: "id", label: "Step" },
        { key: "kind", label: "Kind" },
        { key: "enteredCount", label: "Entered", numeric: true },
        { key: "activeCount", label: "Here now", numeric: true },
        { key: "sentCount", label: "Sent", numeric: true },
        { key: "suppressedCount", label: "Suppressed", numeric: true },
        { key: "errorCount", label: "Errors", numeric: true },
        { key: "convertedCount", label: "Converted", numeric: true },
        {
          key: "details",
          label: "Details",
          value: (row) => row.id,
          format: (id) =>
            h(
              "button",
              {
                type: "button",
                class: "link-button",
                "data-testid": `flow-step-open-${id}`,
                "aria-label": `Show step ${id}`,
                onclick: () => select(id),
              },
              "Show",
            ),
        },
      ],
      rows,
    }),
    dataTable({
      caption: `Paths taken in ${name} (dashed in the graph: taken but not drawn by the current version)`,
      testid: "flow-paths-table",
      rowKey: (row) => `${row.from}/${row.label}/${row.to}`,
      columns: [
        { key: "from", label: "From" },
        { key: "label", label: "Path" },
        { key: "to", label: "To", format: (value) => value || "End of the flow" },
        { key: "count", label: "Persons", numeric: true },
        { key: "designed", label: "In the design", format: (value) => (value ? "Yes" : "No") },
      ],
      rows: flowEdges(steps, stepStats),
    }),
    detail,
    heading(level, "Suppressions by reason"),
  );
  if (selected) drawStep(detail, selected, { flow, stats }, level + 1);
  const suppressions = h("div", { "data-testid": "flow-suppressions" });
  root.append(suppressions);
  drawSuppressions(suppressions, stats);
  root.append(heading(level, "Experiments"));
  const experiments = h("div", { "data-testid": "flow-experiments" });
  root.append(experiments);
  drawExperiments(experiments, stats);
}

function flowRows(flows, statsByName) {
  return flows.map((flow) => {
    const stats = statsByName.get(flow.name) ?? {};
    return {
      id: flowId(flow.name),
      name: flow.displayName || flowId(flow.name),
      state: flow.state,
      publishedVersion: Number(flow.publishedVersion ?? 0),
      enteredCount: Number(stats.enteredCount ?? 0),
      activeCount: Number(stats.activeCount ?? 0),
      convertedCount: Number(stats.convertedCount ?? 0),
      suppressedCount: Number(stats.suppressedCount ?? 0),
    };
  });
}

// The table of every listed flow with its counts (over every version) and a button to show its graph.
function flowsTable(flows, statsByName, chosen, ctx, totalSize) {
  return dataTable({
    caption: `Flows (${formatNumber(totalSize ?? flows.length)}), with their counts over every version`,
    testid: "flows-table",
    rowKey: (row) => row.id,
    columns: [
      { key: "name", label: "Flow" },
      { key: "state", label: "State", format: (value) => enumLabel(value, "FLOW_STATE_") },
      { key: "publishedVersion", label: "Published version", numeric: true, format: (v) => (v ? String(v) : "—") },
      { key: "enteredCount", label: "Entered", numeric: true },
      { key: "activeCount", label: "In the flow now", numeric: true },
      { key: "convertedCount", label: "Converted", numeric: true },
      { key: "suppressedCount", label: "Suppressed contacts", numeric: true },
      {
        key: "open",
        label: "Graph",
        value: (row) => row.id,
        format: (id, row) =>
          h(
            "button",
            {
              type: "button",
              class: "link-button",
              "data-testid": `flow-open-${id}`,
              // The visible word starts the accessible name (WCAG 2.5.3, label in name).
              "aria-label": `${id === chosen ? "Shown" : "Show"}: the graph of ${row.name}`,
              "aria-pressed": String(id === chosen),
              onclick: () => ctx.navigate(`#/flows?flow=${encodeURIComponent(id)}`),
            },
            id === chosen ? "Shown" : "Show",
          ),
      },
    ],
    rows: flowRows(flows, statsByName),
  });
}

async function statsOf(ctx, name) {
  const response = await ctx.call(SERVICES.orchestrator, "GetFlowStats", { name });
  return response.stats ?? {};
}

// Keeps focus on the control that had it (by its data-testid) when a part of the page is drawn again.
function redrawKeepingFocus(container, draw) {
  const focused = container.contains(document.activeElement) ? document.activeElement?.dataset?.testid : null;
  disposeCharts(container);
  container.replaceChildren();
  draw();
  if (focused) container.querySelector(`[data-testid="${CSS.escape(focused)}"]`)?.focus();
}

export default {
  id: "flows",
  title: "Flows",
  async render(root, ctx) {
    root.append(h("h1", {}, "Flows"));
    const listed = await ctx.call(SERVICES.orchestrator, "ListFlows", { pageSize: 200 });
    const flows = listed.flows ?? [];
    const asked = ctx.params.get("flow");
    if (flows.length === 0) {
      root.append(emptyState("No flow yet. Create one with `wayline flows create`."));
      if (!asked) return;
    }
    const allStats = await Promise.all(flows.map((flow) => statsOf(ctx, flow.name)));
    const statsByName = new Map(flows.map((flow, index) => [flow.name, allStats[index]]));
    const chosen = asked ?? flowId(flows[0].name);
    const list = h("div", { "data-testid": "flows-list" });
    const drawList = () => list.append(flowsTable(flows, statsByName, chosen, ctx, listed.totalSize));
    if (flows.length > 0) {
      root.append(h("h2", {}, "All flows"), list);
      drawList();
    }

    const name = `flows/${chosen}`;
    // The graph of the version persons enter (the published one), the draft when none is published.
    let flow = flows.find((listedFlow) => listedFlow.name === name);
    if (!flow) flow = (await ctx.call(SERVICES.orchestrator, "GetFlow", { name })).flow;
    const version = Number(flow?.publishedVersion ?? 0);
    if (version) flow = (await ctx.call(SERVICES.orchestrator, "GetFlow", { name, version })).flow;
    let stats = statsByName.get(name) ?? (await statsOf(ctx, name));
    let selectedStep = ctx.params.get("step") ?? "";
    // Not a live region: its time changes every few seconds, which a screen reader would announce each time.
    const status = h("p", { "data-testid": "flow-as-of" });
    const body = h("div", { "data-testid": "flow-body" });
    const showStatus = () => {
      status.textContent = `Counts as of ${formatTime(stats.dataAsOf)}; refreshed every ${REFRESH_SECONDS} seconds while this page is open.`;
    };
    const draw = () =>
      drawFlow(body, { flow, stats }, {
        headingLevel: 3,
        selectedStep,
        onSelectStep: (stepId) => {
          selectedStep = stepId;
          const params = new URLSearchParams(ctx.params);
          params.set("flow", chosen);
          params.set("step", stepId);
          ctx.setParams?.(params);
          redrawKeepingFocus(body, draw);
          body.querySelector('[data-testid="flow-step-title"]')?.scrollIntoView({ block: "nearest" });
        },
      });
    let refreshing = false;
    const refresh = async () => {
      if (refreshing) return;
      refreshing = true;
      try {
        const fresh = await statsOf(ctx, name);
        if (!root.isConnected) return;
        const { dataAsOf: _old, ...before } = stats;
        const { dataAsOf: _new, ...after } = fresh;
        const changed = JSON.stringify(before) !== JSON.stringify(after);
        stats = fresh;
        showStatus();
        if (changed) {
          redrawKeepingFocus(body, draw);
          if (statsByName.has(name)) {
            statsByName.set(name, fresh);
            redrawKeepingFocus(list, drawList);
          }
        }
      } catch (error) {
        if (root.isConnected) status.textContent = `Could not refresh (${error?.code ?? "error"}: ${error?.message ?? error}); the counts shown are as of ${formatTime(stats.dataAsOf)}.`;
      } finally {
        refreshing = false;
      }
    };
    root.append(
      h(
        "section",
        { "data-testid": "flow-detail", "data-flow": chosen },
        h("h2", {}, `Flow ${flow?.displayName || chosen}`),
        h(
          "p",
          {},
          `${enumLabel(flow?.state, "FLOW_STATE_")}; the graph of version ${version || "draft"}; counts over every version. `,
          h("button", { type: "button", "data-testid": "flow-refresh", onclick: () => refresh() }, "Refresh now"),
        ),
        status,
        body,
      ),
    );
    showStatus();
    draw();
    const timer = setInterval(() => {
      if (!root.isConnected) {
        clearInterval(timer);
        return;
      }
      if (!document.hidden) refresh(); // a failed refresh says so and keeps the last counts; the next tries again
    }, REFRESH_SECONDS * 1000);
  },
};
