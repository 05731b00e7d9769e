// Drawing a QueryStickiness answer (the Trends page's stickiness mode): of the persons who performed a series'
// events in the range, how many did so in exactly 1, 2, … of its periods; per series a bar chart of them (a bar
// per breakdown value) and its table, a row per number of periods and the persons last, under a line saying how
// the periods are counted. trends/draw.js's drawTrends calls drawStickiness. The models (rows, columns, chart
// option) are pure and tested by console/test/trends.test.mjs.

import { chart, PALETTE } from "../../charts.js";
import { dataTable, emptyState, formatNumber, formatPercent, formatTime, h } from "../../dom.js";
import { breakdownName, resultKey, resultsBySeries } from "./format.js";
import { seriesLabel } from "./query.js";

// How periods are counted, by the page's period: one, several.
const PERIOD_WORDS = Object.freeze({
  hour: ["hour", "hours"],
  day: ["day", "days"],
  week: ["week", "weeks"],
  month: ["month", "months"],
});

function periodWords(period) {
  return PERIOD_WORDS[period] ?? ["period", "periods"];
}

// A number of periods for people: "1 day", "2 days", "3 weeks", "1 hour".
export function periodCountLabel(count, period) {
  const [one, several] = periodWords(period);
  return `${formatNumber(count)} ${count === 1 ? one : several}`;
}

// How many periods the answer's range holds (its periodCount; else the longest `persons`).
export function stickinessPeriods(response) {
  const count = Number(response?.periodCount ?? 0);
  if (count > 0) return count;
  return Math.max(0, ...(response?.results ?? []).map((result) => result.persons?.length ?? 0));
}

// A share of a whole, null without a whole.
function shareOf(part, whole) {
  return whole > 0 ? part / whole : null;
}

// The key of a stickiness table's last row, every person who performed the events.
export const STICKINESS_TOTAL_ROW = "persons";

// The rows of a series' stickiness table: one per number of periods, 1 to `periods` (key and label the
// number), each with, per result, {persons (performed the events in exactly that many periods), share (of the
// result's totalPersons; null when it has none)}; then the persons row (key `persons`, label "Persons": each
// result's totalPersons, share null).
export function stickinessRows(results, periods) {
  const totals = results.map((result) => Number(result.totalPersons ?? 0));
  const rows = Array.from({ length: periods }, (_, index) => ({
    key: String(index + 1),
    label: formatNumber(index + 1),
    cells: results.map((result, at) => {
      const persons = Number(result.persons?.[index] ?? 0);
      return { persons, share: shareOf(persons, totals[at]) };
    }),
  }));
  rows.push({ key: STICKINESS_TOTAL_ROW, label: "Persons", cells: totals.map((persons) => ({ persons, share: null })) });
  return rows;
}

// A stickiness cell as shown: the persons and their share of the value's persons, "12 (34.0%)"; the persons
// alone without a share (the persons row, or a value without persons).
export function formatStickiness(persons, share) {
  const number = formatNumber(persons);
  return share === null || share === undefined ? number : `${number} (${formatPercent(share)})`;
}

// The columns of a series' stickiness table: the number of periods (headed "Days", "Weeks", …), then per result
// its persons, shown with their share (formatStickiness; the raw value the persons), keyed `persons` without
// breakdown, else `persons:<breakdown key>`, headed by the breakdown value (else "Persons").
export function stickinessColumns(results, { period, segmentNames = null }) {
  const [, several] = periodWords(period);
  const columns = [{ key: "periods", label: several.charAt(0).toUpperCase() + several.slice(1), value: (row) => row.label }];
  results.forEach((result, index) => {
    const value = resultKey(result);
    columns.push({
      key: value ? `persons:${value}` : "persons",
      label: breakdownName(result, segmentNames) || "Persons",
      numeric: true,
      value: (row) => row.cells[index].persons,
      format: (persons, row) => formatStickiness(persons, row.cells[index].share),
    });
  });
  return columns;
}

