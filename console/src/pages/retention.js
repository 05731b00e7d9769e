// Retention (#/retention): QueryRetention's cohorts as a heatmap (cohort rows by period columns, the share
// of the cohort retained in each cell, the cohort's size beside its row) with the same numbers in a table,
// one heatmap per breakdown series.
//
// Query: from, to (inclusive UTC days of cohort entry; or days=N), period (day | week | month), periods
// (1-100), cohort and return (event names; empty means any event), type (bounded | unbounded), breakdown
// ("" | channel | property | segment), property (the breakdown's property path, e.g. `properties.plan`,
// `person.country`) and segment (repeated: `segments/{id}`, 1 to 20 segments whose members now are compared,
// those in none of them beside).

import { chart } from "../charts.js";
import {
  daysFromParams,
  dataTable,
  emptyState,
  form,
  formatDate,
  formatNumber,
  formatPercent,
  h,
  timeRange,
  timeRangeOf,
} from "../dom.js";
import { listAll } from "../lists.js";
import { drawKeptAnswer } from "./kept_answer.js";
import { requireSegments, segmentChoice } from "./segment_choice.js";

const JOURNEYS = "wayline.journeys.v1.JourneyService";
const PERIODS = {
  day: { value: "RETENTION_PERIOD_DAY", label: "Day", defaultDays: 14 },
  week: { value: "RETENTION_PERIOD_WEEK", label: "Week", defaultDays: 56 },
  month: { value: "RETENTION_PERIOD_MONTH", label: "Month", defaultDays: 182 },
};
const TYPES = {
  bounded: { value: "RETENTION_TYPE_BOUNDED", label: "Returned in that period" },
  unbounded: { value: "RETENTION_TYPE_UNBOUNDED", label: "Returned in that period or later" },
};
const DEFAULT_PERIOD_COUNT = 8;
const BREAKDOWN_LIMIT = 5;
// QueryRetention takes 1 to 20 segments in a breakdown (Breakdown.segments).
const MAX_BREAKDOWN_SEGMENTS = 20;
const ROW_HEIGHT = 28;

function choice(params, name, allowed, fallback) {
  const value = params.get(name);
  return allowed.includes(value) ? value : fallback;
}

// The page's filters from the hash's query, with their defaults.
export function retentionFilters(params, now = new Date()) {
  const period = choice(params, "period", Object.keys(PERIODS), "week");
  const periods = Number(params.get("periods"));
  return {
    period,
    periods: Number.isInteger(periods) && periods >= 1 && periods <= 100 ? periods : DEFAULT_PERIOD_COUNT,
    type: choice(params, "type", Object.keys(TYPES), "bounded"),
    cohort: (params.get("cohort") ?? "").trim(),
    returning: (params.get("return") ?? "").trim(),
    breakdown: choice(params, "breakdown", ["", "channel", "property", "segment"], ""),
    property: (params.get("property") ?? "").trim(),
    segments: params.getAll("segment").map((segment) => segment.trim()).filter(Boolean),
    days: daysFromParams(params, { defaultDays: PERIODS[period].defaultDays, now }),
  };
}

// The QueryRetention request (proto3 JSON) of the filters.
export function retentionRequest(filters) {
  const request = {
    period: PERIODS[filters.period].value,
    periodCount: filters.periods,
    type: TYPES[filters.type].value,
    timeRange: timeRangeOf(filters.days),
  };
  if (filters.cohort) request.cohortEvent = { eventName: filters.cohort };
  if (filters.returning) request.returnEvent = { eventName: filters.returning };
  if (filters.breakdown === "channel") {
    request.breakdown = { dimension: "BREAKDOWN_DIMENSION_CHANNEL", limit: BREAKDOWN_LIMIT };
  } else if (filters.breakdown === "property" && filters.property) {
    request.breakdown = { dimension: "BREAKDOWN_DIMENSION_PROPERTY", property: filters.property, limit: BREAKDOWN_LIMIT };
  } else if (filters.breakdown === "segment" && filters.segments.length) {
    // Every chosen segment keeps its series: the limit does not fold segments (ADR 84).
    request.breakdown = { dimension: "BREAKDOWN_DIMENSION_SEGMENT", segments: [...filters.segments] };
  }
  return request;
}

// `names` maps a segment's resource name to its display name, for a breakdown by `chosen` segments.
function seriesName(breakdownValue, names, chosen = 1) {
  if (!breakdownValue || (!breakdownValue.value && !breakdownValue.other && !breakdownValue.missing)) {
    return "All persons";
  }
  if (breakdownValue.other) return "Other values";
  if (breakdownValue.missing) {
    if (!names) return "Not set";
    return chosen > 1 ? "In none of the chosen segments" : "Not in the segment";
  }
  return names?.get(breakdownValue.value) ?? breakdownValue.value;
}

// "40.0% (12)", with " …" when the period is still running (the value may still grow).
function retainedText(value) {
  const text = `${formatPercent(value.retainedRate)} (${formatNumber(value.retainedCount)})`;
  return value.complete ? text : `${text} …`;
}

