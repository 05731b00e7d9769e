// Customer value (#/value): what a population's purchasers are worth, from GetCustomerValueSummary: their
// count, historic value and purchases; persons per RFM segment (bars and a table); the RFM grid, recency
// score by FM score, as a heatmap and a table; quantiles of their historic value; and the top customers by
// historic value (GetCustomerValue's bulk mode, first page of 20), each linking to the Customer page.
//
// Query: currency (ISO 4217, three letters; default EUR), from, to (inclusive UTC days of purchases; or
// days=N), event (repeated: purchase event names; none means every event with revenue), segment (repeated:
// `segments/{id}`; only the purchasers currently in every one of them), rfm (an RfmSegment value: the top
// customers listed are that segment's; the segments table links to each).
//
// Each RFM segment's row also offers "Save as segment…" (value/save_segment.js): a journeys segment of that
// RFM segment's purchasers over a trailing window as long as the range, for a key with the admin scope.

import { chart, escapeHtml, PALETTE } from "../charts.js";
import {
  daysFromParams,
  dataTable,
  emptyState,
  enumLabel,
  form,
  formatNumber,
  formatPercent,
  formatTime,
  h,
  keyFigures,
  pageHash,
  timeRange,
  timeRangeOf,
} from "../dom.js";
import { listAll } from "../lists.js";
import { moneyText } from "./customer/timeline.js";
import { drawKeptAnswer } from "./kept_answer.js";
import { segmentChoice } from "./segment_choice.js";
import { mayCreateSegments, segmentSaver } from "./value/save_segment.js";

const JOURNEYS = "wayline.journeys.v1.JourneyService";
export const DEFAULT_CURRENCY = "EUR";
const DEFAULT_DAYS = 365;
export const TOP_CUSTOMERS = 20;
// A population names at most 20 segments (Population.segments).
const MAX_SEGMENTS = 20;
const CURRENCY_PATTERN = /^[A-Za-z]{3}$/;
const SCORES = [1, 2, 3, 4, 5];

// The RfmSegment values in the contract's order, each with its colour on the page's bars.
export const RFM_SEGMENTS = Object.freeze(
  [
    "CHAMPIONS",
    "LOYAL_CUSTOMERS",
    "POTENTIAL_LOYALISTS",
    "NEW_CUSTOMERS",
    "PROMISING",
    "NEED_ATTENTION",
    "ABOUT_TO_SLEEP",
    "AT_RISK",
    "CANNOT_LOSE",
    "HIBERNATING",
    "LOST",
    "NO_PURCHASE",
  ].map((name, index) => ({ value: `RFM_SEGMENT_${name}`, colour: PALETTE[index % PALETTE.length] })),
);

// An RfmSegment for people: "RFM_SEGMENT_LOYAL_CUSTOMERS" → "Loyal customers" (as the Customer page names it).
export function rfmSegmentLabel(segment) {
  return enumLabel(segment, "RFM_SEGMENT_");
}

// A ValueQuantile's level for people: 0.5 → "Median", 1 → "Maximum", 0.1 → "10th percentile".
export function quantileLabel(quantile) {
  const level = Number(quantile);
  if (level === 0.5) return "Median";
  if (level === 1) return "Maximum";
  const percent = Math.round(level * 1000) / 10;
  return `${percent}th percentile`;
}

// A proto3 JSON Money's exact amount as a decimal string ({units: "-3", nanos: -250000000} → "-3.25"; "0" for
// none): what the page's numeric money cells carry as data-value.
export function moneyAmount(money) {
  const total = BigInt(money?.units ?? "0") * 1_000_000_000n + BigInt(money?.nanos ?? 0);
  const negative = total < 0n;
  const size = negative ? -total : total;
  const fraction = String(size % 1_000_000_000n).padStart(9, "0").replace(/0+$/, "");
  return `${negative ? "-" : ""}${size / 1_000_000_000n}${fraction ? `.${fraction}` : ""}`;
}

function unique(values) {
  return [...new Set(values.map((value) => value.trim()).filter(Boolean))];
}

