// drawFunnel: a QueryFunnel response as a bar chart of persons per step (conversion and drop-off), one
// table per series, and a time-to-convert histogram (the whole funnel, or one step, chosen in a select),
// with its table. Pure: it draws what it is given; the page and `wayline report` both call it. The page
// passes `onPersons(seriesIndex, stepIndex, outcome)` to add the "show persons" buttons.

import { chart, disposeCharts, PALETTE } from "../../charts.js";
import { dataTable, formatDuration, formatNumber, formatPercent, h, parseDuration, uniqueId } from "../../dom.js";

// The name of a series for people.
export function funnelSeriesName(series) {
  const value = series.breakdownValue ?? {};
  if (value.other) return "Other values";
  if (value.missing) return "No value";
  return value.value || "All persons";
}

// "5m – 15m", "≥ 180d": a histogram bucket's bounds for people.
export function bucketLabel(bucket) {
  const lower = parseDuration(bucket.lowerBound) ?? 0;
  const upper = bucket.upperBound === null || bucket.upperBound === undefined ? null : parseDuration(bucket.upperBound);
  if (upper === null) return `≥ ${formatDuration(lower)}`;
  return `${lower === 0 ? "0s" : formatDuration(lower)} – ${formatDuration(upper)}`;
}

// The name of each series: the page's own (options.seriesName) or funnelSeriesName.
const nameOf = (options) => options.seriesName ?? funnelSeriesName;

function barOption(series, seriesName) {
  const labels = (series[0]?.steps ?? []).map((step) => step.label || `Step ${step.stepIndex + 1}`);
  const single = series.length === 1;
  const bars = series.map((one, index) => ({
    type: "bar",
    name: seriesName(one),
    stack: single ? "persons" : undefined,
    data: one.steps.map((step) => Number(step.count)),
    itemStyle: { color: PALETTE[index % PALETTE.length] },
    label: { show: single, position: "inside", formatter: (params) => formatNumber(params.value) },
  }));
  if (single) {
    bars.push({
      type: "bar",
      name: "Dropped off",
      stack: "persons",
      data: series[0].steps.map((step) => Number(step.dropOffCount)),
      itemStyle: { color: "#CCCCCC" },
    });
  }
  return {
    legend: { top: 0 },
    grid: { left: 56, right: 16, top: 40, bottom: 40 },
    tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
    xAxis: { type: "category", data: labels, axisLabel: { interval: 0, width: 120, overflow: "truncate" } },
    yAxis: { type: "value", name: "Persons", minInterval: 1 },
    series: bars,
  };
}

function stepsTable(one, index, options) {
  const columns = [
    { key: "label", label: "Step", value: (step) => `${step.stepIndex + 1}. ${step.label}` },
    { key: "count", label: "Persons", numeric: true },
    {
      key: "conversionRate",
      label: "Conversion from previous",
      numeric: true,
      format: (value) => formatPercent(value),
    },
    {
      key: "overallConversionRate",
      label: "Conversion from first",
      numeric: true,
      format: (value) => formatPercent(value),
    },
    { key: "dropOffCount", label: "Dropped off", numeric: true },
    {
      key: "averageTimeToConvert",
      label: "Mean time from previous",
      value: (step) => (step.stepIndex === 0 ? null : step.averageTimeToConvert),
      format: (value) => formatDuration(value),
    },
    {
      key: "medianTimeToConvert",
      label: "Median time from previous",
      value: (step) => (step.stepIndex === 0 ? null : step.medianTimeToConvert),
      format: (value) => formatDuration(value),
    },
  ];
  if (options.onPersons) {
    const name = nameOf(options)(one);
    columns.push({
      key: "actions",
      label: "Persons",
      value: () => null,
      format: (_, step) =>
        h(
          "span",
          { class: "funnel-person-buttons" },
          h(
            "button",
            {
              type: "button",
              class: "link-button",
              "data-testid": "funnel-persons",
              "data-series": index,
              "data-step": step.stepIndex,
              "data-outcome": "converted",
              "aria-label": `Persons who reached ${step.label} (${name})`,
              onclick: () => options.onPersons(index, step.stepIndex, "FUNNEL_PERSONS_OUTCOME_CONVERTED"),
            },
            "Reached",
          ),
          step.stepIndex === 0
            ? null
            : h(
                "button",
                {
                  type: "button",
                  class: "link-button",
                  "data-testid": "funnel-dropped",
                  "data-series": index,
                  "data-step": step.stepIndex,
                  "data-outcome": "dropped",
                  "aria-label": `Persons who dropped off before ${step.label} (${name})`,
                  onclick: () => options.onPersons(index, step.stepIndex, "FUNNEL_PERSONS_OUTCOME_DROPPED"),
                },
                "Dropped",
              ),
        ),
    });
  }
  return dataTable({
    caption: `Conversion and drop-off per step: ${nameOf(options)(one)}`,
    columns,
    rows: one.steps,
    rowKey: (step) => String(step.stepIndex),
    testid: `funnel-table-${index}`,
  });
}

