// Trends (#/trends): events measured over time (QueryTrends). The form edits the series (each an event name,
// suggested from ListEventNames, or every event; and what it measures: total events, unique persons, events
// per person, or the sum, average, minimum, maximum, median or percentiles of a numeric property, revenue in
// one currency), the period (hour, day, week, month), the days and the time zone the periods begin in, and a
// breakdown (the event's channel, a property, or chosen segments' members); or switches to the sentiment of
// the events' text (the mean score and the shares negative, neutral and positive, as `wayline trends
// --sentiment`), or to the stickiness of the series' events (QueryStickiness, PostHog's Stickiness: of the
// persons who performed them, how many did so in exactly 1, 2, … of the range's periods; each series keeps its
// event alone, a bar chart and a table per series), or to their activity lifecycle (QueryActivityLifecycle,
// PostHog's Lifecycle: per period the persons new, returning, resurrecting and dormant; the events alone, no
// breakdown, a stacked bar chart and a table per series). Formulas compute lines from the series, named by their
// letters (`B / A * 100`), as PostHog's trends formulas do. The result: per series a line chart and its table of
// periods × values, the whole range last, then the formulas' chart and table (trends/draw.js; the sentiment
// mode's in trends/sentiment_draw.js, the stickiness mode's in trends/stickiness_draw.js, the lifecycle mode's
// in trends/lifecycle_draw.js); compared with the previous period (the range as long just before), each line
// has a dashed twin and each value its previous one and the change from it (in series mode: the sentiment's
// shares and score would be compared in points, not as a change; stickiness and the lifecycle have neither
// formulas nor a previous range). In lifecycle mode each count above zero (and each bar segment) lists the
// persons behind it (ListActivityLifecyclePersons, with the page's QueryActivityLifecycle request) under its
// series' table, in the Paths and Funnels pages' persons panel (paths/persons_panel.js): each a link to the
// Customer page, "More persons" paging on; and for a key that may create segments, each series' table is
// followed by "Save dormant as segment…" (trends/lifecycle_save.js: a segment of the persons dormant now, over
// rolling windows as long as two periods and one, from the panel the Customer value page saves with). Every
// choice is in the address (trends/query.js describes it), so a link reproduces the view. A request
// QueryTrends (QueryStickiness, QueryActivityLifecycle) refuses shows its error with the fields it names, a
// formula's also beside its input; so does a page of persons refused.

import "./trends.css";
import "./trends/persons.css";
import "./trends/save_segment.css";
import { ApiError, fieldViolations, SERVICES } from "../api.js";
import { clear, errorAlert, field, h, timeRange, timeRangeOf, uniqueId } from "../dom.js";
import { listAll } from "../lists.js";
import { drawKeptAnswer } from "./kept_answer.js";
import { eventNameSuggestions } from "./paths/event_names.js";
import { personsPanel } from "./paths/persons_panel.js";
import { mayCreateSegments } from "./segment_saver.js";
import { breakdownControls, segmentChoice } from "./segment_choice.js";
import { drawTrends } from "./trends/draw.js";
import { lifecycleSegmentActions } from "./trends/lifecycle_save.js";
import {
  ACTIVITY_STATUSES,
  DEFAULT_DAYS,
  DEFAULT_TIME_ZONE,
  MATHS,
  MAX_BREAKDOWN_SEGMENTS,
  MAX_FORMULAS,
  MAX_POPULATION_SEGMENTS,
  MAX_SERIES,
  NEUTRAL_BAND,
  PERIODS,
  breaksDown,
  lifecyclePersonsRequest,
  seriesLetter,
  trendSeries,
  trendsFilters,
  trendsParams,
  trendsQuery,
  violationField,
} from "./trends/query.js";

export { drawTrends } from "./trends/draw.js";

// Properties the property maths are most often asked for (any properties.<key> path may be typed).
const PROPERTY_SUGGESTIONS = ["revenue", "sentiment_score"];

