// The customer's identity graph: the profiles that make up the person (their own and those merged into it,
// and those an unmerge or a split took out) joined by the merge history, each identifier hanging from the
// profile it was first recorded under (ProfileIdentifier.originPersonId). Drawn as an ECharts graph, with
// the merge history in a table beside it (the numbers and links a keyboard or a screen reader uses).

import { chart, escapeHtml, PALETTE } from "../../charts.js";
import { dataTable, enumLabel, formatTime, h } from "../../dom.js";
import { identifierText, personLink } from "./profile.js";

const CATEGORIES = [
  { name: "This profile", colour: PALETTE[0] },
  { name: "Merged profile", colour: PALETTE[1] },
  { name: "Separated profile", colour: PALETTE[5] },
  { name: "Identifier", colour: PALETTE[2] },
];
const [THIS_PROFILE, MERGED, SEPARATED, IDENTIFIER] = [0, 1, 2, 3];

function shortId(personId) {
  return personId.length > 10 ? `${personId.slice(0, 8)}…` : personId;
}

// The graph's nodes and links, as plain data (exported for tests of the page's logic in the browser).
export function identityGraph(profile) {
  const nodes = new Map();
  const links = [];
  const merged = new Set(profile.mergedPersonIds);
  const person = (personId) => {
    const id = `person:${personId}`;
    if (!nodes.has(id)) {
      const category = personId === profile.personId ? THIS_PROFILE : merged.has(personId) ? MERGED : SEPARATED;
      nodes.set(id, { id, name: shortId(personId), fullName: personId, category, symbolSize: 30 });
    }
    return id;
  };
  person(profile.personId);
  for (const personId of profile.mergedPersonIds) person(personId);
  for (const held of profile.identifiers) {
    const text = identifierText(held.identifier);
    const id = `identifier:${text}`;
    nodes.set(id, { id, name: text, fullName: text, category: IDENTIFIER, symbolSize: 16 });
    links.push({ source: id, target: person(held.originPersonId || profile.personId), label: "first recorded under" });
  }
  for (const record of profile.mergeHistory) {
    if (!record.sourcePersonId || !record.targetPersonId) continue;
    const identifier = record.identifier && record.identifier.type ? identifierText(record.identifier) : "";
    links.push({
      source: person(record.sourcePersonId),
      target: person(record.targetPersonId),
      label: `${enumLabel(record.kind, "MERGE_KIND_")}${identifier ? ` by ${identifier}` : ""}`,
      reverted: Boolean(record.revertedByMergeId),
    });
  }
  return { nodes: [...nodes.values()], links };
}

function graphOption({ nodes, links }) {
  return {
    legend: [{ data: CATEGORIES.map((c) => c.name), bottom: 0 }],
    tooltip: {
      trigger: "item",
      formatter: (item) =>
        item.dataType === "edge" ? escapeHtml(item.data.label) : escapeHtml(item.data.fullName ?? item.name),
    },
    series: [
      {
        type: "graph",
        layout: "force",
        force: { repulsion: 220, edgeLength: [60, 120] },
        roam: true,
        draggable: true,
        label: { show: true, position: "right", formatter: "{b}" },
        edgeSymbol: ["none", "arrow"],
        edgeSymbolSize: 8,
        categories: CATEGORIES.map((c) => ({ name: c.name, itemStyle: { color: c.colour } })),
        data: nodes,
        links: links.map((link) => ({
          ...link,
          lineStyle: { type: link.reverted ? "dashed" : "solid", width: link.label === "first recorded under" ? 1 : 2.5 },
        })),
      },
    ],
  };
}

function mergeTable(profile) {
  return dataTable({
    caption: profile.mergeHistoryTruncated
      ? "Merge history, newest first (older records not shown)"
      : "Merge history, newest first",
    testid: "customer-merges",
    rowKey: (record) => record.mergeId,
    empty: "No merge: this profile was never joined to or separated from another.",
    columns: [
      { key: "createTime", label: "Time (UTC)", format: formatTime },
      { key: "kind", label: "Kind", format: (kind) => enumLabel(kind, "MERGE_KIND_") },
      { key: "sourcePersonId", label: "From profile", format: personLink },
      { key: "targetPersonId", label: "Into profile", format: personLink },
      {
        key: "identifier",
        label: "Identifier",
        format: (identifier) => (identifier && identifier.type ? identifierText(identifier) : "—"),
      },
      { key: "eventId", label: "Caused by event", format: (eventId) => eventId || "—" },
      {
        key: "actor",
        label: "By",
        value: (record) => [record.actor, record.reason].filter(Boolean).join(": ") || "identity rules",
      },
      {
        key: "revertedByMergeId",
        label: "Undone",
        format: (reverted) => (reverted ? `yes (${reverted})` : "no"),
      },
    ],
    rows: profile.mergeHistory,
  });
}

// Draws the graph and the merge history of a GetProfile profile into root. `onOpenPerson(personId)`, when
// given, runs on a click on another profile's node (the merge table's links do the same from the keyboard).
export function drawIdentityGraph(root, profile, { onOpenPerson = null } = {}) {
  const graph = identityGraph(profile);
  const container = h("div", { "data-testid": "customer-identity-graph" });
  root.append(container);
  const instance = chart(container, graphOption(graph), {
    label: `Identity graph: ${graph.nodes.filter((n) => n.category !== IDENTIFIER).length} profiles and ${profile.identifiers.length} identifiers joined by ${profile.mergeHistory.length} merge records`,
    height: 360,
  });
  if (onOpenPerson) {
    instance.on("click", (item) => {
      const node = item.dataType === "node" ? item.data : null;
      if (node && node.category !== IDENTIFIER && node.fullName !== profile.personId) onOpenPerson(node.fullName);
    });
  }
  root.append(mergeTable(profile));
}
