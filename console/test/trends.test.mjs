// The pure parts of the Trends page: its filters from the address and back, the QueryTrends requests they make
// (the sentiment preset's five series, formulas, ranges of days in a time zone), and the models it draws from an
// answer (each series' table rows and columns, its chart, the formulas' lines and columns, the sentiment shares), in
// stickiness mode the QueryStickiness request and its bars and table, and in lifecycle mode the
// QueryActivityLifecycle request and its stacked bars and table, and the ListActivityLifecyclePersons request and
// title of the persons behind one of its numbers. The page's numbers themselves are checked end
// to end against known events (tests/console/test_trends.py).

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  comparedByPeriod,
  comparisonColumns,
  comparisonRows,
  formatChange,
  formulaChartOption,
  formulaColumns,
  formulaName,
  PREVIOUS_MARK,
  previousOf,
  relativeChange,
  seriesChartOption,
  seriesColumns,
  seriesRows,
  zoneTime,
} from "../src/pages/trends/draw.js";
import { breakdownName, formatSigned, MINUS, periodLabel, resultKey, resultsBySeries, RUNNING_MARK } from "../src/pages/trends/format.js";
import {
  formatQuickRatio,
  LIFECYCLE_STATUSES,
  lifecycleChartOption,
  lifecycleColumns,
  lifecyclePeriodPhrase,
  lifecyclePersonsTitle,
  lifecycleRows,
  lifecycleTitle,
  quickRatio,
} from "../src/pages/trends/lifecycle_draw.js";
import {
  ACTIVITY_STATUSES,
  LIFECYCLE_PERSONS_PAGE_SIZE,
  lifecyclePersonsRequest,
  lifecycleRequest,
  measureLabel,
  seriesLetter,
  sentimentSeries,
  stickinessRequest,
  trendsFilters,
  trendsParams,
  trendsQuery,
  trendsRequest,
  violationField,
  zoneRange,
} from "../src/pages/trends/query.js";
import { formatNet, formatScore, sentimentChartOption, sentimentGroups, sentimentRows } from "../src/pages/trends/sentiment_draw.js";
import {
  formatStickiness,
  periodCountLabel,
  STICKINESS_TOTAL_ROW,
  stickinessChartOption,
  stickinessColumns,
  stickinessPeriods,
  stickinessRows,
  stickinessTitle,
} from "../src/pages/trends/stickiness_draw.js";

const NOW = new Date("2026-12-01T16:00:00Z");
const filtersOf = (query) => trendsFilters(new URLSearchParams(query), NOW);

test("trends: defaults, every event per week over the last 8 weeks in UTC", () => {
  const filters = filtersOf("");
  assert.deepEqual(filters, {
    mode: "series",
    series: [{ event: "", math: "total", of: "", currency: "" }],
    formulas: [],
    period: "week",
    days: { from: "2026-10-07", to: "2026-12-01" },
    tz: "UTC",
    compare: false,
    breakdown: "",
    property: "",
    segments: [],
    population: [],
  });
  assert.deepEqual(trendsRequest(filters), {
    series: [{ label: "All events", math: "TREND_MATH_TOTAL" }],
    timeRange: { start: "2026-10-07T00:00:00Z", end: "2026-12-02T00:00:00Z" },
    period: "RETENTION_PERIOD_WEEK",
    timeZone: "UTC",
  });
  // Values the page does not know fall back to the defaults; a property only with a property math, a
  // currency only with revenue.
  const odd = filtersOf("period=year&math=mode&of=revenue&currency=EUR&breakdown=weather&mode=x&tz=");
  assert.deepEqual(odd.series, [{ event: "", math: "total", of: "", currency: "" }]);
  assert.equal(odd.period, "week");
  assert.equal(odd.mode, "series");
  assert.equal(odd.breakdown, "");
  assert.equal(odd.tz, "UTC");
  assert.deepEqual(filtersOf("math=max&of=properties.items&currency=EUR").series, [
    { event: "", math: "max", of: "properties.items", currency: "" },
  ]);
});

test("trends: one series per event, each with its own math, property and currency", () => {
  const filters = filtersOf(
    "event=Order Completed&math=sum&of=revenue&currency=eur&event=/pricing&math=persons&of=&currency=&event=&math=p90&of=properties.items&currency=&period=day&from=2026-11-01&to=2026-11-30&breakdown=channel",
  );
  assert.deepEqual(filters.series, [
    { event: "Order Completed", math: "sum", of: "revenue", currency: "EUR" },
    { event: "/pricing", math: "persons", of: "", currency: "" },
    { event: "", math: "p90", of: "properties.items", currency: "" },
  ]);
  assert.deepEqual(trendsRequest(filters), {
    series: [
      {
        label: "Order Completed",
        math: "TREND_MATH_SUM",
        event: { eventName: "Order Completed" },
        property: "revenue",
        currencyCode: "EUR",
      },
      {
        label: "/pricing",
        math: "TREND_MATH_UNIQUE_PERSONS",
        // A page path matches page events, as on the Funnels page.
        event: {
          eventType: "EVENT_TYPE_PAGE",
          propertyFilters: [{ property: "context.page.path", operator: "FILTER_OPERATOR_EQUALS", values: ["/pricing"] }],
        },
      },
      { label: "All events", math: "TREND_MATH_P90", property: "properties.items" },
    ],
    timeRange: { start: "2026-11-01T00:00:00Z", end: "2026-12-01T00:00:00Z" },
    period: "RETENTION_PERIOD_DAY",
    timeZone: "UTC",
    breakdown: { dimension: "BREAKDOWN_DIMENSION_CHANNEL", limit: 5 },
  });
  // A property math without its property is asked as it is: QueryTrends names the field.
  assert.equal(trendsRequest(filtersOf("math=median")).series[0].property, "");
  assert.equal(measureLabel(filters.series[0]), "Sum of revenue (EUR)");
  assert.equal(measureLabel(filters.series[1]), "Unique persons");
  assert.equal(measureLabel(filters.series[2]), "90th percentile of properties.items");
});

test("trends: the filters written to the address read as the same filters", () => {
  for (const query of [
    "",
    "event=Signed Up",
    "math=average&of=sentiment_score",
    "event=Gift + Card&math=total&of=&currency=&event=Order Completed&math=sum&of=revenue&currency=EUR",
    "mode=sentiment&event=Chat Message&event=Call Ended&breakdown=segment&segment=segments/vip&segment=segments/new",
    "period=month&from=2026-01-01&to=2026-06-30&tz=America/New_York&breakdown=property&property=person.country",
    "event=Order Completed&in=segments/vip&in=segments/new&breakdown=channel",
    "event=Signed Up&math=persons&event=Order Completed&math=persons&formula=B / A * 100&formula=a - b",
    "event=Order Completed&period=day&from=2026-11-01&to=2026-11-14&compare=1&breakdown=channel",
  ]) {
    const filters = filtersOf(query);
    const params = trendsParams(filters);
    assert.deepEqual(filtersOf(params.toString()), filters, query);
  }
  assert.equal(
    trendsParams(filtersOf("event=Order Completed&math=sum&of=revenue&currency=eur&period=day&from=2026-11-01&to=2026-11-03&breakdown=channel")).toString(),
    "event=Order+Completed&math=sum&of=revenue&currency=EUR&period=day&from=2026-11-01&to=2026-11-03&tz=UTC&breakdown=channel",
  );
  // The default series leaves no trace; the range and the zone always do (a link shows the same days).
  assert.equal(trendsParams(filtersOf("")).toString(), "period=week&from=2026-10-07&to=2026-12-01&tz=UTC");
  // Sentiment keeps the event names only.
  assert.equal(
    trendsParams(filtersOf("mode=sentiment&event=Chat&math=sum&of=revenue&currency=EUR&event=&event=Chat")).toString(),
    "mode=sentiment&event=Chat&period=week&from=2026-10-07&to=2026-12-01&tz=UTC",
  );
  // The population: only the events of persons in every segment named by `in`, whatever the breakdown.
  const population = filtersOf("in=segments/vip&in=segments/vip&in=segments/new&breakdown=segment&segment=segments/a");
  assert.deepEqual(population.population, ["segments/vip", "segments/new"]);
  assert.deepEqual(trendsRequest(population).population, { segments: ["segments/vip", "segments/new"] });
  assert.deepEqual(trendsRequest(population).breakdown.segments, ["segments/a"]);
  assert.equal(trendsRequest(filtersOf("")).population, undefined);
  // A breakdown's property and segments only with that breakdown.
  assert.equal(filtersOf("breakdown=channel&property=properties.plan&segment=segments/a").property, "");
  assert.deepEqual(filtersOf("breakdown=channel&segment=segments/a").segments, []);
  // At most 10 series.
  assert.equal(filtersOf(Array.from({ length: 12 }, (_, i) => `event=E${i}`).join("&")).series.length, 10);
});