// A checkbox with its label after it, as checkboxes read.
function checkbox(labelText, control) {
  control.id = control.id || uniqueId("field");
  return h("div", { class: "field field-checkbox" }, control, h("label", { for: control.id }, labelText));
}

function select(testid, options, value) {
  const element = h(
    "select",
    { "data-testid": testid },
    options.map((option) => h("option", { value: option.value }, option.label)),
  );
  element.value = value;
  return element;
}

function datalist(values) {
  const id = uniqueId("list");
  return { id, element: h("datalist", { id }, values.map((value) => h("option", { value }))) };
}

// The time zones to suggest: UTC first, then every zone the browser knows.
function timeZones() {
  const known = typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : [];
  return [...new Set([DEFAULT_TIME_ZONE, ...known])];
}

// The formulas' editor: up to MAX_FORMULAS expressions over the series' letters, each with its remove button
// and a place for what QueryTrends says is wrong with it. {element, expressions(), showError(index, text),
// setHidden(hidden)}; hidden in sentiment mode, whose series are the preset's, and in stickiness and lifecycle
// modes, which measure no values to compute with (the formulas are kept meanwhile).
function formulaEditor(initial) {
  const formulas = [...initial];
  const editor = h("fieldset", { class: "trends-series-editor trends-formula-editor", "data-testid": "trends-formula-editor" });

  // Read the inputs back into `formulas` before the editor is redrawn or the filters applied.
  const readFormulas = () => {
    editor.querySelectorAll("[data-formula-row] input").forEach((input, index) => {
      formulas[index] = input.value;
    });
  };

  const formulaRow = (expression, index) => {
    const name = `Formula ${index + 1}`;
    const errorId = uniqueId("formula-error");
    const input = h("input", {
      type: "text",
      value: expression,
      placeholder: "B / A * 100",
      maxlength: 200,
      size: 28,
      autocomplete: "off",
      spellcheck: "false",
      "data-testid": `trends-formula-${index}`,
    });
    const row = h(
      "div",
      { class: "trends-series-row", "data-formula-row": index },
      field(name, input, "The series' letters, numbers, + - * / and parentheses"),
      h(
        "button",
        {
          type: "button",
          class: "link-button",
          "data-testid": `trends-remove-formula-${index}`,
          "aria-label": `Remove ${name.toLowerCase()}`,
          onclick: () => {
            readFormulas();
            formulas.splice(index, 1);
            draw();
            editor.querySelector(`[data-testid=trends-formula-${Math.max(0, index - 1)}]`)?.focus();
          },
        },
        "Remove",
      ),
      h("p", { id: errorId, class: "trends-formula-error", "data-testid": `trends-formula-error-${index}`, hidden: true }),
    );
    // The error is read with the input (after its help).
    input.setAttribute("aria-describedby", `${input.getAttribute("aria-describedby")} ${errorId}`);
    return row;
  };

  const draw = () => {
    clear(editor);
    editor.append(
      h("legend", {}, `Formulas (at most ${MAX_FORMULAS}): lines computed from the series, named by their letters, as B / A * 100`),
    );
    formulas.forEach((expression, index) => editor.append(formulaRow(expression, index)));
    editor.append(
      h(
        "button",
        {
          type: "button",
          "data-testid": "trends-add-formula",
          disabled: formulas.length >= MAX_FORMULAS,
          onclick: () => {
            readFormulas();
            formulas.push("");
            draw();
            editor.querySelector(`[data-testid=trends-formula-${formulas.length - 1}]`)?.focus();
          },
        },
        "Add formula",
      ),
    );
  };
  draw();

  return {
    element: editor,
    expressions: () => {
      readFormulas();
      return formulas.map((expression) => expression.trim()).filter(Boolean).slice(0, MAX_FORMULAS);
    },
    // QueryTrends' description of what is wrong with formula `index`, beside its input.
    showError: (index, text) => {
      const message = editor.querySelector(`[data-testid=trends-formula-error-${index}]`);
      if (!message) return;
      message.textContent = text;
      message.hidden = false;
      editor.querySelector(`[data-testid=trends-formula-${index}]`).setAttribute("aria-invalid", "true");
    },
    setHidden: (hidden) => {
      editor.hidden = hidden;
    },
  };
}

