// "Save as segment…" on the Customer value page, the pure part: the CreateSegment request (proto3 JSON) that
// turns one RFM segment of the page's filters into a journeys segment, its default id, display name and
// description, and its condition in words. The ids, limits and where the field violations of a refusal belong
// are shared with the Trends page's lifecycle (../segment_saver.js, re-exported here). No browser API here, so
// node's unit tests import it (console/test/value_segment.test.mjs).
//
// The page counts purchases over fixed UTC days; a segment's CustomerValueCondition counts them over a trailing
// window ending at each evaluation ("now"). The page's N days (both ends included) become a window of N days.

import { enumLabel } from "../../dom.js";
import { clip, MAX_DESCRIPTION, segmentRequest, segmentText, slug } from "../segment_saver.js";

export {
  MAX_DESCRIPTION,
  MAX_DISPLAY_NAME,
  MAX_SEGMENT_ID,
  placeViolations,
  SEGMENT_ID_PATTERN,
  slug,
} from "../segment_saver.js";

const DAY_MS = 86_400_000;
const DAY_SECONDS = 86_400;

// Who an RFM segment's members are, for a display name ("At risk customers (EUR, last 90 days)").
const AUDIENCES = {
  RFM_SEGMENT_CHAMPIONS: "Champions",
  RFM_SEGMENT_LOYAL_CUSTOMERS: "Loyal customers",
  RFM_SEGMENT_POTENTIAL_LOYALISTS: "Potential loyalists",
  RFM_SEGMENT_NEW_CUSTOMERS: "New customers",
  RFM_SEGMENT_PROMISING: "Promising customers",
  RFM_SEGMENT_NEED_ATTENTION: "Customers needing attention",
  RFM_SEGMENT_ABOUT_TO_SLEEP: "Customers about to sleep",
  RFM_SEGMENT_AT_RISK: "At risk customers",
  RFM_SEGMENT_CANNOT_LOSE: "Customers we cannot lose",
  RFM_SEGMENT_HIBERNATING: "Hibernating customers",
  RFM_SEGMENT_LOST: "Lost customers",
  RFM_SEGMENT_NO_PURCHASE: "Persons without a purchase",
};

// An RfmSegment for people, as the page names it: "RFM_SEGMENT_AT_RISK" → "At risk".
function rfmLabel(rfm) {
  return enumLabel(rfm, "RFM_SEGMENT_");
}

// How many days the page's range holds, both ends included: {from: "2026-11-01", to: "2026-11-30"} → 30.
export function rangeDays({ from, to }) {
  return Math.round((Date.parse(`${to}T00:00:00Z`) - Date.parse(`${from}T00:00:00Z`)) / DAY_MS) + 1;
}

// The trailing window of N days as a proto3 JSON Duration: 90 → "7776000s".
export function windowOf(days) {
  return `${days * DAY_SECONDS}s`;
}

// The id offered for an RFM segment of the filters: "rfm-at-risk-eur-90d".
export function defaultSegmentId(filters, rfm) {
  return slug(`rfm ${rfmLabel(rfm)} ${filters.currency} ${rangeDays(filters.days)}d`);
}

// The display name offered: "At risk customers (EUR, last 90 days)".
export function defaultDisplayName(filters, rfm) {
  const days = rangeDays(filters.days);
  const audience = AUDIENCES[rfm] ?? `${rfmLabel(rfm)} customers`;
  return `${audience} (${filters.currency}, last ${days} ${days === 1 ? "day" : "days"})`;
}

// The description offered: what the segment is and where it came from, at most MAX_DESCRIPTION characters.
export function defaultDescription(filters, rfm, names = new Map()) {
  const days = rangeDays(filters.days);
  let text =
    `Saved from the Customer value page: RFM segment ${rfmLabel(rfm)} of purchasers in ${filters.currency}` +
    ` over the trailing ${days} ${days === 1 ? "day" : "days"}`;
  if (filters.events.length) text += `, purchase events: ${filters.events.join(", ")}`;
  if (filters.segments.length) text += `, members of: ${filters.segments.map((s) => segmentText(s, names)).join(", ")}`;
  return clip(text, MAX_DESCRIPTION);
}

// The segment's condition (a PersonCondition, proto3 JSON): the RFM segment in the currency over the trailing
// window, with the page's purchase event names; AND current membership of each of the page's population
// segments when it names any. RFM scores rank a person among all of the tenant's purchasers, whatever the
// population, on the page as in the condition.
export function segmentCondition(filters, rfm) {
  const customerValue = {
    metric: "CUSTOMER_VALUE_METRIC_RFM_SEGMENT",
    currencyCode: filters.currency,
    window: windowOf(rangeDays(filters.days)),
    rfmSegments: [rfm],
  };
  if (filters.events.length) customerValue.purchaseEventNames = [...filters.events];
  const condition = { customerValue };
  if (!filters.segments.length) return condition;
  return {
    group: {
      operator: "LOGICAL_OPERATOR_AND",
      conditions: [condition, ...filters.segments.map((segment) => ({ segmentMembership: { segment } }))],
    },
  };
}

// The CreateSegment request for an RFM segment of the filters, with the id, display name and description
// given (trimmed; an empty id lets the server choose one).
export function createSegmentRequest(filters, rfm, fields = {}) {
  return segmentRequest(segmentCondition(filters, rfm), fields);
}

// The segment's condition in words, one line a part.
export function conditionSummary(filters, rfm, names = new Map()) {
  const days = rangeDays(filters.days);
  const span = `${days} ${days === 1 ? "day" : "days"}`;
  const lines = [
    `Persons whose RFM segment is ${rfmLabel(rfm)}, scored among every purchaser of the tenant.`,
    filters.events.length
      ? `Purchases counted: events named ${filters.events.join(", ")} with revenue in ${filters.currency}.`
      : `Purchases counted: every event with revenue in ${filters.currency}.`,
    `Over the last ${span}, as of each moment: the window moves with time, so persons enter and leave the segment ` +
      `(this page shows the fixed days ${filters.days.from} to ${filters.days.to}).`,
  ];
  if (filters.segments.length) {
    lines.push(`And currently a member of every one of: ${filters.segments.map((s) => segmentText(s, names)).join(", ")}.`);
  }
  return lines;
}
