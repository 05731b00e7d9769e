// The report bundle: `wayline report` inlines it (an IIFE, global WaylineReport) into one HTML file beside the
// recorded answers, a `<script type="application/json" id="wayline-report-data">` block. It draws each
// section with the console page's own draw function, so a mailed report shows what the console shows.
// It never calls the gateway: the file's policy allows no connection, and everything it needs is inline.
//
// The data (written by cli/src/wayline_cli/report/): {title, tenant, startTime, endTime, generatedAt,
// sections: [{id, kind, title, request, response, empty, note}]}: `kind` names the draw function, `response`
// is its proto3 JSON answer ({flow, stats} for a flow), `empty` says why nothing is drawn, `note` is said
// above what is.

import "./console.css";
import "./report.css";
import { formatTime, h } from "./dom.js";
import { drawFlow } from "./pages/flows.js";
import { drawFunnel } from "./pages/funnels.js";
import { funnelSeriesName } from "./pages/funnels/draw.js";
import { drawTrend, TREND_PERIODS } from "./pages/funnels/trend.js";
import { drawLifecycle } from "./pages/lifecycle.js";
import { drawModels } from "./pages/models.js";
import { drawPaths } from "./pages/paths.js";
import { drawRetention } from "./pages/retention.js";
import { drawSegments } from "./pages/segments.js";
import { drawTrends } from "./pages/trends.js";
import { drawCustomerValue } from "./pages/value.js";
import { trendsFiltersOfRequest } from "./report_trends.js";

export const DATA_ELEMENT_ID = "wayline-report-data";

// The funnel, then its conversion over time when the report asked for it (cli report/requests.py).
function drawFunnelAndTrend(root, response, options) {
  const element = drawFunnel(root, response, options);
  const trend = options.request?.trend;
  if (trend) {
    const period = Object.keys(TREND_PERIODS).find((key) => TREND_PERIODS[key].value === trend.period) ?? "week";
    drawTrend(root, response, { seriesName: funnelSeriesName, period, timeZone: trend.timeZone || "UTC", heading: "h3" });
  }
  return element;
}

// A QueryTrends answer (a QueryActivityLifecycle answer in lifecycle mode) drawn as the Trends page draws it,
// for the filters the recorded request stands for.
function trendsDrawing(mode) {
  return (root, response, options) => {
    const request = options.request ?? {};
    return drawTrends(root, response, trendsFiltersOfRequest(request, mode), request, { heading: "h3" });
  };
}

export const DRAW = Object.freeze({
  paths: drawPaths,
  funnel: drawFunnelAndTrend,
  retention: drawRetention,
  lifecycle: drawLifecycle,
  // The summary only: a report is mailed around, and its top customers would be person ids without a page.
  value: (root, response) => drawCustomerValue(root, response, null, { heading: "h3" }),
  trends: trendsDrawing("series"),
  sentiment: trendsDrawing("sentiment"),
  // The buyers' activity lifecycle: the Trends page's lifecycle mode (stacked bars, dormant below zero).
  "activity-lifecycle": trendsDrawing("lifecycle"),
  segments: drawSegments,
  flow: drawFlow,
  models: drawModels,
});

// The recorded report, parsed from its data block.
export function readReport(doc = document) {
  const element = doc.getElementById(DATA_ELEMENT_ID);
  if (!element) throw new Error(`the report has no #${DATA_ELEMENT_ID} data block`);
  return JSON.parse(element.textContent);
}

function header(report) {
  return h(
    "header",
    { class: "report-header" },
    h("h1", { "data-testid": "report-title" }, report.title),
    h(
      "p",
      { class: "report-meta", "data-testid": "report-meta" },
      `From ${formatTime(report.startTime)} to ${formatTime(report.endTime)} (the end excluded). `,
      `Generated ${formatTime(report.generatedAt)}.`,
    ),
  );
}

function contents(sections) {
  return h(
    "nav",
    { id: "contents", class: "report-contents", "aria-labelledby": "contents-heading", "data-testid": "report-contents" },
    h("h2", { id: "contents-heading" }, "Contents"),
    h(
      "ol",
      {},
      sections.map((section) => h("li", {}, h("a", { href: `#${section.id}` }, section.title))),
    ),
  );
}

// A section's frame: its heading, its note, and the element the draw function fills.
function frame(section) {
  const body = h("div", { class: "report-section-body", "data-testid": `report-body-${section.id}` });
  const element = h(
    "section",
    {
      id: section.id,
      class: "report-section",
      "aria-labelledby": `${section.id}-heading`,
      "data-testid": `report-section-${section.id}`,
      "data-kind": section.kind,
    },
    h("h2", { id: `${section.id}-heading` }, section.title),
    section.note ? h("p", { class: "report-note", "data-testid": `report-note-${section.id}` }, section.note) : null,
    body,
    h("p", { class: "report-back" }, h("a", { href: "#contents" }, "Back to contents")),
  );
  return { element, body };
}

function fill(section, body) {
  if (section.empty || !section.response) {
    body.append(
      h("p", { class: "empty-state", "data-testid": `report-empty-${section.id}` }, section.empty || "Nothing to show."),
    );
    return;
  }
  const draw = DRAW[section.kind];
  try {
    if (!draw) throw new Error(`no drawing for sections of kind ${section.kind}`);
    draw(body, section.response, { report: true, request: section.request });
  } catch (error) {
    // The other sections still draw; the error is reported (the end-to-end tests fail on it).
    body.append(h("p", { class: "alert", role: "alert" }, `This section could not be drawn: ${error.message}`));
    console.error(error);
  }
}

// Draw `report` into `root`: the header, the contents, then each section (in the document before its draw
// function runs, so charts measure their real width).
export function renderReport(root, report) {
  const framed = report.sections.map((section) => ({ section, ...frame(section) }));
  root.replaceChildren(header(report), contents(report.sections), ...framed.map(({ element }) => element));
  document.title = report.title;
  for (const { section, body } of framed) fill(section, body);
}

function start() {
  renderReport(document.getElementById("report") ?? document.body, readReport());
}

if (typeof document !== "undefined" && document.getElementById(DATA_ELEMENT_ID)) {
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start, { once: true });
  else start();
}
