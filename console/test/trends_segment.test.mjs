// The Trends page's lifecycle "Save dormant as segment…", its pure part (pages/trends/lifecycle_segment.js): the
// CreateSegment request (proto3 JSON) built from a series of the page's own QueryActivityLifecycle request, the
// rolling windows of each period, the defaults and words offered, and which series offer nothing. Saving it and
// reading it back is checked end to end (tests/console/test_trends.py).

import assert from "node:assert/strict";
import { test } from "node:test";

import { SEGMENT_ID_PATTERN } from "../src/pages/segment_saver.js";
import {
  dormantCondition,
  dormantSegmentId,
  lifecycleSegmentOffers,
  lifecycleSegmentRequest,
  ROLLING_PERIODS,
  seriesMatcher,
} from "../src/pages/trends/lifecycle_segment.js";
import { lifecycleRequest, trendsFilters } from "../src/pages/trends/query.js";

const NOW = new Date("2026-12-01T16:00:00Z");
const DAY = 86400;
const AT_LEAST = "COMPARISON_OPERATOR_GREATER_THAN_OR_EQUAL";
const EQUAL = "COMPARISON_OPERATOR_EQUAL";

// The page's lifecycle request for an address's query, as trends.js asks it.
function lifecycleOf(query) {
  return lifecycleRequest(trendsFilters(new URLSearchParams(`mode=lifecycle&${query}`), NOW));
}

// The rolling dormant condition of a matcher over P seconds, as the server stores it.
function dormant(event, seconds, ...more) {
  return {
    group: {
      operator: "LOGICAL_OPERATOR_AND",
      conditions: [
        { eventCount: { event, comparison: AT_LEAST, count: "1", window: `${2 * seconds}s` } },
        { eventCount: { event, comparison: EQUAL, count: "0", window: `${seconds}s` } },
        ...more,
      ],
    },
  };
}

test("trends segment: a named event's dormant persons, week by week, as exact proto3 JSON", () => {
  const lifecycle = lifecycleOf("event=Order Completed&period=week&from=2026-11-02&to=2026-11-29");
  const request = lifecycleSegmentRequest(lifecycle, 0, {
    segmentId: " dormant-buyers ",
    displayName: " Dormant buyers ",
    description: "Win them back ",
  });
  assert.deepEqual(request, {
    segmentId: "dormant-buyers",
    segment: {
      displayName: "Dormant buyers",
      description: "Win them back",
      condition: {
        group: {
          operator: "LOGICAL_OPERATOR_AND",
          conditions: [
            { eventCount: { event: { eventName: "Order Completed" }, comparison: AT_LEAST, count: "1", window: "1209600s" } },
            { eventCount: { event: { eventName: "Order Completed" }, comparison: EQUAL, count: "0", window: "604800s" } },
          ],
        },
      },
    },
  });
  // The defaults: an id, a name and the description in words, honest about the rolling window.
  assert.deepEqual(lifecycleSegmentRequest(lifecycle, 0), {
    segmentId: "dormant-order-completed-weekly",
    segment: {
      displayName: "Dormant: Order Completed (weekly)",
      description:
        "Performed Order Completed in the last 14 days but not in the last 7: dormant, kept current as days pass;" +
        " the Trends page's lifecycle counts calendar weeks instead.",
      condition: dormant({ eventName: "Order Completed" }, 7 * DAY),
    },
  });
  // The matcher is the lifecycle request's own, copied: the request is not changed by the segment's.
  assert.deepEqual(request.segment.condition.group.conditions[0].eventCount.event, lifecycle.series[0].event);
  assert.notEqual(request.segment.condition.group.conditions[0].eventCount.event, lifecycle.series[0].event);
  // An empty id lets the server choose one.
  assert.equal(lifecycleSegmentRequest(lifecycle, 0, { segmentId: "" }).segmentId, "");
});

