// The Funnels page (#/funnels): how many persons go through ordered steps (QueryFunnel). The filter bar
// edits the steps (event names suggested from ListEventNames; a /page/path matches page events), each
// step's window from the previous one, the conversion window, the order, exclusions between steps and a
// breakdown (by the first step's channel, a property, or membership of chosen segments). The result:
// conversion and drop-off per step
// (bar chart and tables), the time-to-convert histogram, and "show persons" per step (ListFunnelPersons),
// each person a link to the Customer page.
//
// Hash parameters: from, to (UTC days), step (repeated, in order), gap (repeated, one per step: the most
// minutes since the previous step, empty for none), window (days), order (ordered|strict|any), breakdown
// (channel|property|segment), property (its path), segment (repeated: segments/{id}, for a breakdown by
// segment), exclude (repeated: `name|from|to`, steps counted from 1), trend (day|week|month: the conversion
// over time, periods in the browser's time zone).

import "./paths/paths.css";
import { FIRST_VIEW_MAX_STALE, SERVICES } from "../api.js";
import { disposeCharts } from "../charts.js";
import { listAll } from "../lists.js";
import { clear, errorAlert, field, freshness, h, loading, timeRange } from "../dom.js";
import { drawFunnel, funnelSeriesName } from "./funnels/draw.js";
import { browserTimeZone, drawTrend, pointRange, TREND_PERIODS } from "./funnels/trend.js";
import { eventMatcher, eventNameSuggestions } from "./paths/event_names.js";
import { personsPanel } from "./paths/persons_panel.js";
import { breakdownControls } from "./segment_choice.js";

export { drawFunnel } from "./funnels/draw.js";

const ORDERS = {
  ordered: { label: "In this order (others may happen between)", value: "FUNNEL_ORDER_ORDERED" },
  strict: { label: "In this order, nothing between", value: "FUNNEL_ORDER_STRICT" },
  any: { label: "In any order", value: "FUNNEL_ORDER_ANY" },
};
const DEFAULT_WINDOW_DAYS = 14;
const BREAKDOWNS = ["channel", "property", "segment"];
// QueryFunnel takes 1 to 20 segments in a breakdown (Breakdown.segments).
const MAX_BREAKDOWN_SEGMENTS = 20;

// The funnel a hash describes (steps may be fewer than two: the page then suggests some).
export function funnelFromParams(params) {
  const names = params.getAll("step");
  const gaps = params.getAll("gap");
  const window = Number(params.get("window"));
  const order = params.get("order") ?? "ordered";
  return {
    steps: names.map((name, index) => ({ name, gapMinutes: gaps[index] ? Number(gaps[index]) || null : null })),
    windowDays: Number.isFinite(window) && window > 0 && window <= 365 ? window : DEFAULT_WINDOW_DAYS,
    order: ORDERS[order] ? order : "ordered",
    breakdown: BREAKDOWNS.includes(params.get("breakdown")) ? params.get("breakdown") : "",
    property: params.get("property") ?? "",
    segments: params.getAll("segment"),
    trend: TREND_PERIODS[params.get("trend")] ? params.get("trend") : "",
    exclusions: params
      .getAll("exclude")
      .map((text) => text.split("|"))
      .filter((parts) => parts.length === 3)
      .map(([name, from, to]) => ({ name, from: Number(from), to: Number(to) })),
  };
}

function writeParams(params, funnel) {
  for (const key of ["step", "gap", "window", "order", "breakdown", "property", "segment", "exclude", "trend"]) params.delete(key);
  for (const step of funnel.steps) {
    params.append("step", step.name);
    params.append("gap", step.gapMinutes ? String(step.gapMinutes) : "");
  }
  if (funnel.windowDays !== DEFAULT_WINDOW_DAYS) params.set("window", String(funnel.windowDays));
  if (funnel.order !== "ordered") params.set("order", funnel.order);
  if (funnel.breakdown) params.set("breakdown", funnel.breakdown);
  if (funnel.breakdown === "property" && funnel.property) params.set("property", funnel.property);
  if (funnel.breakdown === "segment") for (const segment of funnel.segments) params.append("segment", segment);
  for (const exclusion of funnel.exclusions) params.append("exclude", `${exclusion.name}|${exclusion.from}|${exclusion.to}`);
  if (funnel.trend) params.set("trend", funnel.trend);
  return params;
}

const seconds = (value) => `${Math.round(value)}s`;

