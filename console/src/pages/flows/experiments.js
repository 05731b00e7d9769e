// Experiments for the Flows page: each split step's variants against their control (FlowStats.variants):
// conversion, lift, p-value, significance and the 95% interval of the difference, as a table and a bar chart
// of the difference from the control with its interval as error bars.

import { chart } from "../../charts.js";
import { dataTable, formatPercent, h } from "../../dom.js";

function points(value) {
  const number = Number(value);
  if (!Number.isFinite(number)) return "—";
  const sign = number > 0 ? "+" : "";
  return `${sign}${(number * 100).toFixed(1)} pp`;
}

function interval(row) {
  if (row.control || (row.differenceLow === 0 && row.differenceHigh === 0)) return "—";
  return `${points(row.differenceLow)} to ${points(row.differenceHigh)}`;
}

// The error bars: a vertical line from the interval's low to its high end, with whiskers.
function errorBar(params, api) {
  const x = api.value(0);
  const low = api.coord([x, api.value(1)]);
  const high = api.coord([x, api.value(2)]);
  const half = Math.min(10, api.size([1, 0])[0] * 0.12);
  const style = { stroke: "#1b1f24", lineWidth: 1.5 };
  return {
    type: "group",
    children: [
      { type: "line", shape: { x1: low[0], y1: low[1], x2: high[0], y2: high[1] }, style },
      { type: "line", shape: { x1: low[0] - half, y1: low[1], x2: low[0] + half, y2: low[1] }, style },
      { type: "line", shape: { x1: high[0] - half, y1: high[1], x2: high[0] + half, y2: high[1] }, style },
    ],
  };
}

export function drawExperiments(root, stats) {
  const rows = (stats?.variants ?? []).map((v) => ({
    key: `${v.stepId}/${v.label}`,
    stepId: v.stepId,
    label: v.label,
    control: Boolean(v.control),
    enteredCount: Number(v.enteredCount),
    convertedCount: Number(v.convertedCount),
    conversionRate: Number(v.conversionRate),
    liftOverControl: Number(v.liftOverControl),
    pValue: Number(v.pValue),
    significant: Boolean(v.significant),
    differenceLow: Number(v.differenceLow),
    differenceHigh: Number(v.differenceHigh),
  }));
  if (rows.length === 0) {
    root.append(h("p", { class: "empty-state", "data-testid": "flow-variants-empty" }, "This flow has no split step."));
    return;
  }
  const compared = rows.filter((r) => !r.control && (r.differenceLow !== 0 || r.differenceHigh !== 0));
  if (compared.length > 0) {
    const container = h("div", { "data-testid": "flow-variants-chart" });
    root.append(container);
    // The unpooled interval is symmetric about the observed difference: its middle is the difference.
    const middle = (r) => (r.differenceLow + r.differenceHigh) / 2;
    chart(
      container,
      {
        grid: { left: 70, right: 20, top: 20, bottom: 40 },
        xAxis: { type: "category", data: compared.map((r) => `${r.stepId}: ${r.label}`) },
        yAxis: {
          type: "value",
          name: "Difference from control",
          axisLabel: { formatter: (value) => points(value) },
        },
        series: [
          {
            type: "bar",
            name: "Difference in conversion rate",
            data: compared.map((r) => ({
              value: middle(r),
              itemStyle: { color: r.significant ? (middle(r) > 0 ? "#009E73" : "#D55E00") : "#999999" },
            })),
            barMaxWidth: 60,
            markLine: { silent: true, symbol: "none", data: [{ yAxis: 0 }], lineStyle: { color: "#1b1f24" } },
          },
          {
            type: "custom",
            name: "95% interval",
            renderItem: errorBar,
            encode: { x: 0, y: [1, 2] }, // both ends count for the axis' extent
            data: compared.map((r, index) => [index, r.differenceLow, r.differenceHigh]),
            z: 10,
            tooltip: { show: false },
          },
        ],
      },
      { label: "Each variant's difference in conversion rate from its control, with its 95% interval", height: 300 },
    );
  }
  root.append(
    dataTable({
      caption: "Variants against their control",
      testid: "flow-variants-table",
      rowKey: (row) => row.key,
      columns: [
        { key: "label", label: "Variant", value: (row) => `${row.stepId}: ${row.label}` },
        { key: "control", label: "Control", format: (value) => (value ? "Control" : "—") },
        { key: "enteredCount", label: "Assigned", numeric: true },
        { key: "convertedCount", label: "Converted", numeric: true },
        { key: "conversionRate", label: "Conversion", numeric: true, format: formatPercent },
        { key: "liftOverControl", label: "Lift", numeric: true, format: (value, row) => (row.control ? "—" : formatPercent(value)) },
        { key: "pValue", label: "p-value", numeric: true, format: (value) => value.toFixed(3) },
        { key: "significant", label: "Significant (95%)", format: (value, row) => (row.control ? "—" : value ? "Yes" : "No") },
        { key: "interval", label: "95% interval of the difference", value: interval },
      ],
      rows,
    }),
  );
}