// The filter form: the series are edited in place (rows added and removed), applied on submit by navigating
// to the address of the new filters. {element, showViolations(violations)}: a formula's violation is shown
// beside its input too.
function filterForm(filters, params, ctx, { suggestions, segments }) {
  const range = timeRange({ params, defaultDays: DEFAULT_DAYS, testid: "trends-range" });
  // The days are read in the chosen time zone (query.js's zoneRange), not in UTC as the shared legend says.
  range.element.querySelector("legend").textContent = "Time range (days in the time zone)";
  const rows = filters.series.map((row) => ({ ...row }));
  let mode = filters.mode;
  const properties = datalist(PROPERTY_SUGGESTIONS);
  const zones = datalist(timeZones());
  const editor = h("fieldset", { class: "trends-series-editor", "data-testid": "trends-series" });

  const modeSelect = select(
    "trends-mode",
    [
      { value: "series", label: "Series: counts, persons or a property" },
      { value: "sentiment", label: "Sentiment of the events' text" },
      { value: "stickiness", label: "Stickiness: persons by how many periods they performed the events in" },
      { value: "lifecycle", label: "Lifecycle: new, returning, resurrecting and dormant persons per period" },
    ],
    mode,
  );
  const periodSelect = select(
    "trends-period",
    Object.entries(PERIODS).map(([value, period]) => ({ value, label: period.label })),
    filters.period,
  );
  const compareBox = h("input", { type: "checkbox", checked: filters.compare, "data-testid": "trends-compare" });
  const compareField = checkbox("Compare with the previous period", compareBox);
  const zoneInput = h("input", {
    type: "text",
    value: filters.tz,
    list: zones.id,
    required: true,
    autocomplete: "off",
    spellcheck: "false",
    "data-testid": "trends-tz",
  });
  const breakdownSelect = select(
    "trends-breakdown",
    [
      { value: "", label: "None" },
      { value: "channel", label: "The event's channel" },
      { value: "property", label: "A property" },
      { value: "segment", label: "Segments (their members now)" },
    ],
    filters.breakdown,
  );
  const { propertyInput, propertyField, segmentSet, checkSegments } = breakdownControls({
    breakdownSelect,
    property: filters.property,
    segments,
    chosen: filters.segments,
    testid: "trends",
    max: MAX_BREAKDOWN_SEGMENTS,
  });
  const populationSet = segmentChoice({
    segments,
    chosen: filters.population,
    testid: "trends-population",
    legend: `Only the events of persons in every chosen segment (at most ${MAX_POPULATION_SEGMENTS}; none: everyone)`,
    empty: "No segments yet: every person's events count.",
  });

  // Read the rows' inputs back into `rows` before the editor is redrawn or the filters applied.
  const readRows = () => {
    editor.querySelectorAll("[data-series-row]").forEach((element, index) => {
      const value = (role) => element.querySelector(`[data-role=${role}]`).value;
      rows[index] = { event: value("event").trim(), math: value("math"), of: value("of").trim(), currency: value("currency").trim() };
    });
  };

  const seriesRow = (row, index) => {
    const sentiment = mode === "sentiment";
    // Sentiment, stickiness and the lifecycle keep each row's event alone: what is measured is theirs, not a
    // math's.
    const bare = mode !== "series";
    const name = sentiment ? `Event ${index + 1}` : `Series ${index + 1}`;
    const event = h("input", {
      type: "text",
      value: row.event,
      list: suggestions.id,
      placeholder: sentiment ? "Every event with a score" : "All events",
      autocomplete: "off",
      "data-role": "event",
      "data-testid": `trends-event-${index}`,
    });
    const math = select(
      `trends-math-${index}`,
      Object.entries(MATHS).map(([value, m]) => ({ value, label: m.label })),
      row.math,
    );
    math.dataset.role = "math";
    const of = h("input", {
      type: "text",
      value: row.of,
      list: properties.id,
      placeholder: "revenue",
      autocomplete: "off",
      "data-role": "of",
      "data-testid": `trends-of-${index}`,
    });
    const currency = h("input", {
      type: "text",
      value: row.currency,
      placeholder: "EUR",
      pattern: "\\s*[A-Za-z]{3}\\s*",
      maxlength: 5,
      title: "Three letters, such as EUR",
      autocomplete: "off",
      "data-role": "currency",
      "data-testid": `trends-currency-${index}`,
    });
    const mathField = field(`${name} measure`, math);
    const ofField = field(`${name} property`, of, "revenue, sentiment_score or properties.<key>");
    const currencyField = field(`${name} currency`, currency, "Revenue in this currency only (ISO 4217)");
    // The property shows for the property maths, the currency for revenue; each is then required.
    const sync = () => {
      mathField.hidden = bare;
      ofField.hidden = bare || !MATHS[math.value]?.ofProperty;
      of.required = !ofField.hidden;
      currencyField.hidden = ofField.hidden || of.value.trim() !== "revenue";
      currency.required = !currencyField.hidden;
    };
    math.addEventListener("change", sync);
    of.addEventListener("input", sync);
    sync();
    // The letter formulas name the series by (A for the first); the preset's series are not named, nor are
    // stickiness' and the lifecycle's (no formulas).
    const letter = bare ? null : seriesLetter(index);
    return h(
      "div",
      {
        class: "trends-series-row",
        "data-series-row": index,
        role: "group",
        "aria-label": letter ? `${name}, ${letter} in formulas` : name,
      },
      letter ? h("span", { class: "trends-series-letter", "data-testid": `trends-letter-${index}`, "aria-hidden": "true" }, letter) : null,
      field(`${name} event`, event),
      mathField,
      ofField,
      currencyField,
      h(
        "button",
        {
          type: "button",
          class: "link-button",
          "data-testid": `trends-remove-${index}`,
          "aria-label": `Remove ${name.toLowerCase()}`,
          disabled: rows.length <= 1,
          onclick: () => {
            readRows();
            rows.splice(index, 1);
            drawEditor();
            editor.querySelector(`[data-testid=trends-event-${Math.max(0, index - 1)}]`)?.focus();
          },
        },
        "Remove",
      ),
    );
  };

  const drawEditor = () => {
    clear(editor);
    const sentiment = mode === "sentiment";
    editor.append(
      h(
        "legend",
        {},
        sentiment
          ? `Events whose text's sentiment to measure (none: every event with a score; neutral: |score| < ${NEUTRAL_BAND})`
          : mode === "stickiness"
            ? `Series (1 to ${MAX_SERIES}): the events whose persons to count by how many periods they performed them in`
            : mode === "lifecycle"
              ? `Series (1 to ${MAX_SERIES}): the events whose persons to sort, per period, into new, returning, resurrecting and dormant`
              : `Series (1 to ${MAX_SERIES}): the events each counts and what it measures`,
      ),
    );
    rows.forEach((row, index) => editor.append(seriesRow(row, index)));
    editor.append(
      h(
        "button",
        {
          type: "button",
          "data-testid": "trends-add-series",
          disabled: rows.length >= MAX_SERIES,
          onclick: () => {
            readRows();
            rows.push(trendSeries(""));
            drawEditor();
            editor.querySelector(`[data-testid=trends-event-${rows.length - 1}]`)?.focus();
          },
        },
        sentiment ? "Add event" : "Add series",
      ),
    );
  };
  const formulas = formulaEditor(filters.formulas);
  const breakdownField = field("Breakdown", breakdownSelect);
  // The sentiment preset, stickiness and the lifecycle have neither formulas nor a comparison, and the lifecycle
  // no breakdown; all are kept meanwhile, for the other modes (the breakdown's controls disabled, so that what
  // they hold is not checked).
  const syncMode = () => {
    formulas.setHidden(mode !== "series");
    compareField.hidden = mode !== "series";
    const grouped = breaksDown(mode);
    breakdownField.hidden = !grouped;
    for (const control of [breakdownSelect, propertyInput, ...segmentSet.boxes]) control.disabled = !grouped;
    propertyField.hidden = !grouped || breakdownSelect.value !== "property";
    segmentSet.element.hidden = !grouped || breakdownSelect.value !== "segment";
  };
  modeSelect.addEventListener("change", () => {
    readRows();
    mode = modeSelect.value;
    drawEditor();
    syncMode();
  });
  drawEditor();
  syncMode();

  const element = h(
    "form",
    { class: "filter-bar trends-filters", "data-testid": "trends-filters", "aria-label": "Trend definition", novalidate: true },
    properties.element,
    zones.element,
    field("Measure", modeSelect),
    editor,
    formulas.element,
    field("Period", periodSelect),
    range.element,
    field("Time zone", zoneInput, "IANA name; periods begin at its midnight (weeks on Monday)"),
    compareField,
    breakdownField,
    propertyField,
    segmentSet.element,
    populationSet.element,
    h("div", { class: "field field-submit" }, h("button", { type: "submit", class: "primary", "data-testid": "trends-apply" }, "Apply")),
  );
  element.addEventListener("submit", (event) => {
    event.preventDefault();
    readRows();
    checkSegments();
    if (!element.reportValidity()) return;
    const breakdown = breaksDown(mode) ? breakdownSelect.value : "";
    const bare = mode === "stickiness" || mode === "lifecycle";
    const next = {
      mode,
      // Stickiness and the lifecycle send the events alone; the maths stay on the form, for series mode.
      series: rows.map((row) => (bare ? trendSeries(row.event) : trendSeries(row.event, row.math, row.of, row.currency))),
      formulas: mode === "series" ? formulas.expressions() : [],
      period: periodSelect.value,
      days: range.days(),
      tz: zoneInput.value.trim() || DEFAULT_TIME_ZONE,
      compare: mode === "series" && compareBox.checked,
      breakdown,
      property: breakdown === "property" ? propertyInput.value.trim() : "",
      segments: breakdown === "segment" ? segmentSet.chosen() : [],
      population: populationSet.chosen().slice(0, MAX_POPULATION_SEGMENTS),
    };
    // Not pageHash, which drops empty values: the series' parameters are matched by position, so an empty
    // one (the property of a count beside a sum's) must stay.
    ctx.navigate(`#/trends?${trendsParams(next)}`);
  });
  const showViolations = (violations) => {
    for (const violation of violations) {
      const formula = /^formulas\[(\d+)\]/.exec(violation.field ?? "");
      if (formula) formulas.showError(Number(formula[1]), violation.description);
    }
  };
  return { element, showViolations };
}

