// Building DOM from data without ever parsing data as HTML, and the formats every page shares.
//
// Rule: data goes into the page only as text nodes or attribute values (h() below); no innerHTML,
// insertAdjacentHTML or outerHTML with anything that came from the network.

import { answerAge } from "./api.js";

const SVG_NAMESPACE = "http://www.w3.org/2000/svg";
const URL_ATTRIBUTES = new Set(["href", "src", "action", "formaction", "xlink:href"]);
// Set as properties, not attributes, so the live state follows (an input's value, a box's checked state).
const PROPERTY_ATTRIBUTES = new Set(["value", "checked", "selected", "indeterminate"]);

// Whether a URL may go into an href/src-like attribute: relative URLs, in-page hashes, http(s), mailto and
// data images; never javascript: or other schemes. The scheme is read as the browser's URL parser reads it
// (WHATWG URL): leading and trailing C0 controls and spaces dropped, tabs and newlines removed anywhere, so
// "java\tscript:", "\x01javascript:" and "javascript\n:" are the javascript: URLs they are to a browser.
export function isSafeUrl(value) {
  const text = String(value)
    .replace(/[\t\n\r]/g, "")
    .replace(/^[\u0000-\u0020]+|[\u0000-\u0020]+$/g, "");
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(text);
  if (!scheme) return true;
  const name = scheme[1].toLowerCase();
  return name === "http" || name === "https" || name === "mailto" || /^data:image\//i.test(text);
}

function appendChildren(element, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false || child === true) continue;
    if (Array.isArray(child)) appendChildren(element, child);
    else if (child instanceof Node) element.append(child);
    else element.append(document.createTextNode(String(child)));
  }
}

// h("button", {class: "primary", "data-testid": "apply", onclick: () => ...}, "Apply")
// attrs: `class` (string or array), `style` (an object of CSS properties, set through the CSSOM), `on<event>`
// (a function; a string is refused: no inline handlers), `value`/`checked`/`selected` (properties), `true`
// (a bare boolean attribute), `false`/`null`/`undefined` (left out); everything else is set as an attribute.
export function h(tag, attrs = {}, ...children) {
  const isSvg = tag === "svg" || attrs?.xmlns === SVG_NAMESPACE;
  const element = isSvg ? document.createElementNS(SVG_NAMESPACE, tag) : document.createElement(tag);
  // Set after the children are in: a <select>'s value can only name one of its options.
  const properties = [];
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.toLowerCase().startsWith("on")) {
      if (typeof value !== "function") throw new TypeError(`h(): ${name} must be a function`);
      element.addEventListener(name.slice(2).toLowerCase(), value);
    } else if (name === "class") {
      const names = Array.isArray(value) ? value.filter(Boolean).join(" ") : String(value);
      if (names) element.setAttribute("class", names);
    } else if (name === "style") {
      if (typeof value !== "object") throw new TypeError("h(): style must be an object of CSS properties");
      for (const [property, styleValue] of Object.entries(value)) {
        if (styleValue === null || styleValue === undefined) continue;
        if (property.includes("-")) element.style.setProperty(property, String(styleValue));
        else element.style[property] = String(styleValue);
      }
    } else if (PROPERTY_ATTRIBUTES.has(name) && !isSvg) {
      properties.push([name, value]);
    } else if (URL_ATTRIBUTES.has(name) && !isSafeUrl(value)) {
      throw new TypeError(`h(): refusing the URL ${JSON.stringify(String(value))} in ${name}`);
    } else if (value === true) {
      element.setAttribute(name, "");
    } else {
      element.setAttribute(name, String(value));
    }
  }
  appendChildren(element, children);
  for (const [name, value] of properties) element[name] = value;
  return element;
}

// Remove every child of an element.
export function clear(element) {
  element.replaceChildren();
  return element;
}

// ---------------------------------------------------------------------------------------------------------
// Formats. Fixed to English conventions (1,234.5) rather than the browser's locale, so that what the tests
// read and what a mailed report shows do not depend on the machine. int64 fields arrive as strings.

