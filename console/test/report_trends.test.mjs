// The report's trend sections drawn by the Trends page: the page's filters of a recorded QueryTrends request
// (as `wayline report` records it: proto3 JSON, lowerCamelCase, zero values printed). That the page then draws
// the RPC's numbers is checked end to end (tests/console/test_report.py).

import assert from "node:assert/strict";
import { test } from "node:test";

import { lifecycleRequest, stickinessRequest, trendsFilters, trendsQuery, trendsRequest } from "../src/pages/trends/query.js";
import { matcherText, trendsFiltersOfRequest } from "../src/report_trends.js";

const RANGE = { start: "2026-03-01T00:00:00Z", end: "2026-04-01T00:00:00Z" };
const CHANNEL = { dimension: "BREAKDOWN_DIMENSION_CHANNEL", property: "", segments: [], limit: 5 };
const EVERY_EVENT = { eventName: "", eventType: "EVENT_TYPE_UNSPECIFIED", channels: [], propertyFilters: [] };

// A TrendSeries as message_to_json prints it: every field, zero values included.
function printed(series) {
  return { label: "", anyOf: [], math: "TREND_MATH_UNSPECIFIED", property: "", currencyCode: "", ...series };
}

function scoreBand(label, ...filters) {
  return printed({
    label,
    event: { ...EVERY_EVENT, propertyFilters: filters.map(([operator, bound]) => ({ property: "sentiment_score", operator, values: bound === undefined ? [] : [bound] })) },
    math: "TREND_MATH_TOTAL",
  });
}

test("report trends: the activity's events and persons by day, by channel, in UTC", () => {
  const request = {
    series: [printed({ label: "Events", math: "TREND_MATH_TOTAL" }), printed({ label: "Persons", math: "TREND_MATH_UNIQUE_PERSONS" })],
    timeRange: RANGE,
    period: "RETENTION_PERIOD_DAY",
    timeZone: "UTC",
    breakdown: CHANNEL,
  };
  assert.deepEqual(trendsFiltersOfRequest(request), {
    mode: "series",
    series: [
      { event: "", math: "total", of: "", currency: "" },
      { event: "", math: "persons", of: "", currency: "" },
    ],
    formulas: [],
    period: "day",
    tz: "UTC",
    compare: false,
    breakdown: "channel",
    property: "",
    segments: [],
    population: [],
  });
});

test("report trends: each period and math by the page's names, unset ones as the contract's defaults", () => {
  for (const [period, name] of [
    ["RETENTION_PERIOD_DAY", "day"],
    ["RETENTION_PERIOD_WEEK", "week"],
    ["RETENTION_PERIOD_MONTH", "month"],
    ["RETENTION_PERIOD_UNSPECIFIED", "week"],
    [undefined, "week"],
  ]) {
    assert.equal(trendsFiltersOfRequest({ series: [], period }).period, name, period);
  }
  const maths = trendsFiltersOfRequest({
    series: [
      printed({ math: "TREND_MATH_UNSPECIFIED" }),
      printed({ math: "TREND_MATH_EVENTS_PER_PERSON", property: "ignored" }),
      printed({ event: { ...EVERY_EVENT, eventName: "Order Completed" }, math: "TREND_MATH_SUM", property: "revenue", currencyCode: "EUR" }),
      printed({ math: "TREND_MATH_P90", property: "properties.items", currencyCode: "EUR" }),
      { math: "TREND_MATH_MEDIAN", property: "sentiment_score" },
    ],
  });
  assert.deepEqual(maths.series, [
    { event: "", math: "total", of: "", currency: "" },
    { event: "", math: "per-person", of: "", currency: "" },
    { event: "Order Completed", math: "sum", of: "revenue", currency: "EUR" },
    { event: "", math: "p90", of: "properties.items", currency: "" },
    { event: "", math: "median", of: "sentiment_score", currency: "" },
  ]);
  assert.equal(maths.tz, "UTC");
  assert.equal(maths.mode, "series");
  assert.equal(trendsFiltersOfRequest({ series: [], timeZone: "Europe/Paris" }).tz, "Europe/Paris");
});

