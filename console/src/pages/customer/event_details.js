// One event of the timeline in full, as GetTimeline returned it (proto3 JSON): what and when it was (its
// timestamp, the sender's original one, when it was sent and received), whom it names, its revenue and text,
// every property, context and integrations value, and the event's JSON itself. Everything is put on the page
// as text (h() and dataTable never parse markup), whatever the sender wrote into the event.

import { dataTable, enumLabel, formatTime, h } from "../../dom.js";
import { eventLabel, moneyText } from "./timeline.js";

// A property's value as text: strings as they are, anything else as its JSON.
function valueText(value) {
  return typeof value === "string" ? value : JSON.stringify(value);
}

// The event's facts, one per row (data-row is the fact's key); facts the event does not have are left out.
function facts(event) {
  const rows = [
    { key: "event_id", label: "Event id", shown: event.eventId },
    { key: "type", label: "Type", shown: enumLabel(event.type, "EVENT_TYPE_") },
    { key: "name", label: "Event", shown: eventLabel(event) },
    { key: "channel", label: "Channel", shown: enumLabel(event.channel, "CHANNEL_") },
    { key: "timestamp", label: "Time (UTC)", shown: formatTime(event.timestamp) },
  ];
  const optional = [
    ["original_timestamp", "Time the sender gave (before clock-skew correction)", event.originalTimestamp && formatTime(event.originalTimestamp)],
    ["sent_at", "Sent (UTC)", event.sentAt && formatTime(event.sentAt)],
    ["received_at", "Received (UTC)", event.receivedAt && formatTime(event.receivedAt)],
    ["person_id", "Person", event.personId],
    ["group_id", "Group", event.groupId],
    ["revenue", "Revenue", event.revenue?.currencyCode && moneyText(event.revenue)],
    ["text", "Text", event.text],
    [
      "previous_identifier",
      "Previous identifier (alias)",
      event.previousIdentifier?.type && `${event.previousIdentifier.type}:${event.previousIdentifier.value}`,
    ],
    ["backfill", "Imported history", event.backfill ? "yes" : ""],
    [
      "plan_violations",
      "Tracking plan findings",
      (event.planViolations ?? []).map((v) => `${v.field}: ${v.description}`).join("; "),
    ],
  ];
  for (const [key, label, shown] of optional) if (shown) rows.push({ key, label, shown });
  return rows;
}

// A Struct (properties, context, integrations) as rows of its top-level keys, in the sender's order.
function structRows(struct) {
  return Object.entries(struct ?? {}).map(([key, value]) => ({ key, value: valueText(value) }));
}

function structTable(struct, { caption, testid, empty }) {
  return dataTable({
    caption,
    testid,
    rowKey: (row) => row.key,
    empty,
    columns: [
      { key: "key", label: "Key" },
      { key: "value", label: "Value" },
    ],
    rows: structRows(struct),
  });
}

// Draws `event` into `root` (cleared first) under a heading that takes the focus, so that a keyboard user
// lands on what they opened.
export function drawEventDetails(root, event) {
  const heading = h("h3", { tabindex: "-1" }, `Event ${event.eventId}`);
  root.replaceChildren(
    heading,
    dataTable({
      caption: "What, when and who",
      testid: "timeline-event-facts",
      rowKey: (row) => row.key,
      columns: [
        { key: "label", label: "Fact" },
        { key: "shown", label: "Value" },
      ],
      rows: facts(event),
    }),
    dataTable({
      caption: "Identifiers the event carried",
      testid: "timeline-event-identifiers",
      rowKey: (row) => `${row.type}:${row.value}`,
      empty: "The event carried no identifier.",
      columns: [
        { key: "type", label: "Type" },
        { key: "value", label: "Value" },
      ],
      rows: event.identifiers ?? [],
    }),
    structTable(event.properties, {
      caption: "Properties",
      testid: "timeline-event-properties",
      empty: "No property.",
    }),
    structTable(event.context, { caption: "Context", testid: "timeline-event-context", empty: "No context." }),
    structTable(event.integrations, {
      caption: "Integrations",
      testid: "timeline-event-integrations",
      empty: "No integrations given.",
    }),
    h(
      "details",
      {},
      h("summary", {}, "The event as the API returned it (JSON)"),
      h("pre", { class: "event-json", "data-testid": "timeline-event-json" }, JSON.stringify(event, null, 2)),
    ),
  );
  heading.focus();
}
