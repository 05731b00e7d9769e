// The customer's cross-channel timeline: one lane per channel on a time axis (ECharts scatter), and the
// events in a table (time, channel, event, type, key properties), newest first unless the filters ask for the
// oldest first (timeline_filters.js). Pages of GetTimeline are appended by "Load more"; the chart is redrawn
// over every event loaded.

import { chart, channelColour, escapeHtml } from "../../charts.js";
import { dataTable, enumLabel, formatTime, h } from "../../dom.js";

const MAX_PROPERTIES_SHOWN = 3;

// The event's name as people read it: track events by name, page and screen events by their name or kind.
export function eventLabel(event) {
  if (event.name) return event.name;
  return enumLabel(event.type, "EVENT_TYPE_");
}

function scalarText(value) {
  if (value === null || value === undefined) return "null";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

// A few of the event's properties and its revenue, as "key: value" text.
export function keyProperties(event) {
  const parts = [];
  if (event.revenue && event.revenue.currencyCode) {
    parts.push(`revenue: ${moneyText(event.revenue)}`);
  }
  const entries = Object.entries(event.properties ?? {}).filter(([name]) => name !== "trace");
  for (const [name, value] of entries.slice(0, MAX_PROPERTIES_SHOWN)) parts.push(`${name}: ${scalarText(value)}`);
  if (entries.length > MAX_PROPERTIES_SHOWN) parts.push(`+${entries.length - MAX_PROPERTIES_SHOWN} more`);
  return parts.join(" · ");
}

// A proto3 JSON Money ({currencyCode, units: "12", nanos: 500000000}) as "12.50 EUR".
export function moneyText(money) {
  if (!money || !money.currencyCode) return "—";
  const units = BigInt(money.units ?? "0");
  const nanos = Number(money.nanos ?? 0);
  const negative = units < 0n || nanos < 0;
  const whole = units < 0n ? -units : units;
  const cents = Math.round(Math.abs(nanos) / 1e7);
  const carry = cents === 100 ? 1n : 0n;
  const fraction = String(cents === 100 ? 0 : cents).padStart(2, "0");
  return `${negative ? "-" : ""}${(whole + carry).toLocaleString("en-US")}.${fraction} ${money.currencyCode}`;
}

function timelineOption(events) {
  const lanes = [...new Set(events.map((e) => e.channel))].sort();
  const data = events.map((event) => ({
    value: [event.timestamp, enumLabel(event.channel, "CHANNEL_"), eventLabel(event)],
    itemStyle: { color: channelColour(event.channel) },
  }));
  return {
    grid: { left: 110, right: 24, top: 16, bottom: 40 },
    xAxis: { type: "time", name: "Time (UTC)", nameLocation: "middle", nameGap: 28 },
    yAxis: { type: "category", data: lanes.map((lane) => enumLabel(lane, "CHANNEL_")), name: "" },
    tooltip: {
      trigger: "item",
      formatter: (item) =>
        `${escapeHtml(item.value[2])}<br>${escapeHtml(item.value[1])} · ${escapeHtml(formatTime(item.value[0]))}`,
    },
    series: [{ type: "scatter", name: "Events", symbolSize: 11, data }],
  };
}

function timelineTable(events, { newestFirst, filtered, onOpen }) {
  const details = onOpen
    ? [
        {
          key: "details",
          label: "Details",
          value: (event) => event.eventId,
          format: (eventId, event) =>
            h(
              "button",
              {
                type: "button",
                class: "link-button",
                "data-testid": `timeline-event-open-${eventId}`,
                "aria-label": `Show every field of event ${eventId}`,
                onclick: () => onOpen(event),
              },
              "Show",
            ),
        },
      ]
    : [];
  return dataTable({
    caption: newestFirst ? "Events, newest first" : "Events, oldest first",
    testid: "customer-timeline",
    rowKey: (event) => event.eventId,
    empty: filtered ? "No event of this customer matches the filters." : "No events for this customer.",
    columns: [
      { key: "timestamp", label: "Time (UTC)", format: formatTime },
      { key: "channel", label: "Channel", format: (value) => enumLabel(value, "CHANNEL_") },
      { key: "name", label: "Event", value: eventLabel },
      { key: "type", label: "Type", format: (value) => enumLabel(value, "EVENT_TYPE_") },
      { key: "properties", label: "Key properties", value: keyProperties },
      ...details,
    ],
    rows: events,
  });
}

// Draws the timeline of the events loaded so far into `root` (cleared first). `hasMore` and `onMore` add the
// "Load more" button; `newestFirst` is the events' order, `filtered` whether filters left some events out;
// `onOpen(event)` adds a button per event that opens it in full (event_details.js).
export function drawTimeline(
  root,
  events,
  { hasMore = false, onMore = null, newestFirst = true, filtered = false, onOpen = null } = {},
) {
  root.replaceChildren();
  const lanes = new Set(events.map((e) => e.channel)).size;
  root.append(
    h(
      "p",
      { "data-testid": "customer-timeline-count", "data-count": String(events.length) },
      `${events.length} event${events.length === 1 ? "" : "s"}${filtered ? " matching the filters" : ""} `,
      `on ${lanes} channel${lanes === 1 ? "" : "s"}`,
      hasMore ? ` (${newestFirst ? "older" : "newer"} events not loaded yet)` : "",
    ),
  );
  if (events.length > 0) {
    const container = h("div", { "data-testid": "customer-timeline-chart" });
    root.append(container);
    chart(container, timelineOption(events), {
      label: `Timeline of ${events.length} events, one lane per channel`,
      height: Math.max(160, 60 + lanes * 36),
    });
  }
  root.append(timelineTable(events, { newestFirst, filtered, onOpen }));
  if (hasMore && onMore) {
    root.append(
      h(
        "button",
        { type: "button", "data-testid": "customer-timeline-more", onclick: onMore },
        newestFirst ? "Load older events" : "Load newer events",
      ),
    );
  }
}
