// "Save as segment…", shared by the pages that turn what they show into a journeys segment (the Customer value
// page's RFM rows, value/save_segment.js; the Trends page's lifecycle, trends/lifecycle_save.js): whether the key
// may create segments (a validate-only CreateSegment), the inline panel that asks for the segment's id, display
// name and description (prefilled; the condition in words; Save and Cancel), the CreateSegment request it sends
// and what a refusal or the saved segment shows (a link to it on the Segments page). What a page saves (the
// condition, the defaults, the words) is the page's: an offer given to segmentSaver's button().
//
// The pure part (ids, limits, the request, where a refusal's field violations belong) uses no browser API, so
// node's unit tests import it (console/test/value_segment.test.mjs, console/test/trends_segment.test.mjs).

import { ApiError, fieldViolations, SERVICES } from "../api.js";
import { enumLabel, errorAlert, formatNumber, h, loading, pageHash, uniqueId } from "../dom.js";

// CreateSegmentRequest.segment_id: lower-kebab-case, 3 to 63 characters, starting with a letter.
export const MAX_SEGMENT_ID = 63;
const MIN_SEGMENT_ID = 3;
export const SEGMENT_ID_PATTERN = /^[a-z][a-z0-9-]{1,61}[a-z0-9]$/;
// Segment.display_name and Segment.description: at most 200 and 2,000 characters.
export const MAX_DISPLAY_NAME = 200;
export const MAX_DESCRIPTION = 2000;

// Letters that Unicode's decomposition leaves whole, spelled in ASCII for an id.
const SPELLED = { ß: "ss", æ: "ae", œ: "oe", ø: "o", ł: "l", đ: "d", ð: "d", þ: "th", ı: "i" };

// Text as a segment id: lower case, accents dropped, every run of other characters one hyphen, starting with a
// letter ("s-" before a leading digit), at most `max` characters and no hyphen at either end. "" when fewer
// than 3 characters are left (an empty id lets the server choose one).
export function slug(text, max = MAX_SEGMENT_ID) {
  let id = String(text ?? "")
    .toLowerCase()
    .replace(/[ßæœøłđðþı]/g, (letter) => SPELLED[letter])
    .normalize("NFKD")
    .replace(/\p{M}+/gu, "")
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "");
  if (/^[0-9]/.test(id)) id = `s-${id}`;
  id = id.slice(0, max).replace(/-+$/, "");
  return id.length >= MIN_SEGMENT_ID ? id : "";
}

