// "Save dormant as segment…" in the Trends page's lifecycle mode, the pure part: what a series of the page's
// QueryActivityLifecycle request offers to save as a journeys segment, and the CreateSegment request (proto3
// JSON) of it. No browser API here, so node's unit tests import it (console/test/trends_segment.test.mjs); the
// panel is ../segment_saver.js's, placed under each series' table by lifecycle_save.js.
//
// The lifecycle counts calendar periods (weeks from Monday, … in the page's time zone); a segment holds the
// persons who satisfy its condition now, over trailing windows that end at each moment. Its rolling version of
// "dormant" for a period length P (an hour; a day; a week, 7 days; a month, 30 days): at least one of the
// series' events in the last 2P AND none in the last P, two EventCountConditions on the series' own
// EventMatcher. A series whose events are not one EventMatcher (several `any_of` matchers, or a currency that
// keeps only revenue in it) offers nothing. "New" (the first matching event ever within the last P) is not
// offered: it needs "no matching event before the window", and an EventCountCondition's window always ends
// now (a count over all history cannot be compared with the window's), so no condition states it exactly.

import { clip, MAX_DESCRIPTION, MAX_DISPLAY_NAME, MAX_SEGMENT_ID, segmentRequest, segmentText, slug } from "../segment_saver.js";

const HOUR = 3600;
const DAY = 86400;

// The lifecycle's periods (RetentionPeriod, unset: weeks) as rolling windows: P in seconds, P in words (a count
// of units), the calendar periods the chart counts instead, an adverb for names and how time passes for them.
export const ROLLING_PERIODS = Object.freeze({
  RETENTION_PERIOD_HOUR: { seconds: HOUR, unit: "hour", count: 1, calendar: "clock hours", adverb: "hourly", passes: "time passes" },
  RETENTION_PERIOD_DAY: { seconds: DAY, unit: "day", count: 1, calendar: "calendar days", adverb: "daily", passes: "time passes" },
  RETENTION_PERIOD_WEEK: { seconds: 7 * DAY, unit: "day", count: 7, calendar: "calendar weeks", adverb: "weekly", passes: "days pass", from: " from Monday" },
  RETENTION_PERIOD_MONTH: { seconds: 30 * DAY, unit: "day", count: 30, calendar: "calendar months", adverb: "monthly", passes: "days pass" },
});

const PAGE_PATH = "context.page.path";

function copy(json) {
  return JSON.parse(JSON.stringify(json));
}

// The rolling period of a lifecycle request (ROLLING_PERIODS'), or null for a period it does not know.
export function rollingPeriod(lifecycle) {
  return ROLLING_PERIODS[lifecycle?.period || "RETENTION_PERIOD_WEEK"] ?? null;
}

// The one EventMatcher (proto3 JSON, a copy) a lifecycle series (TrendSeries) counts: its `event` (every event
// when unset: {}), or its single `any_of` matcher when `event` is unset (which then matches nothing by itself);
// null when it is not one matcher: `event` and `any_of`, several `any_of`, or a `currency_code` (which keeps only
// the events with revenue in that currency, as no EventMatcher can).
export function seriesMatcher(series) {
  if (!series || series.currencyCode) return null;
  const anyOf = series.anyOf ?? [];
  if (anyOf.length > 1 || (anyOf.length === 1 && series.event)) return null;
  return copy(anyOf.length ? anyOf[0] : (series.event ?? {}));
}

// The population's persons as conditions: current membership of each segment, each person filter.
function populationConditions(population) {
  return [
    ...(population?.segments ?? []).map((segment) => ({ segmentMembership: { segment } })),
    ...(population?.personFilters ?? []).map((filter) => ({ personProperty: copy(filter) })),
  ];
}

function eventCount(matcher, comparison, count, seconds) {
  return { eventCount: { event: copy(matcher), comparison, count: String(count), window: `${seconds}s` } };
}

// The rolling "dormant" condition (PersonCondition, proto3 JSON) of series `seriesIndex` of the lifecycle request:
// a group, AND of at least one matching event in the last 2P and exactly none in the last P, and of current
// membership of each population segment (only their persons count in the lifecycle too); null when the series'
// events are not one EventMatcher or the period is unknown.
export function dormantCondition(lifecycle, seriesIndex) {
  const matcher = seriesMatcher(lifecycle?.series?.[seriesIndex]);
  const period = rollingPeriod(lifecycle);
  if (!matcher || !period) return null;
  return {
    group: {
      operator: "LOGICAL_OPERATOR_AND",
      conditions: [
        eventCount(matcher, "COMPARISON_OPERATOR_GREATER_THAN_OR_EQUAL", 1, 2 * period.seconds),
        eventCount(matcher, "COMPARISON_OPERATOR_EQUAL", 0, period.seconds),
        ...populationConditions(lifecycle.population),
      ],
    },
  };
}

// The page path a matcher matches page events by (eventMatcher's "/page/path" matcher), or "".
function pagePath(matcher) {
  const filters = matcher.propertyFilters ?? [];
  const [filter] = filters;
  const only = Object.keys(matcher).every((key) => key === "eventType" || key === "propertyFilters");
  if (!only || matcher.eventType !== "EVENT_TYPE_PAGE" || filters.length !== 1) return "";
  if (filter.property !== PAGE_PATH || filter.operator !== "FILTER_OPERATOR_EQUALS" || filter.values?.length !== 1) return "";
  return typeof filter.values[0] === "string" ? filter.values[0] : "";
}

