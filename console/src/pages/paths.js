// The Paths page (#/paths): where persons go, step by step (QueryPaths), as a Sankey per journey tree:
// the whole population, or one tree per chosen segment (the query's population), optionally split by the
// first step's channel. Start and end anchors, depth, repeats collapsed; loops and channel jumps marked.
// A node or a transition drills down to its persons (ListPathPersons), each a link to the Customer page,
// and can anchor the paths ("Start paths here"). Below, a flow's designed graph with the transitions the
// orchestrator recorded on it (GetFlow + GetFlowStats).
//
// Hash parameters: from, to (UTC days), start, end (an event name or a /page/path), depth, collapse=1,
// channel=1 (split by channel), edges (transitions shown per tree), segment (repeated: segments/{id}),
// flow (flows/{id}).

import "./paths/paths.css";
import { answerAge, FIRST_VIEW_MAX_STALE, SERVICES } from "../api.js";
import { disposeCharts } from "../charts.js";
import { listAll } from "../lists.js";
import { clear, emptyState, errorAlert, freshness, h, loading, timeRange, uniqueId } from "../dom.js";
import { eventMatcher, eventNameSuggestions } from "./paths/event_names.js";
import { drawFlowOverlay } from "./paths/flow_overlay.js";
import { personsPanel } from "./paths/persons_panel.js";
import { drawPaths, nodeText, redrawSeries, withMoreEdges } from "./paths/sankey.js";
import { segmentChoice } from "./segment_choice.js";

export { drawPaths } from "./paths/sankey.js";
export { drawFlowOverlay } from "./paths/flow_overlay.js";

const DEFAULT_DEPTH = 5;
const DEFAULT_EDGES = 60;

// The filters a hash holds, with defaults.
export function filtersFromParams(params) {
  const depth = Number(params.get("depth"));
  const edges = Number(params.get("edges"));
  return {
    start: params.get("start") ?? "",
    end: params.get("end") ?? "",
    depth: Number.isInteger(depth) && depth >= 2 && depth <= 20 ? depth : DEFAULT_DEPTH,
    collapse: params.get("collapse") === "1",
    byChannel: params.get("channel") === "1",
    edges: Number.isInteger(edges) && edges >= 1 && edges <= 2000 ? edges : DEFAULT_EDGES,
    segments: params.getAll("segment"),
    flow: params.get("flow") ?? "",
  };
}

function writeParams(params, filters) {
  for (const key of ["start", "end", "depth", "collapse", "channel", "edges", "segment"]) params.delete(key);
  if (filters.start) params.set("start", filters.start);
  if (filters.end) params.set("end", filters.end);
  if (filters.depth !== DEFAULT_DEPTH) params.set("depth", String(filters.depth));
  if (filters.collapse) params.set("collapse", "1");
  if (filters.byChannel) params.set("channel", "1");
  if (filters.edges !== DEFAULT_EDGES) params.set("edges", String(filters.edges));
  for (const segment of filters.segments) params.append("segment", segment);
  return params;
}

// The QueryPaths request of the filters, for one segment ("" for everyone).
export function pathsRequest(filters, range, segment = "") {
  const request = {
    depth: filters.depth,
    timeRange: range,
    collapseRepeats: filters.collapse,
    edgeLimit: filters.edges,
    topPathsLimit: 10,
  };
  const start = eventMatcher(filters.start);
  const end = eventMatcher(filters.end);
  if (start) request.startEvent = start;
  if (end) request.endEvent = end;
  if (filters.byChannel) request.breakdown = { dimension: "BREAKDOWN_DIMENSION_CHANNEL", limit: 5 };
  if (segment) request.population = { segments: [segment] };
  return request;
}

