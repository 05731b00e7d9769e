// drawTrend: the funnel's conversion over time (QueryFunnel's `trend`): a line per series of the share of
// each period's entrants who completed the funnel, and a table of each period's persons per step. A point
// still converting (its period plus the conversion window has not passed) is drawn hollow and marked in the
// table. Pure: it draws what it is given; the page passes `onPersons(seriesIndex, pointIndex, stepIndex,
// outcome)` to add the buttons that list a period's entrants and those who completed.

import { chart, PALETTE } from "../../charts.js";
import { dataTable, formatPercent, h, toggleTable } from "../../dom.js";

// Hash values of the trend select and their periods (RetentionPeriod).
export const TREND_PERIODS = {
  day: { label: "By day", value: "RETENTION_PERIOD_DAY", unit: "Day" },
  week: { label: "By week (from Monday)", value: "RETENTION_PERIOD_WEEK", unit: "Week of" },
  month: { label: "By month", value: "RETENTION_PERIOD_MONTH", unit: "Month" },
};

// The periods begin at midnight in the browser's time zone, as people read their own calendar.
export function browserTimeZone() {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
}

// "2026-11-02" in `zone`: the local date a period begins on.
function localDay(periodStart, zone) {
  return new Intl.DateTimeFormat("en-CA", { timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit" }).format(new Date(periodStart));
}

function lineOption(series, days, seriesName) {
  return {
    legend: { top: 0 },
    grid: { left: 56, right: 24, top: 40, bottom: 40 },
    tooltip: { trigger: "axis", valueFormatter: (value) => formatPercent(value) },
    xAxis: { type: "category", data: days },
    yAxis: { type: "value", name: "Completed", min: 0, max: 1, axisLabel: { formatter: (value) => formatPercent(value) } },
    series: series.map((one, index) => ({
      type: "line",
      name: seriesName(one),
      itemStyle: { color: PALETTE[index % PALETTE.length] },
      symbolSize: 7,
      data: (one.trend ?? []).map((point) => ({
        value: point.conversionRate ?? 0,
        // Hollow: the period's entrants can still complete the funnel.
        symbol: point.complete ? "circle" : "emptyCircle",
      })),
    })),
  };
}

// The time range of a trend's point `index`: its period within the request's range (a point is the funnel of
// that range, so ListFunnelPersons asked with it lists the point's persons).
export function pointRange(trend, index, range) {
  const latest = (a, b) => (Date.parse(a) >= Date.parse(b) ? a : b);
  const earliest = (a, b) => (Date.parse(a) <= Date.parse(b) ? a : b);
  const next = trend[index + 1]?.periodStart ?? range.end;
  return { start: latest(trend[index].periodStart, range.start), end: earliest(next, range.end) };
}

// Draws the trend of `response` (a QueryFunnel answer asked with `trend`) into root. options: {seriesName,
// period (a TREND_PERIODS key), timeZone, heading ("h2"), onPersons}. Returns the element drawn, or null
// without points.
export function drawTrend(root, response, options) {
  const series = response?.series ?? [];
  if (!series.some((one) => (one.trend ?? []).length)) return null;
  const period = TREND_PERIODS[options.period] ?? TREND_PERIODS.week;
  const days = (series[0].trend ?? []).map((point) => localDay(point.periodStart, options.timeZone));
  const element = h("div", { class: "funnel-trend", "data-testid": "funnel-trend" });
  const holder = h("div", { class: "funnel-chart", "data-testid": "funnel-trend-chart" });
  element.append(
    h(options.heading ?? "h2", {}, "Conversion over time"),
    h(
      "p",
      { class: "help" },
      `Each point is the funnel of the persons who started it in that period (${options.timeZone}), with their best attempt started there. Hollow points and * mark periods still converting.`,
    ),
  );
  chart(holder, lineOption(series, days, options.seriesName), {
    label: `Share of each period's entrants who completed the funnel, ${period.label.toLowerCase()}; the table holds the numbers`,
    height: 300,
  });
  const stepLabels = (series[0].steps ?? []).map((step) => step.label);
  const rows = [];
  series.forEach((one, seriesIndex) => {
    (one.trend ?? []).forEach((point, pointIndex) => rows.push({ one, seriesIndex, point, pointIndex, day: days[pointIndex] }));
  });
  const columns = [
    { key: "day", label: period.unit, value: (row) => `${row.day}${row.point.complete ? "" : " *"}` },
    ...(series.length > 1 ? [{ key: "series", label: "Series", value: (row) => options.seriesName(row.one) }] : []),
    ...stepLabels.map((label, step) => ({
      key: `step-${step}`,
      label: `${step + 1}. ${label}`,
      numeric: true,
      value: (row) => Number(row.point.stepCounts?.[step] ?? 0),
    })),
    { key: "conversion", label: "Completed", value: (row) => formatPercent(row.point.conversionRate ?? 0) },
  ];
  const last = stepLabels.length - 1;
  if (options.onPersons) {
    const button = (row, pointIndex, step, testid, text, what) =>
      h(
        "button",
        {
          type: "button",
          class: "link-button",
          "data-testid": testid,
          "data-series": row.seriesIndex,
          "data-point": pointIndex,
          "aria-label": `${text}: persons who ${what} (${row.day}${series.length > 1 ? `, ${options.seriesName(row.one)}` : ""})`,
          onclick: () => options.onPersons(row.seriesIndex, pointIndex, step, "FUNNEL_PERSONS_OUTCOME_CONVERTED"),
        },
        text,
      );
    columns.push({
      key: "actions",
      label: "Persons",
      value: () => null,
      format: (_, row) =>
        h(
          "span",
          { class: "funnel-person-buttons" },
          button(row, row.pointIndex, 0, "funnel-trend-entered", "Entered", "started the funnel"),
          button(row, row.pointIndex, last, "funnel-trend-completed", "Completed", "completed it"),
        ),
    });
  }
  const table = dataTable({
    caption: "Persons per step, by the period they started in",
    columns,
    rows,
    testid: "funnel-trend-table",
    rowKey: (row) => `${row.seriesIndex}:${row.day}`,
  });
  element.append(toggleTable(holder, table, { testid: "funnel-trend-table" }));
  root.append(element);
  return element;
}
