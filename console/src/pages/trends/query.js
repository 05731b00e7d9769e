// The Trends page's query: its filters from the address and back, and the QueryTrends request they make
// (the series, or the sentiment preset's five series; the range as whole days in the chosen time zone), or in
// stickiness mode the QueryStickiness request and in lifecycle mode the QueryActivityLifecycle one (the series'
// events only), and the ListActivityLifecyclePersons request for the persons behind one of its numbers.
// Pure: no browser API, so node's unit tests import it (console/test/trends.test.mjs).
//
// Address: event, math, of, currency (repeated, one of each per series, in series order: the event name (empty:
// every event; a /page/path matches page events), the math (a MATHS key; default total), the property the
// math measures (revenue, sentiment_score or a properties.<key> path) and the currency of revenue), formula
// (repeated, in order: an expression over the series' letters, `B / A * 100`; none in sentiment or stickiness
// mode), mode (`sentiment`: the events' sentiment instead of the series; `stickiness`: the persons of each
// series' events by how many periods they performed them in; `lifecycle`: each series' persons per period, new,
// returning, resurrecting and dormant; the event names alone kept in both), period (hour | day | week | month;
// default week), from, to (inclusive days in the time zone; or days=N; default the last 8 weeks), tz (an IANA
// time zone; default UTC), compare (`1`: also measure the previous range, as long and ending where the range
// starts; absent when off, and in sentiment, stickiness and lifecycle modes), breakdown ("" | channel |
// property | segment; none in lifecycle mode), property (the breakdown's path), segment (repeated:
// `segments/{id}`, for a breakdown by segment) and in (repeated: `segments/{id}`, the population: only the
// events of persons in every one of them).

import { daysFromParams } from "../../dom.js";
import { eventMatcher } from "../paths/event_names.js";

// The maths in the contract's order: the address's name, the TrendMath, how the page names it, whether it
// measures a property, and whether its values are counts (whole numbers).
export const MATHS = Object.freeze({
  total: { value: "TREND_MATH_TOTAL", label: "Total events", count: true },
  persons: { value: "TREND_MATH_UNIQUE_PERSONS", label: "Unique persons", count: true },
  "per-person": { value: "TREND_MATH_EVENTS_PER_PERSON", label: "Events per person" },
  sum: { value: "TREND_MATH_SUM", label: "Sum", ofProperty: true },
  average: { value: "TREND_MATH_AVERAGE", label: "Average", ofProperty: true },
  min: { value: "TREND_MATH_MINIMUM", label: "Minimum", ofProperty: true },
  max: { value: "TREND_MATH_MAXIMUM", label: "Maximum", ofProperty: true },
  median: { value: "TREND_MATH_MEDIAN", label: "Median", ofProperty: true },
  p90: { value: "TREND_MATH_P90", label: "90th percentile", ofProperty: true },
  p99: { value: "TREND_MATH_P99", label: "99th percentile", ofProperty: true },
  // Per day only: the persons active that day or in the 6 (29) days before it.
  wau: { value: "TREND_MATH_WEEKLY_ACTIVE_PERSONS", label: "Weekly active persons (by day)", count: true },
  mau: { value: "TREND_MATH_MONTHLY_ACTIVE_PERSONS", label: "Monthly active persons (by day)", count: true },
});

// The periods (RetentionPeriod; hours are QueryTrends' alone) and how a table's first column names them.
export const PERIODS = Object.freeze({
  hour: { value: "RETENTION_PERIOD_HOUR", label: "Hour", unit: "Hour" },
  day: { value: "RETENTION_PERIOD_DAY", label: "Day", unit: "Day" },
  week: { value: "RETENTION_PERIOD_WEEK", label: "Week (from Monday)", unit: "Week of" },
  month: { value: "RETENTION_PERIOD_MONTH", label: "Month", unit: "Month" },
});