function labelled(labelText, control, help) {
  const id = control.id || uniqueId("field");
  control.id = id;
  const helpId = help ? `${id}-help` : null;
  if (helpId) control.setAttribute("aria-describedby", helpId);
  return h(
    "div",
    { class: control.type === "checkbox" ? "field field-checkbox" : "field" },
    control.type === "checkbox" ? null : h("label", { for: id }, labelText),
    control,
    control.type === "checkbox" ? h("label", { for: id }, labelText) : null,
    help ? h("span", { id: helpId, class: "help" }, help) : null,
  );
}

function filterBar(filters, params, segments, suggestions, onApply) {
  const range = timeRange({ params, testid: "paths-range" });
  const start = h("input", { type: "text", name: "start", value: filters.start, list: suggestions.id, "data-testid": "paths-start", autocomplete: "off" });
  const end = h("input", { type: "text", name: "end", value: filters.end, list: suggestions.id, "data-testid": "paths-end", autocomplete: "off" });
  const depth = h("input", { type: "number", name: "depth", min: 2, max: 20, step: 1, value: String(filters.depth), required: true, "data-testid": "paths-depth" });
  const edges = h("input", { type: "number", name: "edges", min: 1, max: 2000, step: 1, value: String(filters.edges), required: true, "data-testid": "paths-edges" });
  const collapse = h("input", { type: "checkbox", name: "collapse", checked: filters.collapse, "data-testid": "paths-collapse" });
  const byChannel = h("input", { type: "checkbox", name: "channel", checked: filters.byChannel, "data-testid": "paths-by-channel" });
  const segmentSet = segmentChoice({
    segments,
    chosen: filters.segments,
    testid: "paths-segment",
    legend: "Journey tree per segment",
    empty: "No segments yet: one tree for everyone.",
  });
  const element = h(
    "form",
    { class: "filter-bar", "data-testid": "paths-filters", "aria-label": "Path filters", novalidate: true },
    range.element,
    labelled("Start at", start, "An event name, or a page path starting with /"),
    labelled("End at", end, "Paths that reach it, up to it"),
    labelled("Depth (steps)", depth, "2 to 20"),
    labelled("Transitions shown", edges, "Per tree, the largest first"),
    labelled("Collapse repeated steps", collapse),
    labelled("Split by the first step's channel", byChannel),
    segmentSet.element,
    h("div", { class: "field field-submit" }, h("button", { type: "submit", class: "primary", "data-testid": "paths-apply" }, "Apply")),
  );
  element.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!element.reportValidity()) return;
    onApply(
      {
        start: start.value.trim(),
        end: end.value.trim(),
        depth: Number(depth.value),
        collapse: collapse.checked,
        byChannel: byChannel.checked,
        edges: Number(edges.value),
        segments: segmentSet.chosen(),
        flow: filters.flow,
      },
      range,
    );
  });
  return { element, range, setStart: (value) => (start.value = value) };
}

// The trees of the filters: one QueryPaths per segment (or one for everyone), drawn in order.
// The latest drawing of each results element: an answer to an earlier query is dropped.
const latestDrawing = new WeakMap();