// An INVALID_ARGUMENT's field violations as a list beside its alert (the message says to see them).
function violationList(error) {
  const violations = fieldViolations(error);
  if (violations.length === 0) return null;
  return h(
    "ul",
    { class: "trends-violations", "data-testid": "trends-violations", "aria-label": "What the request got wrong" },
    violations.map((violation) =>
      h("li", { "data-field": violation.field }, h("strong", {}, violationField(violation.field)), `: ${violation.description}`),
    ),
  );
}

// The list of the persons behind a lifecycle count (ListActivityLifecyclePersons for `lifecycle`, the page's
// QueryActivityLifecycle request), shown under the series' table: {hide(), open(drawLifecycle's onPersons
// argument)}. Closing it gives the focus back to the count that opened it; a page refused as INVALID_ARGUMENT
// has the fields it names listed under its alert, as the page's own refusals do.
function lifecyclePersons(ctx, lifecycle) {
  const panel = personsPanel({ testid: "trends-lifecycle-persons" });
  let opener = null;
  let refused = null;
  panel.element.addEventListener("click", (event) => {
    // The close button has already emptied the panel: the click still reaches it, from the button removed.
    if (event.target.closest?.("[data-testid=persons-close]") && opener?.isConnected) opener.focus();
  });
  // The panel shows a failed page's alert itself; the violations go after it.
  new MutationObserver(() => {
    const alert = refused && panel.element.querySelector("[data-testid=error]");
    if (!alert) return;
    const list = violationList(refused);
    refused = null;
    if (list) alert.after(list);
  }).observe(panel.element, { childList: true });
  return {
    hide: panel.hide,
    open({ section, seriesIndex, status, periodStart, title, opener: button }) {
      opener = button;
      section.append(panel.element);
      const fetchPage = (pageToken) =>
        ctx
          .call(SERVICES.journeys, "ListActivityLifecyclePersons", lifecyclePersonsRequest(lifecycle, { seriesIndex, periodStart, status, pageToken }))
          .catch((error) => {
            refused = error instanceof ApiError && error.code === "invalid_argument" ? error : null;
            throw error;
          });
      panel.show(title, fetchPage, { series: seriesIndex, period: periodStart, status: ACTIVITY_STATUSES[status] });
    },
  };
}