// The page's filters from the hash's query, with their defaults: {currency, days: {from, to}, events,
// segments}.
export function valueFilters(params, now = new Date()) {
  const currency = (params.get("currency") ?? "").trim();
  return {
    currency: CURRENCY_PATTERN.test(currency) ? currency.toUpperCase() : DEFAULT_CURRENCY,
    days: daysFromParams(params, { defaultDays: DEFAULT_DAYS, now }),
    events: unique(params.getAll("event")),
    segments: unique(params.getAll("segment")),
    rfm: RFM_SEGMENTS.some((s) => s.value === params.get("rfm")) ? params.get("rfm") : "",
  };
}

// The hash query of the filters (their days as from/to), as the form writes it.
export function valueParams(filters) {
  const query = new URLSearchParams({ currency: filters.currency, from: filters.days.from, to: filters.days.to });
  for (const event of filters.events) query.append("event", event);
  for (const segment of filters.segments) query.append("segment", segment);
  if (filters.rfm) query.set("rfm", filters.rfm);
  return query;
}

// Comma-separated event names as typed ("Order Completed, Refund") → their list, each once.
export function eventNames(text) {
  return unique(String(text ?? "").split(","));
}

// The GetCustomerValueSummary request (proto3 JSON) of the filters.
export function valueSummaryRequest(filters) {
  const request = { currencyCode: filters.currency, timeRange: timeRangeOf(filters.days) };
  if (filters.events.length) request.purchaseEventNames = [...filters.events];
  if (filters.segments.length) request.population = { segments: [...filters.segments] };
  return request;
}

// The GetCustomerValue request of the top customers: bulk mode (no persons), the first TOP_CUSTOMERS
// purchasers by decreasing historic value, for the same population, currency, range and event names.
// The GetCustomerValue bulk request of the top customers: of one RFM segment when the filters name one.
export function topCustomersRequest(filters) {
  const request = { ...valueSummaryRequest(filters), pageSize: TOP_CUSTOMERS };
  if (filters.rfm) request.rfmSegments = [filters.rfm];
  return request;
}

// A money cell: the exact amount as data-value, the amount to the cent as text.
function moneyColumn(key, label, money) {
  return { key, label, numeric: true, value: (row) => moneyAmount(money(row)), format: (_, row) => moneyText(money(row)) };
}

function share(part, whole) {
  const total = Number(whole);
  return total > 0 ? Number(part) / total : null;
}

function figure(label, raw, shown, testid) {
  return { label, value: h("span", { "data-value": raw }, shown), testid };
}

function drawTotals(root, summary, heading) {
  root.append(
    h(heading, {}, "Totals"),
    keyFigures(
      [
        figure("Purchasers", String(summary.purchasers ?? "0"), formatNumber(summary.purchasers ?? 0), "value-purchasers"),
        figure(
          "Historic value",
          moneyAmount(summary.historicValue),
          moneyText(summary.historicValue),
          "value-historic-value",
        ),
        figure("Purchases", String(summary.purchaseCount ?? "0"), formatNumber(summary.purchaseCount ?? 0), "value-purchases"),
        figure("Values measured to", summary.endTime ?? "", formatTime(summary.endTime), "value-end-time"),
      ],
      { testid: "value-totals", label: "Totals of the purchasers" },
    ),
  );
}

function segmentColour(segment) {
  return RFM_SEGMENTS.find((s) => s.value === segment)?.colour ?? PALETTE[PALETTE.length - 1];
}

function customerActions(segment, customersOf, saver) {
  if (!saver) return customersOf(segment);
  return h("div", { class: "value-segment-actions" }, customersOf ? customersOf(segment) : null, saver.button(segment));
}