export const MODES = Object.freeze(["series", "sentiment", "stickiness", "lifecycle"]);
export const BREAKDOWNS = Object.freeze(["", "channel", "property", "segment"]);
export const DEFAULT_DAYS = 56; // the last 8 weeks, today included
export const DEFAULT_TIME_ZONE = "UTC";
// QueryTrends takes 1 to 10 series, and 1 to 20 segments in a breakdown.
export const MAX_SERIES = 10;
export const MAX_BREAKDOWN_SEGMENTS = 20;
// A population names at most 20 segments (Population.segments): only their members' events are measured.
export const MAX_POPULATION_SEGMENTS = 20;
// QueryTrends takes at most 5 formulas (lines computed from the series).
export const MAX_FORMULAS = 5;
export const BREAKDOWN_LIMIT = 5;
// VADER's neutral band, as ingest's enrichment reads scores and `wayline trends --sentiment` counts them.
export const NEUTRAL_BAND = 0.05;
export const SCORE = "sentiment_score";

const DAY_MS = 86400000;

function choice(value, allowed, fallback) {
  return allowed.includes(value) ? value : fallback;
}

// One series as the page keeps it: {event, math, of, currency}, `of` only for a property math and `currency`
// (upper case) only for revenue.
export function trendSeries(event, math, of, currency) {
  const kept = MATHS[math] ? math : "total";
  const property = MATHS[kept].ofProperty ? String(of ?? "").trim() : "";
  return {
    event: String(event ?? "").trim(),
    math: kept,
    of: property,
    currency: property === "revenue" ? String(currency ?? "").trim().toUpperCase() : "",
  };
}

// The letter a formula names a series by: A for the first (index 0), B for the second, …
export function seriesLetter(index) {
  return String.fromCharCode("A".charCodeAt(0) + index);
}

// Whether the filters' mode measures the series themselves (their maths, formulas over them and the previous
// range): series mode; the sentiment preset and stickiness measure nothing of the series but their events.
export function measuresSeries(mode) {
  return mode === "series";
}

// Whether the filters' mode breaks its results down (by channel, property or segment): every mode but the
// lifecycle, whose RPC has no breakdown.
export function breaksDown(mode) {
  return mode !== "lifecycle";
}

// The page's filters from the hash's query, with their defaults: {mode, series: [{event, math, of,
// currency}] (at least one; in stickiness and lifecycle modes the events alone, every math total), formulas
// (expressions, none but in series mode), period, days: {from, to}, tz, compare (a boolean; false but in series
// mode), breakdown ("" in lifecycle mode), property, segments, population}.
export function trendsFilters(params, now = new Date()) {
  const events = params.getAll("event");
  const maths = params.getAll("math");
  const ofs = params.getAll("of");
  const currencies = params.getAll("currency");
  const mode = choice(params.get("mode"), MODES, "series");
  const count = Math.min(MAX_SERIES, Math.max(1, events.length, maths.length, ofs.length, currencies.length));
  let rows = Array.from({ length: count }, (_, index) => trendSeries(events[index], maths[index], ofs[index], currencies[index]));
  if (mode === "sentiment") {
    // The preset measures the events named (every event with a score when none is): only the names count.
    const names = [...new Set(rows.map((row) => row.event).filter(Boolean))];
    rows = (names.length ? names : [""]).map((name) => trendSeries(name));
  } else if (mode === "stickiness" || mode === "lifecycle") {
    // Stickiness counts the periods a series' events were performed in, the lifecycle the persons active in
    // each: neither measures anything of its own.
    rows = rows.map((row) => trendSeries(row.event));
  }
  const measured = measuresSeries(mode);
  const breakdown = breaksDown(mode) ? choice(params.get("breakdown") ?? "", BREAKDOWNS, "") : "";
  return {
    mode,
    series: rows,
    // The sentiment preset's series are not the page's: letters would name series the user never chose; a
    // stickiness answer has no periods to compute a formula over.
    formulas: !measured ? [] : params.getAll("formula").map((f) => f.trim()).filter(Boolean).slice(0, MAX_FORMULAS),
    period: choice(params.get("period"), Object.keys(PERIODS), "week"),
    days: daysFromParams(params, { defaultDays: DEFAULT_DAYS, now }),
    tz: (params.get("tz") ?? "").trim() || DEFAULT_TIME_ZONE,
    // The sentiment preset's shares and mean score cross zero and are compared in points, not as a relative
    // change, and QueryStickiness has no previous range: the page compares the series and formulas only.
    compare: measured && params.get("compare") === "1",
    breakdown,
    property: breakdown === "property" ? (params.get("property") ?? "").trim() : "",
    segments: breakdown === "segment" ? [...new Set(params.getAll("segment").map((s) => s.trim()).filter(Boolean))] : [],
    population: [...new Set(params.getAll("in").map((s) => s.trim()).filter(Boolean))].slice(0, MAX_POPULATION_SEGMENTS),
  };
}

