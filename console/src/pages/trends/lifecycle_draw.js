// Drawing a QueryActivityLifecycle answer (the Trends page's lifecycle mode, PostHog's Lifecycle: growth
// accounting): per series and period its persons new (their first matching event ever fell in the period),
// returning (active in it and the one before), resurrecting (active in it, not the one before, but earlier) and
// dormant (active in the one before, not in it); per series a stacked bar chart (the active three above zero,
// the dormant below it) and its table, a row per period with the active persons and the quick ratio, (new +
// resurrecting) ÷ dormant. trends/draw.js's drawTrends calls drawLifecycle. The models (rows, columns, chart
// option) are pure and tested by console/test/trends.test.mjs.

import { chart } from "../../charts.js";
import { dataTable, emptyState, formatNumber, formatTime, h } from "../../dom.js";
import { EMPTY, formatSigned, periodLabel, resultsBySeries, RUNNING_MARK } from "./format.js";
import { PERIODS, seriesLabel } from "./query.js";

// The statuses in the order they are stacked (the active three up from zero, then the dormant down from it):
// the row's key, the point's field, how the page names them and their colour (Okabe–Ito).
export const LIFECYCLE_STATUSES = Object.freeze([
  { key: "new", field: "newPersons", label: "New", colour: "#009E73" },
  { key: "returning", field: "returningPersons", label: "Returning", colour: "#0072B2" },
  { key: "resurrecting", field: "resurrectingPersons", label: "Resurrecting", colour: "#CC79A7" },
  { key: "dormant", field: "dormantPersons", label: "Dormant", colour: "#D55E00" },
]);

