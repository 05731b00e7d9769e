// "Save dormant as segment…" in the Trends page's lifecycle mode: under each series' table, for a key that may
// create segments (the page asks, ../segment_saver.js's mayCreateSegments; for any other key nothing is offered),
// a button that opens the shared "Save as segment" panel (../segment_saver.js) prefilled from
// lifecycle_segment.js's offer: the series' dormant persons over rolling windows (the last 2P and the last P),
// saved with CreateSegment and linked to on the Segments page.

import { h } from "../../dom.js";
import { segmentSaver } from "../segment_saver.js";
import { lifecycleSegmentOffers } from "./lifecycle_segment.js";

// drawLifecycle's segmentActions option for the page's lifecycle request `lifecycle`: segmentActions(series
// index) → what to show under that series' table (its buttons and the panel's place), or null (nothing to offer,
// or a key that may not save). null itself when the key may not save. names: segment name → display name.
export function lifecycleSegmentActions(ctx, lifecycle, { allowed, names = new Map() }) {
  if (!allowed) return null;
  return (seriesIndex) => {
    const offers = lifecycleSegmentOffers(lifecycle, seriesIndex, { names });
    if (!offers.length) return null;
    const saver = segmentSaver(ctx, { testid: "trends-save-segment", allowed });
    return h(
      "div",
      { class: "trends-lifecycle-save", "data-testid": `trends-lifecycle-save-${seriesIndex}` },
      h("div", { class: "trends-lifecycle-save-actions" }, offers.map((offer) => saver.button(offer))),
      saver.footer(),
    );
  };
}
