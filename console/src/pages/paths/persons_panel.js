// The persons behind a number (a Sankey node or edge, a funnel step): a live region listing person ids page
// by page, each a link to the Customer page. `fetchPage(pageToken)` answers {personIds, nextPageToken}; the
// Paths page passes ListPathPersons, the Funnels page ListFunnelPersons.

import { clear, errorAlert, h, loading } from "../../dom.js";

// A panel element (empty until shown); show(title, fetchPage) replaces its content.
export function personsPanel({ testid }) {
  const element = h("section", { class: "persons-panel", "data-testid": testid, "aria-live": "polite", hidden: true });

  let shown = 0; // which show() the panel holds: a page that arrives after another show() is dropped

  async function more(list, button, fetchPage, token) {
    const mine = shown;
    button.disabled = true;
    try {
      const page = await fetchPage(token);
      if (mine !== shown) return;
      for (const id of page.personIds ?? []) {
        list.append(
          h(
            "li",
            {},
            h("a", { href: `#/customer?person=${encodeURIComponent(id)}`, "data-testid": "person-link", "data-person-id": id }, id),
          ),
        );
      }
      const next = page.nextPageToken ?? "";
      button.hidden = !next;
      button.disabled = false;
      button.onclick = () => more(list, button, fetchPage, next);
      const count = list.children.length;
      element.querySelector("[data-testid=persons-count]").textContent =
        count === 0 ? "Nobody." : `${count} ${count === 1 ? "person" : "persons"}${next ? " so far" : ""}.`;
    } catch (error) {
      if (mine !== shown) return;
      button.hidden = true;
      element.append(errorAlert(error));
    }
  }

  function hide() {
    shown += 1;
    clear(element);
    element.hidden = true;
  }

  return {
    element,
    hide,
    // `about` ({nodeId, targetNodeId, step, outcome, ...}) is written as data-* attributes: what is listed.
    async show(title, fetchPage, about = {}) {
      shown += 1;
      clear(element);
      for (const name of Object.keys(element.dataset)) if (name !== "testid") delete element.dataset[name];
      for (const [name, value] of Object.entries(about)) element.dataset[name] = String(value);
      element.hidden = false;
      const heading = h("h2", { tabindex: "-1", "data-testid": "persons-title" }, title);
      const close = h(
        "button",
        { type: "button", class: "link-button persons-close", "data-testid": "persons-close", onclick: hide },
        "Close",
      );
      const list = h("ul", { class: "persons-list", "data-testid": "persons-list" });
      const button = h("button", { type: "button", "data-testid": "persons-more", hidden: true }, "More persons");
      const status = loading("Loading persons…");
      element.append(heading, close, h("p", { "data-testid": "persons-count" }, ""), list, button, status);
      heading.focus();
      await more(list, button, fetchPage, "");
      status.remove();
    },
  };
}
