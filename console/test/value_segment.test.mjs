// "Save as segment…" on the Customer value page, its pure part (src/pages/value/segment_request.js): the
// CreateSegment request an RFM segment of the page's filters makes, its window, default id, names and
// description, and where a refusal's field violations are shown. The saving itself is checked end to end
// (tests/console/test_value_save_segment.py).

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  conditionSummary,
  createSegmentRequest,
  defaultDescription,
  defaultDisplayName,
  defaultSegmentId,
  placeViolations,
  rangeDays,
  SEGMENT_ID_PATTERN,
  segmentCondition,
  slug,
  windowOf,
} from "../src/pages/value/segment_request.js";
import { valueFilters } from "../src/pages/value.js";

const NOW = new Date("2026-12-01T16:00:00Z");
const DAY = 86400;

function filtersOf(query) {
  return valueFilters(new URLSearchParams(query), NOW);
}

test("value segment: a plain page's RFM segment, over a window as long as the page's days", () => {
  const filters = filtersOf("currency=EUR&from=2026-09-03&to=2026-12-01");
  assert.equal(rangeDays(filters.days), 90);
  const request = createSegmentRequest(filters, "RFM_SEGMENT_AT_RISK", {
    segmentId: " rfm-at-risk-eur-90d ",
    displayName: "At risk customers (EUR, last 90 days) ",
    description: "Saved from the page",
  });
  assert.deepEqual(request, {
    segmentId: "rfm-at-risk-eur-90d",
    segment: {
      displayName: "At risk customers (EUR, last 90 days)",
      description: "Saved from the page",
      condition: {
        customerValue: {
          metric: "CUSTOMER_VALUE_METRIC_RFM_SEGMENT",
          currencyCode: "EUR",
          window: `${90 * DAY}s`,
          rfmSegments: ["RFM_SEGMENT_AT_RISK"],
        },
      },
    },
  });
  // An empty id lets the server choose one.
  assert.equal(createSegmentRequest(filters, "RFM_SEGMENT_AT_RISK").segmentId, "");
});

test("value segment: the window counts the page's days with both ends included, as its time range does", () => {
  assert.equal(rangeDays({ from: "2026-11-01", to: "2026-11-01" }), 1);
  assert.equal(rangeDays({ from: "2026-11-01", to: "2026-11-30" }), 30);
  // Across a daylight-saving change (days are UTC) and a leap day.
  assert.equal(rangeDays({ from: "2026-03-01", to: "2026-03-31" }), 31);
  assert.equal(rangeDays({ from: "2028-02-01", to: "2028-03-01" }), 30);
  assert.equal(windowOf(1), "86400s");
  assert.equal(windowOf(365), "31536000s");
  // The page's own days: the default (a year up to today) and `days=7`, whose time range is as long.
  for (const [query, days] of [["", 365], ["days=7", 7], ["from=2026-11-02&to=2026-11-03", 2]]) {
    const filters = filtersOf(query);
    assert.equal(rangeDays(filters.days), days, query);
    assert.equal(segmentCondition(filters, "RFM_SEGMENT_LOST").customerValue.window, `${days * DAY}s`, query);
  }
});

test("value segment: purchase event names go into the condition", () => {
  const filters = filtersOf("currency=usd&from=2026-11-01&to=2026-11-30&event=Order Completed&event=Refund");
  assert.deepEqual(segmentCondition(filters, "RFM_SEGMENT_CHAMPIONS"), {
    customerValue: {
      metric: "CUSTOMER_VALUE_METRIC_RFM_SEGMENT",
      currencyCode: "USD",
      window: `${30 * DAY}s`,
      rfmSegments: ["RFM_SEGMENT_CHAMPIONS"],
      purchaseEventNames: ["Order Completed", "Refund"],
    },
  });
});

test("value segment: a population of segments is ANDed with the RFM condition", () => {
  const filters = filtersOf("from=2026-11-01&to=2026-11-30&event=Order Completed&segment=segments/vip&segment=segments/eu");
  assert.deepEqual(segmentCondition(filters, "RFM_SEGMENT_CANNOT_LOSE"), {
    group: {
      operator: "LOGICAL_OPERATOR_AND",
      conditions: [
        {
          customerValue: {
            metric: "CUSTOMER_VALUE_METRIC_RFM_SEGMENT",
            currencyCode: "EUR",
            window: `${30 * DAY}s`,
            rfmSegments: ["RFM_SEGMENT_CANNOT_LOSE"],
            purchaseEventNames: ["Order Completed"],
          },
        },
        { segmentMembership: { segment: "segments/vip" } },
        { segmentMembership: { segment: "segments/eu" } },
      ],
    },
  });
});

