// "Save as segment…" on the Customer value page: a button per RFM segment of the segments table opens an
// inline panel (the id, display name and description, prefilled; the condition in words; Save and Cancel)
// that creates a journeys segment of that RFM segment's purchasers with CreateSegment (an admin key's RPC).
// The request and the defaults are segment_request.js's.

import { ApiError, fieldViolations, SERVICES } from "../../api.js";
import { enumLabel, errorAlert, formatNumber, h, loading, pageHash, uniqueId } from "../../dom.js";
import {
  conditionSummary,
  createSegmentRequest,
  defaultDescription,
  defaultDisplayName,
  defaultSegmentId,
  MAX_DESCRIPTION,
  MAX_DISPLAY_NAME,
  MAX_SEGMENT_ID,
  placeViolations,
  rangeDays,
} from "./segment_request.js";

export const UNAVAILABLE_TEXT = "Saving a segment needs a key with the admin scope.";

// Without the key's scopes (ctx.scopes), this validate-only request asks whether the key may create segments:
// the gateway answers PERMISSION_DENIED to a key without the admin scope before the request goes anywhere,
// and journeys checks it for an admin key without storing anything (CreateSegmentRequest.validate_only).
const PROBE = {
  validateOnly: true,
  segment: { displayName: "console: may this key save segments? (validate only)", condition: { hasIdentifierType: "email" } },
};

// Whether the key may create segments: its scopes when the shell knows them, else the answer to PROBE (anything
// but PERMISSION_DENIED: it may, and a refusal on Save says so).
export async function mayCreateSegments(ctx) {
  if (ctx.scopes instanceof Set) return ctx.scopes.has("admin") || ctx.scopes.has("SCOPE_ADMIN");
  try {
    await ctx.call(SERVICES.journeys, "CreateSegment", PROBE);
    return true;
  } catch (error) {
    if (error instanceof ApiError && error.code === "unauthenticated") throw error;
    return !(error instanceof ApiError && error.code === "permission_denied");
  }
}

function rfmLabel(rfm) {
  return enumLabel(rfm, "RFM_SEGMENT_");
}

// A labelled input or textarea with its help and a place for what the server says is wrong with it.
function field({ label, control, help, testid }) {
  const id = uniqueId(`save-segment-${testid}`);
  const helpId = help ? `${id}-help` : null;
  const errorId = `${id}-error`;
  control.id = id;
  control.dataset.testid = `value-save-segment-${testid}`;
  if (helpId) control.setAttribute("aria-describedby", helpId);
  const error = h("p", { id: errorId, class: "field-error", "data-testid": `value-save-segment-${testid}-error`, hidden: true });
  const element = h(
    "div",
    { class: "field" },
    h("label", { for: id }, label),
    control,
    help ? h("span", { id: helpId, class: "help" }, help) : null,
    error,
  );
  return {
    element,
    control,
    clear() {
      error.hidden = true;
      error.textContent = "";
      control.removeAttribute("aria-invalid");
      if (helpId) control.setAttribute("aria-describedby", helpId);
      else control.removeAttribute("aria-describedby");
    },
    show(text) {
      error.textContent = text;
      error.hidden = false;
      control.setAttribute("aria-invalid", "true");
      control.setAttribute("aria-describedby", [errorId, helpId].filter(Boolean).join(" "));
    },
  };
}

function resultText(segment) {
  const status = segment.status ?? {};
  const parts = [];
  if (status.state && status.state !== "SEGMENT_STATE_UNSPECIFIED") parts.push(`state ${enumLabel(status.state, "SEGMENT_STATE_")}`);
  if (status.memberCount !== undefined && status.memberCount !== null) {
    const count = formatNumber(status.memberCount);
    parts.push(status.state === "SEGMENT_STATE_BUILDING" ? `${count} members so far` : `${count} members`);
  }
  return parts.length ? ` (${parts.join(", ")})` : "";
}

