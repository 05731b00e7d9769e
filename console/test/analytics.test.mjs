// The pure parts of the Retention, Lifecycle and Segments pages: the requests their filters make and the
// times the lifecycle distribution is read at. The pages' numbers themselves are checked end to end against
// the RPCs (tests/console/test_retention.py, test_lifecycle.py, test_segments.py).

import assert from "node:assert/strict";
import { test } from "node:test";

import { MAX_TIMES, distributionTimes, lifecycleFilters, lifecycleRequest } from "../src/pages/lifecycle.js";
import { retentionFilters, retentionRequest } from "../src/pages/retention.js";

const NOW = new Date("2026-12-01T16:00:00Z");

test("retention: the filters' request, whole UTC days with the last included", () => {
  const params = new URLSearchParams(
    "from=2026-11-01&to=2026-11-30&period=day&periods=12&cohort=Signed Up&return=Order Completed&type=unbounded&breakdown=channel",
  );
  assert.deepEqual(retentionRequest(retentionFilters(params, NOW)), {
    period: "RETENTION_PERIOD_DAY",
    periodCount: 12,
    type: "RETENTION_TYPE_UNBOUNDED",
    timeRange: { start: "2026-11-01T00:00:00Z", end: "2026-12-01T00:00:00Z" },
    cohortEvent: { eventName: "Signed Up" },
    returnEvent: { eventName: "Order Completed" },
    breakdown: { dimension: "BREAKDOWN_DIMENSION_CHANNEL", limit: 5 },
  });
});

test("retention: a breakdown by a property needs the property's path", () => {
  const by = (query) => retentionRequest(retentionFilters(new URLSearchParams(query), NOW)).breakdown;
  assert.deepEqual(by("breakdown=property&property=person.country"), {
    dimension: "BREAKDOWN_DIMENSION_PROPERTY",
    property: "person.country",
    limit: 5,
  });
  assert.equal(by("breakdown=property"), undefined);
  assert.equal(by("breakdown=segment"), undefined);
});

test("retention: a breakdown by segment compares one segment's members with everyone else", () => {
  const by = (query) => retentionRequest(retentionFilters(new URLSearchParams(query), NOW)).breakdown;
  assert.deepEqual(by("breakdown=segment&segment=segments/vip"), {
    dimension: "BREAKDOWN_DIMENSION_SEGMENT",
    segments: ["segments/vip"],
  });
  assert.equal(by("breakdown=channel&segment=segments/vip").dimension, "BREAKDOWN_DIMENSION_CHANNEL");
});

test("retention: defaults, and values out of range fall back to them", () => {
  const request = retentionRequest(retentionFilters(new URLSearchParams("period=year&periods=101&type=x"), NOW));
  assert.deepEqual(request, {
    period: "RETENTION_PERIOD_WEEK",
    periodCount: 8,
    type: "RETENTION_TYPE_BOUNDED",
    // The last 8 weeks up to today, today included.
    timeRange: { start: "2026-10-07T00:00:00Z", end: "2026-12-02T00:00:00Z" },
  });
  assert.equal(retentionRequest(retentionFilters(new URLSearchParams("periods=0"), NOW)).periodCount, 8);
  assert.equal(retentionRequest(retentionFilters(new URLSearchParams("periods=2.5"), NOW)).periodCount, 8);
});

test("lifecycle: weekly readings from the start, then the end of the range", () => {
  const filters = lifecycleFilters(new URLSearchParams("from=2026-11-01&to=2026-11-20&interval=week"), NOW);
  assert.deepEqual(lifecycleRequest(filters), {
    distributionTimes: [
      "2026-11-01T00:00:00Z",
      "2026-11-08T00:00:00Z",
      "2026-11-15T00:00:00Z",
      "2026-11-21T00:00:00Z",
    ],
  });
});

test("lifecycle: monthly readings fall on the first of each month", () => {
  const filters = lifecycleFilters(new URLSearchParams("from=2026-01-31&to=2026-04-30&interval=month"), NOW);
  assert.deepEqual(distributionTimes(filters), [
    "2026-01-31T00:00:00Z",
    "2026-02-01T00:00:00Z",
    "2026-03-01T00:00:00Z",
    "2026-04-01T00:00:00Z",
    "2026-05-01T00:00:00Z",
  ]);
});

test("lifecycle: at most GetLifecycleStages' 100 times, the latest kept", () => {
  const filters = lifecycleFilters(new URLSearchParams("from=2026-01-01&to=2026-11-30&interval=day"), NOW);
  const times = distributionTimes(filters);
  assert.equal(times.length, MAX_TIMES);
  assert.equal(times.at(-1), "2026-12-01T00:00:00Z");
  assert.equal(times[0], "2026-08-24T00:00:00Z");
});