function drawSegments(root, summary, heading, customersOf, saver) {
  const segments = summary.segments ?? [];
  root.append(h(heading, {}, "RFM segments"));
  const container = h("div", { class: "chart chart-value-segments", "data-testid": "value-segments-chart" });
  root.append(container);
  chart(
    container,
    {
      tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
      grid: { left: 150, right: 48, top: 8, bottom: 40 },
      xAxis: { type: "value", name: "Persons", nameLocation: "middle", nameGap: 26, minInterval: 1 },
      yAxis: { type: "category", inverse: true, data: segments.map((s) => rfmSegmentLabel(s.segment)) },
      series: [
        {
          type: "bar",
          name: "Persons",
          data: segments.map((s) => ({ value: Number(s.persons), itemStyle: { color: segmentColour(s.segment) } })),
          label: { show: true, position: "right" },
        },
      ],
    },
    {
      label: `Persons in each of ${segments.length} RFM segments; the numbers are in the table below`,
      height: Math.max(160, segments.length * 32 + 60),
    },
  );
  root.append(
    dataTable({
      caption: `Purchasers per RFM segment: persons, their share of the ${formatNumber(summary.purchasers)} purchasers, historic value and its share, purchases, and the mean days since their last purchase`,
      columns: [
        { key: "segment", label: "Segment", format: rfmSegmentLabel },
        { key: "persons", label: "Persons", numeric: true },
        {
          key: "personShare",
          label: "Share of purchasers",
          numeric: true,
          value: (s) => share(s.persons, summary.purchasers),
          format: formatPercent,
        },
        moneyColumn("historicValue", "Historic value", (s) => s.historicValue),
        {
          key: "valueShare",
          label: "Share of value",
          numeric: true,
          value: (s) => share(moneyAmount(s.historicValue), moneyAmount(summary.historicValue)),
          format: formatPercent,
        },
        { key: "purchaseCount", label: "Purchases", numeric: true },
        { key: "averageRecencyDays", label: "Average days since last purchase", numeric: true },
        // What to do with a segment's customers: list the top ones, save them as a segment (one column: the
        // table stays as wide as the page).
        ...(customersOf || saver
          ? [{ key: "customers", label: "Customers", value: (s) => s.segment, format: (segment) => customerActions(segment, customersOf, saver) }]
          : []),
      ],
      rows: segments,
      rowKey: (s) => s.segment,
      testid: "value-segments-table",
    }),
  );
  if (saver) root.append(saver.footer());
}

function gridOption(cells) {
  const byScores = new Map(cells.map((c) => [`${c.recencyScore}/${c.fmScore}`, c]));
  const data = [];
  for (const recency of SCORES) {
    for (const fm of SCORES) {
      const cell = byScores.get(`${recency}/${fm}`);
      data.push([fm - 1, recency - 1, cell ? Number(cell.persons) : 0]);
    }
  }
  const most = Math.max(1, ...data.map((d) => d[2]));
  return {
    tooltip: {
      // ECharts renders a formatter's string as HTML: the segment's name is escaped.
      formatter: (p) => {
        const [x, y, persons] = p.value;
        // A cell without purchasers is not in the answer: it has no segment to name (the grid is the server's).
        const cell = byScores.get(`${y + 1}/${x + 1}`);
        const segment = cell ? ` (${rfmSegmentLabel(cell.segment)})` : "";
        return escapeHtml(`R ${y + 1}, FM ${x + 1}${segment}: ${formatNumber(persons)} persons`);
      },
    },
    grid: { left: 96, right: 24, top: 8, bottom: 84 },
    xAxis: {
      type: "category",
      name: "FM score (frequency and monetary)",
      nameLocation: "middle",
      nameGap: 26,
      data: SCORES.map(String),
      splitArea: { show: true },
    },
    yAxis: {
      type: "category",
      name: "Recency score",
      nameLocation: "middle",
      nameGap: 40,
      data: SCORES.map(String),
      splitArea: { show: true },
    },
    visualMap: {
      type: "continuous",
      min: 0,
      max: most,
      orient: "horizontal",
      left: "center",
      bottom: 0,
      itemHeight: 180,
      text: [formatNumber(most), "0"],
      inRange: { color: ["#f0f6fc", "#6baed6", "#08306b"] },
    },
    series: [
      {
        type: "heatmap",
        name: "Persons",
        data,
        label: { show: true, fontSize: 11 },
        emphasis: { itemStyle: { borderColor: "#111", borderWidth: 1 } },
      },
    ],
  };
}