// The QueryFunnel request of a funnel and a time range.
export function funnelRequest(funnel, range) {
  const request = {
    steps: funnel.steps.map((step, index) => {
      const one = { label: step.name, event: eventMatcher(step.name) ?? {} };
      if (index > 0 && step.gapMinutes) one.maxGapFromPrevious = seconds(step.gapMinutes * 60);
      return one;
    }),
    order: ORDERS[funnel.order].value,
    conversionWindow: seconds(funnel.windowDays * 86400),
    timeRange: range,
    exclusions: funnel.exclusions.map((exclusion) => ({
      event: eventMatcher(exclusion.name) ?? {},
      fromStep: exclusion.from - 1,
      toStep: exclusion.to - 1,
    })),
  };
  if (funnel.breakdown === "channel") request.breakdown = { dimension: "BREAKDOWN_DIMENSION_CHANNEL", limit: 5 };
  if (funnel.breakdown === "property" && funnel.property) {
    request.breakdown = { dimension: "BREAKDOWN_DIMENSION_PROPERTY", property: funnel.property, limit: 5 };
  }
  if (funnel.breakdown === "segment" && funnel.segments.length) {
    // Every chosen segment keeps its series: the limit does not fold segments (ADR 84).
    request.breakdown = { dimension: "BREAKDOWN_DIMENSION_SEGMENT", segments: [...funnel.segments] };
  }
  if (funnel.trend) request.trend = { period: TREND_PERIODS[funnel.trend].value, timeZone: browserTimeZone() };
  return request;
}

function stepOptions(count, selected) {
  return Array.from({ length: count }, (_, index) =>
    h("option", { value: String(index + 1), selected: index + 1 === selected }, `Step ${index + 1}`),
  );
}

// The filter bar: steps and exclusions are edited in place (rows added and removed), applied on submit.
// The series' names of a breakdown by segment: a segment's display name, and those in none of them.
function segmentSeriesName(segments) {
  const names = new Map(segments.map((segment) => [segment.name, segment.displayName || segment.name]));
  return (series) => {
    const value = series.breakdownValue ?? {};
    if (value.missing) return "In none of the chosen segments";
    return names.get(value.value) ?? funnelSeriesName(series);
  };
}

