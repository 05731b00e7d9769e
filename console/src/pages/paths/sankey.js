// drawPaths: a QueryPaths response as one journey tree per series — a Sankey of the nodes (a step at a
// position, coloured by channel) and edges, with loops and channel jumps marked, and the same numbers in
// tables (steps, transitions, top paths). Pure: it draws what it is given; the page and `wayline report`
// both call it. The page passes `onNode`/`onEdge` to make nodes and edges drill down (a click on the chart,
// or the button in the table row, which is the keyboard path).

import { chart, channelColour, escapeHtml } from "../../charts.js";
import { dataTable, enumLabel, formatDuration, formatNumber, h } from "../../dom.js";

// How a transition is drawn. A Sankey has no cycles: a loop (the path returns to a label it has been to) is
// an edge to that label further right, so loops get their own look; so do channel jumps.
export const LINK_STYLES = Object.freeze({
  plain: { label: "Same channel", color: "source", opacity: 0.35 },
  jump: { label: "Channel jump (source and target channels differ)", color: "gradient", opacity: 0.55 },
  loop: { label: "Loop (back to a step already on the path)", color: "#D55E00", opacity: 0.5, dashed: true },
});

// The kind of an edge: a loop when any path taking it returns to a label it has been to (loops win, since
// a loop can also be a jump), else a jump when its two nodes' channels differ.
export function linkKind(edge, nodesById) {
  if (Number(edge.loopCount) > 0) return "loop";
  const source = nodesById.get(edge.sourceNodeId);
  const target = nodesById.get(edge.targetNodeId);
  if (source && target && source.step.channel !== target.step.channel) return "jump";
  return "plain";
}

export function isJump(edge, nodesById) {
  const source = nodesById.get(edge.sourceNodeId);
  const target = nodesById.get(edge.targetNodeId);
  return Boolean(source && target && source.step.channel !== target.step.channel);
}

// A node for people: "2 · Checkout (Web)" (positions count from 1 on screen, as steps do).
export function nodeText(node) {
  if (!node) return "—";
  return `${node.position + 1} · ${node.step.label} (${enumLabel(node.step.channel, "CHANNEL_")})`;
}

// The title of a series: the caller's title, then the breakdown value when there is one.
export function seriesTitle(series, title = "") {
  const value = series.breakdownValue ?? {};
  let part = "";
  if (value.other) part = "Other values";
  else if (value.missing) part = "No value";
  else if (value.value) part = value.value;
  return [title, part].filter(Boolean).join(" · ") || "All paths";
}

function legend() {
  return h(
    "ul",
    { class: "paths-legend", "aria-label": "How transitions are drawn" },
    Object.entries(LINK_STYLES).map(([kind, style]) =>
      h(
        "li",
        { "data-kind": kind },
        h("span", {
          class: ["paths-swatch", `paths-swatch-${kind}`],
          "aria-hidden": "true",
        }),
        style.label,
      ),
    ),
  );
}

function sankeyOption(series, nodesById, kinds) {
  return {
    tooltip: {
      trigger: "item",
      formatter(params) {
        if (params.dataType === "edge") {
          const edge = params.data.edge;
          const loops = Number(edge.loopCount);
          return [
            `${escapeHtml(nodeText(nodesById.get(edge.sourceNodeId)))} → ${escapeHtml(nodeText(nodesById.get(edge.targetNodeId)))}`,
            `${escapeHtml(formatNumber(edge.count))} paths, mean gap ${escapeHtml(formatDuration(edge.averageGap))}`,
            loops > 0 ? `${escapeHtml(formatNumber(loops))} of them loop back` : "",
          ]
            .filter(Boolean)
            .join("<br>");
        }
        const node = nodesById.get(params.name);
        return `${escapeHtml(nodeText(node))}<br>${escapeHtml(formatNumber(node.count))} paths, ${escapeHtml(
          formatNumber(node.dropOffCount),
        )} end here`;
      },
    },
    series: [
      {
        type: "sankey",
        left: 8,
        right: 140,
        top: 8,
        bottom: 8,
        nodeWidth: 14,
        nodeGap: 10,
        nodeAlign: "left",
        draggable: false,
        emphasis: { focus: "adjacency" },
        label: {
          formatter: (params) => nodesById.get(params.name)?.step.label ?? "",
          width: 130,
          overflow: "truncate",
        },
        data: series.nodes.map((node) => ({
          name: node.id,
          depth: node.position,
          value: Number(node.count),
          itemStyle: { color: channelColour(node.step.channel) },
        })),
        links: series.edges.map((edge, index) => {
          const style = LINK_STYLES[kinds[index]];
          return {
            source: edge.sourceNodeId,
            target: edge.targetNodeId,
            value: Number(edge.count),
            edge,
            lineStyle: {
              color: style.color,
              opacity: style.opacity,
              borderColor: style.dashed ? style.color : undefined,
              borderWidth: style.dashed ? 1.5 : 0,
              borderType: style.dashed ? "dashed" : "solid",
            },
          };
        }),
      },
    ],
  };
}

