// The Customer timeline's filters (src/pages/customer/timeline_filters.js): read from a page's address, written
// back to it, and turned into GetTimeline's fields. Run by `node --test` from tests/console/test_kit.py.

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  narrowsTimeline,
  timelineFiltersFromParams,
  timelineRequestFields,
  withTimelineParams,
} from "../src/pages/customer/timeline_filters.js";

const NONE = { channels: [], events: [], from: "", to: "", newestFirst: true };

test("no timeline params: every event, newest first", () => {
  const filters = timelineFiltersFromParams(new URLSearchParams("person=p-1&events=20"));
  assert.deepEqual(filters, NONE);
  assert.equal(narrowsTimeline(filters), false);
  assert.deepEqual(timelineRequestFields(filters), {
    channels: [],
    eventNames: [],
    order: "TIMELINE_ORDER_NEWEST_FIRST",
  });
});

test("channels, event names, days and the order are read from the address", () => {
  const params = new URLSearchParams(
    "person=p-1&channel=email&channel=mobile_app&channel=email&event=Order%20Completed&event=%20Email%20Opened%20" +
      "&from=2026-11-02&to=2026-11-03&order=oldest",
  );
  const filters = timelineFiltersFromParams(params);
  assert.deepEqual(filters, {
    channels: ["CHANNEL_EMAIL", "CHANNEL_MOBILE_APP"],
    events: ["Order Completed", "Email Opened"],
    from: "2026-11-02",
    to: "2026-11-03",
    newestFirst: false,
  });
  assert.equal(narrowsTimeline(filters), true);
  // Whole UTC days, the To day included.
  assert.deepEqual(timelineRequestFields(filters), {
    channels: ["CHANNEL_EMAIL", "CHANNEL_MOBILE_APP"],
    eventNames: ["Order Completed", "Email Opened"],
    order: "TIMELINE_ORDER_OLDEST_FIRST",
    timeRange: { start: "2026-11-02T00:00:00Z", end: "2026-11-04T00:00:00Z" },
  });
});

test("either end of the range may be left out", () => {
  const since = timelineFiltersFromParams(new URLSearchParams("from=2026-11-02"));
  assert.deepEqual(timelineRequestFields(since).timeRange, { start: "2026-11-02T00:00:00Z" });
  const until = timelineFiltersFromParams(new URLSearchParams("to=2026-02-28"));
  assert.deepEqual(timelineRequestFields(until).timeRange, { end: "2026-03-01T00:00:00Z" });
});

test("what the page cannot use is dropped, so an old or edited link still opens", () => {
  const filters = timelineFiltersFromParams(
    new URLSearchParams("channel=fax&channel=unspecified&channel=WEB&event=&event=%20&from=2026-13&to=yesterday&order=x"),
  );
  assert.deepEqual(filters, { ...NONE, channels: ["CHANNEL_WEB"] });
});

test("the address keeps the page's other params and round-trips the filters", () => {
  const filters = {
    channels: ["CHANNEL_CALL_CENTER", "CHANNEL_IN_STORE"],
    events: ["Call Completed", "A, B"],
    from: "2026-01-31",
    to: "",
    newestFirst: false,
  };
  const before = new URLSearchParams("identifier=email%3Aann%2B1%40example.com&channel=web&events=5&order=oldest");
  const after = withTimelineParams(before, filters);
  assert.equal(after.get("identifier"), "email:ann+1@example.com");
  assert.equal(after.get("events"), "5");
  assert.deepEqual(after.getAll("channel"), ["call_center", "in_store"]);
  assert.deepEqual(timelineFiltersFromParams(after), filters);
  assert.equal(before.getAll("channel").length, 1, "the params given are not changed");
  const cleared = withTimelineParams(after, NONE);
  assert.deepEqual([...cleared.keys()].sort(), ["events", "identifier"]);
});