test("trends segment: a page path counts the page's views, and every event counts every event", () => {
  const lifecycle = lifecycleOf("event=/pricing&event=&event=Signed Up&period=day&from=2026-11-01&to=2026-11-03&tz=Europe/Paris");
  const page = {
    eventType: "EVENT_TYPE_PAGE",
    propertyFilters: [{ property: "context.page.path", operator: "FILTER_OPERATOR_EQUALS", values: ["/pricing"] }],
  };
  assert.deepEqual(lifecycleSegmentRequest(lifecycle, 0), {
    segmentId: "dormant-pricing-daily",
    segment: {
      displayName: "Dormant: /pricing (daily)",
      description:
        "Viewed the page /pricing in the last 2 days but not in the last day: dormant, kept current as time passes;" +
        " the Trends page's lifecycle counts calendar days instead.",
      condition: {
        group: {
          operator: "LOGICAL_OPERATOR_AND",
          conditions: [
            { eventCount: { event: page, comparison: AT_LEAST, count: "1", window: "172800s" } },
            { eventCount: { event: page, comparison: EQUAL, count: "0", window: "86400s" } },
          ],
        },
      },
    },
  });
  // Every event: an empty matcher (the lifecycle request's series has none).
  assert.equal("event" in lifecycle.series[1], false);
  assert.deepEqual(lifecycleSegmentRequest(lifecycle, 1), {
    segmentId: "dormant-all-events-daily",
    segment: {
      displayName: "Dormant: All events (daily)",
      description:
        "Performed any event in the last 2 days but not in the last day: dormant, kept current as time passes;" +
        " the Trends page's lifecycle counts calendar days instead.",
      condition: {
        group: {
          operator: "LOGICAL_OPERATOR_AND",
          conditions: [
            { eventCount: { event: {}, comparison: AT_LEAST, count: "1", window: "172800s" } },
            { eventCount: { event: {}, comparison: EQUAL, count: "0", window: "86400s" } },
          ],
        },
      },
    },
  });
  assert.deepEqual(dormantCondition(lifecycle, 2), dormant({ eventName: "Signed Up" }, DAY));
  // No series there: nothing.
  assert.equal(dormantCondition(lifecycle, 3), null);
  assert.equal(lifecycleSegmentRequest(lifecycle, 3), null);
});