function drillButton(label, testid, onClick, attrs = {}) {
  return h("button", { type: "button", class: "link-button", "data-testid": testid, onclick: onClick, ...attrs }, label);
}

function stepsTable(series, index, options) {
  const columns = [
    { key: "node", label: "Step", value: (node) => nodeText(node) },
    { key: "channel", label: "Channel", value: (node) => enumLabel(node.step.channel, "CHANNEL_") },
    { key: "count", label: "Paths", numeric: true },
    { key: "dropOffCount", label: "End here", numeric: true },
  ];
  if (options.onNode) {
    columns.push({
      key: "actions",
      label: "Drill down",
      value: () => null,
      format: (_, node) =>
        drillButton("Persons", "paths-node-persons", () => options.onNode(node, series, index), {
          "data-node-id": node.id,
          "aria-label": `Persons through ${nodeText(node)}`,
        }),
    });
  }
  return dataTable({
    caption: `Steps of ${seriesTitle(series, options.title)}`,
    columns,
    rows: series.nodes,
    rowKey: (node) => node.id,
    testid: `paths-nodes-${index}`,
  });
}

function linksTable(series, index, nodesById, kinds, options) {
  const columns = [
    { key: "source", label: "From", value: (edge) => nodeText(nodesById.get(edge.sourceNodeId)) },
    { key: "target", label: "To", value: (edge) => nodeText(nodesById.get(edge.targetNodeId)) },
    { key: "count", label: "Paths", numeric: true },
    { key: "loopCount", label: "Loops", numeric: true },
    { key: "loop", label: "Loop", value: (edge) => (Number(edge.loopCount) > 0 ? "yes" : "no") },
    { key: "jump", label: "Channel jump", value: (edge) => (isJump(edge, nodesById) ? "yes" : "no") },
    { key: "averageGap", label: "Mean gap", value: (edge) => formatDuration(edge.averageGap) },
  ];
  if (options.onEdge) {
    columns.push({
      key: "actions",
      label: "Drill down",
      value: () => null,
      format: (_, edge) =>
        drillButton("Persons", "paths-edge-persons", () => options.onEdge(edge, series, index), {
          "data-source-node-id": edge.sourceNodeId,
          "data-target-node-id": edge.targetNodeId,
          "aria-label": `Persons from ${nodeText(nodesById.get(edge.sourceNodeId))} to ${nodeText(
            nodesById.get(edge.targetNodeId),
          )}`,
        }),
    });
  }
  const table = dataTable({
    caption: `Transitions of ${seriesTitle(series, options.title)}, the largest first`,
    columns,
    rows: series.edges,
    rowKey: (edge) => `${edge.sourceNodeId}→${edge.targetNodeId}`,
    testid: `paths-links-${index}`,
  });
  series.edges.forEach((edge, row) => {
    table.tBodies[0].rows[row]?.setAttribute("data-kind", kinds[row]);
  });
  return table;
}

function topPathsTable(series, index, options) {
  return dataTable({
    caption: `Most frequent complete paths of ${seriesTitle(series, options.title)}`,
    columns: [
      {
        key: "steps",
        label: "Path",
        value: (path) =>
          path.steps.map((step) => `${step.label} (${enumLabel(step.channel, "CHANNEL_")})`).join(" → "),
      },
      { key: "count", label: "Paths", numeric: true },
      { key: "personCount", label: "Persons", numeric: true },
    ],
    rows: series.topPaths,
    testid: `paths-top-${index}`,
  });
}