// The hash query of the filters, as the form writes it: the mode (unless series), per series its event, math,
// property and currency (left out where every series has the default; the events alone in sentiment,
// stickiness and lifecycle modes), the formulas, then the period, the days, the time zone, the comparison with
// the previous range (only when on) and the breakdown (none in lifecycle mode).
export function trendsParams(filters) {
  const query = new URLSearchParams();
  const mode = MODES.includes(filters.mode) ? filters.mode : "series";
  if (mode !== "series") query.set("mode", mode);
  const sentiment = mode === "sentiment";
  const measured = measuresSeries(mode);
  const rows = filters.series;
  const plain = rows.length === 1 && !rows[0].event && (!measured || rows[0].math === "total");
  const withMath = measured && rows.some((row) => row.math !== "total");
  const withOf = measured && rows.some((row) => row.of);
  const withCurrency = measured && rows.some((row) => row.currency);
  for (const row of rows) {
    if (sentiment ? row.event : !plain) query.append("event", row.event);
    if (withMath) query.append("math", row.math);
    if (withOf) query.append("of", row.of);
    if (withCurrency) query.append("currency", row.currency);
  }
  if (measured) for (const formula of filters.formulas ?? []) query.append("formula", formula);
  query.set("period", filters.period);
  query.set("from", filters.days.from);
  query.set("to", filters.days.to);
  query.set("tz", filters.tz);
  if (measured && filters.compare) query.set("compare", "1");
  const breakdown = breaksDown(mode) ? filters.breakdown : "";
  if (breakdown) query.set("breakdown", breakdown);
  if (breakdown === "property") query.set("property", filters.property);
  if (breakdown === "segment") for (const segment of filters.segments) query.append("segment", segment);
  for (const segment of filters.population ?? []) query.append("in", segment);
  return query;
}