function heatmapOption(cohorts, periodCount, periodLabel, name) {
  const cells = [];
  cohorts.forEach((cohort, row) => {
    for (const value of cohort.values ?? []) {
      cells.push([value.periodIndex, row, Math.round(Number(value.retainedRate) * 1000) / 10]);
    }
  });
  return {
    tooltip: {
      // Plain text built from numbers and dates only (ECharts renders a formatter's string as HTML).
      formatter: (p) => {
        const cohort = cohorts[p.value[1]];
        const value = (cohort.values ?? []).find((v) => v.periodIndex === p.value[0]);
        return `Cohort ${formatDate(cohort.periodStart)}, ${periodLabel.toLowerCase()} ${p.value[0]}: ${
          value ? retainedText(value) : "—"
        }`;
      },
    },
    grid: { left: 150, right: 24, top: 8, bottom: 84 },
    xAxis: {
      type: "category",
      name: `${periodLabel} after the cohort's`,
      nameLocation: "middle",
      nameGap: 26,
      data: Array.from({ length: periodCount + 1 }, (_, n) => String(n)),
      splitArea: { show: true },
    },
    yAxis: {
      type: "category",
      inverse: true,
      data: cohorts.map((c) => `${formatDate(c.periodStart)} · ${formatNumber(c.cohortSize)}`),
      splitArea: { show: true },
    },
    visualMap: {
      type: "continuous",
      min: 0,
      max: 100,
      orient: "horizontal",
      left: "center",
      bottom: 0,
      itemHeight: 180,
      text: ["100%", "0%"],
      inRange: { color: ["#f0f6fc", "#6baed6", "#08306b"] },
    },
    series: [
      {
        type: "heatmap",
        name,
        data: cells,
        label: { show: true, formatter: (p) => `${p.value[2].toFixed(0)}%`, fontSize: 11 },
        emphasis: { itemStyle: { borderColor: "#111", borderWidth: 1 } },
      },
    ],
  };
}

// The table of one series: a row per cohort (its size, then each period's share and persons retained), and
// the weighted average. Numeric cells carry the persons retained as data-value.
function seriesTable(series, periodCount, index, name, periodLabel) {
  const cohorts = series.cohorts ?? [];
  const byIndex = (values) => new Map((values ?? []).map((v) => [v.periodIndex, v]));
  const rows = cohorts.map((c) => ({ label: formatDate(c.periodStart), size: c.cohortSize, values: byIndex(c.values) }));
  rows.push({
    label: "All cohorts (weighted)",
    size: cohorts.reduce((sum, c) => sum + Number(c.cohortSize), 0),
    values: byIndex(series.average),
  });
  const periodColumns = Array.from({ length: periodCount + 1 }, (_, n) => ({
    key: `p${n}`,
    label: `${periodLabel} ${n}`,
    numeric: true,
    value: (row) => (row.values.has(n) ? row.values.get(n).retainedCount : null),
    format: (_, row) => (row.values.has(n) ? retainedText(row.values.get(n)) : "—"),
  }));
  return dataTable({
    caption: `Retention of ${name}: per cohort, its size and the share (persons) retained in each period after its own; … marks a period still running`,
    columns: [
      { key: "label", label: "Cohort" },
      { key: "size", label: "Cohort size", numeric: true },
      ...periodColumns,
    ],
    rows,
    rowKey: (row) => row.label,
    testid: `retention-table-${index}`,
  });
}

function drawSeries(root, series, index, periodLabel, heading, names, chosen) {
  const cohorts = series.cohorts ?? [];
  const name = seriesName(series.breakdownValue, names, chosen);
  const section = h("section", { class: "retention-series", "data-testid": `retention-series-${index}` });
  root.append(section);
  section.append(h(heading, {}, name));
  if (cohorts.length === 0) {
    section.append(emptyState("No person entered a cohort in this range."));
    return;
  }
  const periodCount = Math.max(0, ...cohorts.map((c) => Math.max(-1, ...(c.values ?? []).map((v) => v.periodIndex))));
  const container = h("div", { class: "chart chart-heatmap", "data-testid": `retention-chart-${index}` });
  section.append(container);
  chart(container, heatmapOption(cohorts, periodCount, periodLabel, name), {
    label: `Retention heatmap of ${name}: the share of each of ${cohorts.length} cohorts retained per ${periodLabel.toLowerCase()}; the numbers are in the table below`,
    height: Math.max(220, cohorts.length * ROW_HEIGHT + 100),
  });
  section.append(seriesTable(series, periodCount, index, name, periodLabel));
}

// The page's name of a RetentionPeriod enum value ("RETENTION_PERIOD_DAY" → "day"); unset means weeks.
function periodOfRequest(request) {
  const found = Object.entries(PERIODS).find(([, p]) => p.value === request?.period);
  return found ? found[0] : "week";
}

