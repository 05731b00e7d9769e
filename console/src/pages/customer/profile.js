// The customer's profile: who they are (person id, first and last seen, lifecycle stage, identifiers by
// type) and what they are worth (historic value and RFM from GetCustomerValue).

import { dataTable, enumLabel, formatNumber, formatTime, h, pageHash } from "../../dom.js";
import { moneyText } from "./timeline.js";

// The identifier as the page's address spells it: "email:ann@example.com".
export function identifierText(identifier) {
  return `${identifier.type}:${identifier.value}`;
}

// "Profile" summary rows: one fact per row, so a test reads each by its data-row.
export function drawSummary(root, profile, lifecycle) {
  const stage = lifecycle?.stage ?? "";
  const rows = [
    { key: "person_id", label: "Person id", shown: profile.personId },
    { key: "first_seen", label: "First seen", shown: formatTime(profile.firstSeenTime) },
    { key: "last_seen", label: "Last seen", shown: formatTime(profile.lastSeenTime) },
    {
      key: "lifecycle_stage",
      label: "Lifecycle stage",
      shown: stage && stage !== "LIFECYCLE_STAGE_UNSPECIFIED" ? enumLabel(stage, "LIFECYCLE_STAGE_") : "Unknown",
      raw: stage,
    },
    // The counts: a profile lists its first 1,000 identifiers and merged profiles only.
    { key: "identifiers", label: "Identifiers", shown: formatNumber(Math.max(profile.identifierCount ?? 0, profile.identifiers.length)) },
    {
      key: "merged_profiles",
      label: "Profiles merged in",
      shown: formatNumber(Math.max(profile.mergedPersonCount ?? 0, profile.mergedPersonIds.length)),
    },
  ];
  root.append(
    dataTable({
      caption: "Profile",
      testid: "customer-summary",
      rowKey: (row) => row.key,
      columns: [
        { key: "label", label: "Fact" },
        { key: "shown", label: "Value", format: (shown, row) => h("span", { "data-raw": row.raw ?? null }, shown) },
      ],
      rows,
    }),
  );
}

// The identifiers the profile holds, by type priority (as identity orders them). `actionFor(identifier)`
// gives the cell of the last column (the unmerge button) or null.
export function drawIdentifiers(root, profile, { actionFor = null } = {}) {
  const columns = [
    { key: "type", label: "Type", value: (row) => row.identifier.type },
    { key: "value", label: "Value", value: (row) => row.identifier.value },
    { key: "first_seen", label: "First seen", value: (row) => row.firstSeenTime, format: formatTime },
    { key: "last_seen", label: "Last seen", value: (row) => row.lastSeenTime, format: formatTime },
    {
      key: "origin",
      label: "First recorded under",
      value: (row) => row.originPersonId,
      format: (origin) => (origin === profile.personId ? "this profile" : personLink(origin)),
    },
  ];
  if (actionFor) columns.push({ key: "action", label: "Action", value: (row) => row, format: (row) => actionFor(row) });
  root.append(
    dataTable({
      caption: "Identifiers",
      testid: "customer-identifiers",
      rowKey: (row) => identifierText(row.identifier),
      columns,
      rows: profile.identifiers,
    }),
  );
}

// A link that opens another customer's page.
export function personLink(personId) {
  if (!personId) return "—";
  return h("a", { href: pageHash("customer", { person: personId }), "data-testid": "customer-link", "data-person": personId }, personId);
}

const VALUE_ROWS = [
  ["historic_value", "Historic value (CLV)", (v) => moneyText(v.historicValue)],
  ["purchase_count", "Purchases", (v) => formatNumber(v.purchaseCount)],
  ["average_order_value", "Average order value", (v) => moneyText(v.averageOrderValue)],
  ["first_purchase", "First purchase", (v) => formatTime(v.firstPurchaseTime)],
  ["last_purchase", "Last purchase", (v) => formatTime(v.lastPurchaseTime)],
  ["recency_days", "Days since last purchase", (v) => formatNumber(v.recencyDays)],
  ["recency_score", "Recency score (R)", (v) => formatNumber(v.recencyScore)],
  ["frequency_score", "Frequency score (F)", (v) => formatNumber(v.frequencyScore)],
  ["monetary_score", "Monetary score (M)", (v) => formatNumber(v.monetaryScore)],
  ["rfm_segment", "RFM segment", (v) => enumLabel(v.rfmSegment, "RFM_SEGMENT_")],
];

// One CustomerValue (GetCustomerValue's entry for the person) in `currency`.
export function drawValue(root, value, currency) {
  root.append(
    dataTable({
      caption: `Customer value and RFM, in ${currency}`,
      testid: "customer-value",
      rowKey: (row) => row[0],
      columns: [
        { key: "label", label: "Measure", value: (row) => row[1] },
        { key: "shown", label: "Value", value: (row) => row[2](value) },
      ],
      rows: VALUE_ROWS,
    }),
  );
}