const INTEGER_FORMAT = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
const DECIMAL_FORMAT = new Intl.NumberFormat("en-US", { maximumFractionDigits: 2 });
const PERCENT_FORMAT = new Intl.NumberFormat("en-US", {
  style: "percent",
  minimumFractionDigits: 1,
  maximumFractionDigits: 1,
});
const EMPTY = "—";

// A number, an int64/uint64 string or a double; "—" for missing or non-numeric values.
export function formatNumber(n) {
  if (n === null || n === undefined || n === "") return EMPTY;
  const value = Number(n);
  if (!Number.isFinite(value)) return EMPTY;
  return Number.isInteger(value) ? INTEGER_FORMAT.format(value) : DECIMAL_FORMAT.format(value);
}

// A ratio (0.125) as a percentage ("12.5%").
export function formatPercent(ratio) {
  if (ratio === null || ratio === undefined || ratio === "") return EMPTY;
  const value = Number(ratio);
  if (!Number.isFinite(value)) return EMPTY;
  return PERCENT_FORMAT.format(value);
}

// Seconds as a number, or a proto3 JSON Duration ("3600s", "1.5s"), to "1d 2h", "3h 4m", "5m 6s", "7.5s".
export function formatDuration(seconds) {
  const total = parseDuration(seconds);
  if (total === null) return EMPTY;
  const sign = total < 0 ? "-" : "";
  let rest = Math.abs(total);
  if (rest < 60) return `${sign}${DECIMAL_FORMAT.format(Math.round(rest * 10) / 10)}s`;
  rest = Math.round(rest);
  const days = Math.floor(rest / 86400);
  const hours = Math.floor((rest % 86400) / 3600);
  const minutes = Math.floor((rest % 3600) / 60);
  const secs = rest % 60;
  if (days > 0) return `${sign}${days}d${hours ? ` ${hours}h` : ""}`;
  if (hours > 0) return `${sign}${hours}h${minutes ? ` ${minutes}m` : ""}`;
  return `${sign}${minutes}m${secs ? ` ${secs}s` : ""}`;
}

// Seconds from a number or a proto3 JSON Duration string; null when missing or malformed.
export function parseDuration(value) {
  if (value === null || value === undefined || value === "") return null;
  if (typeof value === "number") return Number.isFinite(value) ? value : null;
  const match = /^(-?\d+(?:\.\d+)?)s$/.exec(String(value));
  if (match) return Number(match[1]);
  const number = Number(value);
  return Number.isFinite(number) ? number : null;
}

// An RFC 3339 timestamp as "2026-12-01 16:11:44 UTC" (UTC, like the day buckets of the analytics RPCs).
export function formatTime(rfc3339) {
  if (!rfc3339) return EMPTY;
  const date = new Date(rfc3339);
  if (Number.isNaN(date.getTime())) return EMPTY;
  return `${date.toISOString().slice(0, 19).replace("T", " ")} UTC`;
}

// An RFC 3339 timestamp as its UTC day, "2026-12-01".
export function formatDate(rfc3339) {
  if (!rfc3339) return EMPTY;
  const date = new Date(rfc3339);
  if (Number.isNaN(date.getTime())) return EMPTY;
  return date.toISOString().slice(0, 10);
}

