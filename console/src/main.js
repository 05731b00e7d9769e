// The console's shell: sign-in with an API key, the page navigation, and a hash router that renders one
// page module (pages/index.js) into <main>.

import "./console.css";
import { ApiError, SERVICES, call, clearKey, getKey, setKey } from "./api.js";
import { disposeCharts } from "./charts.js";
import { clear, errorAlert, h, loading, pageHash, uniqueId } from "./dom.js";
import { PAGES } from "./pages/index.js";

const APP_TITLE = "Wayline console";
const pagesById = new Map(PAGES.map((page) => [page.id, page]));

const main = document.getElementById("main-content");
const nav = document.getElementById("page-nav");
const session = document.getElementById("session");

// Every navigation gets a number; a page that finishes rendering after the user moved on is ignored.
let renderGeneration = 0;

function parseHash(hash = location.hash) {
  const text = hash.startsWith("#/") ? hash.slice(2) : "";
  const questionMark = text.indexOf("?");
  const path = questionMark === -1 ? text : text.slice(0, questionMark);
  const query = questionMark === -1 ? "" : text.slice(questionMark + 1);
  return { id: safeDecode(path.replace(/\/+$/, "")), params: new URLSearchParams(query) };
}

function safeDecode(text) {
  try {
    return decodeURIComponent(text);
  } catch {
    return text; // a malformed escape: shown as typed, on the "Page not found" page
  }
}

function navigate(hash) {
  const target = hash.startsWith("#") ? hash : `#${hash}`;
  if (location.hash === target) route();
  else location.hash = target;
}

// Record a page's state in the address without rendering again (filters applied in place). params: a
// URLSearchParams or a plain object (empty values left out).
function setParams(params) {
  history.replaceState(null, "", pageHash(parseHash().id, params));
}

function focusHeading(root) {
  const heading = root.querySelector("h1");
  if (!heading) return false;
  heading.setAttribute("tabindex", "-1");
  heading.focus();
  return true;
}

function renderNav(currentId) {
  const links = PAGES.map((page) =>
    h(
      "li",
      {},
      h(
        "a",
        {
          href: `#/${page.id}`,
          "data-testid": `nav-${page.id}`,
          "aria-current": page.id === currentId ? "page" : null,
        },
        page.title,
      ),
    ),
  );
  nav.replaceChildren(h("ul", {}, links));
  nav.hidden = false;
  session.replaceChildren(
    h("button", { type: "button", class: "link-button", "data-testid": "sign-out", onclick: signOut }, "Sign out"),
  );
}

function resetMain() {
  renderGeneration += 1;
  disposeCharts(main);
  clear(main);
}

function renderSignIn(message) {
  resetMain();
  nav.hidden = true;
  nav.replaceChildren();
  session.replaceChildren();
  document.title = `Sign in · ${APP_TITLE}`;
  const inputId = uniqueId("api-key");
  const hintId = `${inputId}-hint`;
  const input = h("input", {
    id: inputId,
    name: "api-key",
    type: "password",
    autocomplete: "off",
    spellcheck: "false",
    required: true,
    "aria-describedby": hintId,
    "data-testid": "key-input",
  });
  const signInForm = h(
    "form",
    { class: "sign-in", "data-testid": "sign-in-form", "aria-label": "Sign in" },
    h("div", { class: "field" }, h("label", { for: inputId }, "API key"), input),
    h(
      "p",
      { id: hintId, class: "help" },
      "A key with the read scope shows its tenant's journeys; an admin key can also unmerge identities. The key stays in this tab only.",
    ),
    h("button", { type: "submit", class: "primary", "data-testid": "sign-in" }, "Sign in"),
  );
  const button = signInForm.querySelector("button[type=submit]");
  signInForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = input.value.trim();
    if (!key) {
      input.focus();
      return;
    }
    button.disabled = true;
    const generation = renderGeneration;
    const refusal = await checkKey(key);
    if (generation !== renderGeneration) return;
    if (refusal) {
      clearKey();
      renderSignIn(refusal);
      return;
    }
    route();
  });
  main.append(
    h(
      "section",
      { class: "sign-in-page" },
      h("h1", {}, "Sign in"),
      message ? errorAlert(message) : null,
      signInForm,
    ),
  );
  input.focus();
}

// Try the key on a cheap read of its tenant (one segment) before showing pages: a wrong key, or one without
// the read scope, stays on the sign-in form with the gateway's error. Any other failure (a service down) is
// left for the pages to show. Returns the refusal, or null.
async function checkKey(key) {
  setKey(key);
  try {
    await call(SERVICES.journeys, "ListSegments", { pageSize: 1 });
  } catch (error) {
    if (error instanceof ApiError && (error.code === "unauthenticated" || error.code === "permission_denied")) {
      return error;
    }
  }
  return null;
}

function signOut() {
  clearKey();
  renderSignIn(null);
}

// An UNAUTHENTICATED answer anywhere sends the user back to sign in, with the gateway's message.
function signOutWith(error) {
  clearKey();
  renderSignIn(error);
}

function contextFor(params) {
  return {
    params,
    navigate,
    setParams,
    scopes: null,
    async call(service, method, request = {}, options = {}) {
      try {
        return await call(service, method, request, options);
      } catch (error) {
        if (error instanceof ApiError && error.code === "unauthenticated") signOutWith(error);
        throw error;
      }
    },
  };
}

function renderNotFound(id) {
  const root = h("section", { class: "page", "data-page": "not-found" });
  main.append(root);
  root.append(
    h("h1", {}, "Page not found"),
    h("p", {}, `There is no page called “${id}”. Choose one from the navigation.`),
  );
  document.title = `Not found · ${APP_TITLE}`;
  focusHeading(root);
}

async function route() {
  if (!getKey()) {
    renderSignIn(null);
    return;
  }
  const { id, params } = parseHash();
  if (!id) {
    history.replaceState(null, "", `#/${PAGES[0].id}`);
    return route();
  }
  resetMain();
  const generation = renderGeneration;
  const page = pagesById.get(id);
  renderNav(page ? page.id : null);
  if (!page) {
    renderNotFound(id);
    return;
  }
  document.title = `${page.title} · ${APP_TITLE}`;
  const root = h("section", { class: "page", "data-page": page.id, "aria-busy": "true" });
  const status = loading();
  main.append(root, status);
  const rendering = page.render(root, contextFor(params));
  // Pages put their <h1> in first, before they wait for data: focus it at once when it is there.
  let focused = focusHeading(root);
  try {
    await rendering;
  } catch (error) {
    if (generation !== renderGeneration) return;
    if (error instanceof ApiError && error.code === "unauthenticated") {
      signOutWith(error);
      return;
    }
    if (!root.querySelector("h1")) root.prepend(h("h1", {}, page.title));
    if (error instanceof ApiError) {
      root.append(errorAlert(error));
    } else {
      // A bug in the page, not an answer of the gateway: shown, and reported as uncaught so that it reaches
      // the browser's console (and fails the end-to-end tests) rather than hiding in an alert.
      root.append(errorAlert({ code: "internal", message: String(error?.message ?? error) }));
      if (typeof reportError === "function") reportError(error);
    }
  } finally {
    if (generation === renderGeneration) {
      status.remove();
      root.removeAttribute("aria-busy");
      if (!focused) focused = focusHeading(root);
    }
  }
}

// The skip link moves focus without changing the hash (which the router owns).
document.querySelector(".skip-link")?.addEventListener("click", (event) => {
  event.preventDefault();
  main.focus();
});
window.addEventListener("hashchange", () => {
  if (location.hash === "" || location.hash.startsWith("#/")) route();
});
route();