test("trends: formulas over the series' letters, in the address and the request, none in sentiment mode", () => {
  assert.deepEqual([0, 1, 2, 9].map(seriesLetter), ["A", "B", "C", "J"]);
  const query = "event=Signed Up&math=persons&event=Order Completed&math=persons&formula= B / A * 100 &formula=&formula=a - b&period=day&from=2026-11-01&to=2026-11-03";
  const filters = filtersOf(query);
  // Trimmed, in order, the empty one dropped.
  assert.deepEqual(filters.formulas, ["B / A * 100", "a - b"]);
  assert.equal(
    trendsParams(filters).toString(),
    "event=Signed+Up&math=persons&event=Order+Completed&math=persons&formula=B+%2F+A+*+100&formula=a+-+b&period=day&from=2026-11-01&to=2026-11-03&tz=UTC",
  );
  assert.deepEqual(filtersOf(trendsParams(filters).toString()).formulas, filters.formulas);
  // Sent unlabelled: QueryTrends labels the results with the expression.
  assert.deepEqual(trendsRequest(filters).formulas, [{ expression: "B / A * 100" }, { expression: "a - b" }]);
  assert.equal(trendsRequest(filtersOf("event=Signed Up")).formulas, undefined);
  // At most 5, as QueryTrends takes.
  const many = filtersOf(Array.from({ length: 7 }, (_, i) => `formula=A * ${i}`).join("&"));
  assert.deepEqual(many.formulas, ["A * 0", "A * 1", "A * 2", "A * 3", "A * 4"]);
  // The sentiment preset's series are not the user's: its formulas are dropped from the filters, the address
  // and the request.
  const sentiment = filtersOf("mode=sentiment&event=Chat&formula=B / A");
  assert.deepEqual(sentiment.formulas, []);
  assert.equal(trendsParams(sentiment).toString(), "mode=sentiment&event=Chat&period=week&from=2026-10-07&to=2026-12-01&tz=UTC");
  assert.equal(trendsParams({ ...sentiment, formulas: ["B / A"] }).get("formula"), null);
  assert.equal(trendsRequest({ ...sentiment, formulas: ["B / A"] }).formulas, undefined);
});

test("trends: compare=1 asks for the previous range too, in series mode only", () => {
  const filters = filtersOf("event=Order Completed&period=day&from=2026-11-01&to=2026-11-14&compare=1&formula=A * 2");
  assert.equal(filters.compare, true);
  assert.equal(
    trendsParams(filters).toString(),
    "event=Order+Completed&formula=A+*+2&period=day&from=2026-11-01&to=2026-11-14&tz=UTC&compare=1",
  );
  const request = trendsRequest(filters);
  assert.equal(request.compareToPrevious, true);
  assert.deepEqual(request.timeRange, { start: "2026-11-01T00:00:00Z", end: "2026-11-15T00:00:00Z" });
  // Off (absent, or any other value): no trace in the address or the request.
  for (const query of ["event=Order Completed", "compare=0", "compare=true", "compare="]) {
    const off = filtersOf(query);
    assert.equal(off.compare, false, query);
    assert.equal(trendsParams(off).get("compare"), null, query);
    assert.equal("compareToPrevious" in trendsRequest(off), false, query);
  }
  // The sentiment preset is not compared: dropped from the filters, the address and the request.
  const sentiment = filtersOf("mode=sentiment&event=Chat&compare=1");
  assert.equal(sentiment.compare, false);
  assert.equal(trendsParams({ ...sentiment, compare: true }).get("compare"), null);
  assert.equal(trendsRequest({ ...sentiment, compare: true }).compareToPrevious, undefined);
});

test("trends: the days are local days of the time zone, across a change of clocks", () => {
  // Paris moves to summer time on 29 March 2026: the last midnight is an hour earlier in UTC.
  assert.deepEqual(zoneRange({ from: "2026-03-28", to: "2026-03-30" }, "Europe/Paris"), {
    start: "2026-03-27T23:00:00Z",
    end: "2026-03-30T22:00:00Z",
  });
  assert.deepEqual(zoneRange({ from: "2026-11-01", to: "2026-11-01" }, "Asia/Tokyo"), {
    start: "2026-10-31T15:00:00Z",
    end: "2026-11-01T15:00:00Z",
  });
  assert.deepEqual(zoneRange({ from: "2026-11-01", to: "2026-11-02" }, "America/New_York"), {
    start: "2026-11-01T04:00:00Z", // still summer time at midnight, winter time from 2 a.m.
    end: "2026-11-03T05:00:00Z",
  });
  // Sydney leaves summer time at 3 a.m. on 5 April 2026: that day's midnight is still at +11, the next at +10
  // (the offset at the UTC instant of the wall time is already the winter one: the page corrects for it).
  assert.deepEqual(zoneRange({ from: "2026-04-05", to: "2026-04-05" }, "Australia/Sydney"), {
    start: "2026-04-04T13:00:00Z",
    end: "2026-04-05T14:00:00Z",
  });
  // An unknown zone: UTC days, and the zone sent as typed for QueryTrends to refuse.
  const request = trendsRequest(filtersOf("from=2026-11-01&to=2026-11-01&tz=Mars/Olympus"));
  assert.deepEqual(request.timeRange, { start: "2026-11-01T00:00:00Z", end: "2026-11-02T00:00:00Z" });
  assert.equal(request.timeZone, "Mars/Olympus");
});

test("trends: the sentiment preset, as `wayline trends --sentiment` builds it", () => {
  const is = (operator, bound) => {
    const filter = { property: "sentiment_score", operator: `FILTER_OPERATOR_${operator}` };
    if (bound !== undefined) filter.values = [bound];
    return filter;
  };
  const bands = [[], [is("IS_SET")], [is("LESS_THAN_OR_EQUAL", -0.05)], [is("GREATER_THAN", -0.05), is("LESS_THAN", 0.05)], [is("GREATER_THAN_OR_EQUAL", 0.05)]];
  // Every event with a score: matchers of the filters alone.
  const all = sentimentSeries([]);
  assert.deepEqual(
    all.map((s) => [s.label, s.math, s.property]),
    [
      ["Mean sentiment", "TREND_MATH_AVERAGE", "sentiment_score"],
      ["Scored", "TREND_MATH_TOTAL", undefined],
      ["Negative", "TREND_MATH_TOTAL", undefined],
      ["Neutral", "TREND_MATH_TOTAL", undefined],
      ["Positive", "TREND_MATH_TOTAL", undefined],
    ],
  );
  assert.deepEqual(all.map((s) => s.event), bands.map((filters) => (filters.length ? { propertyFilters: filters } : {})));
  // One event: its matcher with the filters; several: any of them, each with the filters.
  const one = sentimentSeries(["Chat Message"]);
  assert.deepEqual(one[2].event, { eventName: "Chat Message", propertyFilters: bands[2] });
  assert.equal(one[2].anyOf, undefined);
  const two = sentimentSeries(["Chat Message", "/support"]);
  assert.equal(two[3].event, undefined);
  assert.deepEqual(two[3].anyOf, [
    { eventName: "Chat Message", propertyFilters: bands[3] },
    {
      eventType: "EVENT_TYPE_PAGE",
      propertyFilters: [{ property: "context.page.path", operator: "FILTER_OPERATOR_EQUALS", values: ["/support"] }, ...bands[3]],
    },
  ]);
  const request = trendsRequest(filtersOf("mode=sentiment&event=Chat Message&breakdown=channel"));
  assert.deepEqual(request.series, one);
  assert.deepEqual(request.breakdown, { dimension: "BREAKDOWN_DIMENSION_CHANNEL", limit: 5 });
});

// A TrendResult as the bridge prints it: int64 as strings, an unset value absent.
function result(seriesIndex, breakdownValue, values, total, { events, complete = [true, true, true] } = {}) {
  const starts = ["2026-11-29T23:00:00Z", "2026-11-30T23:00:00Z", "2026-12-01T23:00:00Z"];
  return {
    seriesIndex,
    label: `series ${seriesIndex}`,
    breakdownValue: { value: "", other: false, missing: false, ...breakdownValue },
    points: values.map((value, index) => {
      const point = { periodStart: starts[index], eventCount: String(events?.[index] ?? value ?? 0), complete: complete[index] };
      if (value !== undefined) point.value = value;
      return point;
    }),
    ...(total === undefined ? {} : { total }),
    eventCount: String((events ?? values).reduce((sum, n) => sum + (n ?? 0), 0)),
  };
}

