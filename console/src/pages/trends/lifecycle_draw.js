// Drawing a QueryActivityLifecycle answer (the Trends page's lifecycle mode, PostHog's Lifecycle: growth
// accounting): per series and period its persons new (their first matching event ever fell in the period),
// returning (active in it and the one before), resurrecting (active in it, not the one before, but earlier) and
// dormant (active in the one before, not in it); per series a stacked bar chart (the active three above zero,
// the dormant below it) and its table, a row per period with the active persons and the quick ratio, (new +
// resurrecting) ÷ dormant. With an `onPersons` option (the Trends page's; not the report's) each count above
// zero in the table is a button, and each bar segment a click, that asks for the persons behind it
// (ListActivityLifecyclePersons, which the page lists under the series' table); with a `segmentActions` option
// (the page's, for a key that may create segments: lifecycle_save.js) each series' table is followed by what it
// returns ("Save dormant as segment…"). trends/draw.js's drawTrends calls drawLifecycle. The models (rows,
// columns, chart option, the persons' titles) are pure and tested by console/test/trends.test.mjs.

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

// How a lifecycle's persons name a period: "week of 2026-11-23", "day 2026-11-23", "month 2026-11", "hour of
// 2026-11-23 14:00 UTC" (periodLabel's day, in the zone).
const PERIOD_PHRASES = Object.freeze({ hour: "hour of", day: "day", week: "week of", month: "month" });

export function lifecyclePeriodPhrase(periodStart, { period, zone }) {
  return `${PERIOD_PHRASES[period] ?? "period from"} ${periodLabel(periodStart, period, zone)}`;
}

// The title of the list of the persons behind one number: "Dormant persons, week of 2026-11-23", with ", still
// running" for a period still running and the series' label in parentheses when the page shows several.
export function lifecyclePersonsTitle(status, periodStart, { period, zone, running = false, series = "" }) {
  const label = LIFECYCLE_STATUSES.find((one) => one.key === status)?.label ?? status;
  const when = lifecyclePeriodPhrase(periodStart, { period, zone });
  return `${label} persons, ${when}${running ? ", still running" : ""}${series ? ` (${series})` : ""}`;
}

// A count of a status as the table shows it: the dormant as a negative number ("−12"), the others as numbers.
function shownCount(status, row) {
  return status.key === "dormant" ? formatSigned(below(row.dormant)) : formatNumber(row[status.key]);
}

// The button a count above zero is with `onPersons`: it asks for the persons behind it, onPersons(status key,
// row, the button).
function countButton(status, row, { period, zone, onPersons }) {
  const shown = shownCount(status, row);
  const button = h(
    "button",
    {
      type: "button",
      class: "link-button trends-count",
      "data-testid": "trends-lifecycle-count",
      "data-status": status.key,
      "data-period": row.key,
      "aria-label": `${shown}: list the ${status.label.toLowerCase()} persons, ${lifecyclePeriodPhrase(row.key, { period, zone })}`,
    },
    shown,
  );
  button.addEventListener("click", () => onPersons(status.key, row, button));
  return button;
}

// The columns of a lifecycle table: the period, the persons of each status (the dormant as a negative number,
// "−12"), the active persons and the quick ratio (2 decimals, "—" without dormant persons). With `onPersons`
// (and the rows' `zone`), each count above zero is shown as a button that calls onPersons(status key, row,
// the button).
export function lifecycleColumns({ period, zone = "UTC", onPersons = null }) {
  const counted = (status) =>
    onPersons
      ? { format: (_, row) => (row[status.key] > 0 ? countButton(status, row, { period, zone, onPersons }) : shownCount(status, row)) }
      : {};
  return [
    { key: "period", label: PERIODS[period]?.unit ?? "Period", value: (row) => row.label },
    ...LIFECYCLE_STATUSES.map((status) =>
      status.key === "dormant"
        ? { key: status.key, label: status.label, numeric: true, value: (row) => below(row.dormant), format: formatSigned, ...counted(status) }
        : { key: status.key, label: status.label, numeric: true, ...counted(status) },
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
// zone, heading (drawTrends's), onPersons (optional: the counts then ask for their persons, onPersons({section,
// seriesIndex, status (a LIFECYCLE_STATUSES key), periodStart (the point's), title (lifecyclePersonsTitle's),
// opener (the count's button, to focus again when the list closes)})), segmentActions (optional:
// segmentActions(seriesIndex) → a node to show under that series' table, or null).
export function drawLifecycle(root, response, filters, request, { period, zone, heading, onPersons = null, segmentActions = null }) {
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
    const instance = chart(container, lifecycleChartOption(group.rows), {
      label: `${title} per ${period}, ${formatNumber(group.rows.length)} periods: new, returning and resurrecting persons stacked above zero, dormant persons below it; hollow bars mark a period still running; the numbers are in the table below${onPersons ? ", where a count above zero lists its persons" : ""}`,
      height: 320,
    });
    // A count's persons, listed under this series' table.
    const open = (status, row, opener) =>
      onPersons({
        section,
        seriesIndex: group.index,
        status,
        periodStart: row.key,
        title: lifecyclePersonsTitle(status, row.key, {
          period,
          zone,
          running: !row.complete,
          series: filters.series.length > 1 ? group.label || seriesLabel(filters.series[group.index]) : "",
        }),
        opener,
      });
    const table = dataTable({
      caption: `${title} per ${period}: the persons new, returning, resurrecting and dormant (a negative number: lost since the period before), the active persons (new + returning + resurrecting) and the quick ratio, (new + resurrecting) ÷ dormant (— without dormant persons); * marks a period still running${onPersons ? "; a count lists its persons" : ""}`,
      columns: lifecycleColumns({ period, zone, onPersons: onPersons ? open : null }),
      rows: group.rows,
      rowKey: (row) => row.key,
      testid: `trends-lifecycle-table-${group.index}`,
    });
    section.append(table);
    const actions = segmentActions?.(group.index);
    if (actions) section.append(actions);
    if (!onPersons) return;
    // A bar segment lists its persons too (as its count's button does, which gets the focus back).
    instance.on("click", (event) => {
      const status = LIFECYCLE_STATUSES[event.seriesIndex];
      const row = group.rows[event.dataIndex];
      if (!status || !row || !(row[status.key] > 0)) return;
      const button = [...table.querySelectorAll("[data-testid=trends-lifecycle-count]")].find(
        (one) => one.dataset.status === status.key && one.dataset.period === row.key,
      );
      open(status.key, row, button ?? null);
    });
  });
}