// Draws a QueryRetention response: per series, a heatmap and its table. options.period ("day" | "week" |
// "month") names the columns, else options.request's period (a report passes its request); options.heading
// is the series headings' level (default "h2"; "h3" in a report, under its section's h2); options.segmentNames
// (a Map of segment names to display names) names the series of a breakdown by segment, of which
// options.request tells how many were chosen.
export function drawRetention(root, response, options = {}) {
  const periodLabel = PERIODS[options.period ?? periodOfRequest(options.request)].label;
  const series = response.series ?? [];
  if (series.length === 0) {
    root.append(emptyState("No person entered a cohort in this range."));
    return;
  }
  const heading = options.heading ?? (options.report ? "h3" : "h2");
  const chosen = options.request?.breakdown?.segments?.length ?? 1;
  series.forEach((s, index) => drawSeries(root, s, index, periodLabel, heading, options.segmentNames, chosen));
}

function filterForm(filters, params, ctx, segments) {
  const range = timeRange({ params, defaultDays: PERIODS[filters.period].defaultDays, testid: "retention-range" });
  const segmentSet = segmentChoice({
    segments,
    chosen: filters.segments,
    testid: "retention-segment",
    legend: `Segments to compare (1 to ${MAX_BREAKDOWN_SEGMENTS}); a person in several counts in each`,
    empty: "No segments yet: create one on the Segments page.",
  });
  const element = form({
    testid: "retention-filters",
    label: "Retention filters",
    submitTestid: "retention-apply",
    fields: [
      range.element,
      {
        name: "period",
        label: "Period",
        type: "select",
        value: filters.period,
        testid: "retention-period",
        options: Object.entries(PERIODS).map(([value, p]) => ({ value, label: p.label })),
      },
      { name: "periods", label: "Periods", type: "number", value: filters.periods, min: 1, max: 100, testid: "retention-periods" },
      { name: "cohort", label: "Cohort event", value: filters.cohort, placeholder: "First event of any kind", testid: "retention-cohort" },
      { name: "return", label: "Return event", value: filters.returning, placeholder: "Any event", testid: "retention-return" },
      {
        name: "type",
        label: "Retained when",
        type: "select",
        value: filters.type,
        testid: "retention-type",
        options: Object.entries(TYPES).map(([value, t]) => ({ value, label: t.label })),
      },
      {
        name: "breakdown",
        label: "Breakdown",
        type: "select",
        value: filters.breakdown,
        testid: "retention-breakdown",
        options: [
          { value: "", label: "None" },
          { value: "channel", label: "Channel of the cohort event" },
          { value: "property", label: "Property" },
          { value: "segment", label: "Segments (their members now)" },
        ],
      },
      {
        name: "property",
        label: "Breakdown property",
        value: filters.property,
        placeholder: "properties.plan or person.country",
        testid: "retention-property",
      },
      segmentSet.element,
    ],
    onSubmit: (values) => {
      const query = range.setParams(new URLSearchParams());
      for (const name of ["period", "periods", "cohort", "return", "type", "breakdown", "property"]) {
        const value = values[name];
        if (value !== null && value !== undefined && value !== "") query.set(name, String(value).trim());
      }
      if (values.breakdown === "segment") for (const segment of segmentSet.chosen()) query.append("segment", segment);
      ctx.navigate(`#/retention?${query}`);
    },
  });
  // The property and the segments show with their breakdown only, and are then required.
  const breakdown = element.querySelector('[data-testid="retention-breakdown"]');
  const property = element.querySelector('[data-testid="retention-property"]');
  const checkSegments = requireSegments(segmentSet, () => breakdown.value === "segment", MAX_BREAKDOWN_SEGMENTS);
  const syncBreakdown = () => {
    property.closest(".field").hidden = breakdown.value !== "property";
    property.required = breakdown.value === "property";
    segmentSet.element.hidden = breakdown.value !== "segment";
    checkSegments();
  };
  breakdown.addEventListener("change", syncBreakdown);
  syncBreakdown();
  return element;
}

export default {
  id: "retention",
  title: "Retention",
  async render(root, ctx) {
    const filters = retentionFilters(ctx.params);
    // The segments to offer as a breakdown; without them (none, or not readable) the page still works.
    const segments = await listAll(ctx.call, JOURNEYS, "ListSegments", "segments").catch(() => []);
    const segmentNames = new Map(segments.map((segment) => [segment.name, segment.displayName || segment.name]));
    root.append(h("h1", {}, "Retention"), filterForm(filters, ctx.params, ctx, segments));
    const results = h("div", { class: "results", "data-testid": "retention-results" });
    root.append(results);
    const request = retentionRequest(filters);
    await drawKeptAnswer(
      results,
      (options) => ctx.call(JOURNEYS, "QueryRetention", request, options),
      (into, response) =>
        drawRetention(into, response, {
          request,
          segmentNames: request.breakdown?.segments ? segmentNames : undefined,
        }),
    );
  },
};
