// The Flows page: a stub from the console's foundation; the page's helper replaces this file.

import { h } from "../dom.js";

// Draws a flow ({flow, stats}: GetFlow and GetFlowStats responses) into root (reused by `wayline report`).
export function drawFlow(root, { flow, stats }, options = {}) {
  root.append(h("p", { class: "empty-state" }, "Flows: coming soon."));
}

export default {
  id: "flows",
  title: "Flows",
  async render(root, ctx) {
    root.append(h("h1", {}, "Flows"), h("p", {}, "Coming soon."));
  },
};