test("trends: a series' table, periods by day in the zone, the running one marked, the whole range last", () => {
  const average = [result(0, {}, [20, undefined, 5], 16.25, { events: [3, 1, 1], complete: [true, true, false] })];
  const options = { period: "day", zone: "Europe/Paris", counting: false, measureName: "Average of revenue (EUR)" };
  const rows = seriesRows(average, options);
  assert.deepEqual(
    rows.map((row) => [row.key, row.label, row.complete]),
    [
      ["2026-11-29T23:00:00Z", "2026-11-30", true],
      ["2026-11-30T23:00:00Z", "2026-12-01", true],
      ["2026-12-01T23:00:00Z", `2026-12-02${RUNNING_MARK}`, false],
      ["total", "Whole range", true],
    ],
  );
  // An unset value stays null (shown "—"), not 0; the event counts are numbers.
  assert.deepEqual(rows.map((row) => row.cells[0]), [
    { value: 20, events: 3 },
    { value: null, events: 1 },
    { value: 5, events: 1 },
    { value: 16.25, events: 5 },
  ]);
  const columns = seriesColumns(average, options);
  assert.deepEqual(
    columns.map((c) => [c.key, c.label]),
    [
      ["period", "Day"],
      ["value", "Average of revenue (EUR)"],
      ["events", "Events"],
    ],
  );
  assert.deepEqual(rows.map((row) => columns[1].format(columns[1].value(row))), ["20", "—", "5", "16.25"]);
  // A count needs no events column.
  assert.equal(seriesColumns(average, { ...options, counting: true }).length, 2);
  // A week is named by its Monday; a month by its year and month.
  assert.equal(periodLabel("2026-11-29T23:00:00Z", "week", "Europe/Paris"), "2026-11-30");
  assert.equal(periodLabel("2026-10-31T23:00:00Z", "month", "Europe/Paris"), "2026-11");
  assert.equal(periodLabel("2026-11-01T00:00:00Z", "month", "UTC"), "2026-11");
  // Hours with the zone's offset: the hour Paris's clock runs twice (25 October 2026) reads as two hours.
  assert.equal(periodLabel("2026-10-25T00:00:00Z", "hour", "Europe/Paris"), "2026-10-25 02:00 CEST");
  assert.equal(periodLabel("2026-10-25T01:00:00Z", "hour", "Europe/Paris"), "2026-10-25 02:00 CET");
  assert.equal(periodLabel("2026-06-01T00:30:00Z", "hour", "Asia/Kolkata"), "2026-06-01 06:00 GMT+5:30");
});

test("trends: a breakdown, a column and a line per value, named for people", () => {
  const results = [
    result(0, { value: "web" }, [2, 1, 1], 4),
    result(0, { value: "email" }, [1, 0, 0], 1),
    result(0, { other: true }, [0, 0, 1], 1),
    result(0, { missing: true }, [0, 1, 0], 1),
  ];
  assert.deepEqual(results.map(resultKey), ["web", "email", "@other", "@missing"]);
  assert.deepEqual(results.map((r) => breakdownName(r)), ["web", "email", "Other values", "Not set"]);
  const names = new Map([["segments/vip", "VIPs"]]);
  assert.equal(breakdownName(result(0, { value: "segments/vip" }, [1, 1, 1], 3), names), "VIPs");
  assert.equal(breakdownName(result(0, { missing: true }, [1, 1, 1], 3), names), "In none of the chosen segments");
  assert.equal(breakdownName(result(0, {}, [1, 1, 1], 3)), "");
  const options = { period: "day", zone: "UTC", counting: false, measureName: "Sum" };
  assert.deepEqual(
    seriesColumns(results.slice(0, 2), options).map((c) => [c.key, c.label]),
    [
      ["period", "Day"],
      ["value:web", "web"],
      ["events:web", "web: events"],
      ["value:email", "email"],
      ["events:email", "email: events"],
    ],
  );
  const rows = seriesRows(results, options);
  assert.deepEqual(rows.at(-1).cells.map((cell) => cell.value), [4, 1, 1, 1]);
  const option = seriesChartOption(results, options);
  assert.deepEqual(option.xAxis.data, ["2026-11-29", "2026-11-30", "2026-12-01"]);
  assert.deepEqual(option.series.map((s) => s.name), ["web", "email", "Other values", "Not set"]);
  assert.deepEqual(option.legend, { top: 0, type: "scroll" });
  assert.deepEqual(option.series[0].data.map((d) => d.value), [2, 1, 1]);
});

test("trends: the chart leaves a gap for no value and draws a running period hollow", () => {
  const one = [result(0, {}, [3, undefined, 1], 4, { complete: [true, true, false] })];
  const option = seriesChartOption(one, { period: "day", zone: "UTC", measureName: "Median of revenue (EUR)" });
  assert.equal(option.legend, undefined); // one line: the heading names it
  assert.equal(option.yAxis.name, "Median of revenue (EUR)");
  assert.equal(option.series.length, 1);
  assert.equal(option.series[0].type, "line");
  assert.equal(option.series[0].connectNulls, false);
  assert.deepEqual(option.series[0].data, [
    { value: 3, symbol: "circle" },
    { value: null, symbol: "circle" },
    { value: 1, symbol: "emptyCircle" },
  ]);
  assert.equal(option.tooltip.valueFormatter(null), "—");
  assert.equal(option.tooltip.valueFormatter(1234.5), "1,234.5");
});

test("trends: results by series, an empty list for a series no breakdown value holds", () => {
  const groups = resultsBySeries({ results: [result(0, { value: "web" }, [1, 0, 0], 1), result(2, { value: "web" }, [0, 1, 0], 1)] }, 3);
  assert.deepEqual(
    groups.map((g) => [g.index, g.label, g.results.length]),
    [
      [0, "series 0", 1],
      [1, "", 0],
      [2, "series 2", 1],
    ],
  );
});

test("trends: the formulas' lines and columns, named `= <label>` and their breakdown value", () => {
  const formula = (index, label, breakdownValue, values, total) => ({ ...result(index, breakdownValue, values, total), label, eventCount: "0" });
  const plain = [formula(0, "B / A", {}, [0.5, undefined, 2 / 3], 0.6), formula(1, "A - B", {}, [1, 0, 1], 2)];
  const options = { period: "day", zone: "UTC" };
  assert.deepEqual(plain.map((r) => formulaName(r)), ["= B / A", "= A - B"]);
  const columns = formulaColumns(plain, options);
  assert.deepEqual(
    columns.map((c) => [c.key, c.label, c.numeric ?? false]),
    [
      ["period", "Day", false],
      ["formula:0", "= B / A", true],
      ["formula:1", "= A - B", true],
    ],
  );
  // Up to 2 decimals; no value (a division by zero) is "—", as for a series, not 0.
  const rows = seriesRows(plain, options);
  assert.deepEqual(rows.map((row) => columns[1].format(columns[1].value(row))), ["0.5", "—", "0.67", "0.6"]);
  assert.deepEqual(rows.map((row) => columns[2].value(row)), [1, 0, 1, 2]);
  // A line each, named in the legend (even alone), with a gap where there is no value.
  const option = formulaChartOption(plain, options);
  assert.deepEqual(option.series.map((s) => [s.name, s.type, s.connectNulls]), [
    ["= B / A", "line", false],
    ["= A - B", "line", false],
  ]);
  assert.deepEqual(option.series[0].data.map((d) => d.value), [0.5, null, 2 / 3]);
  assert.deepEqual(formulaChartOption(plain.slice(0, 1), options).legend, { top: 0, type: "scroll" });
  // By breakdown value: the value after the label, as a series' lines are named, and in the column's key.
  const names = new Map([["segments/vip", "VIPs"]]);
  const broken = [
    formula(0, "B / A", { value: "segments/vip" }, [1, 1, 1], 1),
    formula(0, "B / A", { missing: true }, [1, 1, 1], 1),
  ];
  assert.deepEqual(
    formulaColumns(broken, { ...options, segmentNames: names }).map((c) => [c.key, c.label]),
    [
      ["period", "Day"],
      ["formula:0:segments/vip", "= B / A: VIPs"],
      ["formula:0:@missing", "= B / A: In none of the chosen segments"],
    ],
  );
  assert.deepEqual(formulaChartOption(broken, { ...options, segmentNames: names }).series.map((s) => s.name), [
    "= B / A: VIPs",
    "= B / A: In none of the chosen segments",
  ]);
});