// Text cut to at most `max` characters, an ellipsis ending what was cut.
export function clip(text, max) {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

// A population segment for people: "Product adders (segments/adders)", or its name alone when its display
// name is not known (`names`: a Map of segment name → display name, from ListSegments).
export function segmentText(name, names) {
  const shown = names?.get(name);
  return shown && shown !== name ? `${shown} (${name})` : name;
}

// The CreateSegment request (proto3 JSON) of a condition, with the id, display name and description given
// (trimmed; an empty id lets the server choose one).
export function segmentRequest(condition, { segmentId = "", displayName = "", description = "" } = {}) {
  return {
    segmentId: segmentId.trim(),
    segment: { displayName: displayName.trim(), description: description.trim(), condition },
  };
}

// The form's fields that a violation's path names (CreateSegmentRequest's paths, snake case as the server
// sends them; camel case accepted too).
const FIELD_OF_PATH = {
  segment_id: "segmentId",
  segmentId: "segmentId",
  "segment.display_name": "displayName",
  "segment.displayName": "displayName",
  "segment.description": "description",
};

// Field violations ([{field, description}], api.js fieldViolations) by where they are shown: beside the id,
// display name or description input, or `other` (the condition's: in a list under the error).
export function placeViolations(violations) {
  const placed = { segmentId: [], displayName: [], description: [], other: [] };
  for (const violation of violations ?? []) {
    placed[FIELD_OF_PATH[violation.field] ?? "other"].push(violation);
  }
  return placed;
}

// ---------------------------------------------------------------------------------------------------------
// The panel.

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

// A labelled input or textarea with its help and a place for what the server says is wrong with it; its test
// id is `${prefix}-${testid}` (the error's, that and `-error`).
function field({ label, control, help, testid, prefix }) {
  const id = uniqueId(`save-segment-${testid}`);
  const helpId = help ? `${id}-help` : null;
  const errorId = `${id}-error`;
  control.id = id;
  control.dataset.testid = `${prefix}-${testid}`;
  if (helpId) control.setAttribute("aria-describedby", helpId);
  const error = h("p", { id: errorId, class: "field-error", "data-testid": `${prefix}-${testid}-error`, hidden: true });
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

// The saver of one place of a page: button(offer) for each thing it may save there, footer() for the place
// under them (the help when the key may not save, the panel, the result). `testid`: the prefix of every test id
// (the button's itself; the panel's `${testid}-panel`, …); `allowed`: whether the key may create segments (a
// button of a key that may not is disabled, described by the help).
//
// An offer: {text (the button's), ariaLabel (its accessible name), data (data-* attributes of the button and the
// panel), title (the panel's heading), intro (its first line), note (optional: a line of help after it),
// summary (the condition in words, one line a part), segmentId, displayName, description (the defaults), and
// request({segmentId, displayName, description}) → the CreateSegment request}.
export function segmentSaver(ctx, { testid, allowed }) {
  const helpId = uniqueId("save-segment-unavailable");
  let holder = null; // the panel's place in the current drawing (a refresh draws the table again)
  let live = null; // a polite live region beside it, for the result once the panel has closed

  const close = (opener) => {
    holder?.replaceChildren();
    if (opener?.isConnected) opener.focus();
  };

  const open = (offer, opener) => {
    const titleId = uniqueId("save-segment-title");
    const segmentId = field({
      label: "Segment id",
      control: h("input", { type: "text", name: "segmentId", value: offer.segmentId, maxlength: MAX_SEGMENT_ID, autocomplete: "off", spellcheck: "false" }),
      help: "Lower-kebab-case: a-z, 0-9 and '-', 3 to 63 characters, starting with a letter (empty: the server chooses one)",
      testid: "id",
      prefix: testid,
    });
    const displayName = field({
      label: "Display name",
      control: h("input", { type: "text", name: "displayName", value: offer.displayName, maxlength: MAX_DISPLAY_NAME, autocomplete: "off" }),
      testid: "name",
      prefix: testid,
    });
    const description = field({
      label: "Description",
      control: h("textarea", { name: "description", rows: 3, maxlength: MAX_DESCRIPTION }, offer.description),
      testid: "description",
      prefix: testid,
    });
    const fields = { segmentId, displayName, description };
    const save = h("button", { type: "submit", class: "primary", "data-testid": `${testid}-submit` }, "Save");
    const status = h("div", { "aria-live": "polite", "data-testid": `${testid}-status` });
    const panel = h(
      "form",
      { class: "card save-segment", role: "group", "aria-labelledby": titleId, "data-testid": `${testid}-panel`, ...offer.data, novalidate: true },
      h("h3", { id: titleId }, offer.title),
      h("p", {}, offer.intro),
      offer.note ? h("p", { class: "help", "data-testid": `${testid}-note` }, offer.note) : null,
      h("p", { class: "help" }, "Its condition:"),
      h("ul", { "data-testid": `${testid}-summary` }, offer.summary.map((line) => h("li", {}, line))),
      segmentId.element,
      displayName.element,
      description.element,
      h("div", { class: "save-segment-actions" }, save, " ", h("button", { type: "button", "data-testid": `${testid}-cancel`, onclick: () => close(opener) }, "Cancel")),
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
      const request = offer.request({
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
    const errorTestid = `${testid}-error`;
    if (!(error instanceof ApiError)) return [errorAlert(error, { testid: errorTestid })];
    if (error.code === "already_exists") {
      fields.segmentId.show("This id is taken: choose another.");
      const name = `segments/${requested}`;
      return [errorAlert(new ApiError(error.code, `${name} exists already: choose another id`), { testid: errorTestid })];
    }
    if (error.code === "permission_denied") {
      const shown = new ApiError(error.code, `This key may not save segments (it needs the admin scope). ${error.message}`);
      return [errorAlert(shown, { testid: errorTestid })];
    }
    const placed = placeViolations(fieldViolations(error));
    for (const [key, violations] of Object.entries(placed)) {
      if (key !== "other" && violations.length) fields[key].show(violations.map((v) => v.description).join("; "));
    }
    const shown = [errorAlert(error, { testid: errorTestid })];
    if (placed.other.length) {
      shown.push(
        h(
          "ul",
          { class: "save-segment-violations", "data-testid": `${testid}-violations`, "aria-label": "What else the request got wrong" },
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
        { "data-testid": `${testid}-result`, "data-segment": name },
        `Saved ${name}: its members are being computed${resultText(segment)}. `,
        h("a", { href: pageHash("segments", { segment: name }), "data-testid": `${testid}-link` }, `Open ${segment.displayName || name} on the Segments page`),
      ),
    );
    if (opener?.isConnected) opener.focus();
  };

  return {
    button(offer) {
      return h(
        "button",
        {
          type: "button",
          class: "save-segment-open",
          "data-testid": testid,
          ...offer.data,
          "aria-label": offer.ariaLabel,
          disabled: !allowed,
          "aria-describedby": allowed ? null : helpId,
          onclick: (event) => open(offer, event.currentTarget),
        },
        offer.text,
      );
    },
    footer() {
      holder = h("div", { "data-testid": `${testid}-holder` });
      live = h("div", { role: "status", "data-testid": `${testid}-live` });
      return h(
        "div",
        {},
        allowed ? null : h("p", { id: helpId, class: "help", "data-testid": `${testid}-unavailable` }, UNAVAILABLE_TEXT),
        holder,
        live,
      );
    },
  };
}