function drawGrid(root, summary, heading) {
  const cells = summary.cells ?? [];
  root.append(h(heading, {}, "RFM grid"));
  const container = h("div", { class: "chart chart-value-grid", "data-testid": "value-grid-chart" });
  root.append(container);
  chart(container, gridOption(cells), {
    label: `Purchasers per cell of the RFM grid, recency score (rows, 5 the most recent) by FM score (columns); the numbers are in the table below`,
    height: 360,
  });
  root.append(
    dataTable({
      caption: "Purchasers per cell of the RFM grid: recency score, FM score (the mean of the frequency and monetary scores, halves up), the cell's segment, persons and their historic value",
      columns: [
        { key: "cell", label: "Cell", value: (c) => `R ${c.recencyScore}, FM ${c.fmScore}` },
        { key: "recencyScore", label: "Recency score", numeric: true },
        { key: "fmScore", label: "FM score", numeric: true },
        { key: "segment", label: "Segment", format: rfmSegmentLabel },
        { key: "persons", label: "Persons", numeric: true },
        moneyColumn("historicValue", "Historic value", (c) => c.historicValue),
      ],
      rows: cells,
      rowKey: (c) => `r${c.recencyScore}-fm${c.fmScore}`,
      testid: "value-grid-table",
    }),
  );
}

function drawQuantiles(root, summary, heading) {
  root.append(
    h(heading, {}, "Value quantiles"),
    dataTable({
      caption: "Historic value of the purchasers at each level: the value of one purchaser, not an interpolation",
      columns: [
        { key: "level", label: "Level", value: (q) => quantileLabel(q.quantile) },
        { key: "quantile", label: "Quantile", numeric: true },
        moneyColumn("value", "Historic value", (q) => q.value),
      ],
      rows: summary.valueQuantiles ?? [],
      rowKey: (q) => String(q.quantile),
      testid: "value-quantiles-table",
    }),
  );
}

function personLink(personId) {
  return h("a", { href: pageHash("customer", { person: personId }), "data-testid": "value-person-link" }, personId);
}

function drawTop(root, top, heading, rfm, allSegments) {
  const values = top.values ?? [];
  const of = rfm ? ` in ${rfmSegmentLabel(rfm)}` : "";
  root.append(h(heading, {}, rfm ? `Top customers: ${rfmSegmentLabel(rfm)}` : "Top customers"));
  if (rfm && allSegments) {
    root.append(h("p", {}, h("a", { href: allSegments, "data-testid": "value-all-segments" }, "Top customers of every segment")));
  }
  root.append(
    dataTable({
      caption: `The ${formatNumber(values.length)} purchasers${of} with the highest historic value, of ${formatNumber(top.totalSize ?? 0)}; each opens on the Customer page`,
      columns: [
        { key: "personId", label: "Person", format: personLink },
        moneyColumn("historicValue", "Historic value", (v) => v.historicValue),
        { key: "purchaseCount", label: "Purchases", numeric: true },
        { key: "rfmSegment", label: "RFM segment", format: rfmSegmentLabel },
        { key: "recencyDays", label: "Days since last purchase", numeric: true },
      ],
      rows: values,
      rowKey: (v) => v.personId,
      testid: "value-top-table",
    }),
  );
}

// Draws a GetCustomerValueSummary response and, when given, the GetCustomerValue page of the top customers:
// the totals, the segments (bars and table), the RFM grid (heatmap and table), the value quantiles and the top
// customers. No purchaser: the empty state only. Options: customersOf(segment), a link per segment's row to
// its top customers; saver (save_segment.js segmentSaver), a "Save as segment…" button per row and its panel.
export function drawCustomerValue(
  root,
  summary,
  top = null,
  {
    currency = summary.historicValue?.currencyCode,
    heading = "h2",
    rfm = "",
    customersOf = null,
    allSegments = "",
    saver = null,
  } = {},
) {
  if (Number(summary.purchasers ?? 0) === 0) {
    root.append(emptyState(`No purchase${currency ? ` in ${currency}` : ""} in this range.`));
    return;
  }
  const part = (testid, draw) => {
    const section = h("section", { "data-testid": testid });
    root.append(section);
    draw(section);
  };
  part("value-totals-section", (section) => drawTotals(section, summary, heading));
  part("value-segments-section", (section) => drawSegments(section, summary, heading, customersOf, saver));
  part("value-grid-section", (section) => drawGrid(section, summary, heading));
  part("value-quantiles-section", (section) => drawQuantiles(section, summary, heading));
  if (top) part("value-top-section", (section) => drawTop(section, top, heading, rfm, allSegments));
}

