// "Save as segment…" on the Customer value page, the pure part: the CreateSegment request (proto3 JSON) that
// turns one RFM segment of the page's filters into a journeys segment, its default id, display name and
// description, its condition in words, and where the field violations of a refusal belong. No browser API
// here, so node's unit tests import it (console/test/value_segment.test.mjs).
//
// The page counts purchases over fixed UTC days; a segment's CustomerValueCondition counts them over a trailing
// window ending at each evaluation ("now"). The page's N days (both ends included) become a window of N days.

import { enumLabel } from "../../dom.js";

const DAY_MS = 86_400_000;
const DAY_SECONDS = 86_400;
// CreateSegmentRequest.segment_id: lower-kebab-case, 3 to 63 characters, starting with a letter.
export const MAX_SEGMENT_ID = 63;
const MIN_SEGMENT_ID = 3;
export const SEGMENT_ID_PATTERN = /^[a-z][a-z0-9-]{1,61}[a-z0-9]$/;
// Segment.display_name and Segment.description: at most 200 and 2,000 characters.
export const MAX_DISPLAY_NAME = 200;
export const MAX_DESCRIPTION = 2000;

// Letters that Unicode's decomposition leaves whole, spelled in ASCII for an id.
const SPELLED = { ß: "ss", æ: "ae", œ: "oe", ø: "o", ł: "l", đ: "d", ð: "d", þ: "th", ı: "i" };

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

// Text as a segment id: lower case, accents dropped, every run of other characters one hyphen, starting with a
// letter ("s-" before a leading digit), at most `max` characters and no hyphen at either end. "" when fewer
// than 3 characters are left (an empty id lets the server choose one).
export function slug(text, max = MAX_SEGMENT_ID) {
  let id = String(text ?? "")
    .toLowerCase()
    .replace(/[ßæœøłđðþı]/g, (letter) => SPELLED[letter])
    .normalize("NFKD")
    .replace(/\p{M}+/gu, "")
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "");
  if (/^[0-9]/.test(id)) id = `s-${id}`;
  id = id.slice(0, max).replace(/-+$/, "");
  return id.length >= MIN_SEGMENT_ID ? id : "";
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

// A population segment for people: "Product adders (segments/adders)", or its name alone when its display
// name is not known (`names`: a Map of segment name → display name, from ListSegments).
function segmentText(name, names) {
  const shown = names?.get(name);
  return shown && shown !== name ? `${shown} (${name})` : name;
}

function clip(text, max) {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
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
export function createSegmentRequest(filters, rfm, { segmentId = "", displayName = "", description = "" } = {}) {
  return {
    segmentId: segmentId.trim(),
    segment: {
      displayName: displayName.trim(),
      description: description.trim(),
      condition: segmentCondition(filters, rfm),
    },
  };
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

// The form's fields that a violation's path names (CreateSegmentRequest's paths, snake case as the server
// sends them; camel case accepted too).
const FIELD_OF_PATH = {
  segment_id: "segmentId",
  segmentId: "segmentId",
  "segment.display_name": "displayName",
  "segment.displayName": "displayName",
  "segment.description": "description",
};

// Field violations ([{field, description}], api.js fieldViolations) by where they are shown: beside the id,
// display name or description input, or `other` (the condition's: in a list under the error).
export function placeViolations(violations) {
  const placed = { segmentId: [], displayName: [], description: [], other: [] };
  for (const violation of violations ?? []) {
    placed[FIELD_OF_PATH[violation.field] ?? "other"].push(violation);
  }
  return placed;
}
