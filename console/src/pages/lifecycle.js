// Lifecycle (#/lifecycle): how the tenant's persons spread over the lifecycle stages, awareness to advocacy,
// over time: GetLifecycleStages' distributions at a series of times as a stacked area, the same counts in a
// table, and the model they were computed with.
//
// Query: from, to (inclusive UTC days; or days=N), interval (day | week | month), show ("" for persons,
// "shares" for shares of the population). The distribution is read at the start of `from`, then every day,
// every 7 days or on the first of every month after it, and at the end of `to` (at most 100 times,
// GetLifecycleStages' limit: the latest kept).

import { chart } from "../charts.js";
import {
  daysFromParams,
  dataTable,
  emptyState,
  form,
  formatDate,
  formatNumber,
  formatPercent,
  formatTime,
  h,
  timeRange,
  timeRangeOf,
} from "../dom.js";
import { drawKeptAnswer } from "./kept_answer.js";

const JOURNEYS = "wayline.journeys.v1.JourneyService";
const DAY_MS = 86_400_000;

// The stages in order, each with a colour of the viridis ramp (distinct in grey and for colour-blind readers,
// later stages darker).
export const STAGES = Object.freeze([
  { value: "LIFECYCLE_STAGE_AWARENESS", label: "Awareness", colour: "#fde725" },
  { value: "LIFECYCLE_STAGE_ACQUISITION", label: "Acquisition", colour: "#7ad151" },
  { value: "LIFECYCLE_STAGE_ONBOARDING", label: "Onboarding", colour: "#22a884" },
  { value: "LIFECYCLE_STAGE_ENGAGEMENT", label: "Engagement", colour: "#2a788e" },
  { value: "LIFECYCLE_STAGE_RETENTION", label: "Retention", colour: "#414487" },
  { value: "LIFECYCLE_STAGE_ADVOCACY", label: "Advocacy", colour: "#440154" },
]);

// The first of the month after the one holding `ms` (UTC): monthly readings fall on calendar months, whatever
// day the range starts on (a range from 31 January reads 1 February, 1 March, ...).
function nextMonth(ms) {
  const date = new Date(ms);
  return Date.UTC(date.getUTCFullYear(), date.getUTCMonth() + 1, 1);
}

const INTERVALS = {
  day: { label: "Day", defaultDays: 14, next: (ms) => ms + DAY_MS },
  week: { label: "Week", defaultDays: 84, next: (ms) => ms + 7 * DAY_MS },
  month: { label: "Month", defaultDays: 365, next: nextMonth },
};
export const MAX_TIMES = 100;

export function lifecycleFilters(params, now = new Date()) {
  const interval = INTERVALS[params.get("interval")] ? params.get("interval") : "week";
  return {
    interval,
    shares: params.get("show") === "shares",
    days: daysFromParams(params, { defaultDays: INTERVALS[interval].defaultDays, now }),
  };
}

// The instants (RFC 3339) to read the distribution at: the range's start, every interval's start after it
// inside the range, and the range's end; the latest MAX_TIMES of them when there are more.
export function distributionTimes(filters) {
  const range = timeRangeOf(filters.days);
  const end = Date.parse(range.end);
  const times = [];
  for (let t = Date.parse(range.start); t < end; t = INTERVALS[filters.interval].next(t)) times.push(t);
  times.push(end);
  return times.slice(-MAX_TIMES).map((t) => new Date(t).toISOString().replace(".000Z", "Z"));
}

export function lifecycleRequest(filters) {
  return { distributionTimes: distributionTimes(filters) };
}

function stageCount(distribution, stage) {
  const found = (distribution.stageCounts ?? []).find((c) => c.stage === stage);
  return found ? Number(found.count) : 0;
}

function areaOption(distributions, shares) {
  const value = (d, stage) => {
    const count = stageCount(d, stage.value);
    const size = Number(d.populationSize);
    if (!shares) return count;
    return size ? Math.round((count / size) * 1000) / 10 : 0;
  };
  return {
    tooltip: { trigger: "axis" },
    legend: { top: 0, data: STAGES.map((s) => s.label) },
    grid: { left: 64, right: 24, top: 40, bottom: 32 },
    xAxis: { type: "category", boundaryGap: false, data: distributions.map((d) => formatDate(d.time)) },
    yAxis: { type: "value", name: shares ? "% of persons" : "Persons", max: shares ? 100 : null, minInterval: 1 },
    series: STAGES.map((stage) => ({
      type: "line",
      name: stage.label,
      stack: "stages",
      areaStyle: { opacity: 0.9 },
      symbol: "none",
      color: stage.colour,
      lineStyle: { width: 1 },
      emphasis: { focus: "series" },
      data: distributions.map((d) => value(d, stage)),
    })),
  };
}

