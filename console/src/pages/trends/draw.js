// Drawing a QueryTrends answer: per series a line chart (a line per breakdown value; hollow points for periods
// still running) and its table of periods × values, the whole range last; then the formulas' lines (`= B / A`)
// in one chart and their table, a column per formula and breakdown value; in sentiment mode, per breakdown
// value the scored events, the mean score, the shares negative, neutral and positive and the net sentiment per
// period. The models (rows, columns, chart options) are pure and tested by console/test/trends.test.mjs.

import { chart, PALETTE } from "../../charts.js";
import { dataTable, emptyState, formatNumber, formatPercent, formatTime, h } from "../../dom.js";
import { MATHS, measureLabel, NEUTRAL_BAND, PERIODS, seriesLabel } from "./query.js";

const EMPTY = "—";
export const RUNNING_MARK = " *";
export const TOTAL_ROW = "total";
// The sentiment preset's series, by index (query.js's sentimentSeries).
const MEAN = 0;
const SCORED = 1;
const BANDS = [
  { index: 2, key: "negative", label: "Negative", colour: "#D55E00" },
  { index: 3, key: "neutral", label: "Neutral", colour: "#999999" },
  { index: 4, key: "positive", label: "Positive", colour: "#009E73" },
];

// A measure's value from the answer: a number, or null when unset (a property math with nothing to measure).
export function measure(value) {
  return value === null || value === undefined ? null : Number(value);
}

// A result's breakdown value as a key for data attributes: "" without breakdown, "@other", "@missing", else
// the value itself (`web`, a property's value, `segments/{id}`).
export function resultKey(result) {
  const value = result.breakdownValue ?? {};
  if (value.other) return "@other";
  if (value.missing) return "@missing";
  return value.value ?? "";
}

// A result's breakdown value for people ("" without breakdown). `segmentNames` (a Map of segment names to
// display names) names a breakdown by segment.
export function breakdownName(result, segmentNames = null) {
  const value = result.breakdownValue ?? {};
  if (value.other) return "Other values";
  if (value.missing) return segmentNames ? "In none of the chosen segments" : "Not set";
  if (!value.value) return "";
  return segmentNames?.get(value.value) ?? value.value;
}

