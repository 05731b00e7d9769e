// Drawing a QueryTrends answer: per series a line chart (a line per breakdown value; hollow points for periods
// still running) and its table of periods × values, the whole range last; then the formulas' lines (`= B / A`)
// in one chart and their table, a column per formula and breakdown value. Compared with the previous range (the
// answer's previousResults and previousFormulaResults), each line has a dashed, lighter twin in its colour, and
// each table the previous values and their change: per period beside each value without breakdown, else for the
// whole range in a table of its own (three columns more per breakdown value would be too wide to read).
// drawTrends draws the answer of every mode: the sentiment mode's with sentiment_draw.js, the stickiness mode's
// (a QueryStickiness answer) with stickiness_draw.js, the lifecycle mode's (a QueryActivityLifecycle answer) with
// lifecycle_draw.js; the helpers they share are in format.js. The models (rows, columns, chart options) are pure
// and tested by console/test/trends.test.mjs.

import { chart, PALETTE } from "../../charts.js";
import { dataTable, emptyState, formatNumber, formatPercent, formatTime, h } from "../../dom.js";
import { breakdownName, EMPTY, measure, MINUS, periodLabel, resultKey, resultsBySeries, RUNNING_MARK, TOTAL_ROW } from "./format.js";
import { drawLifecycle } from "./lifecycle_draw.js";
import { MATHS, measureLabel, PERIODS, seriesLabel } from "./query.js";
import { drawSentiment } from "./sentiment_draw.js";
import { drawStickiness } from "./stickiness_draw.js";

// How the previous range's lines are named after their current ones, and drawn: dashed and lighter.
export const PREVIOUS_MARK = " (previous)";
const PREVIOUS_OPACITY = 0.55;
// Its points a little less light: a period between two gaps is a point alone, which must still be seen.
const PREVIOUS_POINT_OPACITY = 0.75;

// Whether two results are of the same breakdown value (both without breakdown, both `other`, …).
function sameBreakdown(a, b) {
  const one = a.breakdownValue ?? {};
  const two = b.breakdownValue ?? {};
  return Boolean(one.other) === Boolean(two.other) && Boolean(one.missing) === Boolean(two.missing) && (one.value ?? "") === (two.value ?? "");
}

// The previous range's result of each of `results` (`previous`: the answer's previousResults or
// previousFormulaResults): the one of the same series (or formula) index and breakdown value, null where there
// is none (the previous range ranks its values by its own events, so a value may be measured on one side
// only). Null when there is nothing to compare with.
export function previousOf(results, previous) {
  if (!previous) return null;
  return results.map(
    (result) => previous.find((earlier) => (earlier.seriesIndex ?? 0) === (result.seriesIndex ?? 0) && sameBreakdown(earlier, result)) ?? null,
  );
}

// Whether a comparison fits beside each period's value: without breakdown (a result per series or formula).
// With one, the previous values and their change are shown for the whole range only.
export function comparedByPeriod(results) {
  return results.every((result) => resultKey(result) === "");
}

// The change from `previous` to `current` relative to the previous value's size ((current - previous) /
// |previous|, so that a negative formula rising reads as a rise); null without both, or when the previous is 0.
export function relativeChange(current, previous) {
  if (current === null || current === undefined || previous === null || previous === undefined) return null;
  const now = Number(current);
  const before = Number(previous);
  if (!Number.isFinite(now) || !Number.isFinite(before) || before === 0) return null;
  return (now - before) / Math.abs(before);
}

// A relative change with its sign: "+12.5%", "−3.0%" (a minus sign), "0.0%"; "—" for none.
export function formatChange(ratio) {
  if (ratio === null || ratio === undefined || !Number.isFinite(Number(ratio))) return EMPTY;
  const text = formatPercent(Math.abs(Number(ratio)));
  if (text === formatPercent(0)) return text;
  return `${Number(ratio) > 0 ? "+" : MINUS}${text}`;
}

// A table cell: the value and the events; compared, also the previous value and the change to this one.
function cell(value, events, compared, earlier) {
  const one = { value, events };
  if (!compared) return one;
  one.previous = earlier;
  one.change = relativeChange(value, earlier);
  return one;
}

