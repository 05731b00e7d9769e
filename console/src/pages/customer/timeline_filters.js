// The Customer timeline's filters: channels, event names, a range of UTC days and the order, as GetTimeline
// takes them. They live in the page's address, so a filtered timeline can be linked to:
//   channel=email (repeated; a Channel's name in lower case), event=Order Completed (repeated),
//   from=YYYY-MM-DD and to=YYYY-MM-DD (UTC days, both included, either may be left out), order=oldest.
// Values the page cannot use (an unknown channel, a malformed day) are dropped, so an old link still opens.

import { CHANNEL_COLOURS } from "../../charts.js";
import { enumLabel, form, h, timeRangeOf, uniqueId } from "../../dom.js";

const DATE_PATTERN = /^\d{4}-\d{2}-\d{2}$/;
const CHANNEL_PREFIX = "CHANNEL_";
// Every channel a filter may name, in the contract's order (CHANNEL_COLOURS lists the enum).
const CHANNELS = Object.keys(CHANNEL_COLOURS).filter((name) => name !== "CHANNEL_UNSPECIFIED");
const PARAM_NAMES = ["channel", "event", "from", "to", "order"];

function channelParam(name) {
  return name.slice(CHANNEL_PREFIX.length).toLowerCase();
}

// The filters named in `params` (URLSearchParams): {channels: [enum names], events, from, to, newestFirst}.
export function timelineFiltersFromParams(params) {
  const channels = [];
  for (const value of params.getAll("channel")) {
    const name = `${CHANNEL_PREFIX}${value.toUpperCase()}`;
    if (CHANNELS.includes(name) && !channels.includes(name)) channels.push(name);
  }
  const events = [];
  for (const value of params.getAll("event")) {
    const name = value.trim();
    if (name && !events.includes(name)) events.push(name);
  }
  const day = (name) => {
    const value = params.get(name) ?? "";
    return DATE_PATTERN.test(value) ? value : "";
  };
  return { channels, events, from: day("from"), to: day("to"), newestFirst: params.get("order") !== "oldest" };
}

// Whether `filters` leave out any event (the order alone does not).
export function narrowsTimeline(filters) {
  return filters.channels.length > 0 || filters.events.length > 0 || Boolean(filters.from || filters.to);
}

// The GetTimeline request fields (proto3 JSON) for `filters`: channels, eventNames, timeRange, order. A day
// range is whole UTC days, `to` included, as everywhere in the console (timeRangeOf).
export function timelineRequestFields(filters) {
  const fields = {
    channels: filters.channels,
    eventNames: filters.events,
    order: filters.newestFirst ? "TIMELINE_ORDER_NEWEST_FIRST" : "TIMELINE_ORDER_OLDEST_FIRST",
  };
  if (filters.from || filters.to) {
    const range = {};
    if (filters.from) range.start = timeRangeOf({ from: filters.from, to: filters.from }).start;
    if (filters.to) range.end = timeRangeOf({ from: filters.to, to: filters.to }).end;
    fields.timeRange = range;
  }
  return fields;
}

// `params` (URLSearchParams) with the timeline's params replaced by those of `filters`; the others kept.
export function withTimelineParams(params, filters) {
  const next = new URLSearchParams(params);
  for (const name of PARAM_NAMES) next.delete(name);
  for (const channel of filters.channels) next.append("channel", channelParam(channel));
  for (const event of filters.events) next.append("event", event);
  if (filters.from) next.set("from", filters.from);
  if (filters.to) next.set("to", filters.to);
  if (!filters.newestFirst) next.set("order", "oldest");
  return next;
}

// Event names typed as "A, B": trimmed, empty ones and repeats dropped.
function eventNames(text) {
  return [...new Set(text.split(",").map((name) => name.trim()).filter(Boolean))];
}

// The filter bar: a checkbox per channel, the event names, From and To days, the order, and Apply (which
// calls onApply(filters)) and Clear (onApply with no filter). The From day may not come after the To day.
export function timelineFilterForm(filters, onApply) {
  const boxes = CHANNELS.map((name) =>
    h("input", {
      type: "checkbox",
      value: name,
      checked: filters.channels.includes(name),
      id: uniqueId("timeline-channel"),
      "data-testid": `timeline-channel-${channelParam(name)}`,
    }),
  );
  const channels = h(
    "fieldset",
    { class: "choice-set", "data-testid": "timeline-channels" },
    h("legend", {}, "Channels (none checked: every channel)"),
    boxes.map((box) =>
      h("div", { class: "field field-checkbox" }, box, h("label", { for: box.id }, enumLabel(box.value, CHANNEL_PREFIX))),
    ),
  );
  const element = form({
    testid: "timeline-filters",
    label: "Timeline filters",
    fields: [
      channels,
      {
        name: "events",
        label: "Event names",
        value: filters.events.join(", "),
        placeholder: "Order Completed, Email Opened",
        help: "Comma-separated; empty: every event",
        testid: "timeline-events",
      },
      { name: "from", label: "From (UTC day)", type: "date", value: filters.from, testid: "timeline-from" },
      { name: "to", label: "To (UTC day, included)", type: "date", value: filters.to, testid: "timeline-to" },
      {
        name: "order",
        label: "Order",
        type: "select",
        value: filters.newestFirst ? "newest" : "oldest",
        testid: "timeline-order",
        options: [
          { value: "newest", label: "Newest first" },
          { value: "oldest", label: "Oldest first" },
        ],
      },
    ],
    onSubmit: (values) =>
      onApply({
        channels: boxes.filter((box) => box.checked).map((box) => box.value),
        events: eventNames(values.events),
        from: values.from,
        to: values.to,
        newestFirst: values.order !== "oldest",
      }),
  });
  const from = element.querySelector('[data-testid="timeline-from"]');
  const to = element.querySelector('[data-testid="timeline-to"]');
  const checkRange = () =>
    from.setCustomValidity(from.value && to.value && from.value > to.value ? "The From day comes after the To day." : "");
  from.addEventListener("input", checkRange);
  to.addEventListener("input", checkRange);
  checkRange();
  element.append(
    h(
      "div",
      { class: "field field-submit" },
      h(
        "button",
        {
          type: "button",
          "data-testid": "timeline-filters-clear",
          onclick: () => onApply({ channels: [], events: [], from: "", to: "", newestFirst: true }),
        },
        "Clear",
      ),
    ),
  );
  return element;
}
