// Drawing a QueryTrends answer in sentiment mode (the preset's five series, query.js's sentimentSeries): per
// breakdown value the scored events, the mean score, the shares negative, neutral and positive and the net
// sentiment per period, the whole range last, in a chart (the shares stacked, the mean score a line on its own
// axis) and a table. trends/draw.js's drawTrends calls drawSentiment under its range line. The models (groups,
// rows, chart option) are pure and tested by console/test/trends.test.mjs.

import { chart } from "../../charts.js";
import { dataTable, emptyState, formatPercent, h } from "../../dom.js";
import { breakdownName, EMPTY, measure, periodLabel, resultKey, RUNNING_MARK, TOTAL_ROW } from "./format.js";
import { NEUTRAL_BAND, PERIODS } from "./query.js";

// The sentiment preset's series, by index (query.js's sentimentSeries).
const MEAN = 0;
const SCORED = 1;
const BANDS = [
  { index: 2, key: "negative", label: "Negative", colour: "#D55E00" },
  { index: 3, key: "neutral", label: "Neutral", colour: "#999999" },
  { index: 4, key: "positive", label: "Positive", colour: "#009E73" },
];

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

// Draws the sentiment answer `response` into `root`: a section per breakdown value holding scored events (its
// chart and table), else a line saying there is none. options: period, zone, heading, segmentNames (drawTrends's).
export function drawSentiment(root, response, { period, zone, heading, segmentNames }) {
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
