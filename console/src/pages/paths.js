// The Paths page: a stub from the console's foundation; the page's helper replaces this file.

import { h } from "../dom.js";

// Draws a QueryPaths response into root (reused by `wayline report`).
export function drawPaths(root, response, options = {}) {
  root.append(h("p", { class: "empty-state" }, "Paths: coming soon."));
}

export default {
  id: "paths",
  title: "Paths",
  async render(root, ctx) {
    root.append(h("h1", {}, "Paths"), h("p", {}, "Coming soon."));
  },
};