test("trends: sentiment per period, its shares of the scored events and the net sentiment", () => {
  const running = { complete: [true, true, false] };
  const answer = {
    results: [
      result(0, {}, [undefined, 0.2297, -0.5], 0.0838, { events: [1, 5, 1], ...running }),
      result(1, {}, [0, 4, 1], 5, running),
      result(2, {}, [0, 1, 1], 2, running),
      result(3, {}, [0, 1, 0], 1, running),
      result(4, {}, [0, 2, 0], 2, running),
    ],
  };
  const groups = sentimentGroups(answer);
  assert.deepEqual(groups.map((g) => g.key), [""]);
  const rows = sentimentRows(groups[0], { period: "day", zone: "UTC" });
  assert.deepEqual(
    rows.map((row) => [row.label, row.scored, row.mean, row.negative, row.neutral, row.positive, row.net]),
    [
      // No scored event: no shares, no mean (not 0).
      ["2026-11-29", 0, null, null, null, null, null],
      ["2026-11-30", 4, 0.2297, 0.25, 0.25, 0.5, 0.25],
      [`2026-12-01${RUNNING_MARK}`, 1, -0.5, 1, 0, 0, -1],
      ["Whole range", 5, 0.0838, 0.4, 0.2, 0.4, 0],
    ],
  );
  assert.deepEqual([0.25, -1, 0, null].map(formatNet), ["+25.0%", "-100.0%", "0.0%", "—"]);
  assert.deepEqual([0.2297, -0.8689, null].map(formatScore), ["0.230", "-0.869", "—"]);
  const option = sentimentChartOption(rows);
  assert.deepEqual(option.xAxis.data, ["2026-11-29", "2026-11-30", `2026-12-01${RUNNING_MARK}`]);
  assert.deepEqual(
    option.series.map((s) => [s.name, s.type, s.stack]),
    [
      ["Negative", "bar", "shares"],
      ["Neutral", "bar", "shares"],
      ["Positive", "bar", "shares"],
      ["Mean score", "line", undefined],
    ],
  );
  assert.deepEqual(option.series[2].data, [null, 0.5, 0]);
  assert.deepEqual(option.series[3].data.map((d) => [d.value, d.symbol]), [
    [null, "circle"],
    [0.2297, "circle"],
    [-0.5, "emptyCircle"],
  ]);
});

test("trends: sentiment by breakdown value, a band a value lacks counted as none, values without scores left out", () => {
  const answer = {
    results: [
      result(0, { value: "chatbot" }, [0.01, 0, 0], 0.01),
      result(0, { value: "web" }, [undefined, undefined, undefined], undefined, { events: [2, 0, 0] }),
      result(1, { value: "chatbot" }, [3, 0, 0], 3),
      result(2, { value: "chatbot" }, [1, 0, 0], 1),
      result(4, { value: "chatbot" }, [2, 0, 0], 2),
    ],
  };
  const groups = sentimentGroups(answer);
  assert.deepEqual(groups.map((g) => g.key), ["chatbot"]);
  const total = sentimentRows(groups[0], { period: "day", zone: "UTC" }).at(-1);
  assert.deepEqual([total.negative, total.neutral, total.positive, total.net], [1 / 3, 0, 2 / 3, 1 / 3]);
});

test("trends: field violations named for people", () => {
  assert.equal(violationField("series[0].property"), "Series 1, property");
  assert.equal(violationField("series[2].currency_code"), "Series 3, currency code");
  assert.equal(violationField("series[1].any_of[3].event_name"), "Series 2, any of[3], event name");
  assert.equal(violationField("series"), "Series");
  assert.equal(violationField("formulas[0].expression"), "Formula 1, expression");
  assert.equal(violationField("formulas[4].expression"), "Formula 5, expression");
  assert.equal(violationField("formulas"), "Formulas");
  assert.equal(violationField("time_zone"), "Time zone");
  assert.equal(violationField("breakdown.property"), "Breakdown, property");
  assert.equal(violationField(""), "The request");
});

// A previous range's result: as result(), each point with its own period's start (the days before the range's).
const PREVIOUS_STARTS = ["2026-11-25T23:00:00Z", "2026-11-26T23:00:00Z", "2026-11-27T23:00:00Z", "2026-11-28T23:00:00Z"];
function previousResult(seriesIndex, breakdownValue, values, total) {
  const one = result(seriesIndex, breakdownValue, values, total);
  one.points = one.points.map((point, index) => ({ ...point, periodStart: PREVIOUS_STARTS[index], complete: true }));
  return one;
}

test("trends: the previous range's lines, dashed and lighter beside their own, aligned by position", () => {
  const current = [result(0, { value: "web" }, [2, 1, 1], 4), result(0, { value: "email" }, [1, 0, 0], 1), result(0, { value: "sms" }, [0, 0, 1], 1)];
  const previous = [
    previousResult(0, { other: true }, [5, 5, 5], 15), // no current counterpart: not drawn
    previousResult(0, { value: "email" }, [4, 2], 6), // a period fewer: a gap at the end
    previousResult(0, { value: "web" }, [1, 2, 4, 8], 15), // a period more: the last dropped
    previousResult(1, { value: "sms" }, [9, 9, 9], 27), // another series' value
  ];
  const matched = previousOf(current, previous);
  assert.deepEqual(matched, [previous[2], previous[1], null]);
  assert.equal(previousOf(current, null), null);
  assert.deepEqual(previousOf(current, []), [null, null, null]);
  // Matched by the whole breakdown value: `other` is not the value "" nor a missing one.
  assert.deepEqual(previousOf([result(0, {}, [1], 1)], [previousResult(0, { other: true }, [1], 1), previousResult(0, { missing: true }, [1], 1)]), [null]);

  const option = seriesChartOption(current, { period: "day", zone: "Europe/Paris", measureName: "Total events", previous: matched });
  assert.deepEqual(option.series.map((s) => s.name), ["web", `web${PREVIOUS_MARK}`, "email", "email (previous)", "sms"]);
  const [web, webBefore, , emailBefore] = option.series;
  assert.equal(webBefore.type, "line");
  assert.equal(webBefore.lineStyle.type, "dashed");
  assert.equal(web.lineStyle, undefined);
  // The same colour, lighter.
  assert.equal(webBefore.itemStyle.color, web.itemStyle.color);
  assert.ok(webBefore.lineStyle.opacity < 1 && webBefore.itemStyle.opacity < 1);
  assert.equal(webBefore.connectNulls, false);
  // At the range's periods by position: the first at the first.
  assert.deepEqual(option.xAxis.data, ["2026-11-30", "2026-12-01", "2026-12-02"]);
  assert.deepEqual(webBefore.data.map((d) => d.value), [1, 2, 4]);
  assert.deepEqual(emailBefore.data.map((d) => d.value), [4, 2, null]);
  // The tooltip names each previous value's own period.
  assert.equal(webBefore.tooltip.valueFormatter(2, 1), "2 (previous: 2026-11-27)");
  assert.equal(emailBefore.tooltip.valueFormatter(4, 0), "4 (previous: 2026-11-26)");
  assert.equal(emailBefore.tooltip.valueFormatter(null, 2), "—");
  // A single line and its previous one: the legend tells them apart.
  const single = seriesChartOption([result(0, {}, [3, 1, 1], 5)], {
    period: "day",
    zone: "UTC",
    measureName: "Total events",
    previous: [previousResult(0, {}, [0, 3, 0], 3)],
  });
  assert.deepEqual(single.series.map((s) => s.name), ["Total events", "Total events (previous)"]);
  assert.deepEqual(single.legend, { top: 0, type: "scroll" });
  // Not compared: the lines as they were.
  assert.deepEqual(seriesChartOption(current, { period: "day", zone: "UTC" }).series.map((s) => s.name), ["web", "email", "sms"]);
});

test("trends: the change from the previous value, relative to its size, with its sign", () => {
  assert.deepEqual([0.125, -0.03, 0, -0.00001, 2 / 13, -1, null, undefined, Number.NaN].map(formatChange), [
    "+12.5%",
    "\u22123.0%",
    "0.0%",
    "0.0%",
    "+15.4%",
    "\u2212100.0%",
    "—",
    "—",
    "—",
  ]);
  assert.equal(relativeChange(10, 8), 0.25);
  assert.equal(relativeChange(0, 4), -1);
  // No change from nothing: a previous 0 or none, or no current value.
  assert.equal(relativeChange(1, 0), null);
  assert.equal(relativeChange(1, null), null);
  assert.equal(relativeChange(null, 3), null);
  // From -10 to 5 is a rise (a formula's difference may be negative).
  assert.equal(relativeChange(5, -10), 1.5);
});