// Draws one series (a journey tree) into a new element appended to root; returns the element.
function drawSeries(root, series, index, options) {
  const nodesById = new Map(series.nodes.map((node) => [node.id, node]));
  const kinds = series.edges.map((edge) => linkKind(edge, nodesById));
  const title = seriesTitle(series, options.title);
  // Under a report's section heading (h2) a tree is an h3.
  const HeadingTag = options.headingLevel === 3 || options.report ? "h3" : "h2";
  const shown = series.edges.length;
  const total = Number(series.edgeCount);
  const summary = h(
    "p",
    { class: "paths-summary", "data-testid": `paths-summary-${index}` },
    h("span", { "data-key": "pathCount", "data-value": series.pathCount }, `${formatNumber(series.pathCount)} paths`),
    " by ",
    h("span", { "data-key": "personCount", "data-value": series.personCount }, `${formatNumber(series.personCount)} persons`),
    `; ${formatNumber(shown)} of ${formatNumber(total)} transitions shown`,
    total > shown ? " (the largest first)." : ".",
  );
  const element = h(
    "div",
    { class: "paths-tree", "data-testid": `paths-tree-${index}`, "data-title": title },
    h(HeadingTag, {}, title),
    summary,
  );
  root.append(element);
  if (series.edges.length === 0) {
    element.append(h("p", { class: "empty-state", "data-testid": "empty" }, "No transitions for this selection."));
    element.append(topPathsTable(series, index, options));
    return element;
  }
  const maxColumn = Math.max(...series.nodes.map((n) => n.position)) + 1;
  const perColumn = new Map();
  for (const node of series.nodes) perColumn.set(node.position, (perColumn.get(node.position) ?? 0) + 1);
  const tallest = Math.max(...perColumn.values());
  const container = h("div", { class: "paths-chart", "data-testid": `paths-chart-${index}` });
  element.append(container, legend());
  const instance = chart(container, sankeyOption(series, nodesById, kinds), {
    label: `Sankey diagram of ${title}: ${formatNumber(series.pathCount)} paths over ${maxColumn} steps; the tables below hold its numbers`,
    height: Math.max(320, Math.min(1200, tallest * 34 + 40)),
  });
  if (options.onNode || options.onEdge) {
    instance.on("click", (params) => {
      if (params.dataType === "node" && options.onNode) options.onNode(nodesById.get(params.name), series, index);
      else if (params.dataType === "edge" && options.onEdge) options.onEdge(params.data.edge, series, index);
    });
  }
  element.append(linksTable(series, index, nodesById, kinds, options));
  if (series.nextEdgesPageToken && options.onMoreEdges) {
    element.append(
      h(
        "button",
        {
          type: "button",
          "data-testid": `paths-more-edges-${index}`,
          onclick: () => options.onMoreEdges(series, index, element),
        },
        `Show the next ${formatNumber(Math.min(options.pageSize ?? shown, total - shown))} transitions`,
      ),
    );
  }
  element.append(stepsTable(series, index, options), topPathsTable(series, index, options));
  return element;
}

// A series with one more page of ListPathEdges (its edges after those shown, the nodes they connect).
export function withMoreEdges(series, page) {
  const nodes = new Map(series.nodes.map((node) => [node.id, node]));
  for (const node of page.nodes ?? []) if (!nodes.has(node.id)) nodes.set(node.id, node);
  const ordered = [...nodes.values()].sort((a, b) => a.position - b.position || Number(b.count) - Number(a.count));
  return {
    ...series,
    nodes: ordered,
    edges: [...series.edges, ...(page.edges ?? [])],
    nextEdgesPageToken: page.nextPageToken ?? "",
  };
}

// Draws `series` again in place of `element` (a tree drawPaths drew), e.g. with more edges.
export function redrawSeries(element, series, index, options = {}) {
  const holder = h("div");
  element.replaceWith(holder);
  const fresh = drawSeries(holder, series, index, options);
  holder.replaceWith(fresh);
  return fresh;
}

// Draws every series of a QueryPaths response into root. options: {title (prefix of each tree's heading),
// headingLevel (2 or 3; `report: true` means 3), onNode(node, series, index), onEdge(edge, series, index), firstIndex (of the
// testids, when several responses share a page), onMoreEdges(series, index, element) and pageSize (a
// "next transitions" button under a tree that has more: the page loads them with ListPathEdges and calls
// redrawSeries)}. Returns the number of series drawn.
export function drawPaths(root, response, options = {}) {
  const series = response?.series ?? [];
  const first = options.firstIndex ?? 0;
  series.forEach((one, offset) => drawSeries(root, one, first + offset, options));
  return series.length;
}