// An enum value's name for people: enumLabel("CHANNEL_CALL_CENTER", "CHANNEL_") → "Call center".
export function enumLabel(name, prefix = "") {
  if (!name) return EMPTY;
  let text = String(name);
  if (prefix && text.startsWith(prefix)) text = text.slice(prefix.length);
  text = text.toLowerCase().replaceAll("_", " ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

// ---------------------------------------------------------------------------------------------------------
// Tables: every chart's numbers also stand in an accessible table (the tests read them there).

// columns: [{key, label, numeric?, format?(value, row) -> string|Node, value?(row) -> raw value}].
// The first column heads its row (<th scope="row">). Each cell carries data-key (the column's key); numeric
// cells also carry data-value (the raw value, before formatting). rowKey?(row) sets each row's data-row.
export function dataTable({ caption, columns, rows, testid, rowKey, empty = "No data for this selection." }) {
  const head = h(
    "thead",
    {},
    h(
      "tr",
      {},
      columns.map((column) => h("th", { scope: "col", class: column.numeric ? "numeric" : null }, column.label)),
    ),
  );
  const body = h("tbody");
  if (!rows || rows.length === 0) {
    body.append(h("tr", {}, h("td", { colspan: columns.length, class: "empty" }, empty)));
  }
  for (const row of rows ?? []) {
    const cells = columns.map((column, index) => {
      const raw = column.value ? column.value(row) : row[column.key];
      const shown = column.format ? column.format(raw, row) : column.numeric ? formatNumber(raw) : raw;
      const attrs = {
        class: column.numeric ? "numeric" : null,
        "data-key": column.key,
        "data-value": column.numeric && raw !== null && raw !== undefined ? String(raw) : null,
      };
      if (index === 0) attrs.scope = "row";
      return h(index === 0 ? "th" : "td", attrs, shown ?? EMPTY);
    });
    body.append(h("tr", { "data-row": rowKey ? rowKey(row) : null }, cells));
  }
  return h("table", { class: "data-table", "data-testid": testid }, h("caption", {}, caption), head, body);
}

let uniqueCounter = 0;
// An id unique in the document, for aria-controls, label for= and the like.
export function uniqueId(prefix = "id") {
  uniqueCounter += 1;
  return `${prefix}-${uniqueCounter}`;
}

// A chart and its table under one "Show table" toggle button (keyboard-reachable, aria-expanded).
// Returns the wrapper; append it where the chart goes. testid names the button `<testid>-toggle`.
export function toggleTable(chartEl, table, { open = false, testid = table.dataset.testid } = {}) {
  const tableId = table.id || uniqueId("table");
  table.id = tableId;
  const holder = h("div", { class: "table-holder" }, table);
  holder.hidden = !open;
  const button = h(
    "button",
    {
      type: "button",
      class: "link-button",
      "aria-expanded": String(open),
      "aria-controls": tableId,
      "data-testid": testid ? `${testid}-toggle` : null,
      onclick: () => {
        holder.hidden = !holder.hidden;
        button.setAttribute("aria-expanded", String(!holder.hidden));
        button.textContent = holder.hidden ? "Show table" : "Hide table";
      },
    },
    open ? "Hide table" : "Show table",
  );
  return h("div", { class: "chart-with-table" }, chartEl, button, holder);
}

// ---------------------------------------------------------------------------------------------------------
// Filter bars: forms of labelled inputs that hand their values to a function instead of submitting.

// fields: [{name, label, type?: "text"|"number"|"search"|"date"|"select"|"checkbox", value?, options?:
// [{value, label}] | [string], required?, placeholder?, help?, testid?, min?, max?, step?} | Node].
// A Node (e.g. timeRange().element) is placed as it is. onSubmit(values, event) receives {name: value}
// (checkboxes as booleans, numbers as numbers or null). Returns the <form>; formValues(form) reads it again.
export function form({ fields, onSubmit, submitLabel = "Apply", testid, label, submitTestid }) {
  const element = h("form", { class: "filter-bar", "data-testid": testid, "aria-label": label });
  for (const field of fields) {
    if (field instanceof Node) {
      element.append(field);
      continue;
    }
    element.append(formField(field));
  }
  element.append(
    h(
      "div",
      { class: "field field-submit" },
      h(
        "button",
        { type: "submit", class: "primary", "data-testid": submitTestid ?? (testid ? `${testid}-submit` : null) },
        submitLabel,
      ),
    ),
  );
  element.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!element.reportValidity()) return;
    if (onSubmit) onSubmit(formValues(element), event);
  });
  return element;
}

function formField(field) {
  const id = uniqueId(`field-${field.name}`);
  const type = field.type ?? "text";
  const helpId = field.help ? `${id}-help` : null;
  const common = {
    id,
    name: field.name,
    required: field.required ? true : null,
    "data-testid": field.testid ?? null,
    "aria-describedby": helpId,
    "data-type": type,
  };
  let control;
  if (type === "select") {
    const options = (field.options ?? []).map((option) =>
      typeof option === "object" ? option : { value: option, label: option },
    );
    control = h(
      "select",
      common,
      options.map((option) => h("option", { value: String(option.value) }, option.label)),
    );
    if (field.value !== undefined && field.value !== null) control.value = String(field.value);
  } else if (type === "checkbox") {
    control = h("input", { ...common, type: "checkbox", checked: Boolean(field.value) });
  } else {
    control = h("input", {
      ...common,
      type,
      value: field.value ?? "",
      placeholder: field.placeholder,
      min: field.min,
      max: field.max,
      step: field.step,
      autocomplete: "off",
    });
  }
  const labelElement = h("label", { for: id }, field.label);
  const help = field.help ? h("span", { id: helpId, class: "help" }, field.help) : null;
  return type === "checkbox"
    ? h("div", { class: "field field-checkbox" }, control, labelElement, help)
    : h("div", { class: "field" }, labelElement, control, help);
}

