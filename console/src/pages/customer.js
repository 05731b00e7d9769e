// The Customer page: a stub from the console's foundation; the page's helper replaces this file.

import { h } from "../dom.js";

export default {
  id: "customer",
  title: "Customer",
  async render(root, ctx) {
    root.append(h("h1", {}, "Customer"), h("p", {}, "Coming soon."));
  },
};
