// The Retention page: a stub from the console's foundation; the page's helper replaces this file.

import { h } from "../dom.js";

// Draws a QueryRetention response into root (reused by `wayline report`).
export function drawRetention(root, response, options = {}) {
  root.append(h("p", { class: "empty-state" }, "Retention: coming soon."));
}

export default {
  id: "retention",
  title: "Retention",
  async render(root, ctx) {
    root.append(h("h1", {}, "Retention"), h("p", {}, "Coming soon."));
  },
};