test("report trends: the sentiment preset of every event with a score, one series with no name", () => {
  const request = {
    series: [
      printed({ label: "mean sentiment", event: EVERY_EVENT, math: "TREND_MATH_AVERAGE", property: "sentiment_score" }),
      scoreBand("scored", ["FILTER_OPERATOR_IS_SET"]),
      scoreBand("negative", ["FILTER_OPERATOR_LESS_THAN_OR_EQUAL", -0.05]),
      scoreBand("neutral", ["FILTER_OPERATOR_GREATER_THAN", -0.05], ["FILTER_OPERATOR_LESS_THAN", 0.05]),
      scoreBand("positive", ["FILTER_OPERATOR_GREATER_THAN_OR_EQUAL", 0.05]),
    ],
    timeRange: RANGE,
    period: "RETENTION_PERIOD_WEEK",
    timeZone: "UTC",
    breakdown: CHANNEL,
  };
  assert.deepEqual(trendsFiltersOfRequest(request, "sentiment"), {
    mode: "sentiment",
    series: [{ event: "", math: "total", of: "", currency: "" }],
    formulas: [],
    period: "week",
    tz: "UTC",
    compare: false,
    breakdown: "channel",
    property: "",
    segments: [],
    population: [],
  });
});

test("report trends: the page's own requests read back as its filters, the days aside", () => {
  const cases = [
    "event=Order+Completed&math=sum&of=revenue&currency=EUR&event=&math=persons&of=&currency=&period=month&from=2026-01-01&to=2026-03-31&tz=Europe%2FParis&breakdown=property&property=properties.plan",
    "event=%2Fpricing&period=day&from=2026-03-01&to=2026-03-07&tz=UTC&breakdown=segment&segment=segments%2Fvip&segment=segments%2Fnew",
    "mode=sentiment&event=Call+Completed&event=Chat+Message&period=week&from=2026-03-01&to=2026-03-28&tz=UTC&breakdown=channel",
    "mode=sentiment&event=Call+Completed&period=day&from=2026-03-01&to=2026-03-07&tz=UTC",
    "mode=sentiment&period=day&from=2026-03-01&to=2026-03-07&tz=UTC",
    "event=Signed+Up&math=persons&event=Order+Completed&math=persons&formula=B+%2F+A+*+100&formula=A+-+B&period=week&from=2026-03-01&to=2026-03-28&tz=UTC",
    "event=Order+Completed&math=persons&formula=A+*+2&period=day&from=2026-03-15&to=2026-03-28&tz=Europe%2FParis&compare=1&breakdown=channel",
  ];
  for (const query of cases) {
    const { days, ...filters } = trendsFilters(new URLSearchParams(query));
    assert.ok(days);
    assert.deepEqual(trendsFiltersOfRequest(trendsRequest({ ...filters, days }), filters.mode), filters, query);
  }
});

test("report trends: a stickiness request, which the report does not draw, reads as its series' events", () => {
  const query = "mode=stickiness&event=Order+Completed&event=&period=day&from=2026-03-01&to=2026-03-07&tz=Europe%2FParis&breakdown=channel&in=segments%2Fvip";
  const { days, ...filters } = trendsFilters(new URLSearchParams(query));
  assert.ok(days);
  // No math: each series reads as its events counted (the contract's default), in series mode.
  assert.deepEqual(trendsFiltersOfRequest(stickinessRequest({ ...filters, days })), { ...filters, mode: "series" });
});

test("report trends: the buyers' activity lifecycle, by week in UTC, reads as the page's lifecycle mode", () => {
  // As `wayline report` records it (cli report/requests.py buyers_lifecycle_request): one series of every
  // event with revenue in the report's currency, no event matcher, no math, no breakdown (the RPC has none).
  const request = {
    series: [printed({ label: "Buyers", currencyCode: "EUR" })],
    timeRange: RANGE,
    period: "RETENTION_PERIOD_WEEK",
    timeZone: "UTC",
  };
  assert.deepEqual(trendsFiltersOfRequest(request, "lifecycle"), {
    mode: "lifecycle",
    // The events alone, as the page keeps a lifecycle series: no math, property or currency.
    series: [{ event: "", math: "total", of: "", currency: "" }],
    formulas: [],
    period: "week",
    tz: "UTC",
    compare: false,
    breakdown: "",
    property: "",
    segments: [],
    population: [],
  });
});

