// The Trends page's filters (pages/trends/query.js) of a recorded QueryTrends request, so that the report
// draws a trend section with the page's own drawTrends. The request is the report's (cli report/requests.py:
// the activity's series, or the sentiment preset's), proto3 JSON with lowerCamelCase names and zero values
// printed. Pure: no browser API, so node's unit tests import it (console/test/report_trends.test.mjs).

import { MATHS, PERIODS } from "./pages/trends/query.js";

// A key of `map` whose `value` is `value` (a proto enum name), else `fallback`.
function keyOf(map, value, fallback) {
  return Object.keys(map).find((key) => map[key].value === value) ?? fallback;
}

// A matcher's text as the page's event field holds it: the page path of a page-path matcher (as
// pages/paths/event_names.js's eventMatcher makes it), else the event name ("" for every event).
export function matcherText(matcher) {
  if (!matcher) return "";
  const filters = matcher.propertyFilters ?? [];
  const path = filters.find((filter) => filter.property === "context.page.path" && filter.operator === "FILTER_OPERATOR_EQUALS");
  if (matcher.eventType === "EVENT_TYPE_PAGE" && path && !matcher.eventName) return String(path.values?.[0] ?? "");
  return matcher.eventName ?? "";
}

// The events a series matches, as texts: its `event` and each of its `anyOf` ("" for every event).
function seriesEvents(series) {
  const anyOf = series.anyOf ?? [];
  if (anyOf.length === 0) return [matcherText(series.event)];
  return [...(series.event ? [matcherText(series.event)] : []), ...anyOf.map(matcherText)];
}

// The page's filters of `request` (a QueryTrendsRequest's proto3 JSON) in `mode` ("series" or "sentiment",
// which the request does not say): {mode, series: [{event, math, of, currency}], formulas (their expressions;
// none in sentiment mode), period, tz, compare (compareToPrevious; false in sentiment mode), breakdown,
// property, segments, population}. A series per request series; in sentiment mode, as the page keeps it,
// one per event name the preset measures (one with no name for every event with a score). Unset enums read
// as the contract's defaults (total, week, UTC); the days are not the page's (the request holds instants).
export function trendsFiltersOfRequest(request, mode = "series") {
  const sentiment = mode === "sentiment";
  const listed = request?.series ?? [];
  let series;
  if (sentiment) {
    // The preset's series all match the same events (its first, the mean, with no score filter of its own).
    const names = [...new Set(seriesEvents(listed[0] ?? {}).filter(Boolean))];
    series = (names.length ? names : [""]).map((event) => ({ event, math: "total", of: "", currency: "" }));
  } else {
    series = listed.map((one) => {
      const math = keyOf(MATHS, one.math, "total");
      const of = MATHS[math].ofProperty ? (one.property ?? "") : "";
      return {
        event: seriesEvents(one)[0],
        math,
        of,
        currency: of === "revenue" ? (one.currencyCode ?? "") : "",
      };
    });
  }
  const breakdown = request?.breakdown ?? {};
  const dimension = {
    BREAKDOWN_DIMENSION_CHANNEL: "channel",
    BREAKDOWN_DIMENSION_PROPERTY: "property",
    BREAKDOWN_DIMENSION_SEGMENT: "segment",
  }[breakdown.dimension] ?? "";
  return {
    mode: sentiment ? "sentiment" : "series",
    series,
    formulas: sentiment ? [] : (request?.formulas ?? []).map((formula) => formula.expression ?? "").filter(Boolean),
    period: keyOf(PERIODS, request?.period, "week"),
    tz: request?.timeZone || "UTC",
    compare: !sentiment && Boolean(request?.compareToPrevious),
    breakdown: dimension,
    property: dimension === "property" ? (breakdown.property ?? "") : "",
    segments: dimension === "segment" ? [...(breakdown.segments ?? [])] : [],
    population: [...(request?.population?.segments ?? [])],
  };
}