// The current values of a form() as {name: value}.
export function formValues(formElement) {
  const values = {};
  for (const control of formElement.querySelectorAll("input[name], select[name]")) {
    const type = control.dataset.type;
    if (type === "checkbox") values[control.name] = control.checked;
    else if (type === "number") values[control.name] = control.value === "" ? null : Number(control.value);
    else values[control.name] = control.value;
  }
  return values;
}

// ---------------------------------------------------------------------------------------------------------
// Time ranges: the analytics RPCs take a wayline.event.v1.TimeRange {start, end} (start included, end
// excluded, RFC 3339). The console picks whole UTC days: "from" 2026-11-01 and "to" 2026-11-30 (both
// included) become {start: "2026-11-01T00:00:00Z", end: "2026-12-01T00:00:00Z"}. In a page's hash the range
// is `from=YYYY-MM-DD&to=YYYY-MM-DD` (or `days=N`, the last N days up to today included).

const DAY_MS = 86400000;
const DATE_PATTERN = /^\d{4}-\d{2}-\d{2}$/;

function utcMidnight(date) {
  return Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate());
}

function dayString(ms) {
  return new Date(ms).toISOString().slice(0, 10);
}

// {from, to} (inclusive UTC days, "YYYY-MM-DD") from a page's params; the last `defaultDays` by default.
export function daysFromParams(params, { defaultDays = 30, now = new Date() } = {}) {
  const from = params?.get("from");
  const to = params?.get("to");
  if (from && to && DATE_PATTERN.test(from) && DATE_PATTERN.test(to) && from <= to) return { from, to };
  const days = Number(params?.get("days")) > 0 ? Math.floor(Number(params.get("days"))) : defaultDays;
  const today = utcMidnight(now);
  return { from: dayString(today - (days - 1) * DAY_MS), to: dayString(today) };
}

// The request's TimeRange for inclusive UTC days: {start, end} in RFC 3339.
export function timeRangeOf({ from, to }) {
  const start = Date.parse(`${from}T00:00:00Z`);
  const end = Date.parse(`${to}T00:00:00Z`) + DAY_MS;
  return { start: new Date(start).toISOString().replace(".000Z", "Z"), end: new Date(end).toISOString().replace(".000Z", "Z") };
}

// A "Time range" fieldset with From and To date inputs (labelled, UTC days) and preset buttons.
// Returns {element, value() -> {start, end} (a TimeRange for requests), days() -> {from, to},
// setParams(params) writes from/to into URLSearchParams}.
export function timeRange({ params = null, defaultDays = 30, testid = "time-range", presets = [7, 30, 90, 365] } = {}) {
  const initial = daysFromParams(params, { defaultDays });
  const fromId = uniqueId("range-from");
  const toId = uniqueId("range-to");
  const fromInput = h("input", { id: fromId, type: "date", name: "from", value: initial.from, required: true, "data-testid": `${testid}-from` });
  const toInput = h("input", { id: toId, type: "date", name: "to", value: initial.to, required: true, "data-testid": `${testid}-to` });
  const presetButtons = presets.map((days) =>
    h(
      "button",
      {
        type: "button",
        class: "link-button",
        "data-testid": `${testid}-last-${days}`,
        onclick: () => {
          const range = daysFromParams(new URLSearchParams({ days: String(days) }));
          fromInput.value = range.from;
          toInput.value = range.to;
        },
      },
      `Last ${days} days`,
    ),
  );
  const element = h(
    "fieldset",
    { class: "time-range", "data-testid": testid },
    h("legend", {}, "Time range (UTC days)"),
    h("div", { class: "field" }, h("label", { for: fromId }, "From"), fromInput),
    h("div", { class: "field" }, h("label", { for: toId }, "To"), toInput),
    h("div", { class: "presets" }, presetButtons),
  );
  const days = () => {
    const from = fromInput.value;
    const to = toInput.value;
    if (DATE_PATTERN.test(from) && DATE_PATTERN.test(to) && from <= to) return { from, to };
    return initial;
  };
  return {
    element,
    days,
    value: () => timeRangeOf(days()),
    setParams(target) {
      const { from, to } = days();
      target.set("from", from);
      target.set("to", to);
      target.delete("days");
      return target;
    },
  };
}

