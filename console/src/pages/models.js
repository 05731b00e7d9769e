// The Models page: a stub from the console's foundation; the page's helper replaces this file.

import { h } from "../dom.js";

// Draws a ListModels response into root (reused by `wayline report`).
export function drawModels(root, response, options = {}) {
  root.append(h("p", { class: "empty-state" }, "Models: coming soon."));
}

export default {
  id: "models",
  title: "Models",
  async render(root, ctx) {
    root.append(h("h1", {}, "Models"), h("p", {}, "Coming soon."));
  },
};