// Whether `zone` is a time zone this browser knows (an unknown one is still sent: QueryTrends says why not).
export function isTimeZone(zone) {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

// How far `zone`'s wall clock is ahead of UTC at the instant `ms`, in milliseconds.
function zoneOffset(ms, zone) {
  const parts = new Intl.DateTimeFormat("en-US", {
    timeZone: zone,
    hourCycle: "h23",
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  }).formatToParts(new Date(ms));
  const part = (type) => Number(parts.find((p) => p.type === type).value);
  const wall = Date.UTC(part("year"), part("month") - 1, part("day"), part("hour"), part("minute"), part("second"));
  return wall - Math.floor(ms / 1000) * 1000;
}

// The instant (ms) of local midnight beginning `day` ("YYYY-MM-DD") in `zone`.
export function zoneMidnight(day, zone) {
  const wall = Date.parse(`${day}T00:00:00Z`);
  const guess = wall - zoneOffset(wall, zone);
  // The offset at the instant itself, which differs from the first guess's across a change of clocks.
  return wall - zoneOffset(guess, zone);
}

function rfc3339(ms) {
  return new Date(ms).toISOString().replace(".000Z", "Z");
}

// The TimeRange of inclusive days in a time zone: from local midnight of the first day to local midnight after
// the last (UTC days when the zone is unknown: the request then fails on the zone, which the page shows).
export function zoneRange({ from, to }, zone) {
  const known = isTimeZone(zone) ? zone : "UTC";
  const next = new Date(Date.parse(`${to}T00:00:00Z`) + DAY_MS).toISOString().slice(0, 10);
  return { start: rfc3339(zoneMidnight(from, known)), end: rfc3339(zoneMidnight(next, known)) };
}

// An EventMatcher for a series' event text (every event when empty), with `filters` added to its own.
function matcherOf(text, filters = []) {
  const matcher = eventMatcher(text) ?? {};
  const all = [...(matcher.propertyFilters ?? []), ...filters];
  return all.length ? { ...matcher, propertyFilters: all } : matcher;
}

function scoreFilter(operator, bound) {
  const filter = { property: SCORE, operator: `FILTER_OPERATOR_${operator}` };
  if (bound !== undefined) filter.values = [bound];
  return filter;
}

// One series of the sentiment preset: the events (of these names, or any) whose score passes every filter.
function band(events, label, math, filters) {
  const one = { label, math };
  if (events.length === 1) one.event = matcherOf(events[0], filters);
  else if (events.length > 1) one.anyOf = events.map((event) => matcherOf(event, filters));
  else one.event = matcherOf("", filters);
  return one;
}

// The sentiment preset (as `wayline trends --sentiment`): the mean score of the events named (every event
// when none is), then how many carry a score, and how many of those are negative (≤ -0.05), neutral (between)
// and positive (≥ 0.05). Series 0 to 4, in that order.
export function sentimentSeries(events) {
  const mean = band(events, "Mean sentiment", "TREND_MATH_AVERAGE", []);
  mean.property = SCORE;
  const count = "TREND_MATH_TOTAL";
  return [
    mean,
    band(events, "Scored", count, [scoreFilter("IS_SET")]),
    band(events, "Negative", count, [scoreFilter("LESS_THAN_OR_EQUAL", -NEUTRAL_BAND)]),
    band(events, "Neutral", count, [scoreFilter("GREATER_THAN", -NEUTRAL_BAND), scoreFilter("LESS_THAN", NEUTRAL_BAND)]),
    band(events, "Positive", count, [scoreFilter("GREATER_THAN_OR_EQUAL", NEUTRAL_BAND)]),
  ];
}

// A series' label in the answer: its event text, or "All events".
export function seriesLabel(row) {
  return row.event || "All events";
}

// The TrendSeries (proto3 JSON) of one of the page's series. A property math without a property is sent as
// it is: QueryTrends names the field, and the page shows it.
function seriesRequest(row) {
  const math = MATHS[row.math];
  const one = { label: seriesLabel(row), math: math.value };
  const matcher = eventMatcher(row.event);
  if (matcher) one.event = matcher;
  if (math.ofProperty) one.property = row.of;
  if (row.currency) one.currencyCode = row.currency;
  return one;
}

// The range of a request as whole days in the time zone, its periods and the zone (QueryTrends',
// QueryStickiness' and QueryActivityLifecycle's alike).
function rangeOf(filters) {
  return {
    timeRange: zoneRange(filters.days, filters.tz),
    period: PERIODS[filters.period].value,
    timeZone: filters.tz,
  };
}

// The population of the filters (only the events of persons in every chosen segment), added to `request`.
function withPopulation(request, filters) {
  if (filters.population?.length) request.population = { segments: [...filters.population] };
  return request;
}

// The breakdown and the population of the filters, added to `request` (QueryTrends' or QueryStickiness').
function withGroups(request, filters) {
  if (filters.breakdown === "channel") {
    request.breakdown = { dimension: "BREAKDOWN_DIMENSION_CHANNEL", limit: BREAKDOWN_LIMIT };
  } else if (filters.breakdown === "property" && filters.property) {
    request.breakdown = { dimension: "BREAKDOWN_DIMENSION_PROPERTY", property: filters.property, limit: BREAKDOWN_LIMIT };
  } else if (filters.breakdown === "segment" && filters.segments.length) {
    // Every chosen segment keeps its result: the limit does not fold segments (ADR 84).
    request.breakdown = { dimension: "BREAKDOWN_DIMENSION_SEGMENT", segments: [...filters.segments] };
  }
  return withPopulation(request, filters);
}

// The QueryTrends request (proto3 JSON) of the filters.
export function trendsRequest(filters) {
  const events = filters.series.map((row) => row.event).filter(Boolean);
  const request = {
    series: filters.mode === "sentiment" ? sentimentSeries(events) : filters.series.map(seriesRequest),
    ...rangeOf(filters),
  };
  // Unlabelled: QueryTrends labels a formula's results with its expression.
  if (filters.mode !== "sentiment" && filters.formulas?.length) request.formulas = filters.formulas.map((expression) => ({ expression }));
  // The previous range comes back in previousResults and previousFormulaResults (drawn dashed, beside each line).
  if (filters.mode !== "sentiment" && filters.compare) request.compareToPrevious = true;
  return withGroups(request, filters);
}

// The series of the filters as their events alone (proto3 JSON TrendSeries): per series its label and its
// events (every event when it names none), never a math or a property (QueryStickiness and
// QueryActivityLifecycle refuse them).
function eventSeries(filters) {
  return filters.series.map((row) => {
    const one = { label: seriesLabel(row) };
    const matcher = eventMatcher(row.event);
    if (matcher) one.event = matcher;
    return one;
  });
}

// The QueryStickiness request (proto3 JSON) of the filters: the series' events alone; the range, period,
// zone, breakdown and population as QueryTrends'. No formulas and no previous range: the RPC has neither.
export function stickinessRequest(filters) {
  return withGroups({ series: eventSeries(filters), ...rangeOf(filters) }, filters);
}

// The QueryActivityLifecycle request (proto3 JSON) of the filters: the series' events alone; the range,
// period, zone and population as QueryTrends'. No breakdown, formulas or previous range: the RPC has none.
export function lifecycleRequest(filters) {
  return withPopulation({ series: eventSeries(filters), ...rangeOf(filters) }, filters);
}

// The ActivityStatus (proto3 JSON enum name) of each status of a lifecycle table (lifecycle_draw.js's
// LIFECYCLE_STATUSES keys).
export const ACTIVITY_STATUSES = Object.freeze({
  new: "ACTIVITY_STATUS_NEW",
  returning: "ACTIVITY_STATUS_RETURNING",
  resurrecting: "ACTIVITY_STATUS_RESURRECTING",
  dormant: "ACTIVITY_STATUS_DORMANT",
});
// The person ids the page asks ListActivityLifecyclePersons for at a time ("More" asks the next page).
export const LIFECYCLE_PERSONS_PAGE_SIZE = 100;

// The ListActivityLifecyclePersons request (proto3 JSON) for the persons behind one number of a lifecycle:
// `lifecycle` is the QueryActivityLifecycle request the page asked (lifecycleRequest's, sent as it is: its
// range ends where its last day does, so the periods do not move while paging), `seriesIndex` the series',
// `periodStart` the point's own (as the answer gave it), `status` a key of ACTIVITY_STATUSES (new, returning,
// resurrecting, dormant), `pageToken` the previous page's next_page_token (none for the first page).
export function lifecyclePersonsRequest(lifecycle, { seriesIndex, periodStart, status, pageToken = "" }) {
  const activity = Object.hasOwn(ACTIVITY_STATUSES, status ?? "") ? ACTIVITY_STATUSES[status] : null;
  if (!activity) throw new RangeError(`not a lifecycle status: ${status}`);
  const request = { lifecycle, seriesIndex, periodStart, status: activity, pageSize: LIFECYCLE_PERSONS_PAGE_SIZE };
  if (pageToken) request.pageToken = pageToken;
  return request;
}

// The RPC the filters' mode asks and its request: {method, request}.
export function trendsQuery(filters) {
  if (filters.mode === "stickiness") return { method: "QueryStickiness", request: stickinessRequest(filters) };
  if (filters.mode === "lifecycle") return { method: "QueryActivityLifecycle", request: lifecycleRequest(filters) };
  return { method: "QueryTrends", request: trendsRequest(filters) };
}

// What a series measures, for headings: "Total events", "Sum of revenue (EUR)", "Median of properties.items".
export function measureLabel(row) {
  const math = MATHS[row.math] ?? MATHS.total;
  if (!math.ofProperty) return math.label;
  return `${math.label} of ${row.of || "?"}${row.currency ? ` (${row.currency})` : ""}`;
}

// A field violation's path for people: "series[0].property" → "Series 1, property", "formulas[0].expression"
// → "Formula 1, expression", "time_zone" → "Time zone", "breakdown.property" → "Breakdown, property".
export function violationField(field) {
  const words = (text) => text.replaceAll("_", " ").split(".").filter(Boolean).join(", ");
  // A series or a formula is named by its place on the form, counted from 1.
  const item = /^(series|formulas)\[(\d+)\]\.?(.*)$/.exec(field ?? "");
  if (item) return `${item[1] === "series" ? "Series" : "Formula"} ${Number(item[2]) + 1}${item[3] ? `, ${words(item[3])}` : ""}`;
  const text = words(String(field ?? ""));
  return text ? text.charAt(0).toUpperCase() + text.slice(1) : "The request";
}