function filterBar(funnel, params, suggestions, segments, onApply) {
  const range = timeRange({ params, testid: "funnel-range" });
  const steps = funnel.steps.map((step) => ({ ...step }));
  const exclusions = funnel.exclusions.map((exclusion) => ({ ...exclusion }));
  const stepsEditor = h("fieldset", { class: "funnel-steps-editor", "data-testid": "funnel-steps" });
  const exclusionsEditor = h("fieldset", { class: "funnel-steps-editor", "data-testid": "funnel-exclusions" });
  const windowInput = h("input", { type: "number", min: 1, max: 365, step: "any", required: true, value: String(funnel.windowDays), "data-testid": "funnel-window" });
  const orderSelect = h(
    "select",
    { "data-testid": "funnel-order" },
    Object.entries(ORDERS).map(([key, order]) => h("option", { value: key }, order.label)),
  );
  orderSelect.value = funnel.order;
  const breakdownSelect = h(
    "select",
    { "data-testid": "funnel-breakdown" },
    h("option", { value: "" }, "None"),
    h("option", { value: "channel" }, "First step's channel"),
    h("option", { value: "property" }, "A property"),
    h("option", { value: "segment" }, "Segments (their members now)"),
  );
  breakdownSelect.value = funnel.breakdown;
  const trendSelect = h(
    "select",
    { "data-testid": "funnel-trend-period" },
    h("option", { value: "" }, "Not shown"),
    Object.entries(TREND_PERIODS).map(([key, period]) => h("option", { value: key }, period.label)),
  );
  trendSelect.value = funnel.trend;
  const { propertyInput, propertyField, segmentSet, checkSegments } = breakdownControls({
    breakdownSelect,
    property: funnel.property,
    segments,
    chosen: funnel.segments,
    testid: "funnel",
    max: MAX_BREAKDOWN_SEGMENTS,
  });

  // Read the rows' inputs back into the arrays before the editor is redrawn or the funnel applied.
  const readRows = () => {
    stepsEditor.querySelectorAll("[data-step-row]").forEach((row, index) => {
      steps[index].name = row.querySelector("[data-role=name]").value.trim();
      const gap = row.querySelector("[data-role=gap]");
      steps[index].gapMinutes = gap && gap.value !== "" ? Number(gap.value) : null;
    });
    exclusionsEditor.querySelectorAll("[data-exclusion-row]").forEach((row, index) => {
      exclusions[index].name = row.querySelector("[data-role=name]").value.trim();
      exclusions[index].from = Number(row.querySelector("[data-role=from]").value);
      exclusions[index].to = Number(row.querySelector("[data-role=to]").value);
    });
  };

  const drawEditors = () => {
    clear(stepsEditor);
    stepsEditor.append(h("legend", {}, "Steps, in order"));
    steps.forEach((step, index) => {
      const name = h("input", {
        type: "text",
        value: step.name,
        list: suggestions.id,
        required: true,
        autocomplete: "off",
        "data-role": "name",
        "data-testid": `funnel-step-${index}`,
      });
      const gap =
        index === 0
          ? null
          : h("input", {
              type: "number",
              min: 1,
              step: "any",
              value: step.gapMinutes ? String(step.gapMinutes) : "",
              "data-role": "gap",
              "data-testid": `funnel-gap-${index}`,
            });
      stepsEditor.append(
        h(
          "div",
          { class: "funnel-step-row", "data-step-row": index },
          field(`Step ${index + 1} event`, name),
          gap ? field(`Step ${index + 1} within (minutes of step ${index})`, gap, "Empty: the conversion window only") : null,
          h(
            "button",
            {
              type: "button",
              class: "link-button",
              "data-testid": `funnel-remove-step-${index}`,
              "aria-label": `Remove step ${index + 1}`,
              disabled: steps.length <= 2,
              onclick: () => {
                readRows();
                steps.splice(index, 1);
                drawEditors();
              },
            },
            "Remove",
          ),
        ),
      );
    });
    stepsEditor.append(
      h(
        "button",
        {
          type: "button",
          "data-testid": "funnel-add-step",
          disabled: steps.length >= 20,
          onclick: () => {
            readRows();
            steps.push({ name: "", gapMinutes: null });
            drawEditors();
            stepsEditor.querySelector(`[data-testid=funnel-step-${steps.length - 1}]`)?.focus();
          },
        },
        "Add step",
      ),
    );
    clear(exclusionsEditor);
    exclusionsEditor.append(h("legend", {}, "Exclusions: persons who did this between two steps are left out"));
    exclusions.forEach((exclusion, index) => {
      exclusionsEditor.append(
        h(
          "div",
          { class: "funnel-exclusion-row", "data-exclusion-row": index },
          field(
            `Exclusion ${index + 1} event`,
            h("input", { type: "text", value: exclusion.name, list: suggestions.id, required: true, autocomplete: "off", "data-role": "name", "data-testid": `funnel-exclusion-${index}` }),
          ),
          field(`Exclusion ${index + 1} after`, h("select", { "data-role": "from", "data-testid": `funnel-exclusion-from-${index}` }, stepOptions(steps.length, exclusion.from))),
          field(`Exclusion ${index + 1} before`, h("select", { "data-role": "to", "data-testid": `funnel-exclusion-to-${index}` }, stepOptions(steps.length, exclusion.to))),
          h(
            "button",
            {
              type: "button",
              class: "link-button",
              "data-testid": `funnel-remove-exclusion-${index}`,
              "aria-label": `Remove exclusion ${index + 1}`,
              onclick: () => {
                readRows();
                exclusions.splice(index, 1);
                drawEditors();
              },
            },
            "Remove",
          ),
        ),
      );
    });
    exclusionsEditor.append(
      h(
        "button",
        {
          type: "button",
          "data-testid": "funnel-add-exclusion",
          onclick: () => {
            readRows();
            exclusions.push({ name: "", from: 1, to: Math.min(2, steps.length) });
            drawEditors();
          },
        },
        "Add exclusion",
      ),
    );
  };
  drawEditors();

  const element = h(
    "form",
    { class: "filter-bar", "data-testid": "funnel-filters", "aria-label": "Funnel definition", novalidate: true },
    range.element,
    stepsEditor,
    field("Conversion window (days)", windowInput, "From the first step to the last"),
    field("Order", orderSelect),
    exclusionsEditor,
    field("Breakdown", breakdownSelect),
    propertyField,
    segmentSet.element,
    field("Conversion over time", trendSelect, "The funnel of each period's entrants"),
    h("div", { class: "field field-submit" }, h("button", { type: "submit", class: "primary", "data-testid": "funnel-apply" }, "Apply")),
  );
  element.addEventListener("submit", (event) => {
    event.preventDefault();
    readRows();
    checkSegments();
    if (!element.reportValidity()) return;
    onApply(
      {
        steps: steps.map((step) => ({ ...step })),
        windowDays: Number(windowInput.value),
        order: orderSelect.value,
        breakdown: breakdownSelect.value,
        property: propertyInput.value.trim(),
        segments: segmentSet.chosen(),
        trend: trendSelect.value,
        exclusions: exclusions.filter((e) => e.name && e.from < e.to).map((e) => ({ ...e })),
      },
      range,
    );
  });
  return {
    element,
    range,
    setSteps(names) {
      steps.splice(0, steps.length, ...names.map((name) => ({ name, gapMinutes: null })));
      drawEditors();
    },
  };
}

// The latest drawing of each results element: an answer to an earlier query is dropped.
const latestDrawing = new WeakMap();

