// "Save as segment…" on the Customer value page: a button per RFM segment of the segments table opens an
// inline panel (the id, display name and description, prefilled; the condition in words; Save and Cancel)
// that creates a journeys segment of that RFM segment's purchasers with CreateSegment (an admin key's RPC).
// The request and the defaults are segment_request.js's; the panel, the probe of the key and what a refusal or
// the saved segment shows are shared with the Trends page's lifecycle (../segment_saver.js).

import { enumLabel, formatNumber } from "../../dom.js";
import { mayCreateSegments, segmentSaver as saverOf, UNAVAILABLE_TEXT } from "../segment_saver.js";
import {
  conditionSummary,
  createSegmentRequest,
  defaultDescription,
  defaultDisplayName,
  defaultSegmentId,
  rangeDays,
} from "./segment_request.js";

export { mayCreateSegments, UNAVAILABLE_TEXT };

function rfmLabel(rfm) {
  return enumLabel(rfm, "RFM_SEGMENT_");
}

// What the panel of an RFM segment of the filters offers to save (segment_saver.js's offer).
function rfmOffer(filters, rfm, names) {
  const label = rfmLabel(rfm);
  const days = rangeDays(filters.days);
  return {
    text: "Save as segment…",
    ariaLabel: `Save as segment: ${label}`,
    data: { "data-rfm": rfm },
    title: `Save ${label} as a segment`,
    intro: `A segment is a living audience that flows and decisioning can target. This one looks at the last ${formatNumber(days)} ${days === 1 ? "day" : "days"}, as of each moment, rather than the fixed days shown on this page.`,
    summary: conditionSummary(filters, rfm, names),
    segmentId: defaultSegmentId(filters, rfm),
    displayName: defaultDisplayName(filters, rfm),
    description: defaultDescription(filters, rfm, names),
    request: (fields) => createSegmentRequest(filters, rfm, fields),
  };
}

// The saver of one view of the page: button(rfm) for a row of the segments table, footer() for the place
// under the table (the help when the key may not save, the panel, the result). filters: the page's
// (valueFilters); allowed: whether the key may create segments; names: population segment name → display name.
export function segmentSaver(ctx, filters, { allowed, names = new Map() }) {
  const saver = saverOf(ctx, { testid: "value-save-segment", allowed });
  return {
    button: (rfm) => saver.button(rfmOffer(filters, rfm, names)),
    footer: () => saver.footer(),
  };
}