// The bar chart of a series' stickiness: x the numbers of periods ("1 day", "2 days", …), y the persons, a bar
// per result (breakdown value) in each group, named by its value (else "Persons"; a legend when several); the
// tooltip gives each bar's share of its value's persons.
export function stickinessChartOption(results, { period, periods, segmentNames = null }) {
  const series = results.map((result, index) => {
    const total = Number(result.totalPersons ?? 0);
    const data = Array.from({ length: periods }, (_, at) => Number(result.persons?.[at] ?? 0));
    return {
      type: "bar",
      name: breakdownName(result, segmentNames) || "Persons",
      itemStyle: { color: PALETTE[index % PALETTE.length] },
      tooltip: { valueFormatter: (value) => formatStickiness(value, shareOf(Number(value), total)) },
      data,
    };
  });
  const several = series.length > 1;
  const option = {
    grid: { left: 64, right: 24, top: several ? 48 : 32, bottom: 40 },
    tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
    xAxis: { type: "category", data: Array.from({ length: periods }, (_, at) => periodCountLabel(at + 1, period)) },
    yAxis: { type: "value", name: "Persons", minInterval: 1, nameTextStyle: { align: "left" } },
    series,
  };
  if (several) option.legend = { top: 0, type: "scroll" };
  return option;
}

// A series' stickiness heading: "Order Completed: persons by the days they performed it" ("All events: persons
// by the days they were active" for a series of every event).
export function stickinessTitle(label, row, period) {
  const [, several] = periodWords(period);
  return row?.event ? `${label}: persons by the ${several} they performed it` : `${label}: persons by the ${several} they were active`;
}

function stickinessLine(response, request, { period, periods, broken }) {
  const zone = request.timeZone || "UTC";
  const [, several] = periodWords(period);
  return h(
    "p",
    { class: "help", "data-testid": "trends-range-line" },
    `Periods begin at midnight in ${zone}; measured from ${formatTime(request.timeRange?.start)} to ${formatTime(response.endTime)}: ${periodCountLabel(periods, period)}, a partial one counted as one. Each person who performed a series' events counts once${broken ? " per breakdown value" : ""}, in the row of how many of these ${several} they did so in; the share is of that column's persons.`,
  );
}

// Draws the QueryStickiness answer `response` to `request` into `root`: the line on its periods, then a section
// per series of `filters` (its chart and table), or a line saying no event matched. options: period, heading,
// segmentNames (drawTrends's).
export function drawStickiness(root, response, filters, request, { period, heading, segmentNames }) {
  const periods = stickinessPeriods(response);
  root.append(stickinessLine(response, request, { period, periods, broken: Boolean(request.breakdown) }));
  const groups = resultsBySeries(response, filters.series.length);
  const none = (results) => results.every((result) => Number(result.totalPersons ?? 0) === 0);
  if (groups.every((group) => none(group.results))) {
    root.append(emptyState("No matching event in this range."));
    return;
  }
  groups.forEach((group) => {
    const row = filters.series[group.index];
    const title = stickinessTitle(group.label || seriesLabel(row), row, period);
    const section = h("section", { class: "trends-series", "data-testid": `trends-stickiness-${group.index}` });
    root.append(section);
    section.append(h(heading, {}, title));
    if (none(group.results)) {
      section.append(emptyState("No matching event in this range."));
      return;
    }
    const [, several] = periodWords(period);
    const container = h("div", { class: "chart trends-chart", "data-testid": `trends-stickiness-chart-${group.index}` });
    section.append(container);
    const bars = group.results.length;
    chart(container, stickinessChartOption(group.results, { period, periods, segmentNames }), {
      label: `${title}: persons by how many ${several} they performed it in, 1 to ${periods}${bars > 1 ? `, a bar for each of ${bars} breakdown values` : ""}; the numbers are in the table below`,
      height: 320,
    });
    section.append(
      dataTable({
        caption: `${title}: per number of ${several}, the persons who performed it in exactly that many, and their share of the column's persons; the last row, every person who performed it`,
        columns: stickinessColumns(group.results, { period, segmentNames }),
        rows: stickinessRows(group.results, periods),
        rowKey: (r) => r.key,
        testid: `trends-stickiness-table-${group.index}`,
      }),
    );
  });
}