test("trends: compared per period, the previous value and the change beside each value, the totals last", () => {
  const sum = [result(0, {}, [10, 0, 5], 15, { events: [2, 0, 1] })];
  const options = { period: "day", zone: "UTC", counting: false, measureName: "Sum" };
  const previous = previousOf(sum, [previousResult(0, {}, [8, 0, 5, 99], 13)]);
  assert.equal(comparedByPeriod(sum), true);
  const rows = seriesRows(sum, { ...options, previous });
  assert.deepEqual(rows.map((row) => row.cells[0]), [
    { value: 10, events: 2, previous: 8, change: 0.25 },
    { value: 0, events: 0, previous: 0, change: null },
    { value: 5, events: 1, previous: 5, change: 0 },
    { value: 15, events: 3, previous: 13, change: 2 / 13 },
  ]);
  const columns = seriesColumns(sum, { ...options, previous });
  assert.deepEqual(
    columns.map((c) => [c.key, c.label]),
    [
      ["period", "Day"],
      ["value", "Sum"],
      ["previous", "Previous"],
      ["change", "Change"],
      ["events", "Events"],
    ],
  );
  const shown = (column) => rows.map((row) => column.format(column.value(row)));
  assert.deepEqual(shown(columns[2]), ["8", "0", "5", "13"]);
  assert.deepEqual(shown(columns[3]), ["+25.0%", "—", "0.0%", "+15.4%"]);
  // A previous range of fewer periods: nothing at the last one.
  const shorter = seriesRows(sum, { ...options, previous: previousOf(sum, [previousResult(0, {}, [8, 1], 9)]) });
  assert.deepEqual(shorter.map((row) => [row.cells[0].previous, row.cells[0].change]), [
    [8, 0.25],
    [1, -1],
    [null, null],
    [9, 6 / 9],
  ]);
  // Not compared: the cells and columns as they were.
  assert.deepEqual(seriesRows(sum, options)[0].cells[0], { value: 10, events: 2 });
  assert.equal(seriesColumns(sum, options).length, 3);
});

test("trends: compared with a breakdown, the whole range per value in a table of its own", () => {
  const current = [result(0, { value: "web" }, [2, 1, 1], 4), result(0, { value: "email" }, [1, 0, 0], 1), result(0, { missing: true }, [0, 1, 0], 1)];
  const previous = previousOf(current, [previousResult(0, { value: "email" }, [4, 2], 6), previousResult(0, { value: "web" }, [1, 1, 2], 4)]);
  assert.equal(comparedByPeriod(current), false);
  const rows = comparisonRows(current, previous, (r) => breakdownName(r));
  assert.deepEqual(rows, [
    { key: "0:web", label: "web", value: 4, previous: 4, change: 0 },
    { key: "0:email", label: "email", value: 1, previous: 6, change: -5 / 6 },
    // Not measured before on its own: no previous value, no change.
    { key: "0:@missing", label: "Not set", value: 1, previous: null, change: null },
  ]);
  const columns = comparisonColumns("Breakdown value");
  assert.deepEqual(
    columns.map((c) => [c.key, c.label]),
    [
      ["name", "Breakdown value"],
      ["value", "This range"],
      ["previous", "Previous range"],
      ["change", "Change"],
    ],
  );
  assert.deepEqual(rows.map((row) => columns[3].format(row.change)), ["0.0%", "\u221283.3%", "—"]);
  assert.deepEqual(rows.map((row) => columns[2].format(row.previous)), ["4", "6", "—"]);
});

test("trends: the formulas compared, their previous lines and columns", () => {
  const formula = (index, label, values, total, make = result) => ({ ...make(index, {}, values, total), label, eventCount: "0" });
  const plain = [formula(0, "B / A", [0.5, undefined, 2 / 3], 0.6), formula(1, "A - B", [1, 0, 1], 2)];
  const before = [formula(1, "A - B", [-2, 2, 0], -1, previousResult), formula(0, "B / A", [0.25, 0.5, 1], 0.5, previousResult)];
  const previous = previousOf(plain, before);
  assert.deepEqual(previous, [before[1], before[0]]);
  const options = { period: "day", zone: "UTC", previous };
  assert.deepEqual(
    formulaColumns(plain, options).map((c) => [c.key, c.label]),
    [
      ["period", "Day"],
      ["formula:0", "= B / A"],
      ["previous:formula:0", "= B / A: previous"],
      ["change:formula:0", "= B / A: change"],
      ["formula:1", "= A - B"],
      ["previous:formula:1", "= A - B: previous"],
      ["change:formula:1", "= A - B: change"],
    ],
  );
  const rows = seriesRows(plain, options);
  assert.deepEqual(rows.map((row) => [row.cells[1].previous, row.cells[1].change]), [
    [-2, 1.5],
    [2, -1],
    [0, null],
    [-1, 3],
  ]);
  // No formula value now: no change, whatever the previous one.
  assert.equal(rows[1].cells[0].change, null);
  const option = formulaChartOption(plain, options);
  assert.deepEqual(option.series.map((s) => [s.name, s.lineStyle?.type ?? "solid"]), [
    ["= B / A", "solid"],
    ["= B / A (previous)", "dashed"],
    ["= A - B", "solid"],
    ["= A - B (previous)", "dashed"],
  ]);
  assert.deepEqual(option.series[1].data.map((d) => d.value), [0.25, 0.5, 1]);
});

test("trends: the compared range's bounds read on the time zone's clock", () => {
  assert.equal(zoneTime("2026-08-30T22:00:00Z", "Europe/Paris"), "2026-08-31 00:00");
  assert.equal(zoneTime("2026-11-01T00:00:00Z", "UTC"), "2026-11-01 00:00");
  assert.equal(zoneTime("2026-06-01T00:30:00Z", "Asia/Kolkata"), "2026-06-01 06:00");
  assert.equal(zoneTime(undefined, "UTC"), "—");
});

test("trends: stickiness keeps each series' event alone, without formulas or a comparison", () => {
  const query =
    "mode=stickiness&event=Order Completed&math=sum&of=revenue&currency=eur&event=&math=persons&of=&currency=&event=/pricing&formula=B / A&compare=1&period=day&from=2026-11-01&to=2026-11-03&tz=Europe/Paris&breakdown=channel&in=segments/vip";
  const filters = filtersOf(query);
  assert.equal(filters.mode, "stickiness");
  // Every row kept, in order (an empty event is a series of every event), its math, property and currency
  // dropped; no formulas, no comparison.
  assert.deepEqual(filters.series, [
    { event: "Order Completed", math: "total", of: "", currency: "" },
    { event: "", math: "total", of: "", currency: "" },
    { event: "/pricing", math: "total", of: "", currency: "" },
  ]);
  assert.deepEqual(filters.formulas, []);
  assert.equal(filters.compare, false);
  assert.equal(
    trendsParams(filters).toString(),
    "mode=stickiness&event=Order+Completed&event=&event=%2Fpricing&period=day&from=2026-11-01&to=2026-11-03&tz=Europe%2FParis&breakdown=channel&in=segments%2Fvip",
  );
  // Formulas, a comparison and maths the filters might still hold leave no trace in the address.
  const held = { ...filters, series: [{ event: "Order Completed", math: "sum", of: "revenue", currency: "EUR" }], formulas: ["A * 2"], compare: true };
  assert.equal(
    trendsParams(held).toString(),
    "mode=stickiness&event=Order+Completed&period=day&from=2026-11-01&to=2026-11-03&tz=Europe%2FParis&breakdown=channel&in=segments%2Fvip",
  );
  // Round trips, the default series (every event) leaving no trace but the mode.
  for (const one of [query, "mode=stickiness", "mode=stickiness&event=Signed Up&period=month&breakdown=segment&segment=segments/a", "mode=stickiness&event=&event="]) {
    const read = filtersOf(one);
    assert.deepEqual(filtersOf(trendsParams(read).toString()), read, one);
  }
  assert.equal(trendsParams(filtersOf("mode=stickiness")).toString(), "mode=stickiness&period=week&from=2026-10-07&to=2026-12-01&tz=UTC");
  // Back in series mode, the address's maths count again.
  assert.equal(filtersOf(query.replace("mode=stickiness&", "")).series[0].math, "sum");
});

test("trends: the QueryStickiness request, the series' events without a math, the scope as QueryTrends'", () => {
  const filters = filtersOf(
    "mode=stickiness&event=Order Completed&math=sum&of=revenue&event=/pricing&event=&period=day&from=2026-11-01&to=2026-11-03&tz=Europe/Paris&breakdown=property&property=properties.plan&in=segments/vip&formula=A&compare=1",
  );
  const request = stickinessRequest(filters);
  assert.deepEqual(request, {
    series: [
      { label: "Order Completed", event: { eventName: "Order Completed" } },
      {
        label: "/pricing",
        event: {
          eventType: "EVENT_TYPE_PAGE",
          propertyFilters: [{ property: "context.page.path", operator: "FILTER_OPERATOR_EQUALS", values: ["/pricing"] }],
        },
      },
      { label: "All events" },
    ],
    timeRange: { start: "2026-10-31T23:00:00Z", end: "2026-11-03T23:00:00Z" },
    period: "RETENTION_PERIOD_DAY",
    timeZone: "Europe/Paris",
    breakdown: { dimension: "BREAKDOWN_DIMENSION_PROPERTY", property: "properties.plan", limit: 5 },
    population: { segments: ["segments/vip"] },
  });
  // Never a math, a property, a currency, formulas or the previous range, whatever the filters hold.
  const held = stickinessRequest({ ...filters, series: [{ event: "Order Completed", math: "sum", of: "revenue", currency: "EUR" }], formulas: ["A"], compare: true });
  assert.deepEqual(held.series, [{ label: "Order Completed", event: { eventName: "Order Completed" } }]);
  assert.equal("formulas" in held, false);
  assert.equal("compareToPrevious" in held, false);
  // The range, periods, zone, breakdown and population are QueryTrends' own.
  const { series: _stickySeries, ...scope } = request;
  const { series: _trendSeries, ...trendScope } = trendsRequest({ ...filters, mode: "series" });
  assert.deepEqual(scope, trendScope);
  assert.deepEqual(stickinessRequest(filtersOf("mode=stickiness&breakdown=segment&segment=segments/a&segment=segments/b")).breakdown, {
    dimension: "BREAKDOWN_DIMENSION_SEGMENT",
    segments: ["segments/a", "segments/b"],
  });
  // A violation QueryStickiness names reads as the other modes' do.
  assert.equal(violationField("series[0].math"), "Series 1, math");
  assert.equal(violationField("series[1].property"), "Series 2, property");
});