// The saver of one view of the page: button(rfm) for a row of the segments table, footer() for the place
// under the table (the help when the key may not save, the panel, the result). filters: the page's
// (valueFilters); allowed: whether the key may create segments; names: population segment name → display name.
export function segmentSaver(ctx, filters, { allowed, names = new Map() }) {
  const helpId = uniqueId("save-segment-unavailable");
  let holder = null; // the panel's place in the current drawing (a refresh draws the table again)
  let live = null; // a polite live region beside it, for the result once the panel has closed

  const close = (opener) => {
    holder?.replaceChildren();
    if (opener?.isConnected) opener.focus();
  };

  const open = (rfm, opener) => {
    const label = rfmLabel(rfm);
    const titleId = uniqueId("save-segment-title");
    const segmentId = field({
      label: "Segment id",
      control: h("input", { type: "text", name: "segmentId", value: defaultSegmentId(filters, rfm), maxlength: MAX_SEGMENT_ID, autocomplete: "off", spellcheck: "false" }),
      help: "Lower-kebab-case: a-z, 0-9 and '-', 3 to 63 characters, starting with a letter (empty: the server chooses one)",
      testid: "id",
    });
    const displayName = field({
      label: "Display name",
      control: h("input", { type: "text", name: "displayName", value: defaultDisplayName(filters, rfm), maxlength: MAX_DISPLAY_NAME, autocomplete: "off" }),
      testid: "name",
    });
    const description = field({
      label: "Description",
      control: h("textarea", { name: "description", rows: 3, maxlength: MAX_DESCRIPTION }, defaultDescription(filters, rfm, names)),
      testid: "description",
    });
    const fields = { segmentId, displayName, description };
    const save = h("button", { type: "submit", class: "primary", "data-testid": "value-save-segment-submit" }, "Save");
    const status = h("div", { "aria-live": "polite", "data-testid": "value-save-segment-status" });
    const days = rangeDays(filters.days);
    const panel = h(
      "form",
      { class: "card save-segment", role: "group", "aria-labelledby": titleId, "data-testid": "value-save-segment-panel", "data-rfm": rfm, novalidate: true },
      h("h3", { id: titleId }, `Save ${label} as a segment`),
      h(
        "p",
        {},
        `A segment is a living audience that flows and decisioning can target. This one looks at the last ${formatNumber(days)} ${days === 1 ? "day" : "days"}, as of each moment, rather than the fixed days shown on this page.`,
      ),
      h("p", { class: "help" }, "Its condition:"),
      h("ul", { "data-testid": "value-save-segment-summary" }, conditionSummary(filters, rfm, names).map((line) => h("li", {}, line))),
      segmentId.element,
      displayName.element,
      description.element,
      h("div", { class: "save-segment-actions" }, save, " ", h("button", { type: "button", "data-testid": "value-save-segment-cancel", onclick: () => close(opener) }, "Cancel")),
      status,
    );
    panel.addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        event.preventDefault();
        close(opener);
      }
    });
    panel.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (save.disabled) return;
      for (const each of Object.values(fields)) each.clear();
      const request = createSegmentRequest(filters, rfm, {
        segmentId: segmentId.control.value,
        displayName: displayName.control.value,
        description: description.control.value,
      });
      save.disabled = true;
      status.replaceChildren(loading("Saving…"));
      try {
        const response = await ctx.call(SERVICES.journeys, "CreateSegment", request);
        saved(response.segment, opener);
      } catch (error) {
        if (error instanceof ApiError && error.code === "unauthenticated") return; // signed out already
        status.replaceChildren(...refusal(error, request.segmentId, fields));
        const invalid = Object.values(fields).find((each) => each.control.getAttribute("aria-invalid") === "true");
        invalid?.control.focus();
      } finally {
        save.disabled = false;
      }
    });
    live?.replaceChildren();
    holder.replaceChildren(panel);
    segmentId.control.focus();
    segmentId.control.select();
  };

  // What a refused CreateSegment shows: its alert (and the violations no field holds, in a list under it);
  // the violations of the id, display name and description beside their inputs.
  const refusal = (error, requested, fields) => {
    if (!(error instanceof ApiError)) return [errorAlert(error, { testid: "value-save-segment-error" })];
    if (error.code === "already_exists") {
      fields.segmentId.show("This id is taken: choose another.");
      const name = `segments/${requested}`;
      return [errorAlert(new ApiError(error.code, `${name} exists already: choose another id`), { testid: "value-save-segment-error" })];
    }
    if (error.code === "permission_denied") {
      const shown = new ApiError(error.code, `This key may not save segments (it needs the admin scope). ${error.message}`);
      return [errorAlert(shown, { testid: "value-save-segment-error" })];
    }
    const placed = placeViolations(fieldViolations(error));
    for (const [key, violations] of Object.entries(placed)) {
      if (key !== "other" && violations.length) fields[key].show(violations.map((v) => v.description).join("; "));
    }
    const shown = [errorAlert(error, { testid: "value-save-segment-error" })];
    if (placed.other.length) {
      shown.push(
        h(
          "ul",
          { class: "save-segment-violations", "data-testid": "value-save-segment-violations", "aria-label": "What else the request got wrong" },
          placed.other.map((v) => h("li", { "data-field": v.field }, h("code", {}, v.field), `: ${v.description}`)),
        ),
      );
    }
    return shown;
  };

  const saved = (segment, opener) => {
    const name = segment.name;
    holder?.replaceChildren();
    live?.replaceChildren(
      h(
        "p",
        { "data-testid": "value-save-segment-result", "data-segment": name },
        `Saved ${name}: its members are being computed${resultText(segment)}. `,
        h("a", { href: pageHash("segments", { segment: name }), "data-testid": "value-save-segment-link" }, `Open ${segment.displayName || name} on the Segments page`),
      ),
    );
    if (opener?.isConnected) opener.focus();
  };

  return {
    button(rfm) {
      const label = rfmLabel(rfm);
      return h(
        "button",
        {
          type: "button",
          class: "save-segment-open",
          "data-testid": "value-save-segment",
          "data-rfm": rfm,
          "aria-label": `Save as segment: ${label}`,
          disabled: !allowed,
          "aria-describedby": allowed ? null : helpId,
          onclick: (event) => open(rfm, event.currentTarget),
        },
        "Save as segment…",
      );
    },
    footer() {
      holder = h("div", { "data-testid": "value-save-segment-holder" });
      live = h("div", { role: "status", "data-testid": "value-save-segment-live" });
      return h(
        "div",
        {},
        allowed ? null : h("p", { id: helpId, class: "help", "data-testid": "value-save-segment-unavailable" }, UNAVAILABLE_TEXT),
        holder,
        live,
      );
    },
  };
}