// The rows of a series' table: one per period (its label, marked when still running), then the whole range;
// each with, per result, {value, events}. With `previous` (previousOf's, a result or null per result), also
// {previous, change}: the previous range's period at the same position (the first with the first; none past
// its last), and its total in the whole range's row.
export function seriesRows(results, { period, zone, previous = null }) {
  const points = results[0]?.points ?? [];
  const compared = Boolean(previous);
  const rows = points.map((point, index) => ({
    key: point.periodStart,
    label: `${periodLabel(point.periodStart, period, zone)}${point.complete ? "" : RUNNING_MARK}`,
    complete: Boolean(point.complete),
    cells: results.map((result, at) => {
      const here = result.points?.[index] ?? {};
      return cell(measure(here.value), Number(here.eventCount ?? 0), compared, measure(previous?.[at]?.points?.[index]?.value));
    }),
  }));
  rows.push({
    key: TOTAL_ROW,
    label: "Whole range",
    complete: true,
    cells: results.map((result, at) => cell(measure(result.total), Number(result.eventCount ?? 0), compared, measure(previous?.[at]?.total))),
  });
  return rows;
}

// The previous value and change columns of result `index` (its cells' previous and change), keyed by `key`
// ("previous", "change" or with a breakdown or formula suffix); `name` the result's name ("" for a series
// without breakdown).
function comparedColumns(index, key, name) {
  return [
    {
      key: key("previous"),
      label: name ? `${name}: previous` : "Previous",
      numeric: true,
      value: (row) => row.cells[index].previous,
      format: (value) => formatNumber(value),
    },
    {
      key: key("change"),
      label: name ? `${name}: change` : "Change",
      numeric: true,
      value: (row) => row.cells[index].change,
      format: (ratio) => formatChange(ratio),
    },
  ];
}