// `segments` is a promise of the tenant's segments (for the trees' names); `getBar()` the filter bar. The
// trees accept a kept answer of the gateway (ADR 58: first paint at once on large stores) unless `fresh`;
// the freshness line's Refresh computes them again.
async function drawTrees(results, ctx, filters, range, segments, panel, getBar, fresh = false) {
  const drawing = (latestDrawing.get(results) ?? 0) + 1;
  latestDrawing.set(results, drawing);
  disposeCharts(results);
  clear(results);
  panel.hide();
  results.append(loading("Computing paths…"));
  const wanted = filters.segments.length ? filters.segments : [""];
  const requests = wanted.map((segment) => pathsRequest(filters, range, segment));
  let responses;
  try {
    const options = fresh ? {} : { maxStale: FIRST_VIEW_MAX_STALE };
    responses = await Promise.all(
      requests.map((request) => ctx.call(SERVICES.journeys, "QueryPaths", request, options)),
    );
  } catch (error) {
    if (latestDrawing.get(results) !== drawing) return;
    clear(results);
    results.append(errorAlert(error));
    return;
  }
  const names = new Map((await segments).map((s) => [s.name, s.displayName || s.name]));
  if (latestDrawing.get(results) !== drawing) return;
  clear(results);
  const oldest = responses.reduce((a, b) => ((answerAge(b) ?? 0) > (answerAge(a) ?? 0) ? b : a));
  const age = freshness(oldest, {
    testid: "paths-freshness",
    onRefresh: () => drawTrees(results, ctx, filters, range, segments, panel, getBar, true),
  });
  if (age) results.append(age);
  let index = 0;
  responses.forEach((response, position) => {
    const request = requests[position];
    const segment = wanted[position];
    const onNode = (node, series, tree) =>
      panel.show(
        `Persons through ${nodeText(node)}`,
        (pageToken) => listPersons(ctx, request, series, node.id, "", pageToken),
        { tree, nodeId: node.id },
        () => anchorAt(node),
        node,
      );
    const onEdge = (edge, series, tree) => {
      const nodes = new Map(series.nodes.map((n) => [n.id, n]));
      panel.show(
        `Persons from ${nodeText(nodes.get(edge.sourceNodeId))} to ${nodeText(nodes.get(edge.targetNodeId))}`,
        (pageToken) => listPersons(ctx, request, series, edge.sourceNodeId, edge.targetNodeId, pageToken),
        { tree, nodeId: edge.sourceNodeId, targetNodeId: edge.targetNodeId },
      );
    };
    const holder = h("div", { class: "paths-segment-trees", "data-segment": segment || null });
    results.append(holder);
    const options = {
      title: segment ? `Segment: ${names.get(segment) ?? segment}` : "Everyone",
      onNode,
      onEdge,
      firstIndex: index,
      pageSize: filters.edges,
      // The next page of a tree's transitions (ListPathEdges, after the last one shown), drawn into it.
      async onMoreEdges(series, tree, element) {
        try {
          const page = await ctx.call(SERVICES.journeys, "ListPathEdges", {
            query: request,
            breakdownValue: series.breakdownValue,
            pageSize: filters.edges,
            pageToken: series.nextEdgesPageToken,
          });
          disposeCharts(element);
          redrawSeries(element, withMoreEdges(series, page), tree, options);
        } catch (error) {
          element.append(errorAlert(error));
        }
      },
    };
    index += drawPaths(holder, response, options);
  });
  if (index === 0) results.append(emptyState("No paths for this selection."));

  function anchorAt(node) {
    const bar = getBar();
    if (!bar) return;
    bar.setStart(node.step.label);
    bar.element.requestSubmit();
  }
}

function listPersons(ctx, request, series, nodeId, targetNodeId, pageToken) {
  const body = { query: request, nodeId, pageSize: 50, pageToken };
  if (targetNodeId) body.targetNodeId = targetNodeId;
  if (request.breakdown) body.breakdownValue = series.breakdownValue;
  return ctx.call(SERVICES.journeys, "ListPathPersons", body);
}