// The day a period begins on in `zone`: "2026-11-30", "2026-11" for a month, "2026-11-30 14:00" for an hour
// (with the zone's offset, "2026-10-25 02:00 GMT+1", so the hour a clock runs twice reads as two hours).
export function periodLabel(periodStart, period, zone) {
  const at = new Date(periodStart);
  const day = new Intl.DateTimeFormat("en-CA", { timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit" }).format(at);
  if (period === "month") return day.slice(0, 7);
  if (period !== "hour") return day;
  const parts = new Intl.DateTimeFormat("en-GB", { timeZone: zone, hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZoneName: "short" }).formatToParts(at);
  const part = (type) => parts.find((p) => p.type === type)?.value ?? "";
  return `${day} ${part("hour")}:${part("minute")} ${part("timeZoneName")}`;
}

// The answer's results grouped by series index, in series order: [{index, label, results}] (a series with
// no result under a breakdown has an empty list).
export function resultsBySeries(response, count) {
  const groups = Array.from({ length: count }, (_, index) => ({ index, label: "", results: [] }));
  for (const result of response?.results ?? []) {
    const group = groups[result.seriesIndex ?? 0];
    if (!group) continue;
    group.label = group.label || result.label;
    group.results.push(result);
  }
  return groups;
}

// The rows of a series' table: one per period (its label, marked when still running), then the whole range;
// each with, per result, {value, events}.
export function seriesRows(results, { period, zone }) {
  const points = results[0]?.points ?? [];
  const rows = points.map((point, index) => ({
    key: point.periodStart,
    label: `${periodLabel(point.periodStart, period, zone)}${point.complete ? "" : RUNNING_MARK}`,
    complete: Boolean(point.complete),
    cells: results.map((result) => {
      const at = result.points?.[index] ?? {};
      return { value: measure(at.value), events: Number(at.eventCount ?? 0) };
    }),
  }));
  rows.push({
    key: TOTAL_ROW,
    label: "Whole range",
    complete: true,
    cells: results.map((result) => ({ value: measure(result.total), events: Number(result.eventCount ?? 0) })),
  });
  return rows;
}

// The columns of a series' table: the period, then per result its value (and, unless the math counts events or
// persons, how many matching events there were), keyed `value` and `events` without breakdown, else
// `value:<breakdown key>` and `events:<breakdown key>`.
export function seriesColumns(results, { period, counting, segmentNames = null, measureName = "Value" }) {
  const columns = [{ key: "period", label: PERIODS[period]?.unit ?? "Period", value: (row) => row.label }];
  results.forEach((result, index) => {
    const name = breakdownName(result, segmentNames);
    const broken = Boolean(resultKey(result));
    const key = (kind) => (broken ? `${kind}:${resultKey(result)}` : kind);
    columns.push({
      key: key("value"),
      label: name || measureName,
      numeric: true,
      value: (row) => row.cells[index].value,
      format: (value) => formatNumber(value),
    });
    if (!counting) {
      columns.push({
        key: key("events"),
        label: name ? `${name}: events` : "Events",
        numeric: true,
        value: (row) => row.cells[index].events,
      });
    }
  });
  return columns;
}

// The line chart of one series: x the periods, a line per result; a period still running is a hollow point, a
// period without a value a gap. `lineName(result)` names a line (default: its breakdown value, else the
// measure); `legend` shows the names even for a single line.
export function seriesChartOption(results, { period, zone, segmentNames = null, measureName = "Value", lineName = null, legend = false }) {
  const points = results[0]?.points ?? [];
  const several = legend || results.length > 1;
  const option = {
    grid: { left: 64, right: 24, top: several ? 48 : 32, bottom: 40 },
    tooltip: { trigger: "axis", valueFormatter: (value) => formatNumber(value) },
    xAxis: { type: "category", data: points.map((point) => periodLabel(point.periodStart, period, zone)) },
    yAxis: { type: "value", name: measureName, nameTextStyle: { align: "left" } },
    series: results.map((result, index) => ({
      type: "line",
      name: lineName ? lineName(result) : breakdownName(result, segmentNames) || measureName,
      connectNulls: false,
      symbolSize: 7,
      itemStyle: { color: PALETTE[index % PALETTE.length] },
      data: (result.points ?? []).map((point) => ({
        value: measure(point.value),
        symbol: point.complete ? "circle" : "emptyCircle",
      })),
    })),
  };
  // A legend names the lines of a breakdown; a single line is named by the heading.
  if (several) option.legend = { top: 0, type: "scroll" };
  return option;
}

// A formula result's name: "= " and its label (the expression unless the request labelled it), then its
// breakdown value as a series' line is named by it: "= B / A", "= B / A: web".
export function formulaName(result, segmentNames = null) {
  const value = breakdownName(result, segmentNames);
  return `= ${result.label ?? ""}${value ? `: ${value}` : ""}`;
}

// The columns of the formulas' table: the period, then a value per formula result (up to 2 decimals; "—"
// where the formula has no value), keyed `formula:<index>`, with a breakdown `formula:<index>:<breakdown key>`.
export function formulaColumns(results, { period, segmentNames = null }) {
  const columns = [{ key: "period", label: PERIODS[period]?.unit ?? "Period", value: (row) => row.label }];
  results.forEach((result, index) => {
    const value = resultKey(result);
    columns.push({
      key: `formula:${result.seriesIndex ?? 0}${value ? `:${value}` : ""}`,
      label: formulaName(result, segmentNames),
      numeric: true,
      value: (row) => row.cells[index].value,
      format: (number) => formatNumber(number),
    });
  });
  return columns;
}

// The formulas' chart: a line per formula result as a series' lines are drawn (a gap where a formula has no
// value), each named in the legend since the heading names none.
export function formulaChartOption(results, { period, zone, segmentNames = null }) {
  return seriesChartOption(results, { period, zone, measureName: "Value", lineName: (result) => formulaName(result, segmentNames), legend: true });
}

// "+12.5%", "-3.0%", "0.0%": the net sentiment with its sign.
export function formatNet(ratio) {
  if (ratio === null || ratio === undefined || !Number.isFinite(Number(ratio))) return EMPTY;
  const text = formatPercent(ratio);
  return Number(ratio) > 0 ? `+${text}` : text;
}

// A mean score to three decimals ("0.230", "-0.869").
export function formatScore(score) {
  if (score === null || score === undefined || !Number.isFinite(Number(score))) return EMPTY;
  return Number(score).toFixed(3);
}

// The sentiment preset's results grouped by breakdown value, in the answer's order: [{key, result (by
// series index)}], only values holding scored events.
export function sentimentGroups(response) {
  const groups = new Map();
  for (const result of response?.results ?? []) {
    const key = resultKey(result);
    if (!groups.has(key)) groups.set(key, { key, first: result, bySeries: new Map() });
    groups.get(key).bySeries.set(result.seriesIndex ?? 0, result);
  }
  return [...groups.values()].filter((group) => Number(group.bySeries.get(SCORED)?.eventCount ?? 0) > 0);
}

function sentimentRow(key, label, complete, scored, mean, counts) {
  const share = (part) => (scored > 0 ? part / scored : null);
  const row = { key, label, complete, scored, mean };
  BANDS.forEach((band, index) => {
    row[band.key] = share(counts[index]);
  });
  row.net = scored > 0 ? (counts[2] - counts[0]) / scored : null;
  return row;
}

// The rows of a sentiment table: per period (marked when still running) and for the whole range, the scored
// events, the mean score, the shares negative, neutral and positive (null without scored events) and the net
// sentiment (positive share less negative share).
export function sentimentRows(group, { period, zone }) {
  const scored = group.bySeries.get(SCORED);
  const mean = group.bySeries.get(MEAN);
  const bands = BANDS.map((band) => group.bySeries.get(band.index));
  const count = (result, index) => Number(result?.points?.[index]?.value ?? 0);
  const rows = (scored.points ?? []).map((point, index) =>
    sentimentRow(
      point.periodStart,
      `${periodLabel(point.periodStart, period, zone)}${point.complete ? "" : RUNNING_MARK}`,
      Boolean(point.complete),
      count(scored, index),
      measure(mean?.points?.[index]?.value),
      bands.map((band) => count(band, index)),
    ),
  );
  rows.push(
    sentimentRow(
      TOTAL_ROW,
      "Whole range",
      true,
      Number(scored.total ?? 0),
      measure(mean?.total),
      bands.map((band) => Number(band?.total ?? 0)),
    ),
  );
  return rows;
}

// The sentiment chart: the shares negative, neutral and positive stacked per period, and the mean score as a
// line on its own axis (-1 to 1).
export function sentimentChartOption(rows) {
  const periods = rows.filter((row) => row.key !== TOTAL_ROW);
  return {
    legend: { top: 0 },
    grid: { left: 64, right: 64, top: 40, bottom: 40 },
    tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
    xAxis: { type: "category", data: periods.map((row) => row.label) },
    yAxis: [
      { type: "value", name: "Share", min: 0, max: 1, axisLabel: { formatter: (value) => formatPercent(value) } },
      { type: "value", name: "Mean score", min: -1, max: 1 },
    ],
    series: [
      ...BANDS.map((band) => ({
        type: "bar",
        name: band.label,
        stack: "shares",
        itemStyle: { color: band.colour },
        tooltip: { valueFormatter: (value) => formatPercent(value) },
        data: periods.map((row) => row[band.key]),
      })),
      {
        type: "line",
        name: "Mean score",
        yAxisIndex: 1,
        connectNulls: false,
        symbolSize: 8,
        itemStyle: { color: "#0072B2" },
        tooltip: { valueFormatter: (value) => formatScore(value) },
        data: periods.map((row) => ({ value: row.mean, symbol: row.complete ? "circle" : "emptyCircle" })),
      },
    ],
  };
}

function sentimentTable(rows, { period, name, index }) {
  const share = (key, label) => ({ key, label, numeric: true, format: (value) => formatPercent(value) });
  return dataTable({
    caption: `Sentiment${name ? ` of ${name}` : ""} per ${period}: the events with a score, their mean score, the shares negative (score ≤ -${NEUTRAL_BAND}), neutral and positive (≥ ${NEUTRAL_BAND}), and the net sentiment (positive share less negative share); * marks a period still running`,
    columns: [
      { key: "period", label: PERIODS[period]?.unit ?? "Period", value: (row) => row.label },
      { key: "scored", label: "Scored events", numeric: true },
      { key: "mean", label: "Mean score", numeric: true, format: formatScore },
      share("negative", "Negative"),
      share("neutral", "Neutral"),
      share("positive", "Positive"),
      { key: "net", label: "Net", numeric: true, format: formatNet },
    ],
    rows,
    rowKey: (row) => row.key,
    testid: `trends-sentiment-table-${index}`,
  });
}

function rangeLine(response, request) {
  const zone = request.timeZone || "UTC";
  return h(
    "p",
    { class: "help", "data-testid": "trends-range-line" },
    `Periods begin at midnight in ${zone}; measured from ${formatTime(request.timeRange?.start)} to ${formatTime(response.endTime)}. * and hollow points mark a period still running.`,
  );
}

function drawSentiment(root, response, { period, zone, heading, segmentNames }) {
  const groups = sentimentGroups(response);
  if (groups.length === 0) {
    root.append(emptyState("No event with a sentiment score in this range."));
    return;
  }
  groups.forEach((group, index) => {
    const name = breakdownName(group.first, segmentNames);
    const rows = sentimentRows(group, { period, zone });
    const section = h("section", { class: "trends-series", "data-testid": `trends-sentiment-${index}`, "data-key": group.key });
    root.append(section);
    section.append(h(heading, {}, name ? `Sentiment: ${name}` : "Sentiment"));
    const container = h("div", { class: "chart trends-chart", "data-testid": `trends-sentiment-chart-${index}` });
    section.append(container);
    chart(container, sentimentChartOption(rows), {
      label: `Sentiment${name ? ` of ${name}` : ""} per ${period}: the shares of negative, neutral and positive events stacked, and the mean score; the numbers are in the table below`,
      height: 320,
    });
    section.append(sentimentTable(rows, { period, name, index }));
  });
}

function drawSeries(root, group, row, { period, zone, heading, segmentNames }) {
  const measureName = measureLabel(row);
  const title = `${group.label || seriesLabel(row)}: ${measureName}`;
  const section = h("section", { class: "trends-series", "data-testid": `trends-series-${group.index}` });
  root.append(section);
  section.append(h(heading, {}, title));
  if (group.results.length === 0) {
    section.append(emptyState("No matching event in this range."));
    return;
  }
  const counting = Boolean(MATHS[row.math]?.count);
  const container = h("div", { class: "chart trends-chart", "data-testid": `trends-chart-${group.index}` });
  section.append(container);
  const options = { period, zone, segmentNames, measureName, counting };
  const lines = group.results.length;
  chart(container, seriesChartOption(group.results, options), {
    label: `${title} per ${period}${lines > 1 ? `, a line for each of ${lines} breakdown values` : ""}; hollow points mark a period still running; the numbers are in the table below`,
    height: 320,
  });
  section.append(
    dataTable({
      caption: `${title} per ${period}, and over the whole range (last row); * marks a period still running, — a period with nothing to measure`,
      columns: seriesColumns(group.results, options),
      rows: seriesRows(group.results, options),
      rowKey: (r) => r.key,
      testid: `trends-table-${group.index}`,
    }),
  );
}

// The formulas' results (the answer's formulaResults, in formula order) in one chart and one table; nothing
// when the request had none.
function drawFormulas(root, response, { period, zone, heading, segmentNames }) {
  const results = response?.formulaResults ?? [];
  if (results.length === 0) return;
  const section = h("section", { class: "trends-series trends-formula-results", "data-testid": "trends-formula-results" });
  root.append(section);
  section.append(h(heading, {}, "Formulas"));
  const container = h("div", { class: "chart trends-chart", "data-testid": "trends-formula-chart" });
  section.append(container);
  const options = { period, zone, segmentNames };
  const names = results.map((result) => formulaName(result, segmentNames)).join(", ");
  chart(container, formulaChartOption(results, options), {
    label: `Formulas per ${period}: ${names}; hollow points mark a period still running; the numbers are in the table below`,
    height: 320,
  });
  section.append(
    dataTable({
      caption: `Formulas per ${period}, and over the whole range (last row: each applied to the series' totals); * marks a period still running, — a period where a formula has no value (a series without one, or a division by zero)`,
      columns: formulaColumns(results, options),
      rows: seriesRows(results, options),
      rowKey: (r) => r.key,
      testid: "trends-formula-table",
    }),
  );
}

// Draws a QueryTrends answer for `filters` (the page's, query.js) and the `request` they made. options:
// heading (the series headings' level, default "h2"), segmentNames (a Map, for a breakdown by segment).
export function drawTrends(root, response, filters, request, { heading = "h2", segmentNames = null } = {}) {
  const options = { period: filters.period, zone: filters.tz, heading, segmentNames };
  root.append(rangeLine(response, request));
  if (filters.mode === "sentiment") {
    drawSentiment(root, response, options);
    return;
  }
  const groups = resultsBySeries(response, filters.series.length);
  if (groups.every((group) => group.results.every((result) => Number(result.eventCount ?? 0) === 0))) {
    root.append(emptyState("No matching event in this range."));
    return;
  }
  groups.forEach((group) => drawSeries(root, group, filters.series[group.index], options));
  drawFormulas(root, response, options);
}
