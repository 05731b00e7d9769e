// The Lifecycle page: a stub from the console's foundation; the page's helper replaces this file.

import { h } from "../dom.js";

// Draws a lifecycle response into root (reused by `wayline report`).
export function drawLifecycle(root, response, options = {}) {
  root.append(h("p", { class: "empty-state" }, "Lifecycle: coming soon."));
}

export default {
  id: "lifecycle",
  title: "Lifecycle",
  async render(root, ctx) {
    root.append(h("h1", {}, "Lifecycle"), h("p", {}, "Coming soon."));
  },
};