// Fills the flow section (already in the document: a chart needs its container's size).
async function fillFlowSection(section, ctx, params, filters, getRange) {
  section.append(
    h("h2", { id: "paths-flow-title" }, "Over a flow's design"),
    h(
      "p",
      { class: "help" },
      "The flow's designed steps and edges, each edge with the persons the orchestrator recorded taking it (GetFlowStats, entries in the time range, the latest published version). Flow steps are not events, so event paths are not mapped onto them; dashed edges are designed but untaken, orange ones were taken but are not in this version's design.",
    ),
  );
  let flows = [];
  try {
    flows = await listAll(ctx.call, SERVICES.orchestrator, "ListFlows", "flows");
  } catch (error) {
    section.append(errorAlert(error, { testid: "paths-flow-error" }));
    return;
  }
  if (flows.length === 0) {
    section.append(emptyState("No flows yet."));
    return;
  }
  const select = h(
    "select",
    { name: "flow", "data-testid": "paths-flow-select" },
    flows.map((flow) => h("option", { value: flow.name }, flow.displayName || flow.name)),
  );
  if (filters.flow && flows.some((flow) => flow.name === filters.flow)) select.value = filters.flow;
  const target = h("div", { class: "paths-flow-overlay", "data-testid": "paths-flow-overlay" });
  const show = async () => {
    disposeCharts(target);
    clear(target);
    target.append(loading("Loading the flow…"));
    const name = select.value;
    params.set("flow", name);
    ctx.setParams?.(params);
    try {
      const summary = flows.find((flow) => flow.name === name);
      const version = Number(summary?.publishedVersion ?? 0);
      const [flowResponse, statsResponse] = await Promise.all([
        ctx.call(SERVICES.orchestrator, "GetFlow", { name, version }),
        ctx.call(SERVICES.orchestrator, "GetFlowStats", { name, version, timeRange: getRange() }),
      ]);
      clear(target);
      drawFlowOverlay(target, { flow: flowResponse.flow, stats: statsResponse.stats });
    } catch (error) {
      clear(target);
      target.append(errorAlert(error, { testid: "paths-flow-error" }));
    }
  };
  const form = h(
    "form",
    { class: "filter-bar", "aria-label": "Flow to overlay", "data-testid": "paths-flow-form" },
    labelled("Flow", select),
    h("div", { class: "field field-submit" }, h("button", { type: "submit", "data-testid": "paths-flow-show" }, "Show")),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    show();
  });
  section.append(form, target);
  if (filters.flow) await show();
}

export default {
  id: "paths",
  title: "Paths",
  async render(root, ctx) {
    root.append(
      h("h1", {}, "Paths"),
      h(
        "p",
        { class: "lede" },
        "Where people go, step by step: each column is a step of a session's path, each band a transition, coloured by channel. Choose a node or its Persons button to see who took it.",
      ),
    );
    const params = new URLSearchParams(ctx.params);
    const filters = filtersFromParams(params);
    const initialRange = timeRange({ params }).value();
    const suggestions = eventNameSuggestions(ctx.call, initialRange);
    // The trees are computed at once; the segment picker joins the filter bar when the segments arrive.
    const segmentsLoaded = listAll(ctx.call, SERVICES.journeys, "ListSegments", "segments").catch(() => []);
    const results = h("div", { class: "paths-results", "data-testid": "paths-results", "aria-live": "polite" });
    const panel = persons();
    const barHolder = h("div", { class: "paths-filter-holder" });
    const flowHolder = h("section", { class: "paths-flow", "data-testid": "paths-flow", "aria-labelledby": "paths-flow-title" });
    root.append(suggestions.element, barHolder, panel.element, results, flowHolder);
    let bar = null;
    const firstTrees = drawTrees(results, ctx, filters, initialRange, segmentsLoaded, panel, () => bar);
    const apply = (next, range) => {
      Object.assign(filters, next);
      range.setParams(params);
      writeParams(params, filters);
      ctx.setParams?.(params);
      return drawTrees(results, ctx, filters, range.value(), segmentsLoaded, panel, () => bar);
    };
    bar = filterBar(filters, params, await segmentsLoaded, suggestions, apply);
    barHolder.append(bar.element);
    await Promise.all([firstTrees, fillFlowSection(flowHolder, ctx, params, filters, () => bar.range.value())]);

    function persons() {
      const inner = personsPanel({ testid: "paths-persons" });
      return {
        element: inner.element,
        hide: inner.hide,
        show(title, fetchPage, about, onAnchor, node) {
          const shown = inner.show(title, fetchPage, about);
          if (node && onAnchor) {
            inner.element.append(
              h(
                "button",
                { type: "button", "data-testid": "paths-anchor-here", onclick: onAnchor },
                `Start paths at “${node.step.label}”`,
              ),
            );
          }
          return shown;
        },
      };
    }
  },
};