test("value segment: ids are lower-kebab-case, 3 to 63 characters, with no hyphen at either end", () => {
  assert.equal(slug("Clientes à risco — São Paulo"), "clientes-a-risco-sao-paulo");
  assert.equal(slug("Straße Œuvre Ærø Łódź"), "strasse-oeuvre-aero-lodz");
  assert.equal(slug("  --Top 10%!--  "), "top-10");
  assert.equal(slug("90 days"), "s-90-days");
  assert.equal(slug("ab"), "");
  assert.equal(slug("€€€"), "");
  // Long names stop at 63 characters, and not on a hyphen.
  const long = slug(`${"a".repeat(62)} b`);
  assert.equal(long, "a".repeat(62));
  const words = slug("at risk customers of the spring sale in every european country we ship to");
  assert.ok(words.length <= 63, words);
  assert.ok(!words.endsWith("-"), words);
  assert.match(words, SEGMENT_ID_PATTERN);
  for (const text of ["Ünïcödé everywhere", "x".repeat(200), "1-2-3-4", "a--b"]) {
    const id = slug(text);
    assert.ok(id === "" || SEGMENT_ID_PATTERN.test(id), `${text} → ${id}`);
  }
});

test("value segment: the defaults name the RFM segment, currency and days, and where the segment came from", () => {
  const plain = filtersOf("currency=EUR&from=2026-09-03&to=2026-12-01");
  assert.equal(defaultSegmentId(plain, "RFM_SEGMENT_AT_RISK"), "rfm-at-risk-eur-90d");
  assert.equal(defaultSegmentId(plain, "RFM_SEGMENT_LOYAL_CUSTOMERS"), "rfm-loyal-customers-eur-90d");
  assert.equal(defaultDisplayName(plain, "RFM_SEGMENT_AT_RISK"), "At risk customers (EUR, last 90 days)");
  assert.equal(defaultDisplayName(plain, "RFM_SEGMENT_CHAMPIONS"), "Champions (EUR, last 90 days)");
  assert.equal(defaultDisplayName(filtersOf("days=1"), "RFM_SEGMENT_LOST"), "Lost customers (EUR, last 1 day)");
  assert.equal(
    defaultDescription(plain, "RFM_SEGMENT_AT_RISK"),
    "Saved from the Customer value page: RFM segment At risk of purchasers in EUR over the trailing 90 days",
  );
  const narrow = filtersOf("currency=EUR&from=2026-09-03&to=2026-12-01&event=Order Completed&event=Refund&segment=segments/vip&segment=segments/eu");
  const names = new Map([["segments/vip", "VIP customers"]]);
  assert.equal(
    defaultDescription(narrow, "RFM_SEGMENT_AT_RISK", names),
    "Saved from the Customer value page: RFM segment At risk of purchasers in EUR over the trailing 90 days, " +
      "purchase events: Order Completed, Refund, members of: VIP customers (segments/vip), segments/eu",
  );
  // A description stays within Segment.description's 2,000 characters.
  const many = filtersOf(`from=2026-09-03&to=2026-12-01&${Array.from({ length: 300 }, (_, i) => `event=Event+${i}`).join("&")}`);
  const description = defaultDescription(many, "RFM_SEGMENT_AT_RISK");
  assert.equal(description.length, 2000);
  assert.ok(description.endsWith("…"));
  // The condition in words: the moving window, not the page's fixed days, and the population.
  const summary = conditionSummary(narrow, "RFM_SEGMENT_AT_RISK", names).join(" ");
  assert.match(summary, /RFM segment is At risk/);
  assert.match(summary, /events named Order Completed, Refund with revenue in EUR/);
  assert.match(summary, /the last 90 days, as of each moment/);
  assert.match(summary, /2026-09-03 to 2026-12-01/);
  assert.match(summary, /every one of: VIP customers \(segments\/vip\), segments\/eu/);
});

test("value segment: field violations go beside the input they name, the others into a list", () => {
  const violations = [
    { field: "segment_id", description: "lower-kebab-case" },
    { field: "segment.display_name", description: "at most 200 characters" },
    { field: "segment.description", description: "at most 2000 characters" },
    { field: "segment.condition.customer_value.window", description: "must be positive" },
    { field: "segment.condition.group.conditions[1].segment_membership.segment", description: "not found" },
    { field: "", description: "something else" },
  ];
  const placed = placeViolations(violations);
  assert.deepEqual(placed.segmentId, [violations[0]]);
  assert.deepEqual(placed.displayName, [violations[1]]);
  assert.deepEqual(placed.description, [violations[2]]);
  assert.deepEqual(placed.other, violations.slice(3));
  assert.deepEqual(placeViolations([{ field: "segmentId", description: "taken" }]).segmentId, [{ field: "segmentId", description: "taken" }]);
  assert.deepEqual(placeViolations(undefined), { segmentId: [], displayName: [], description: [], other: [] });
});
