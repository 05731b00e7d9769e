// The Segments page: a stub from the console's foundation; the page's helper replaces this file.

import { h } from "../dom.js";

// Draws a ListSegments response into root (reused by `wayline report`).
export function drawSegments(root, response, options = {}) {
  root.append(h("p", { class: "empty-state" }, "Segments: coming soon."));
}

export default {
  id: "segments",
  title: "Segments",
  async render(root, ctx) {
    root.append(h("h1", {}, "Segments"), h("p", {}, "Coming soon."));
  },
};