// A StickinessResult as the bridge prints it: int64 as strings.
function sticky(seriesIndex, breakdownValue, persons) {
  return {
    seriesIndex,
    label: `series ${seriesIndex}`,
    breakdownValue: { value: "", other: false, missing: false, ...breakdownValue },
    persons: persons.map(String),
    totalPersons: String(persons.reduce((sum, n) => sum + n, 0)),
  };
}

test("trends: a stickiness table, a row per number of periods with the persons and their share, the persons last", () => {
  const results = [sticky(0, {}, [1, 1, 0])];
  const rows = stickinessRows(results, 3);
  assert.deepEqual(
    rows.map((row) => [row.key, row.label, row.cells]),
    [
      ["1", "1", [{ persons: 1, share: 0.5 }]],
      ["2", "2", [{ persons: 1, share: 0.5 }]],
      ["3", "3", [{ persons: 0, share: 0 }]],
      [STICKINESS_TOTAL_ROW, "Persons", [{ persons: 2, share: null }]],
    ],
  );
  const columns = stickinessColumns(results, { period: "day" });
  assert.deepEqual(
    columns.map((column) => [column.key, column.label]),
    [
      ["periods", "Days"],
      ["persons", "Persons"],
    ],
  );
  const shown = (column, row) => column.format(column.value(row), row);
  assert.deepEqual(
    rows.map((row) => [columns[0].value(row), columns[1].value(row), shown(columns[1], row)]),
    [
      ["1", 1, "1 (50.0%)"],
      ["2", 1, "1 (50.0%)"],
      ["3", 0, "0 (0.0%)"],
      ["Persons", 2, "2"],
    ],
  );
  assert.equal(formatStickiness(1234, 0.125), "1,234 (12.5%)");
  assert.equal(formatStickiness(0, null), "0");
  // A value without persons has no share; a missing count reads as none.
  assert.deepEqual(stickinessRows([sticky(0, {}, [0, 0])], 2)[0].cells, [{ persons: 0, share: null }]);
  assert.deepEqual(stickinessRows([{ seriesIndex: 0, persons: ["3"], totalPersons: "3" }], 2)[1].cells, [{ persons: 0, share: 0 }]);
});

test("trends: stickiness by breakdown value, a column and a bar per value, each share of its own persons", () => {
  const results = [sticky(0, { value: "web" }, [3, 1, 0, 0]), sticky(0, { other: true }, [1, 0, 0, 1]), sticky(0, { value: "segments/vip" }, [0, 0, 0, 0])];
  const names = new Map([["segments/vip", "VIP"]]);
  const columns = stickinessColumns(results, { period: "week", segmentNames: names });
  assert.deepEqual(
    columns.map((column) => [column.key, column.label]),
    [
      ["periods", "Weeks"],
      ["persons:web", "web"],
      ["persons:@other", "Other values"],
      ["persons:segments/vip", "VIP"],
    ],
  );
  const rows = stickinessRows(results, 4);
  const text = (row) => columns.slice(1).map((column) => column.format(column.value(row), row));
  assert.deepEqual(rows.map(text), [
    ["3 (75.0%)", "1 (50.0%)", "0"],
    ["1 (25.0%)", "0 (0.0%)", "0"],
    ["0 (0.0%)", "0 (0.0%)", "0"],
    ["0 (0.0%)", "1 (50.0%)", "0"],
    ["4", "2", "0"],
  ]);

  const option = stickinessChartOption(results, { period: "week", periods: 4, segmentNames: names });
  assert.deepEqual(option.xAxis, { type: "category", data: ["1 week", "2 weeks", "3 weeks", "4 weeks"] });
  assert.equal(option.yAxis.name, "Persons");
  assert.deepEqual(
    option.series.map((bar) => [bar.type, bar.name, bar.data]),
    [
      ["bar", "web", [3, 1, 0, 0]],
      ["bar", "Other values", [1, 0, 0, 1]],
      ["bar", "VIP", [0, 0, 0, 0]],
    ],
  );
  assert.notEqual(option.series[0].itemStyle.color, option.series[1].itemStyle.color);
  assert.deepEqual(option.legend, { top: 0, type: "scroll" });
  // The tooltip gives each bar's share of its value's persons.
  assert.equal(option.series[0].tooltip.valueFormatter(3), "3 (75.0%)");
  assert.equal(option.series[2].tooltip.valueFormatter(0), "0");
});

test("trends: a stickiness chart without breakdown, one bar series named Persons, no legend", () => {
  const option = stickinessChartOption([sticky(0, {}, [1, 1, 0])], { period: "day", periods: 3 });
  assert.deepEqual(option.xAxis.data, ["1 day", "2 days", "3 days"]);
  assert.deepEqual(
    option.series.map((bar) => [bar.type, bar.name, bar.data]),
    [["bar", "Persons", [1, 1, 0]]],
  );
  assert.equal(option.legend, undefined);
  assert.equal(option.series[0].tooltip.valueFormatter(1), "1 (50.0%)");
  assert.deepEqual(
    ["hour", "day", "week", "month"].flatMap((period) => [periodCountLabel(1, period), periodCountLabel(2, period)]),
    ["1 hour", "2 hours", "1 day", "2 days", "1 week", "2 weeks", "1 month", "2 months"],
  );
  // The answer's periodCount, else the longest persons.
  assert.equal(stickinessPeriods({ periodCount: 3, results: [] }), 3);
  assert.equal(stickinessPeriods({ results: [sticky(0, {}, [1, 2])] }), 2);
  assert.equal(stickinessPeriods({}), 0);
  assert.equal(stickinessTitle("Order Completed", { event: "Order Completed" }, "day"), "Order Completed: persons by the days they performed it");
  assert.equal(stickinessTitle("All events", { event: "" }, "week"), "All events: persons by the weeks they were active");
});

test("trends: the lifecycle keeps each series' event alone, without formulas, a comparison or a breakdown", () => {
  const query =
    "mode=lifecycle&event=Order Completed&math=sum&of=revenue&currency=eur&event=&math=persons&event=/pricing&formula=B / A&compare=1&period=day&from=2026-11-01&to=2026-11-03&tz=Europe/Paris&breakdown=segment&segment=segments/a&in=segments/vip";
  const filters = filtersOf(query);
  assert.equal(filters.mode, "lifecycle");
  assert.deepEqual(filters.series, [
    { event: "Order Completed", math: "total", of: "", currency: "" },
    { event: "", math: "total", of: "", currency: "" },
    { event: "/pricing", math: "total", of: "", currency: "" },
  ]);
  assert.deepEqual(filters.formulas, []);
  assert.equal(filters.compare, false);
  // No breakdown: QueryActivityLifecycle has none; the population stays.
  assert.equal(filters.breakdown, "");
  assert.deepEqual(filters.segments, []);
  assert.equal(filters.property, "");
  assert.deepEqual(filters.population, ["segments/vip"]);
  assert.equal(
    trendsParams(filters).toString(),
    "mode=lifecycle&event=Order+Completed&event=&event=%2Fpricing&period=day&from=2026-11-01&to=2026-11-03&tz=Europe%2FParis&in=segments%2Fvip",
  );
  // Maths, formulas, a comparison and a breakdown the filters might still hold leave no trace in the address.
  const held = {
    ...filters,
    series: [{ event: "Order Completed", math: "sum", of: "revenue", currency: "EUR" }],
    formulas: ["A * 2"],
    compare: true,
    breakdown: "property",
    property: "properties.plan",
  };
  assert.equal(
    trendsParams(held).toString(),
    "mode=lifecycle&event=Order+Completed&period=day&from=2026-11-01&to=2026-11-03&tz=Europe%2FParis&in=segments%2Fvip",
  );
  for (const one of [query, "mode=lifecycle", "mode=lifecycle&event=Signed Up&period=month", "mode=lifecycle&event=&event="]) {
    const read = filtersOf(one);
    assert.deepEqual(filtersOf(trendsParams(read).toString()), read, one);
  }
  assert.equal(trendsParams(filtersOf("mode=lifecycle")).toString(), "mode=lifecycle&period=week&from=2026-10-07&to=2026-12-01&tz=UTC");
  // In the other modes, the address's breakdown and maths count again.
  assert.equal(filtersOf(query.replace("mode=lifecycle", "mode=stickiness")).breakdown, "segment");
  assert.equal(filtersOf(query.replace("mode=lifecycle&", "")).series[0].math, "sum");
});

