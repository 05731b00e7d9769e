// The pure parts of the Customer value page: its filters from the address and back, the requests they make,
// and how it names segments, grid cells, quantile levels and amounts. The page's numbers themselves are
// checked end to end against the RPCs (tests/console/test_value.py).

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  eventNames,
  moneyAmount,
  quantileLabel,
  rfmSegmentLabel,
  topCustomersRequest,
  valueFilters,
  valueParams,
  valueSummaryRequest,
} from "../src/pages/value.js";

const NOW = new Date("2026-12-01T16:00:00Z");

test("value: the filters' requests, whole UTC days with the last included", () => {
  const params = new URLSearchParams(
    "currency=USD&from=2026-11-01&to=2026-11-30&event=Order Completed&event= Refund &event=Order Completed&segment=segments/vip",
  );
  const filters = valueFilters(params, NOW);
  assert.deepEqual(filters, {
    currency: "USD",
    days: { from: "2026-11-01", to: "2026-11-30" },
    events: ["Order Completed", "Refund"],
    segments: ["segments/vip"],
    rfm: "",
  });
  const summary = {
    currencyCode: "USD",
    timeRange: { start: "2026-11-01T00:00:00Z", end: "2026-12-01T00:00:00Z" },
    purchaseEventNames: ["Order Completed", "Refund"],
    population: { segments: ["segments/vip"] },
  };
  assert.deepEqual(valueSummaryRequest(filters), summary);
  // The top customers: GetCustomerValue's bulk mode (no persons), 20 by decreasing value, same population.
  assert.deepEqual(topCustomersRequest(filters), { ...summary, pageSize: 20 });
  // ...or of one RFM segment: the summary stays the population's.
  const atRisk = valueFilters(new URLSearchParams(`${params}&rfm=RFM_SEGMENT_AT_RISK`), NOW);
  assert.deepEqual(valueSummaryRequest(atRisk), summary);
  assert.deepEqual(topCustomersRequest(atRisk), { ...summary, pageSize: 20, rfmSegments: ["RFM_SEGMENT_AT_RISK"] });
  for (const bad of ["AT_RISK", "RFM_SEGMENT_WHALES", ""]) {
    assert.equal(valueFilters(new URLSearchParams({ rfm: bad }), NOW).rfm, "", bad);
  }
});

test("value: defaults, a year up to today in EUR, every purchase event and every purchaser", () => {
  const filters = valueFilters(new URLSearchParams(""), NOW);
  assert.deepEqual(valueSummaryRequest(filters), {
    currencyCode: "EUR",
    timeRange: { start: "2025-12-02T00:00:00Z", end: "2026-12-02T00:00:00Z" },
  });
  assert.equal(valueFilters(new URLSearchParams("currency=gbp"), NOW).currency, "GBP");
  for (const bad of ["EURO", "E1R", "", "€"]) {
    assert.equal(valueFilters(new URLSearchParams({ currency: bad }), NOW).currency, "EUR", bad);
  }
  assert.deepEqual(valueFilters(new URLSearchParams("days=7"), NOW).days, { from: "2026-11-25", to: "2026-12-01" });
  // A range ending before it starts is not a range: the default one.
  assert.equal(valueFilters(new URLSearchParams("from=2026-11-30&to=2026-11-01"), NOW).days.to, "2026-12-01");
});

test("value: the filters written back to the address read as the same filters", () => {
  const filters = {
    currency: "EUR",
    days: { from: "2026-11-02", to: "2026-11-03" },
    events: ["Order Completed", "Gift + Card"],
    segments: ["segments/a", "segments/b"],
    rfm: "RFM_SEGMENT_CANNOT_LOSE",
  };
  const params = valueParams(filters);
  assert.equal(
    params.toString(),
    "currency=EUR&from=2026-11-02&to=2026-11-03&event=Order+Completed&event=Gift+%2B+Card&segment=segments%2Fa&segment=segments%2Fb&rfm=RFM_SEGMENT_CANNOT_LOSE",
  );
  assert.deepEqual(valueFilters(new URLSearchParams(params.toString()), NOW), filters);
});

test("value: comma-separated event names, trimmed, each once", () => {
  assert.deepEqual(eventNames(" Order Completed, ,Refund,Order Completed "), ["Order Completed", "Refund"]);
  assert.deepEqual(eventNames(""), []);
  assert.deepEqual(eventNames(undefined), []);
});

test("value: segments by their names for people", () => {
  assert.equal(rfmSegmentLabel("RFM_SEGMENT_CHAMPIONS"), "Champions");
  assert.equal(rfmSegmentLabel("RFM_SEGMENT_LOYAL_CUSTOMERS"), "Loyal customers");
  assert.equal(rfmSegmentLabel("RFM_SEGMENT_AT_RISK"), "At risk");
  assert.equal(rfmSegmentLabel("RFM_SEGMENT_CANNOT_LOSE"), "Cannot lose");
  assert.equal(rfmSegmentLabel("RFM_SEGMENT_NO_PURCHASE"), "No purchase");
  assert.equal(rfmSegmentLabel(""), "—");
});


test("value: quantile levels", () => {
  assert.deepEqual(
    [0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1].map(quantileLabel),
    ["10th percentile", "25th percentile", "Median", "75th percentile", "90th percentile", "99th percentile", "Maximum"],
  );
});

test("value: a Money's exact amount", () => {
  assert.equal(moneyAmount({ currencyCode: "EUR", units: "1234", nanos: 500000000 }), "1234.5");
  assert.equal(moneyAmount({ currencyCode: "EUR", units: "-3", nanos: -250000000 }), "-3.25");
  assert.equal(moneyAmount({ currencyCode: "EUR", units: "0", nanos: -1 }), "-0.000000001");
  assert.equal(moneyAmount({ currencyCode: "EUR", units: "12", nanos: 0 }), "12");
  assert.equal(moneyAmount({ currencyCode: "EUR", units: "9007199254740993", nanos: 0 }), "9007199254740993");
  assert.equal(moneyAmount(undefined), "0");
});
