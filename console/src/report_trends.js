// The Trends page's filters (pages/trends/query.js) of a recorded QueryTrends request (or QueryStickiness or
// QueryActivityLifecycle request), so that the report draws a trend section with the page's own drawTrends.
// The request is the report's (cli report/requests.py: the activity's series, the sentiment preset's, or the
// buyers' activity lifecycle), proto3 JSON with lowerCamelCase names and zero values printed. Pure: no browser
// API, so node's unit tests import it (console/test/report_trends.test.mjs).

import { breaksDown, MATHS, measuresSeries, MODES, PERIODS } from "./pages/trends/query.js";

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

// The page's filters of `request` (a QueryTrendsRequest's proto3 JSON; in stickiness mode a
// QueryStickinessRequest's, in lifecycle mode a QueryActivityLifecycleRequest's) in `mode` ("series",
// "sentiment", "stickiness" or "lifecycle", which the request does not say; any other reads as "series"):
// {mode, series: [{event, math, of, currency}], formulas (their expressions; none but in series mode), period,
// tz, compare (compareToPrevious; false but in series mode), breakdown ("" in lifecycle mode, whose RPC has
// none), property, segments, population}. A series per request series; in sentiment mode, as the page keeps
// it, one per event name the preset measures (one with no name for every event with a score); in stickiness
// and lifecycle modes, as the page keeps them, each series' events alone (math total, no property or
// currency: the page does not show a series' currency filter there, and the answer's labels name the series).
// Unset enums read as the contract's defaults (total, week, UTC); the days are not the page's (the request
// holds instants).
export function trendsFiltersOfRequest(request, mode = "series") {
  const kept = MODES.includes(mode) ? mode : "series";
  const measured = measuresSeries(kept);
  const listed = request?.series ?? [];
  let series;
  if (kept === "sentiment") {
    // The preset's series all match the same events (its first, the mean, with no score filter of its own).
    const names = [...new Set(seriesEvents(listed[0] ?? {}).filter(Boolean))];
    series = (names.length ? names : [""]).map((event) => ({ event, math: "total", of: "", currency: "" }));
  } else if (!measured) {
    series = listed.map((one) => ({ event: seriesEvents(one)[0], math: "total", of: "", currency: "" }));
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
  const breakdown = breaksDown(kept) ? (request?.breakdown ?? {}) : {};
  const dimension = {
    BREAKDOWN_DIMENSION_CHANNEL: "channel",
    BREAKDOWN_DIMENSION_PROPERTY: "property",
    BREAKDOWN_DIMENSION_SEGMENT: "segment",
  }[breakdown.dimension] ?? "";
  return {
    mode: kept,
    series,
    formulas: measured ? (request?.formulas ?? []).map((formula) => formula.expression ?? "").filter(Boolean) : [],
    period: keyOf(PERIODS, request?.period, "week"),
    tz: request?.timeZone || "UTC",
    compare: measured && Boolean(request?.compareToPrevious),
    breakdown: dimension,
    property: dimension === "property" ? (breakdown.property ?? "") : "",
    segments: dimension === "segment" ? [...(breakdown.segments ?? [])] : [],
    population: [...(request?.population?.segments ?? [])],
  };
}