// The funnel accepts a kept answer of the gateway (ADR 58) unless `fresh`; the freshness line's Refresh
// computes it again.
// `segments` is the tenant's segments (for the series' names of a breakdown by segment).
async function drawResult(results, ctx, funnel, range, panel, segments, fresh = false) {
  const drawing = (latestDrawing.get(results) ?? 0) + 1;
  latestDrawing.set(results, drawing);
  disposeCharts(results);
  clear(results);
  panel.hide();
  if (funnel.steps.length < 2) {
    results.append(h("p", { class: "empty-state", "data-testid": "empty" }, "Add at least two steps, then Apply."));
    return;
  }
  results.append(loading("Computing the funnel…"));
  const request = funnelRequest(funnel, range);
  let response;
  try {
    response = await ctx.call(SERVICES.journeys, "QueryFunnel", request, fresh ? {} : { maxStale: FIRST_VIEW_MAX_STALE });
  } catch (error) {
    if (latestDrawing.get(results) !== drawing) return;
    clear(results);
    results.append(errorAlert(error));
    return;
  }
  if (latestDrawing.get(results) !== drawing) return;
  clear(results);
  const age = freshness(response, {
    testid: "funnel-freshness",
    onRefresh: () => drawResult(results, ctx, funnel, range, panel, segments, true),
  });
  if (age) results.append(age);
  const seriesName = request.breakdown?.segments ? segmentSeriesName(segments) : funnelSeriesName;
  drawFunnel(results, response, {
    seriesName,
    onPersons(seriesIndex, stepIndex, outcome) {
      const series = response.series[seriesIndex];
      const step = series.steps[stepIndex];
      const who = outcome === "FUNNEL_PERSONS_OUTCOME_DROPPED" ? "dropped off before" : "reached";
      const suffix = request.breakdown ? ` (${seriesName(series)})` : "";
      panel.show(`Persons who ${who} step ${stepIndex + 1}, ${step.label}${suffix}`, (pageToken) => {
        const body = { funnel: request, stepIndex, outcome, pageSize: 50, pageToken };
        if (request.breakdown) body.breakdownValue = series.breakdownValue;
        return ctx.call(SERVICES.journeys, "ListFunnelPersons", body);
      }, { series: seriesIndex, step: stepIndex, outcome });
    },
  });
  if (!request.trend) return;
  drawTrend(results, response, {
    seriesName,
    period: funnel.trend,
    timeZone: request.trend.timeZone,
    // A point is the funnel of its period: its persons are ListFunnelPersons' with that time range.
    onPersons(seriesIndex, pointIndex, stepIndex, outcome) {
      const series = response.series[seriesIndex];
      const { trend, ...plain } = request;
      const funnelOfPoint = { ...plain, timeRange: pointRange(series.trend, pointIndex, request.timeRange) };
      const who = stepIndex === 0 ? "started the funnel" : "completed it";
      const suffix = request.breakdown ? ` (${seriesName(series)})` : "";
      panel.show(`Persons who ${who} in the period from ${funnelOfPoint.timeRange.start.slice(0, 10)}${suffix}`, (pageToken) => {
        const body = { funnel: funnelOfPoint, stepIndex, outcome, pageSize: 50, pageToken };
        if (request.breakdown) body.breakdownValue = series.breakdownValue;
        return ctx.call(SERVICES.journeys, "ListFunnelPersons", body);
      }, { series: seriesIndex, point: pointIndex, step: stepIndex, outcome });
    },
  });
}

export default {
  id: "funnels",
  title: "Funnels",
  async render(root, ctx) {
    root.append(
      h("h1", {}, "Funnels"),
      h(
        "p",
        { class: "lede" },
        "How many people go through the steps, in order, within the windows, and where they drop off. Each person counts once, with their best attempt.",
      ),
    );
    const params = new URLSearchParams(ctx.params);
    const funnel = funnelFromParams(params);
    const suggestions = eventNameSuggestions(ctx.call, timeRange({ params }).value());
    if (funnel.steps.length < 2) {
      // Nothing chosen yet: start from the tenant's three most frequent event names.
      const names = (await suggestions.names).slice(0, 3).map((entry) => entry.name);
      funnel.steps = names.map((name) => ({ name, gapMinutes: null }));
    }
    const results = h("div", { class: "funnel-results", "data-testid": "funnel-results", "aria-live": "polite" });
    const panel = personsPanel({ testid: "funnel-persons-panel" });
    // The segments to offer as a breakdown; without them (none, or not readable) the page still works.
    const segments = await listAll(ctx.call, SERVICES.journeys, "ListSegments", "segments").catch(() => []);
    const bar = filterBar(funnel, params, suggestions, segments, (next, range) => {
      Object.assign(funnel, next);
      range.setParams(params);
      writeParams(params, funnel);
      ctx.setParams?.(params);
      return drawResult(results, ctx, funnel, range.value(), panel, segments);
    });
    root.append(suggestions.element, bar.element, panel.element, results);
    await drawResult(results, ctx, funnel, bar.range.value(), panel, segments);
  },
};