test("trends segment: the windows are 2P and P of the page's period: an hour, a day, 7 days, 30 days", () => {
  const windows = (period) => {
    const condition = dormantCondition(lifecycleOf(`event=Order Completed&period=${period}`), 0);
    return condition.group.conditions.map((c) => [c.eventCount.comparison, c.eventCount.count, c.eventCount.window]);
  };
  assert.deepEqual(windows("hour"), [[AT_LEAST, "1", "7200s"], [EQUAL, "0", "3600s"]]);
  assert.deepEqual(windows("day"), [[AT_LEAST, "1", "172800s"], [EQUAL, "0", "86400s"]]);
  assert.deepEqual(windows("week"), [[AT_LEAST, "1", "1209600s"], [EQUAL, "0", "604800s"]]);
  assert.deepEqual(windows("month"), [[AT_LEAST, "1", "5184000s"], [EQUAL, "0", "2592000s"]]);
  // The page's default period is the week, and so is an unset one (RetentionPeriod's default).
  assert.deepEqual(windows(""), windows("week"));
  const { period: _period, ...unset } = lifecycleOf("event=Order Completed");
  assert.equal(dormantCondition(unset, 0).group.conditions[1].eventCount.window, "604800s");
  // A period the console does not know: nothing offered.
  assert.equal(dormantCondition({ ...unset, period: "RETENTION_PERIOD_YEAR" }, 0), null);
  assert.deepEqual(Object.keys(ROLLING_PERIODS), ["RETENTION_PERIOD_HOUR", "RETENTION_PERIOD_DAY", "RETENTION_PERIOD_WEEK", "RETENTION_PERIOD_MONTH"]);
  // The descriptions name the rolling windows and the calendar periods the chart counts instead.
  const description = (period) => lifecycleSegmentRequest(lifecycleOf(`event=Order Completed&period=${period}`), 0).segment.description;
  assert.match(description("month"), /^Performed Order Completed in the last 60 days but not in the last 30: dormant, kept current as days pass; the Trends page's lifecycle counts calendar months instead\.$/);
  assert.match(description("hour"), /in the last 2 hours but not in the last hour: .* counts clock hours instead\.$/);
});

test("trends segment: the population's segments are ANDed, as the lifecycle counts only their persons", () => {
  const lifecycle = lifecycleOf("event=Order Completed&period=week&in=segments/vip&in=segments/eu");
  const names = new Map([["segments/vip", "VIP customers"]]);
  const [offer] = lifecycleSegmentOffers(lifecycle, 0, { names });
  assert.deepEqual(
    offer.condition,
    dormant(
      { eventName: "Order Completed" },
      7 * DAY,
      { segmentMembership: { segment: "segments/vip" } },
      { segmentMembership: { segment: "segments/eu" } },
    ),
  );
  assert.match(offer.description, /instead\. Only persons currently in every one of: VIP customers \(segments\/vip\), segments\/eu\.$/);
  assert.match(offer.summary.at(-1), /every one of: VIP customers \(segments\/vip\), segments\/eu/);
  // A population's person filters, as an API client might send them, become person-property conditions.
  const filter = { property: "person.plan", operator: "FILTER_OPERATOR_EQUALS", values: ["pro"] };
  const filtered = dormantCondition({ ...lifecycle, population: { personFilters: [filter] } }, 0);
  assert.deepEqual(filtered.group.conditions.slice(2), [{ personProperty: filter }]);
});

test("trends segment: a series whose events are not one EventMatcher gets no action", () => {
  const base = lifecycleOf("event=Order Completed&period=week");
  const named = (eventName) => ({ eventName });
  const withSeries = (series) => ({ ...base, series: [series] });
  const none = [
    // Several alternatives: their union is no single matcher.
    { label: "Purchases", anyOf: [named("Order Completed"), named("Purchased")] },
    // A matcher and an alternative.
    { label: "Purchases", event: named("Order Completed"), anyOf: [named("Purchased")] },
    // A currency keeps only the events with revenue in it, which no EventMatcher says.
    { label: "Order Completed", event: named("Order Completed"), currencyCode: "EUR" },
  ];
  for (const series of none) {
    assert.equal(seriesMatcher(series), null, JSON.stringify(series));
    assert.deepEqual(lifecycleSegmentOffers(withSeries(series), 0), [], JSON.stringify(series));
    assert.equal(lifecycleSegmentRequest(withSeries(series), 0), null);
  }
  // One alternative alone (the unset matcher then matches nothing by itself) is that one matcher.
  assert.deepEqual(seriesMatcher({ label: "Purchased", anyOf: [named("Purchased")] }), named("Purchased"));
  assert.deepEqual(seriesMatcher({ label: "All events" }), {});
  // Each of the page's own series (an event name, a page path, every event) offers its dormant persons only:
  // "new" (a first matching event ever within the last P) needs a count before the window, which no condition has.
  const page = lifecycleOf("event=Order Completed&event=/pricing&event=&period=day");
  for (const index of [0, 1, 2]) {
    assert.deepEqual(lifecycleSegmentOffers(page, index).map((offer) => offer.status), ["dormant"], String(index));
  }
});

test("trends segment: the offer's button, panel and defaults", () => {
  const lifecycle = lifecycleOf("event=Order Completed&event=/pricing&period=week&tz=Europe/Paris");
  const [offer] = lifecycleSegmentOffers(lifecycle, 1);
  assert.equal(offer.text, "Save dormant as segment…");
  assert.equal(offer.ariaLabel, "Save dormant as segment: /pricing");
  assert.deepEqual(offer.data, { "data-series": "1", "data-status": "dormant" });
  assert.equal(offer.title, "Save the dormant persons of /pricing as a segment");
  // The note says the windows roll, unlike the chart's calendar weeks in the page's zone.
  assert.equal(
    offer.note,
    "Rolling, not calendar: its windows are the last 14 days and the last 7 days as of each moment, while this page's lifecycle counts calendar weeks from Monday in Europe/Paris, so its members differ from the chart's dormant persons.",
  );
  assert.deepEqual(offer.summary, [
    "Persons with at least one matching event in the last 14 days and none in the last 7 days.",
    "Events counted: page events whose context.page.path is /pricing.",
    "Both windows end at each moment: a person enters 7 days after their last matching event and leaves when they perform one again, or 14 days after it (the chart counts calendar weeks from Monday in Europe/Paris instead).",
  ]);
  assert.equal(lifecycleSegmentOffers(lifecycleOf("event=Signed Up&period=day"), 0)[0].summary[2].includes("enters a day after"), true);
  assert.equal(lifecycleSegmentOffers(lifecycleOf("event=Signed Up&period=hour"), 0)[0].summary[2].includes("enters an hour after"), true);
  // The offer's request is the offer's condition with the fields given.
  assert.deepEqual(offer.request({ segmentId: "x-pricing", displayName: "X", description: "" }), {
    segmentId: "x-pricing",
    segment: { displayName: "X", description: "", condition: offer.condition },
  });
  // Ids stay lower-kebab-case within 63 characters, the period's adverb kept.
  const period = ROLLING_PERIODS.RETENTION_PERIOD_MONTH;
  for (const label of ["Order Completed", "/pricing", "€€€", "404 page", "x".repeat(200), "Straße Ærø"]) {
    const id = dormantSegmentId(label, period);
    assert.match(id, SEGMENT_ID_PATTERN, label);
    assert.ok(id.endsWith("-monthly"), id);
  }
  assert.equal(dormantSegmentId("€€€", period), "dormant-monthly");
  assert.equal(dormantSegmentId("404 page", period), "dormant-404-page-monthly");
  // The display name stays within 200 characters.
  const long = lifecycleSegmentOffers(lifecycleOf(`event=${"Long ".repeat(60)}`), 0)[0];
  assert.equal(long.displayName.length, 200);
});
