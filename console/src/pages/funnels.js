// The Funnels page: a stub from the console's foundation; the page's helper replaces this file.

import { h } from "../dom.js";

// Draws a QueryFunnel response into root (reused by `wayline report`).
export function drawFunnel(root, response, options = {}) {
  root.append(h("p", { class: "empty-state" }, "Funnels: coming soon."));
}

export default {
  id: "funnels",
  title: "Funnels",
  async render(root, ctx) {
    root.append(h("h1", {}, "Funnels"), h("p", {}, "Coming soon."));
  },
};