const RATIO_FORMAT = new Intl.NumberFormat("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });

// The quick ratio of a period, (new + resurrecting) ÷ dormant: the persons gained for each one lost; null
// without dormant persons.
export function quickRatio(row) {
  return row.dormant > 0 ? (row.new + row.resurrecting) / row.dormant : null;
}

// A quick ratio with 2 decimals ("1.50"); "—" for none (no dormant persons).
export function formatQuickRatio(ratio) {
  if (ratio === null || ratio === undefined || !Number.isFinite(Number(ratio))) return EMPTY;
  return RATIO_FORMAT.format(Number(ratio));
}

// The rows of a series' lifecycle table, one per point (period) of its result: {key (the period's start), label
// (its day in the zone, marked when still running), complete, new, returning, resurrecting, dormant (persons, a
// count: proto3 JSON's int64 strings read as numbers, an omitted zero as 0), active (new + returning +
// resurrecting), quickRatio (quickRatio's)}.
export function lifecycleRows(result, { period, zone }) {
  return (result?.points ?? []).map((point) => {
    const row = {
      key: point.periodStart,
      label: `${periodLabel(point.periodStart, period, zone)}${point.complete ? "" : RUNNING_MARK}`,
      complete: Boolean(point.complete),
    };
    for (const status of LIFECYCLE_STATUSES) row[status.key] = Number(point[status.field] ?? 0);
    row.active = row.new + row.returning + row.resurrecting;
    row.quickRatio = quickRatio(row);
    return row;
  });
}

// The dormant persons as drawn, below zero (0 stays 0, never −0).
function below(persons) {
  return persons > 0 ? -persons : 0;
}

// The columns of a lifecycle table: the period, the persons of each status (the dormant as a negative number,
// "−12"), the active persons and the quick ratio (2 decimals, "—" without dormant persons).
export function lifecycleColumns({ period }) {
  return [
    { key: "period", label: PERIODS[period]?.unit ?? "Period", value: (row) => row.label },
    ...LIFECYCLE_STATUSES.map((status) =>
      status.key === "dormant"
        ? { key: status.key, label: status.label, numeric: true, value: (row) => below(row.dormant), format: formatSigned }
        : { key: status.key, label: status.label, numeric: true },
    ),
    { key: "active", label: "Active", numeric: true },
    { key: "quick-ratio", label: "Quick ratio", numeric: true, value: (row) => row.quickRatio, format: formatQuickRatio },
  ];
}

// The stacked bars of one status: a bar per period, a running period's hollow (its outline in the colour).
function statusBars(status, rows) {
  return {
    type: "bar",
    name: status.label,
    // One stack: ECharts stacks values of the same sign together, so the dormant go down from zero.
    stack: "lifecycle",
    itemStyle: { color: status.colour },
    tooltip: { valueFormatter: (value) => formatSigned(value) },
    data: rows.map((row) => {
      const value = status.key === "dormant" ? below(row.dormant) : row[status.key];
      return row.complete ? value : { value, itemStyle: { color: "#ffffff", borderColor: status.colour, borderWidth: 2 } };
    }),
  };
}

// The stacked bar chart of a series' lifecycle (lifecycleRows'): x the periods (a running one marked "*"), per
// period the new, returning and resurrecting persons stacked above zero and the dormant below it; a legend of the
// four statuses; the y axis in persons, negative below zero with a minus sign.
export function lifecycleChartOption(rows) {
  return {
    legend: { top: 0 },
    grid: { left: 64, right: 24, top: 48, bottom: 40 },
    tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
    xAxis: { type: "category", data: rows.map((row) => row.label) },
    yAxis: { type: "value", name: "Persons", minInterval: 1, nameTextStyle: { align: "left" }, axisLabel: { formatter: (value) => formatSigned(value) } },
    series: LIFECYCLE_STATUSES.map((status) => statusBars(status, rows)),
  };
}

// A series' lifecycle heading: "Order Completed: new, returning, resurrecting and dormant persons".
export function lifecycleTitle(label) {
  return `${label}: new, returning, resurrecting and dormant persons`;
}

function lifecycleLine(response, request) {
  const zone = request.timeZone || "UTC";
  return h(
    "p",
    { class: "help", "data-testid": "trends-range-line" },
    `Periods begin at midnight in ${zone}; measured from ${formatTime(request.timeRange?.start)} to ${formatTime(response.endTime)}. Per period, a series' persons are new (their first matching event ever fell in it), returning (active in it and the one before), resurrecting (active in it, not the one before, but earlier) or dormant (active in the one before, not in it: drawn below zero). The quick ratio is (new + resurrecting) ÷ dormant. * and hollow bars mark a period still running (its dormant persons may yet return).`,
  );
}

// Whether a series' rows hold no person at all.
function quiet(rows) {
  return rows.every((row) => LIFECYCLE_STATUSES.every((status) => row[status.key] === 0));
}

// Draws the QueryActivityLifecycle answer `response` to `request` into `root`: the line on its statuses, then a
// section per series of `filters` (its chart and table), or a line saying no event matched. options: period,
// zone, heading (drawTrends's).
export function drawLifecycle(root, response, filters, request, { period, zone, heading }) {
  root.append(lifecycleLine(response, request));
  const groups = resultsBySeries(response, filters.series.length).map((group) => ({
    ...group,
    rows: lifecycleRows(group.results[0], { period, zone }),
  }));
  if (groups.every((group) => quiet(group.rows))) {
    root.append(emptyState("No matching event in this range."));
    return;
  }
  groups.forEach((group) => {
    const title = lifecycleTitle(group.label || seriesLabel(filters.series[group.index]));
    const section = h("section", { class: "trends-series", "data-testid": `trends-lifecycle-${group.index}` });
    root.append(section);
    section.append(h(heading, {}, title));
    if (quiet(group.rows)) {
      section.append(emptyState("No matching event in this range."));
      return;
    }
    const container = h("div", { class: "chart trends-chart", "data-testid": `trends-lifecycle-chart-${group.index}` });
    section.append(container);
    chart(container, lifecycleChartOption(group.rows), {
      label: `${title} per ${period}, ${formatNumber(group.rows.length)} periods: new, returning and resurrecting persons stacked above zero, dormant persons below it; hollow bars mark a period still running; the numbers are in the table below`,
      height: 320,
    });
    section.append(
      dataTable({
        caption: `${title} per ${period}: the persons new, returning, resurrecting and dormant (a negative number: lost since the period before), the active persons (new + returning + resurrecting) and the quick ratio, (new + resurrecting) ÷ dormant (— without dormant persons); * marks a period still running`,
        columns: lifecycleColumns({ period }),
        rows: group.rows,
        rowKey: (row) => row.key,
        testid: `trends-lifecycle-table-${group.index}`,
      }),
    );
  });
}