// ---------------------------------------------------------------------------------------------------------
// States.

// An error shown in place: role="alert", data-testid="error", the Connect code and the message.
export function errorAlert(error, { testid = "error" } = {}) {
  const code = error && typeof error.code === "string" ? error.code : "internal";
  const message = error && error.message ? error.message : String(error);
  return h(
    "div",
    { class: "alert", role: "alert", "data-testid": testid, "data-code": code },
    h("strong", { class: "alert-code" }, code),
    ": ",
    h("span", { class: "alert-message" }, message),
  );
}

// A polite "Loading…" status line.
export function loading(text = "Loading…") {
  return h("p", { class: "loading", role: "status", "data-testid": "loading" }, text);
}

// A short note when there is nothing to show.
export function emptyState(text) {
  return h("p", { class: "empty-state", "data-testid": "empty" }, text);
}

// A titled part of a page: <section> with an <h2> (pages keep one <h1>, sections below it).
export function section({ title, testid, level = 2 }, ...children) {
  return h("section", { "data-testid": testid }, h(`h${level}`, {}, title), ...children);
}

// Headline numbers as a description list: items [{label, value, testid?}], value a string or Node (format it
// first: formatNumber, formatPercent, ...).
export function keyFigures(items, { testid, label } = {}) {
  return h(
    "dl",
    { class: "key-figures", "data-testid": testid, "aria-label": label },
    items.map((item) =>
      h("div", { class: "key-figure", "data-testid": item.testid }, h("dt", {}, item.label), h("dd", {}, item.value ?? EMPTY)),
    ),
  );
}

// The hash of a console page with its params: pageHash("customer", {identifier: "email:ann+1@x.com"}) →
// "#/customer?identifier=email%3Aann%2B1%40x.com". Use it for links and ctx.navigate(): params are read back
// with URLSearchParams, which would turn a bare "+" into a space. Empty and null values are left out.
export function pageHash(id, params = {}) {
  const query = new URLSearchParams();
  const entries = params instanceof URLSearchParams ? params.entries() : Object.entries(params);
  for (const [name, value] of entries) {
    if (value === null || value === undefined || value === "") continue;
    query.append(name, String(value));
  }
  const text = query.toString();
  return `#/${encodeURIComponent(id)}${text ? `?${text}` : ""}`;
}

// A line telling how old an answer is ("Computed just now", "Answer from 3h 4m ago") and, when onRefresh is
// given, a Refresh button (data-testid="refresh") that should call again without maxStale. Nothing for a
// response call() did not return (a report's recorded answer).
export function freshness(response, { onRefresh, testid = "freshness" } = {}) {
  const age = answerAge(response);
  if (age === null) return null;
  const text = age < 1 ? "Computed just now." : `Answer from ${formatDuration(age)} ago, kept by the gateway.`;
  return h(
    "p",
    { class: "freshness", "data-testid": testid, "data-age": String(age), role: "status" },
    text,
    onRefresh
      ? [" ", h("button", { type: "button", class: "link-button", "data-testid": "refresh", onclick: onRefresh }, "Refresh")]
      : null,
  );
}

// A labelled control with an optional help text that describes it, in the form layout of the pages' filters.
export function field(labelText, control, help) {
  const id = control.id || uniqueId("field");
  control.id = id;
  const helpId = help ? `${id}-help` : null;
  if (helpId) control.setAttribute("aria-describedby", helpId);
  return h("div", { class: "field" }, h("label", { for: id }, labelText), control, help ? h("span", { id: helpId, class: "help" }, help) : null);
}