test("report trends: in lifecycle mode a math, a formula, a comparison or a breakdown is not the page's", () => {
  const request = {
    series: [
      printed({ event: { ...EVERY_EVENT, eventName: "Order Completed" }, math: "TREND_MATH_SUM", property: "revenue", currencyCode: "EUR" }),
      printed({ anyOf: [{ ...EVERY_EVENT, eventName: "Purchased" }, { ...EVERY_EVENT, eventName: "Renewed" }] }),
    ],
    formulas: [{ expression: "A / B" }],
    compareToPrevious: true,
    period: "RETENTION_PERIOD_MONTH",
    timeZone: "Europe/Paris",
    breakdown: CHANNEL,
    population: { segments: ["segments/vip"] },
  };
  assert.deepEqual(trendsFiltersOfRequest(request, "lifecycle"), {
    mode: "lifecycle",
    series: [
      { event: "Order Completed", math: "total", of: "", currency: "" },
      { event: "Purchased", math: "total", of: "", currency: "" },
    ],
    formulas: [],
    period: "month",
    tz: "Europe/Paris",
    compare: false,
    breakdown: "",
    property: "",
    segments: [],
    population: ["segments/vip"],
  });
  // An unknown mode reads as series mode.
  assert.equal(trendsFiltersOfRequest(request, "nope").mode, "series");
  assert.equal(trendsFiltersOfRequest(request, "nope").breakdown, "channel");
});

test("report trends: the page's own stickiness and lifecycle requests read back as its filters, in their modes", () => {
  const cases = [
    "mode=lifecycle&event=Order+Completed&period=week&from=2026-03-01&to=2026-03-28&tz=UTC",
    "mode=lifecycle&event=Order+Completed&event=%2Fpricing&event=&period=month&from=2026-01-01&to=2026-06-30&tz=Europe%2FParis&in=segments%2Fvip",
    "mode=lifecycle&period=day&from=2026-03-01&to=2026-03-07&tz=UTC",
    "mode=stickiness&event=Order+Completed&event=&period=day&from=2026-03-01&to=2026-03-07&tz=Europe%2FParis&breakdown=channel&in=segments%2Fvip",
    "mode=stickiness&event=Signed+Up&period=week&from=2026-03-01&to=2026-03-28&tz=UTC&breakdown=property&property=properties.plan",
  ];
  for (const query of cases) {
    const { days, ...filters } = trendsFilters(new URLSearchParams(query));
    assert.ok(days);
    const { method, request } = trendsQuery({ ...filters, days });
    assert.equal(method, filters.mode === "lifecycle" ? "QueryActivityLifecycle" : "QueryStickiness", query);
    assert.deepEqual(trendsFiltersOfRequest(request, filters.mode), filters, query);
  }
  // The page's lifecycle request has no breakdown to read back.
  const { days, ...filters } = trendsFilters(new URLSearchParams("mode=lifecycle&event=A&breakdown=channel"));
  assert.equal("breakdown" in lifecycleRequest({ ...filters, days }), false);
  assert.equal(trendsFiltersOfRequest(lifecycleRequest({ ...filters, days }), "lifecycle").breakdown, "");
});

test("report trends: compareToPrevious reads as the page's comparison, never in sentiment mode", () => {
  assert.equal(trendsFiltersOfRequest({ series: [], compareToPrevious: true }).compare, true);
  assert.equal(trendsFiltersOfRequest({ series: [], compareToPrevious: false }).compare, false);
  assert.equal(trendsFiltersOfRequest({ series: [] }).compare, false);
  assert.equal(trendsFiltersOfRequest({ series: [], compareToPrevious: true }, "sentiment").compare, false);
  assert.equal(trendsFiltersOfRequest({ series: [], compareToPrevious: true }, "lifecycle").compare, false);
});

test("report trends: a matcher's text is its page path or its event name", () => {
  assert.equal(matcherText(undefined), "");
  assert.equal(matcherText(EVERY_EVENT), "");
  assert.equal(matcherText({ eventName: "Order Completed" }), "Order Completed");
  assert.equal(
    matcherText({
      eventType: "EVENT_TYPE_PAGE",
      propertyFilters: [{ property: "context.page.path", operator: "FILTER_OPERATOR_EQUALS", values: ["/pricing"] }],
    }),
    "/pricing",
  );
  // A page event of a name is named, not a path.
  assert.equal(
    matcherText({
      eventName: "Viewed",
      eventType: "EVENT_TYPE_PAGE",
      propertyFilters: [{ property: "context.page.path", operator: "FILTER_OPERATOR_EQUALS", values: ["/pricing"] }],
    }),
    "Viewed",
  );
});