// The histogram a choice names: "" for the whole funnel, else a step index (its time from the previous).
function histogramOf(one, choice) {
  if (choice === "") return one.conversionTimeHistogram ?? [];
  return one.steps[Number(choice)]?.timeToConvertHistogram ?? [];
}

function drawHistogram(holder, series, choice, options) {
  disposeCharts(holder);
  for (const old of holder.querySelectorAll(".chart")) old.remove();
  holder.querySelector(".funnel-histogram-tables")?.remove();
  const buckets = histogramOf(series[0] ?? { steps: [] }, choice);
  const container = h("div", { class: "funnel-histogram", "data-testid": "funnel-histogram" });
  const tables = h("div", { class: "funnel-histogram-tables" });
  holder.append(container, tables);
  const what = choice === "" ? "from the first step to the last" : `to reach step ${Number(choice) + 1} from the previous`;
  chart(
    container,
    {
      legend: { top: 0 },
      grid: { left: 56, right: 16, top: 40, bottom: 56 },
      tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
      xAxis: { type: "category", data: buckets.map(bucketLabel), axisLabel: { rotate: 30 } },
      yAxis: { type: "value", name: "Persons", minInterval: 1 },
      series: series.map((one, index) => ({
        type: "bar",
        name: nameOf(options)(one),
        data: histogramOf(one, choice).map((bucket) => Number(bucket.count)),
        itemStyle: { color: PALETTE[index % PALETTE.length] },
      })),
    },
    { label: `Time to convert ${what}, persons per time bucket; the tables below hold the numbers`, height: 300 },
  );
  series.forEach((one, index) => {
    tables.append(
      dataTable({
        caption: `Time to convert ${what}: ${nameOf(options)(one)}`,
        columns: [
          { key: "bucket", label: "Time", value: (bucket) => bucketLabel(bucket) },
          { key: "count", label: "Persons", numeric: true },
        ],
        rows: histogramOf(one, choice),
        testid: `funnel-histogram-table-${index}`,
        empty: "Nobody converted in this selection.",
      }),
    );
  });
}

// Draws a QueryFunnel response into root. options: {onPersons(seriesIndex, stepIndex, outcome),
// seriesName(series) (the name of a series; funnelSeriesName by default),
// histogram ("" whole funnel, or a step index), report (true under a report's section heading: headings one
// level down)}. Returns the element drawn.
export function drawFunnel(root, response, options = {}) {
  const [heading, subheading] = options.report ? ["h3", "h4"] : ["h2", "h3"];
  const series = response?.series ?? [];
  const element = h("div", { class: "funnel-result", "data-testid": "funnel-result" });
  root.append(element);
  if (series.length === 0 || series.every((one) => one.steps.length === 0)) {
    element.append(h("p", { class: "empty-state", "data-testid": "empty" }, "Nobody performed the first step in this selection."));
    return element;
  }
  const first = series[0];
  const last = first.steps[first.steps.length - 1];
  const stepCount = first.steps.length;
  element.append(
    h(heading, {}, "Conversion"),
    h(
      "p",
      { class: "funnel-summary", "data-testid": "funnel-summary" },
      series.length === 1
        ? `${formatNumber(first.steps[0].count)} persons started, ${formatNumber(last.count)} completed all ${stepCount} steps (${formatPercent(
            last.overallConversionRate,
          )}); median time to complete ${formatDuration(first.medianConversionTime)}.`
        : `${series.length} series, the largest first.`,
    ),
  );
  const bars = h("div", { class: "funnel-chart", "data-testid": "funnel-chart" });
  element.append(bars);
  chart(bars, barOption(series, nameOf(options)), {
    label: `Persons reaching each of the ${stepCount} steps${series.length > 1 ? ", per series" : ", and those who dropped off"}; the tables below hold the numbers`,
    height: 340,
  });
  series.forEach((one, index) => {
    element.append(
      h(
        "div",
        { class: "funnel-series", "data-testid": `funnel-series-${index}` },
        series.length > 1 ? h(subheading, {}, nameOf(options)(one)) : null,
        stepsTable(one, index, options),
      ),
    );
  });
  const histogram = h("div", { class: "funnel-histogram-holder" });
  const selectId = uniqueId("funnel-histogram-step");
  const select = h(
    "select",
    { id: selectId, "data-testid": "funnel-histogram-step" },
    h("option", { value: "" }, "Whole funnel (first step to last)"),
    first.steps.slice(1).map((step) => h("option", { value: String(step.stepIndex) }, `Step ${step.stepIndex + 1}: ${step.label}`)),
  );
  select.value = options.histogram ?? "";
  select.addEventListener("change", () => drawHistogram(histogram, series, select.value, options));
  element.append(
    h(heading, {}, "Time to convert"),
    h("div", { class: "field" }, h("label", { for: selectId }, "Time to convert for"), select),
    histogram,
  );
  drawHistogram(histogram, series, select.value, options);
  return element;
}