test("trends: the QueryActivityLifecycle request, the series' events, the range and the population, nothing else", () => {
  const filters = filtersOf(
    "mode=lifecycle&event=Order Completed&math=sum&of=revenue&event=/pricing&event=&period=day&from=2026-11-01&to=2026-11-03&tz=Europe/Paris&breakdown=channel&in=segments/vip&in=segments/eu&formula=A&compare=1",
  );
  const request = lifecycleRequest(filters);
  assert.deepEqual(request, {
    series: [
      { label: "Order Completed", event: { eventName: "Order Completed" } },
      {
        label: "/pricing",
        event: {
          eventType: "EVENT_TYPE_PAGE",
          propertyFilters: [{ property: "context.page.path", operator: "FILTER_OPERATOR_EQUALS", values: ["/pricing"] }],
        },
      },
      { label: "All events" },
    ],
    timeRange: { start: "2026-10-31T23:00:00Z", end: "2026-11-03T23:00:00Z" },
    period: "RETENTION_PERIOD_DAY",
    timeZone: "Europe/Paris",
    population: { segments: ["segments/vip", "segments/eu"] },
  });
  // Never a math, a property, a currency, formulas, the previous range or a breakdown, whatever the filters hold.
  const held = lifecycleRequest({
    ...filters,
    series: [{ event: "Order Completed", math: "sum", of: "revenue", currency: "EUR" }],
    formulas: ["A"],
    compare: true,
    breakdown: "channel",
  });
  assert.deepEqual(held.series, [{ label: "Order Completed", event: { eventName: "Order Completed" } }]);
  for (const absent of ["formulas", "compareToPrevious", "breakdown"]) assert.equal(absent in held, false, absent);
  // Everyone when no segment is chosen: no population at all.
  assert.deepEqual(lifecycleRequest(filtersOf("mode=lifecycle&period=week&from=2026-11-02&to=2026-11-15")), {
    series: [{ label: "All events" }],
    timeRange: { start: "2026-11-02T00:00:00Z", end: "2026-11-16T00:00:00Z" },
    period: "RETENTION_PERIOD_WEEK",
    timeZone: "UTC",
  });
  // The range, periods, zone and population are QueryTrends' own.
  const { series: _lifecycleSeries, ...scope } = request;
  const { series: _trendSeries, ...trendScope } = trendsRequest({ ...filters, mode: "series" });
  assert.deepEqual(scope, trendScope);
  // Each mode asks its own RPC.
  assert.deepEqual(trendsQuery(filters), { method: "QueryActivityLifecycle", request });
  assert.equal(trendsQuery(filtersOf("mode=stickiness")).method, "QueryStickiness");
  assert.equal(trendsQuery(filtersOf("mode=sentiment")).method, "QueryTrends");
  assert.equal(trendsQuery(filtersOf("")).method, "QueryTrends");
});

// An ActivityLifecyclePoint as the bridge prints it: int64 as strings, zero values left out (proto3 JSON).
function lifecyclePoint(periodStart, counts, complete = true) {
  const point = { periodStart };
  for (const [field, value] of Object.entries(counts)) if (value) point[field] = String(value);
  if (complete) point.complete = true;
  return point;
}

const LIFECYCLE_RESPONSE = {
  results: [
    {
      seriesIndex: 0,
      label: "Order Completed",
      points: [
        // Nothing at all: every count left out.
        lifecyclePoint("2026-11-01T00:00:00Z", {}),
        lifecyclePoint("2026-11-02T00:00:00Z", { newPersons: 3 }),
        lifecyclePoint("2026-11-03T00:00:00Z", { newPersons: 1, returningPersons: 2, dormantPersons: 1 }),
        lifecyclePoint("2026-11-04T00:00:00Z", { resurrectingPersons: 1, returningPersons: 1, dormantPersons: 2 }),
        lifecyclePoint("2026-11-05T00:00:00Z", { newPersons: 1234, resurrectingPersons: 1, dormantPersons: 12 }, false),
      ],
    },
  ],
  endTime: "2026-11-05T16:00:00Z",
};

test("trends: a lifecycle table from an answer, zero counts left out and int64 as strings", () => {
  const rows = lifecycleRows(LIFECYCLE_RESPONSE.results[0], { period: "day", zone: "UTC" });
  assert.deepEqual(
    rows.map(({ key, label, complete, new: fresh, returning, resurrecting, dormant, active }) => [key, label, complete, fresh, returning, resurrecting, dormant, active]),
    [
      ["2026-11-01T00:00:00Z", "2026-11-01", true, 0, 0, 0, 0, 0],
      ["2026-11-02T00:00:00Z", "2026-11-02", true, 3, 0, 0, 0, 3],
      ["2026-11-03T00:00:00Z", "2026-11-03", true, 1, 2, 0, 1, 3],
      ["2026-11-04T00:00:00Z", "2026-11-04", true, 0, 1, 1, 2, 2],
      ["2026-11-05T00:00:00Z", `2026-11-05${RUNNING_MARK}`, false, 1234, 0, 1, 12, 1235],
    ],
  );
  // (new + resurrecting) ÷ dormant; none without dormant persons.
  assert.deepEqual(
    rows.map((row) => row.quickRatio),
    [null, null, 1, 0.5, 1235 / 12],
  );
  const columns = lifecycleColumns({ period: "day" });
  assert.deepEqual(
    columns.map((column) => [column.key, column.label, Boolean(column.numeric)]),
    [
      ["period", "Day", false],
      ["new", "New", true],
      ["returning", "Returning", true],
      ["resurrecting", "Resurrecting", true],
      ["dormant", "Dormant", true],
      ["active", "Active", true],
      ["quick-ratio", "Quick ratio", true],
    ],
  );
  // As dataTable reads a column: its value (the raw data-value), then its format (else the number's).
  const raw = (column, row) => (column.value ? column.value(row) : row[column.key]);
  const shown = (column, row) => {
    const value = raw(column, row);
    if (column.format) return column.format(value, row);
    return column.numeric ? new Intl.NumberFormat("en-US").format(value) : value;
  };
  assert.deepEqual(
    rows.map((row) => columns.map((column) => shown(column, row))),
    [
      ["2026-11-01", "0", "0", "0", "0", "0", "—"],
      ["2026-11-02", "3", "0", "0", "0", "3", "—"],
      ["2026-11-03", "1", "2", "0", `${MINUS}1`, "3", "1.00"],
      ["2026-11-04", "0", "1", "1", `${MINUS}2`, "2", "0.50"],
      ["2026-11-05 *", "1,234", "0", "1", `${MINUS}12`, "1,235", "102.92"],
    ],
  );
  // The dormant persons' raw value is negative too (never −0), the quick ratio's unrounded.
  assert.deepEqual(
    rows.map((row) => raw(columns[4], row)),
    [0, 0, -1, -2, -12],
  );
  assert.equal(Object.is(raw(columns[4], rows[0]), -0), false);
  assert.equal(raw(columns[6], rows[4]), 1235 / 12);
  // The same minus sign as a change that falls; 2 decimals for the ratio.
  assert.equal(formatSigned(-12), `${MINUS}12`);
  assert.equal(formatSigned(-1234), `${MINUS}1,234`);
  assert.equal(formatSigned(0), "0");
  assert.equal(formatSigned(-0), "0");
  assert.equal(formatSigned(7), "7");
  assert.equal(formatSigned(null), "—");
  assert.equal(formatChange(-0.5), `${MINUS}50.0%`);
  assert.equal(formatQuickRatio(1.5), "1.50");
  assert.equal(formatQuickRatio(2), "2.00");
  assert.equal(formatQuickRatio(1 / 3), "0.33");
  assert.equal(formatQuickRatio(null), "—");
  assert.equal(quickRatio({ new: 2, resurrecting: 1, dormant: 0 }), null);
  assert.equal(quickRatio({ new: 2, resurrecting: 1, dormant: 2 }), 1.5);
  // A result without points (a series nothing matched may still list its periods) has no rows.
  assert.deepEqual(lifecycleRows({ seriesIndex: 0, label: "x" }, { period: "day", zone: "UTC" }), []);
  assert.deepEqual(lifecycleRows(undefined, { period: "day", zone: "UTC" }), []);
  // Weeks and months read in the zone, as the other modes' periods.
  const paris = lifecycleRows({ points: [lifecyclePoint("2026-10-31T23:00:00Z", { newPersons: 1 })] }, { period: "month", zone: "Europe/Paris" });
  assert.equal(paris[0].label, "2026-11");
  assert.equal(lifecycleColumns({ period: "week" })[0].label, "Week of");
  assert.equal(lifecycleTitle("Order Completed"), "Order Completed: new, returning, resurrecting and dormant persons");
});