// What a person did to be active, for sentences ("Performed Order Completed", "Viewed the page /pricing",
// "Performed any event"), and which events count ("events named Order Completed", …).
function matcherWords(matcher, label) {
  const keys = Object.keys(matcher);
  if (keys.length === 0) return { did: "Performed any event", counted: "every event" };
  if (keys.length === 1 && typeof matcher.eventName === "string") {
    return { did: `Performed ${matcher.eventName}`, counted: `events named ${matcher.eventName}` };
  }
  const path = pagePath(matcher);
  if (path) return { did: `Viewed the page ${path}`, counted: `page events whose ${PAGE_PATH} is ${path}` };
  return { did: `Performed an event of ${label}`, counted: `the events of ${label}, as the lifecycle matches them` };
}

// P and 2P in words: "7" and "14 days" (the unit said once), "day" and "2 days", "hour" and "2 hours"; P alone
// in full ("7 days", "day") and as a time ("7 days", "a day", "an hour").
function spans(period) {
  const unit = (count) => `${count} ${period.unit}${count === 1 ? "" : "s"}`;
  const single = period.count === 1;
  return {
    once: single ? period.unit : String(period.count),
    onceFull: single ? period.unit : unit(period.count),
    onceTime: single ? `${period.unit === "hour" ? "an" : "a"} ${period.unit}` : unit(period.count),
    twice: unit(2 * period.count),
  };
}

// A series' label in the lifecycle request ("Order Completed", "/pricing", "All events").
function labelOf(series) {
  return series?.label || "All events";
}

// The id offered: "dormant-order-completed-weekly" (the label cut so that the adverb stays).
export function dormantSegmentId(label, period) {
  const head = slug(`dormant ${label}`, MAX_SEGMENT_ID - period.adverb.length - 1);
  return `${head || "dormant"}-${period.adverb}`;
}

// What series `seriesIndex` of the lifecycle request offers to save as a segment (segment_saver.js's offers):
// its dormant persons, over rolling windows; none when its events are not one EventMatcher. `names`: segment
// name → display name (ListSegments'), for the population in words.
export function lifecycleSegmentOffers(lifecycle, seriesIndex, { names = new Map() } = {}) {
  const condition = dormantCondition(lifecycle, seriesIndex);
  if (!condition) return [];
  const period = rollingPeriod(lifecycle);
  const series = lifecycle.series[seriesIndex];
  const label = labelOf(series);
  const zone = lifecycle.timeZone || "UTC";
  const { did, counted } = matcherWords(seriesMatcher(series), label);
  const { once, onceFull, onceTime, twice } = spans(period);
  const members = (lifecycle.population?.segments ?? []).map((segment) => segmentText(segment, names));
  const filtered = (lifecycle.population?.personFilters ?? []).length > 0;
  let description =
    `${did} in the last ${twice} but not in the last ${once}: dormant, kept current as ${period.passes};` +
    ` the Trends page's lifecycle counts ${period.calendar} instead.`;
  if (members.length) description += ` Only persons currently in every one of: ${members.join(", ")}.`;
  if (filtered) description += " Only persons whose person properties pass the page's filters.";
  const summary = [
    `Persons with at least one matching event in the last ${twice} and none in the last ${onceFull}.`,
    `Events counted: ${counted}.`,
    `Both windows end at each moment: a person enters ${onceTime} after their last matching event and leaves ` +
      `when they perform one again, or ${twice} after it (the chart counts ${period.calendar}${period.from ?? ""} in ${zone} instead).`,
  ];
  if (members.length) summary.push(`And currently a member of every one of: ${members.join(", ")}.`);
  if (filtered) summary.push("And whose person properties pass the page's person filters.");
  return [
    {
      status: "dormant",
      text: "Save dormant as segment…",
      ariaLabel: `Save dormant as segment: ${label}`,
      data: { "data-series": String(seriesIndex), "data-status": "dormant" },
      title: `Save the dormant persons of ${label} as a segment`,
      intro: "A segment is a living audience that flows and decisioning can target: this one holds the persons dormant now, and is kept current as time passes.",
      note: `Rolling, not calendar: its windows are the last ${twice} and the last ${onceFull} as of each moment, while this page's lifecycle counts ${period.calendar}${period.from ?? ""} in ${zone}, so its members differ from the chart's dormant persons.`,
      summary,
      segmentId: dormantSegmentId(label, period),
      displayName: clip(`Dormant: ${label} (${period.adverb})`, MAX_DISPLAY_NAME),
      description: clip(description, MAX_DESCRIPTION),
      condition,
      request: (fields) => segmentRequest(copy(condition), fields),
    },
  ];
}

// The CreateSegment request (proto3 JSON) saving the dormant persons of series `seriesIndex` of the lifecycle
// request, with the id, display name and description given (the offer's defaults when not); null when the
// series offers nothing.
export function lifecycleSegmentRequest(lifecycle, seriesIndex, fields = {}) {
  const [offer] = lifecycleSegmentOffers(lifecycle, seriesIndex);
  if (!offer) return null;
  const { segmentId = offer.segmentId, displayName = offer.displayName, description = offer.description } = fields;
  return offer.request({ segmentId, displayName, description });
}