function filterForm(filters, params, ctx, segments) {
  const range = timeRange({ params, defaultDays: DEFAULT_DAYS, testid: "value-range" });
  const segmentSet = segmentChoice({
    segments,
    chosen: filters.segments,
    testid: "value-segment",
    legend: `Only the purchasers in every chosen segment (at most ${MAX_SEGMENTS}; none: every purchaser)`,
    empty: "No segments yet: every purchaser counts.",
  });
  const element = form({
    testid: "value-filters",
    label: "Customer value filters",
    submitTestid: "value-apply",
    fields: [
      {
        name: "currency",
        label: "Currency",
        value: filters.currency,
        required: true,
        placeholder: DEFAULT_CURRENCY,
        help: "ISO 4217, three letters",
        testid: "value-currency",
      },
      range.element,
      {
        name: "events",
        label: "Purchase events",
        value: filters.events.join(", "),
        placeholder: "Every event with revenue",
        help: "Comma-separated; empty: every event with revenue",
        testid: "value-events",
      },
      segmentSet.element,
    ],
    onSubmit: (values) => {
      const next = {
        currency: values.currency.trim().toUpperCase(),
        days: range.days(),
        events: eventNames(values.events),
        segments: segmentSet.chosen(),
        rfm: filters.rfm,
      };
      ctx.navigate(pageHash("value", valueParams(next)));
    },
  });
  const currency = element.querySelector('[data-testid="value-currency"]');
  currency.pattern = "\\s*[A-Za-z]{3}\\s*";
  currency.maxLength = 5;
  currency.title = "Three letters, such as EUR";
  const checkSegments = () => {
    const chosen = segmentSet.chosen().length;
    segmentSet.boxes[0]?.setCustomValidity(chosen > MAX_SEGMENTS ? `Choose at most ${MAX_SEGMENTS} segments.` : "");
  };
  for (const box of segmentSet.boxes) box.addEventListener("change", checkSegments);
  return element;
}

export default {
  id: "value",
  title: "Customer value",
  async render(root, ctx) {
    const filters = valueFilters(ctx.params);
    root.append(h("h1", {}, "Customer value"));
    // The segments to offer as the population (without them, none or not readable, the page still works), and
    // whether the key may save an RFM segment as a segment of its own.
    const [segments, allowed] = await Promise.all([
      listAll(ctx.call, JOURNEYS, "ListSegments", "segments").catch(() => []),
      mayCreateSegments(ctx),
    ]);
    const saver = segmentSaver(ctx, filters, {
      allowed,
      names: new Map(segments.map((segment) => [segment.name, segment.displayName || segment.name])),
    });
    root.append(filterForm(filters, ctx.params, ctx, segments));
    const results = h("div", { class: "results", "data-testid": "value-results" });
    root.append(results);
    const summaryRequest = valueSummaryRequest(filters);
    const topRequest = topCustomersRequest(filters);
    // Both answers come from the gateway's kept answers on the first view, and again on Refresh; the summary
    // carries the age shown.
    const tops = new WeakMap();
    await drawKeptAnswer(
      results,
      async (options) => {
        const [summary, top] = await Promise.all([
          ctx.call(JOURNEYS, "GetCustomerValueSummary", summaryRequest, options),
          ctx.call(JOURNEYS, "GetCustomerValue", topRequest, options),
        ]);
        tops.set(summary, top);
        return summary;
      },
      (into, summary) =>
        drawCustomerValue(into, summary, tops.get(summary), {
          currency: filters.currency,
          rfm: filters.rfm,
          // Each segment's row links to the page listing that segment's top customers.
          customersOf: (segment) =>
            h(
              "a",
              { href: pageHash("value", valueParams({ ...filters, rfm: segment })), "data-testid": "value-segment-customers" },
              `Top customers: ${rfmSegmentLabel(segment)}`,
            ),
          allSegments: pageHash("value", valueParams({ ...filters, rfm: "" })),
          saver,
        }),
    );
  },
};
