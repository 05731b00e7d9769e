// The console's pure helpers (formats, durations, time ranges), run by `node --test` from
// tests/console/test_kit.py. What they print is what the end-to-end tests read back from the tables.

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  daysFromParams,
  enumLabel,
  formatDate,
  formatDuration,
  formatNumber,
  formatPercent,
  formatTime,
  pageHash,
  parseDuration,
  timeRangeOf,
} from "../src/dom.js";
import { CHANNEL_COLOURS, PALETTE, escapeHtml } from "../src/charts.js";
import { readFileSync } from "node:fs";

test("numbers: int64 strings and doubles, grouped the same on every machine", () => {
  assert.equal(formatNumber("1234567"), "1,234,567");
  assert.equal(formatNumber(0), "0");
  assert.equal(formatNumber("0"), "0");
  assert.equal(formatNumber(1234.5678), "1,234.57");
  assert.equal(formatNumber(-3), "-3");
  assert.equal(formatNumber(null), "—");
  assert.equal(formatNumber(""), "—");
  assert.equal(formatNumber("NaN"), "—");
});

test("ratios as percentages with one decimal", () => {
  assert.equal(formatPercent(0.125), "12.5%");
  assert.equal(formatPercent(1), "100.0%");
  assert.equal(formatPercent(0), "0.0%");
  assert.equal(formatPercent(undefined), "—");
});

test("durations from seconds or proto3 JSON Duration strings", () => {
  assert.equal(parseDuration("3600s"), 3600);
  assert.equal(parseDuration("1.500s"), 1.5);
  assert.equal(parseDuration("-2s"), -2);
  assert.equal(parseDuration("soon"), null);
  assert.equal(formatDuration("0s"), "0s");
  assert.equal(formatDuration(7.25), "7.3s");
  assert.equal(formatDuration(60), "1m");
  assert.equal(formatDuration(306), "5m 6s");
  assert.equal(formatDuration("11040s"), "3h 4m");
  assert.equal(formatDuration(86400 + 7200 + 59), "1d 2h");
  assert.equal(formatDuration(3 * 86400), "3d");
  assert.equal(formatDuration(null), "—");
});

test("times in UTC whatever the machine's zone", () => {
  assert.equal(formatTime("2026-12-01T16:11:44.123Z"), "2026-12-01 16:11:44 UTC");
  assert.equal(formatTime("2026-12-01T18:11:44+02:00"), "2026-12-01 16:11:44 UTC");
  assert.equal(formatTime(""), "—");
  assert.equal(formatTime("not a time"), "—");
  assert.equal(formatDate("2026-12-01T23:59:59Z"), "2026-12-01");
});

test("enum names for people", () => {
  assert.equal(enumLabel("CHANNEL_CALL_CENTER", "CHANNEL_"), "Call center");
  assert.equal(enumLabel("LIFECYCLE_STAGE_ACTIVE"), "Lifecycle stage active");
  assert.equal(enumLabel(""), "—");
});

test("a time range of inclusive UTC days ends at the midnight after the last day", () => {
  assert.deepEqual(timeRangeOf({ from: "2026-11-01", to: "2026-11-30" }), {
    start: "2026-11-01T00:00:00Z",
    end: "2026-12-01T00:00:00Z",
  });
  assert.deepEqual(timeRangeOf({ from: "2026-12-31", to: "2026-12-31" }), {
    start: "2026-12-31T00:00:00Z",
    end: "2027-01-01T00:00:00Z",
  });
});

test("days from a page's params: from/to, else the last N days up to today", () => {
  const now = new Date("2026-12-01T16:00:00Z");
  assert.deepEqual(daysFromParams(new URLSearchParams("from=2026-11-01&to=2026-11-30"), { now }), {
    from: "2026-11-01",
    to: "2026-11-30",
  });
  assert.deepEqual(daysFromParams(new URLSearchParams("days=7"), { now }), { from: "2026-11-25", to: "2026-12-01" });
  assert.deepEqual(daysFromParams(new URLSearchParams(""), { now, defaultDays: 30 }), {
    from: "2026-11-02",
    to: "2026-12-01",
  });
  // Reversed or malformed days fall back to the default window.
  assert.deepEqual(daysFromParams(new URLSearchParams("from=2026-11-30&to=2026-11-01&days=1"), { now }), {
    from: "2026-12-01",
    to: "2026-12-01",
  });
  assert.deepEqual(daysFromParams(new URLSearchParams("from=yesterday&to=2026-11-01"), { now, defaultDays: 2 }), {
    from: "2026-11-30",
    to: "2026-12-01",
  });
});

test("every Channel of event.proto has its own colour", () => {
  const proto = readFileSync(new URL("../../protos/wayline/event/v1/event.proto", import.meta.url), "utf8");
  const enumBody = /enum Channel \{([^}]*)\}/.exec(proto)[1];
  const names = [...enumBody.matchAll(/^\s*(CHANNEL_[A-Z_]+)\s*=/gm)].map((match) => match[1]);
  assert.ok(names.length >= 14);
  assert.deepEqual(Object.keys(CHANNEL_COLOURS).sort(), [...names].sort());
  const colours = Object.values(CHANNEL_COLOURS);
  assert.equal(new Set(colours).size, colours.length);
  for (const colour of [...colours, ...PALETTE]) assert.match(colour, /^#[0-9A-F]{6}$/);
});

test("escapeHtml leaves no markup", () => {
  assert.equal(escapeHtml(`<img src=x onerror="a('1')">&`), "&lt;img src=x onerror=&quot;a(&#39;1&#39;)&quot;&gt;&amp;");
});

test("page hashes survive the round trip through URLSearchParams", () => {
  const hash = pageHash("customer", { identifier: "email:ann+1@x.com", person: null, empty: "" });
  assert.equal(hash, "#/customer?identifier=email%3Aann%2B1%40x.com");
  assert.equal(new URLSearchParams(hash.split("?")[1]).get("identifier"), "email:ann+1@x.com");
  assert.equal(pageHash("paths"), "#/paths");
  assert.equal(pageHash("paths", new URLSearchParams("start=a&start=b")), "#/paths?start=a&start=b");
});