// The columns of a series' table: the period, then per result its value (with `previous`, then the previous
// range's value and the change: seriesRows' with the same `previous`), and, unless the math counts events or
// persons, how many matching events there were; keyed `value`, `previous`, `change` and `events` without
// breakdown, else `value:<breakdown key>` and so on.
export function seriesColumns(results, { period, counting, segmentNames = null, measureName = "Value", previous = null }) {
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
    if (previous) columns.push(...comparedColumns(index, key, name));
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

// The previous range's line beside `line` (a result's): its name marked, dashed and lighter in the same colour,
// its points at the range's periods by position (the first at the first; those past the range's last dropped,
// a gap where it has none); the tooltip names each one's own period.
function previousLine(line, earlier, count, { period, zone }) {
  const points = Array.from({ length: count }, (_, index) => earlier.points?.[index] ?? null);
  const periods = points.map((point) => (point ? periodLabel(point.periodStart, period, zone) : null));
  return {
    type: "line",
    name: `${line.name}${PREVIOUS_MARK}`,
    connectNulls: false,
    symbolSize: 6,
    itemStyle: { color: line.itemStyle.color, opacity: PREVIOUS_POINT_OPACITY },
    lineStyle: { type: "dashed", opacity: PREVIOUS_OPACITY },
    tooltip: {
      valueFormatter: (value, index) => (periods[index] ? `${formatNumber(value)} (previous: ${periods[index]})` : formatNumber(value)),
    },
    data: points.map((point) => ({
      value: measure(point?.value),
      symbol: !point || point.complete ? "circle" : "emptyCircle",
    })),
  };
}

// The line chart of one series: x the periods, a line per result; a period still running is a hollow point, a
// period without a value a gap. `lineName(result)` names a line (default: its breakdown value, else the
// measure); `legend` shows the names even for a single line. With `previous` (previousOf's), each line that has
// a previous result is followed by its previousLine.
export function seriesChartOption(
  results,
  { period, zone, segmentNames = null, measureName = "Value", lineName = null, legend = false, previous = null },
) {
  const points = results[0]?.points ?? [];
  const series = [];
  results.forEach((result, index) => {
    const line = {
      type: "line",
      name: lineName ? lineName(result) : breakdownName(result, segmentNames) || measureName,
      connectNulls: false,
      symbolSize: 7,
      itemStyle: { color: PALETTE[index % PALETTE.length] },
      data: (result.points ?? []).map((point) => ({
        value: measure(point.value),
        symbol: point.complete ? "circle" : "emptyCircle",
      })),
    };
    series.push(line);
    if (previous?.[index]) series.push(previousLine(line, previous[index], line.data.length, { period, zone }));
  });
  const several = legend || series.length > 1;
  const option = {
    grid: { left: 64, right: 24, top: several ? 48 : 32, bottom: 40 },
    tooltip: { trigger: "axis", valueFormatter: (value) => formatNumber(value) },
    xAxis: { type: "category", data: points.map((point) => periodLabel(point.periodStart, period, zone)) },
    yAxis: { type: "value", name: measureName, nameTextStyle: { align: "left" } },
    series,
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
// where the formula has no value), keyed `formula:<index>`, with a breakdown `formula:<index>:<breakdown key>`;
// with `previous` (previousOf's), each followed by the previous range's value and the change, keyed
// `previous:formula:<index>…` and `change:formula:<index>…`.
export function formulaColumns(results, { period, segmentNames = null, previous = null }) {
  const columns = [{ key: "period", label: PERIODS[period]?.unit ?? "Period", value: (row) => row.label }];
  results.forEach((result, index) => {
    const value = resultKey(result);
    const key = `formula:${result.seriesIndex ?? 0}${value ? `:${value}` : ""}`;
    const name = formulaName(result, segmentNames);
    columns.push({
      key,
      label: name,
      numeric: true,
      value: (row) => row.cells[index].value,
      format: (number) => formatNumber(number),
    });
    if (previous) columns.push(...comparedColumns(index, (kind) => `${kind}:${key}`, name));
  });
  return columns;
}

// The formulas' chart: a line per formula result as a series' lines are drawn (a gap where a formula has no
// value), each named in the legend since the heading names none; with `previous`, their previous lines.
export function formulaChartOption(results, { period, zone, segmentNames = null, previous = null }) {
  return seriesChartOption(results, {
    period,
    zone,
    measureName: "Value",
    lineName: (result) => formulaName(result, segmentNames),
    legend: true,
    previous,
  });
}

// The whole range compared, a row per result (a breakdown value, or a formula's): {key (`<series or formula
// index>:<breakdown key>`), label (`name(result)`), value (the total), previous (the previous range's total,
// null without a previous result), change}. A value measured in the previous range only has no row.
export function comparisonRows(results, previous, name) {
  return results.map((result, index) => {
    const value = measure(result.total);
    const earlier = measure(previous?.[index]?.total);
    const key = `${result.seriesIndex ?? 0}:${resultKey(result)}`;
    return { key, label: name(result), value, previous: earlier, change: relativeChange(value, earlier) };
  });
}

// The columns of comparisonRows' table; `first` heads the results' names ("Breakdown value", "Formula").
export function comparisonColumns(first) {
  return [
    { key: "name", label: first, value: (row) => row.label },
    { key: "value", label: "This range", numeric: true, format: (value) => formatNumber(value) },
    { key: "previous", label: "Previous range", numeric: true, format: (value) => formatNumber(value) },
    { key: "change", label: "Change", numeric: true, format: (ratio) => formatChange(ratio) },
  ];
}

function rangeLine(response, request) {
  const zone = request.timeZone || "UTC";
  return h(
    "p",
    { class: "help", "data-testid": "trends-range-line" },
    `Periods begin at midnight in ${zone}; measured from ${formatTime(request.timeRange?.start)} to ${formatTime(response.endTime)}. * and hollow points mark a period still running.`,
  );
}

// An instant as the time zone's clock reads it: "2026-08-31 00:00".
export function zoneTime(instant, zone) {
  if (!instant) return EMPTY;
  const at = new Date(instant);
  const day = new Intl.DateTimeFormat("en-CA", { timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit" }).format(at);
  const time = new Intl.DateTimeFormat("en-GB", { timeZone: zone, hour: "2-digit", minute: "2-digit", hourCycle: "h23" }).format(at);
  return `${day} ${time}`;
}

// Which range the previous values are of: from the answer's previousStartTime to where the range starts.
function compareLine(response, request) {
  const zone = request.timeZone || "UTC";
  return h(
    "p",
    { class: "help", "data-testid": "trends-compare-line" },
    `Compared with ${zoneTime(response.previousStartTime, zone)} to ${zoneTime(request.timeRange?.start, zone)} (${zone}): the previous range, as long, ending where this one starts. Dashed lines and the previous values align its periods with this range's by position, the first with the first; a change is relative to the previous value (— when that is 0 or missing).`,
  );
}

// The whole range compared with the previous range's, a row per result, under a breakdown's table (whose
// periods have no previous columns: comparedByPeriod).
function comparisonTable(results, previous, { name, first, caption, testid }) {
  return dataTable({
    caption,
    columns: comparisonColumns(first),
    rows: comparisonRows(results, previous, name),
    rowKey: (row) => row.key,
    testid,
  });
}

function drawSeries(root, group, row, { period, zone, heading, segmentNames, previous }) {
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
  const earlier = previousOf(group.results, previous);
  const byPeriod = Boolean(earlier) && comparedByPeriod(group.results);
  const options = { period, zone, segmentNames, measureName, counting, previous: earlier };
  const lines = group.results.length;
  chart(container, seriesChartOption(group.results, options), {
    label: `${title} per ${period}${lines > 1 ? `, a line for each of ${lines} breakdown values` : ""}${earlier ? ", and dashed the previous range's" : ""}; hollow points mark a period still running; the numbers are in the table below`,
    height: 320,
  });
  section.append(
    dataTable({
      caption: `${title} per ${period}, and over the whole range (last row)${byPeriod ? "; beside each value the previous range's at the same position and the change from it" : ""}; * marks a period still running, — a period with nothing to measure`,
      columns: seriesColumns(group.results, { ...options, previous: byPeriod ? earlier : null }),
      rows: seriesRows(group.results, options),
      rowKey: (r) => r.key,
      testid: `trends-table-${group.index}`,
    }),
  );
  if (earlier && !byPeriod) {
    section.append(
      comparisonTable(group.results, earlier, {
        name: (result) => breakdownName(result, segmentNames),
        first: "Breakdown value",
        caption: `${title} over the whole range and over the previous range, per breakdown value (a value measured only in the previous range is not shown)`,
        testid: `trends-compare-table-${group.index}`,
      }),
    );
  }
}

// The formulas' results (the answer's formulaResults, in formula order) in one chart and one table; nothing
// when the request had none.
function drawFormulas(root, response, { period, zone, heading, segmentNames, previous }) {
  const results = response?.formulaResults ?? [];
  if (results.length === 0) return;
  const section = h("section", { class: "trends-series trends-formula-results", "data-testid": "trends-formula-results" });
  root.append(section);
  section.append(h(heading, {}, "Formulas"));
  const container = h("div", { class: "chart trends-chart", "data-testid": "trends-formula-chart" });
  section.append(container);
  const earlier = previousOf(results, previous);
  const byPeriod = Boolean(earlier) && comparedByPeriod(results);
  const options = { period, zone, segmentNames, previous: earlier };
  const names = results.map((result) => formulaName(result, segmentNames)).join(", ");
  chart(container, formulaChartOption(results, options), {
    label: `Formulas per ${period}: ${names}${earlier ? ", and dashed the previous range's" : ""}; hollow points mark a period still running; the numbers are in the table below`,
    height: 320,
  });
  section.append(
    dataTable({
      caption: `Formulas per ${period}, and over the whole range (last row: each applied to the series' totals)${byPeriod ? "; beside each value the previous range's at the same position and the change from it" : ""}; * marks a period still running, — a period where a formula has no value (a series without one, or a division by zero)`,
      columns: formulaColumns(results, { ...options, previous: byPeriod ? earlier : null }),
      rows: seriesRows(results, options),
      rowKey: (r) => r.key,
      testid: "trends-formula-table",
    }),
  );
  if (earlier && !byPeriod) {
    section.append(
      comparisonTable(results, earlier, {
        name: (result) => formulaName(result, segmentNames),
        first: "Formula",
        caption: "Formulas over the whole range and over the previous range, per breakdown value (a value measured only in the previous range is not shown)",
        testid: "trends-formula-compare-table",
      }),
    );
  }
}

// Draws a QueryTrends answer (a QueryStickiness answer in stickiness mode, a QueryActivityLifecycle answer in
// lifecycle mode) for `filters` (the page's, query.js) and the `request` they made. options: heading (the series headings' level, default "h2"),
// segmentNames (a Map, for a breakdown by segment), onPersons (lifecycle mode: drawLifecycle's, which makes each
// count list its persons; the page passes it, the report does not), segmentActions (lifecycle mode:
// drawLifecycle's, "Save dormant as segment…" under each series' table; the page passes it for a key that may
// save segments).
export function drawTrends(root, response, filters, request, { heading = "h2", segmentNames = null, onPersons = null, segmentActions = null } = {}) {
  const options = { period: filters.period, zone: filters.tz, heading, segmentNames };
  if (filters.mode === "stickiness") {
    drawStickiness(root, response, filters, request, options);
    return;
  }
  if (filters.mode === "lifecycle") {
    drawLifecycle(root, response, filters, request, { ...options, onPersons, segmentActions });
    return;
  }
  root.append(rangeLine(response, request));
  if (filters.mode === "sentiment") {
    drawSentiment(root, response, options);
    return;
  }
  // Compared only when the answer has the previous range (a server without it answers as if not asked).
  const comparing = Boolean(filters.compare && response?.previousStartTime);
  if (comparing) root.append(compareLine(response, request));
  const groups = resultsBySeries(response, filters.series.length);
  const none = (results) => results.every((result) => Number(result.eventCount ?? 0) === 0);
  if (groups.every((group) => none(group.results)) && (!comparing || none(response.previousResults ?? []))) {
    root.append(emptyState(comparing ? "No matching event in this range or the previous one." : "No matching event in this range."));
    return;
  }
  groups.forEach((group) => drawSeries(root, group, filters.series[group.index], { ...options, previous: comparing ? (response.previousResults ?? []) : null }));
  drawFormulas(root, response, { ...options, previous: comparing ? (response.previousFormulaResults ?? []) : null });
}