export default {
  id: "trends",
  title: "Trends",
  async render(root, ctx) {
    const filters = trendsFilters(ctx.params);
    root.append(
      h("h1", {}, "Trends"),
      h(
        "p",
        { class: "lede" },
        "Events measured over time: how many, by how many persons, or how much of a property, per hour, day, week or month; what customers felt; how habitual they are, the persons by how many periods they performed them in; or how their persons come, stay, come back and go, period by period.",
      ),
    );
    const suggestions = eventNameSuggestions(ctx.call, timeRangeOf(filters.days));
    // The segments to offer as a breakdown; without them (none, or not readable) the page still works. In
    // lifecycle mode, also whether the key may save a series' dormant persons as a segment.
    const lifecycle = filters.mode === "lifecycle";
    const [segments, mayCreate] = await Promise.all([
      listAll(ctx.call, SERVICES.journeys, "ListSegments", "segments").catch(() => []),
      lifecycle ? mayCreateSegments(ctx) : false,
    ]);
    const segmentNames = new Map(segments.map((segment) => [segment.name, segment.displayName || segment.name]));
    const form = filterForm(filters, ctx.params, ctx, { suggestions, segments });
    root.append(suggestions.element, form.element);
    const results = h("div", { class: "results", "data-testid": "trends-results" });
    root.append(results);
    // Stickiness asks QueryStickiness, the lifecycle QueryActivityLifecycle, with the same range, periods, zone,
    // population (and breakdown, but for the lifecycle).
    const { method, request } = trendsQuery(filters);
    // The lifecycle's counts list their persons, with the very request the answer came from.
    const persons = lifecycle ? lifecyclePersons(ctx, request) : null;
    // And each series' dormant persons may be saved as a segment, for a key that may create one.
    const segmentActions = lifecycle
      ? lifecycleSegmentActions(ctx, request, { allowed: mayCreate, names: segmentNames })
      : null;
    try {
      await drawKeptAnswer(
        results,
        (options) => ctx.call(SERVICES.journeys, method, request, options),
        (into, response) => {
          persons?.hide();
          drawTrends(into, response, filters, request, {
            segmentNames: request.breakdown?.segments ? segmentNames : null,
            onPersons: persons?.open ?? null,
            segmentActions,
          });
        },
      );
    } catch (error) {
      // A request QueryTrends (QueryStickiness, QueryActivityLifecycle) refuses: its alert and the fields it
      // names, under the form that holds them.
      if (!(error instanceof ApiError) || error.code !== "invalid_argument") throw error;
      results.replaceChildren(...[errorAlert(error), violationList(error)].filter(Boolean));
      form.showViolations(fieldViolations(error));
    }
  },
};