test("trends: the lifecycle chart, new, returning and resurrecting stacked above zero, dormant below, a running period hollow", () => {
  const rows = lifecycleRows(LIFECYCLE_RESPONSE.results[0], { period: "day", zone: "UTC" });
  const option = lifecycleChartOption(rows);
  assert.deepEqual(option.xAxis, {
    type: "category",
    data: ["2026-11-01", "2026-11-02", "2026-11-03", "2026-11-04", `2026-11-05${RUNNING_MARK}`],
  });
  assert.equal(option.yAxis.name, "Persons");
  assert.equal(option.yAxis.axisLabel.formatter(-5), `${MINUS}5`);
  assert.deepEqual(option.legend, { top: 0 });
  const value = (item) => (typeof item === "object" ? item.value : item);
  assert.deepEqual(
    option.series.map((bars) => [bars.type, bars.name, bars.stack, bars.data.map(value)]),
    [
      ["bar", "New", "lifecycle", [0, 3, 1, 0, 1234]],
      ["bar", "Returning", "lifecycle", [0, 0, 2, 1, 0]],
      ["bar", "Resurrecting", "lifecycle", [0, 0, 0, 1, 1]],
      ["bar", "Dormant", "lifecycle", [0, 0, -1, -2, -12]],
    ],
  );
  // A colour per status, the same in every chart.
  assert.deepEqual(
    option.series.map((bars) => bars.itemStyle.color),
    LIFECYCLE_STATUSES.map((status) => status.colour),
  );
  assert.equal(new Set(option.series.map((bars) => bars.itemStyle.color)).size, 4);
  // The running period's bars are hollow, outlined in their colour; the complete ones plain numbers.
  for (const bars of option.series) {
    assert.deepEqual(bars.data.slice(0, 4).map((item) => typeof item), ["number", "number", "number", "number"]);
    assert.deepEqual(bars.data[4].itemStyle, { color: "#ffffff", borderColor: bars.itemStyle.color, borderWidth: 2 });
  }
  assert.equal(option.series[3].tooltip.valueFormatter(-12), `${MINUS}12`);
  assert.equal(option.series[0].tooltip.valueFormatter(1234), "1,234");
});

test("trends: the ListActivityLifecyclePersons request, the page's own lifecycle and one number of it, 100 at a time", () => {
  const filters = filtersOf("mode=lifecycle&event=Order Completed&event=/pricing&period=week&from=2026-11-02&to=2026-11-29&tz=Europe/Paris&in=segments/vip");
  const lifecycle = lifecycleRequest(filters);
  const first = lifecyclePersonsRequest(lifecycle, { seriesIndex: 1, periodStart: "2026-11-22T23:00:00Z", status: "dormant" });
  // proto3 JSON: the lifecycle as QueryActivityLifecycle took it (its range's end set: whole days), the series'
  // index, the point's periodStart as the answer gave it, the ActivityStatus by its name, a page of 100.
  assert.deepEqual(first, {
    lifecycle: {
      series: [
        { label: "Order Completed", event: { eventName: "Order Completed" } },
        {
          label: "/pricing",
          event: {
            eventType: "EVENT_TYPE_PAGE",
            propertyFilters: [{ property: "context.page.path", operator: "FILTER_OPERATOR_EQUALS", values: ["/pricing"] }],
          },
        },
      ],
      timeRange: { start: "2026-11-01T23:00:00Z", end: "2026-11-29T23:00:00Z" },
      period: "RETENTION_PERIOD_WEEK",
      timeZone: "Europe/Paris",
      population: { segments: ["segments/vip"] },
    },
    seriesIndex: 1,
    periodStart: "2026-11-22T23:00:00Z",
    status: "ACTIVITY_STATUS_DORMANT",
    pageSize: 100,
  });
  assert.equal(first.lifecycle, lifecycle, "the page's request itself, not a copy that may differ");
  assert.equal(LIFECYCLE_PERSONS_PAGE_SIZE, 100);
  assert.equal("pageToken" in first, false, "the first page has no token");
  // "More": the previous page's token, everything else the same.
  const next = lifecyclePersonsRequest(lifecycle, { seriesIndex: 1, periodStart: "2026-11-22T23:00:00Z", status: "dormant", pageToken: "t2" });
  assert.deepEqual(next, { ...first, pageToken: "t2" });
  // An empty token (the panel's first call) is no token; the first series is index 0, sent as it is.
  const zero = lifecyclePersonsRequest(lifecycle, { seriesIndex: 0, periodStart: "2026-11-01T23:00:00Z", status: "new", pageToken: "" });
  assert.equal(zero.seriesIndex, 0);
  assert.equal("pageToken" in zero, false);
  // Each status of the table by its enum name; the table's statuses are exactly these.
  assert.deepEqual(
    Object.keys(ACTIVITY_STATUSES).map((status) => lifecyclePersonsRequest(lifecycle, { seriesIndex: 0, periodStart: "x", status }).status),
    ["ACTIVITY_STATUS_NEW", "ACTIVITY_STATUS_RETURNING", "ACTIVITY_STATUS_RESURRECTING", "ACTIVITY_STATUS_DORMANT"],
  );
  assert.deepEqual(Object.keys(ACTIVITY_STATUSES), LIFECYCLE_STATUSES.map((status) => status.key));
  // Never an unset status (the RPC refuses it).
  for (const status of ["", "active", "ACTIVITY_STATUS_DORMANT", "toString", undefined]) {
    assert.throws(() => lifecyclePersonsRequest(lifecycle, { seriesIndex: 0, periodStart: "x", status }), RangeError, String(status));
  }
});

test("trends: the lifecycle persons' titles name the status and the period in its zone", () => {
  assert.equal(lifecyclePersonsTitle("dormant", "2026-11-23T00:00:00Z", { period: "week", zone: "UTC" }), "Dormant persons, week of 2026-11-23");
  assert.equal(lifecyclePersonsTitle("new", "2026-11-22T23:00:00Z", { period: "week", zone: "Europe/Paris" }), "New persons, week of 2026-11-23");
  assert.equal(lifecyclePersonsTitle("returning", "2026-11-05T00:00:00Z", { period: "day", zone: "UTC" }), "Returning persons, day 2026-11-05");
  assert.equal(lifecyclePersonsTitle("resurrecting", "2026-10-31T23:00:00Z", { period: "month", zone: "Europe/Paris" }), "Resurrecting persons, month 2026-11");
  assert.equal(lifecyclePeriodPhrase("2026-11-05T14:00:00Z", { period: "hour", zone: "UTC" }), "hour of 2026-11-05 14:00 UTC");
  // A period still running, and the series when the page shows several.
  assert.equal(
    lifecyclePersonsTitle("dormant", "2026-11-30T00:00:00Z", { period: "week", zone: "UTC", running: true, series: "Order Completed" }),
    "Dormant persons, week of 2026-11-30, still running (Order Completed)",
  );
});

test("trends: with onPersons, a lifecycle count of zero stays a plain number (only counts above zero list persons)", () => {
  const rows = lifecycleRows(LIFECYCLE_RESPONSE.results[0], { period: "day", zone: "UTC" });
  const calls = [];
  const columns = lifecycleColumns({ period: "day", zone: "UTC", onPersons: (...args) => calls.push(args) });
  // The same columns, keys and raw values (the cells' data-value) as without onPersons.
  const plain = lifecycleColumns({ period: "day" });
  assert.deepEqual(columns.map((column) => column.key), plain.map((column) => column.key));
  const raw = (column, row) => (column.value ? column.value(row) : row[column.key]);
  assert.deepEqual(rows.map((row) => columns.map((column) => raw(column, row))), rows.map((row) => plain.map((column) => raw(column, row))));
  // The zero counts of the first day as the table shows them, no button (node has no DOM to draw one in).
  const statusColumns = columns.slice(1, 5);
  assert.deepEqual(statusColumns.map((column) => column.format(raw(column, rows[0]), rows[0])), ["0", "0", "0", "0"]);
  assert.deepEqual(
    ["returning", "resurrecting", "dormant"].map((key) => {
      const column = columns.find((one) => one.key === key);
      return column.format(raw(column, rows[1]), rows[1]);
    }),
    ["0", "0", "0"],
  );
  assert.deepEqual(calls, []);
  // Without onPersons (the report), no column formats a count as anything but its text.
  assert.equal(plain[1].format, undefined);
});