// Draws a GetLifecycleStages response's `distributions`: persons per stage over time, stacked, and the table
// (a row per time: the population, then each stage's persons and share; numeric cells carry the count as
// data-value). options.shares plots shares of the population instead of counts; options.report (a report's
// section) also names the model, under an h3.
export function drawLifecycle(root, response, options = {}) {
  const distributions = response.distributions ?? [];
  if (distributions.length === 0 || distributions.every((d) => Number(d.populationSize) === 0)) {
    root.append(emptyState("No person had an event before these times."));
  } else {
    drawDistributions(root, distributions, options);
  }
  if (options.report && response.model) drawModel(root, response.model, { heading: "h3" });
}

function drawDistributions(root, distributions, options) {
  const container = h("div", { class: "chart chart-lifecycle", "data-testid": "lifecycle-chart" });
  root.append(container);
  chart(container, areaOption(distributions, Boolean(options.shares)), {
    label: `Persons per lifecycle stage at ${distributions.length} times, stacked${options.shares ? " as shares" : ""}; the numbers are in the table below`,
    height: 360,
  });
  root.append(
    dataTable({
      caption: "Persons per lifecycle stage (share of the population) at each time; each counts the events before it",
      columns: [
        { key: "time", label: "Time", format: (time) => formatTime(time) },
        { key: "populationSize", label: "Population", numeric: true },
        ...STAGES.map((stage) => ({
          key: stage.value,
          label: stage.label,
          numeric: true,
          value: (d) => stageCount(d, stage.value),
          format: (count, d) => {
            const size = Number(d.populationSize);
            return `${formatNumber(count)} (${formatPercent(size ? count / size : 0)})`;
          },
        })),
      ],
      rows: distributions,
      rowKey: (d) => d.time,
      testid: "lifecycle-table",
    }),
  );
}

// The model in force: its revision and which stages it defines.
export function drawModel(root, model, { heading = "h2" } = {}) {
  const defined = new Set((model?.stages ?? []).map((d) => d.stage));
  const revision = Number(model?.revision ?? 0);
  root.append(
    h(heading, {}, "Lifecycle model"),
    h(
      "p",
      { "data-testid": "lifecycle-model" },
      revision === 0
        ? "The built-in default model (revision 0)."
        : `The tenant's model, revision ${formatNumber(revision)}, updated ${formatTime(model.updateTime)}.`,
    ),
    h(
      "ul",
      { class: "stage-list", "aria-label": "Stages of the model", "data-testid": "lifecycle-model-stages" },
      STAGES.map((s, index) =>
        h("li", {}, `${s.label}: ${index === 0 ? "any event (the fallback)" : defined.has(s.value) ? "defined" : "not defined, never assigned"}`),
      ),
    ),
  );
}

function filterForm(filters, params, ctx) {
  const range = timeRange({ params, defaultDays: INTERVALS[filters.interval].defaultDays, testid: "lifecycle-range" });
  return form({
    testid: "lifecycle-filters",
    label: "Lifecycle filters",
    submitTestid: "lifecycle-apply",
    fields: [
      range.element,
      {
        name: "interval",
        label: "Interval",
        type: "select",
        value: filters.interval,
        testid: "lifecycle-interval",
        options: Object.entries(INTERVALS).map(([value, i]) => ({ value, label: i.label })),
      },
      {
        name: "show",
        label: "Show",
        type: "select",
        value: filters.shares ? "shares" : "",
        testid: "lifecycle-show",
        options: [
          { value: "", label: "Persons" },
          { value: "shares", label: "Shares of the population" },
        ],
      },
    ],
    onSubmit: (values) => {
      const query = range.setParams(new URLSearchParams());
      query.set("interval", values.interval);
      if (values.show) query.set("show", values.show);
      ctx.navigate(`#/lifecycle?${query}`);
    },
  });
}

export default {
  id: "lifecycle",
  title: "Lifecycle",
  async render(root, ctx) {
    const filters = lifecycleFilters(ctx.params);
    root.append(h("h1", {}, "Lifecycle"), filterForm(filters, ctx.params, ctx));
    const results = h("div", { class: "results", "data-testid": "lifecycle-results" });
    root.append(results);
    const request = lifecycleRequest(filters);
    await drawKeptAnswer(
      results,
      (options) => ctx.call(JOURNEYS, "GetLifecycleStages", request, options),
      (into, response) => {
        drawLifecycle(into, response, { shares: filters.shares });
        drawModel(into, response.model);
      },
    );
  },
};
