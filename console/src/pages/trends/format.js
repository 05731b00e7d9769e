// The helpers the drawings of a Trends answer share (trends/draw.js, sentiment_draw.js, stickiness_draw.js,
// lifecycle_draw.js): a measure's value, a result's breakdown value as a key and for people, a period's label in
// its time zone, the answer's results by series, a number with a minus sign, and the marks of a period still
// running, of the whole range's row and of no value. Pure, and tested by console/test/trends.test.mjs.

import { formatNumber } from "../../dom.js";

export const EMPTY = "—";
// The sign of a number below zero, as the page writes it (a change that falls, dormant persons): a minus sign.
export const MINUS = "\u2212";
export const RUNNING_MARK = " *";
export const TOTAL_ROW = "total";

// A measure's value from the answer: a number, or null when unset (a property math with nothing to measure).
export function measure(value) {
  return value === null || value === undefined ? null : Number(value);
}

// A number with a minus sign below zero: "−12", "0", "1,234"; "—" for none.
export function formatSigned(value) {
  if (value === null || value === undefined || !Number.isFinite(Number(value))) return EMPTY;
  const number = Number(value);
  return number < 0 ? `${MINUS}${formatNumber(-number)}` : formatNumber(Math.abs(number));
}

// A result's breakdown value as a key for data attributes: "" without breakdown, "@other", "@missing", else
// the value itself (`web`, a property's value, `segments/{id}`).
export function resultKey(result) {
  const value = result.breakdownValue ?? {};
  if (value.other) return "@other";
  if (value.missing) return "@missing";
  return value.value ?? "";
}

// A result's breakdown value for people ("" without breakdown). `segmentNames` (a Map of segment names to
// display names) names a breakdown by segment.
export function breakdownName(result, segmentNames = null) {
  const value = result.breakdownValue ?? {};
  if (value.other) return "Other values";
  if (value.missing) return segmentNames ? "In none of the chosen segments" : "Not set";
  if (!value.value) return "";
  return segmentNames?.get(value.value) ?? value.value;
}

// The day a period begins on in `zone`: "2026-11-30", "2026-11" for a month, "2026-11-30 14:00" for an hour
// (with the zone's offset, "2026-10-25 02:00 GMT+1", so the hour a clock runs twice reads as two hours).
export function periodLabel(periodStart, period, zone) {
  const at = new Date(periodStart);
  const day = new Intl.DateTimeFormat("en-CA", { timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit" }).format(at);
  if (period === "month") return day.slice(0, 7);
  if (period !== "hour") return day;
  const parts = new Intl.DateTimeFormat("en-GB", { timeZone: zone, hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZoneName: "short" }).formatToParts(at);
  const part = (type) => parts.find((p) => p.type === type)?.value ?? "";
  return `${day} ${part("hour")}:${part("minute")} ${part("timeZoneName")}`;
}

// The answer's results grouped by series index, in series order: [{index, label, results}] (a series with
// no result under a breakdown has an empty list).
export function resultsBySeries(response, count) {
  const groups = Array.from({ length: count }, (_, index) => ({ index, label: "", results: [] }));
  for (const result of response?.results ?? []) {
    const group = groups[result.seriesIndex ?? 0];
    if (!group) continue;
    group.label = group.label || result.label;
    group.results.push(result);
  }
  return groups;
}
