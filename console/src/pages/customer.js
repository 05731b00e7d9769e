// The Customer page (#/customer): find a customer by any identifier (`?identifier=email:ann@example.com`) or
// person id (`?person=<id>`), then show their profile and lifecycle stage, their value and RFM, their
// cross-channel timeline (filtered by channel, event name and days, in either order; the filters are in the
// address too: customer/timeline_filters.js), their identity graph with its merge history (and, for an admin
// key, an unmerge per identifier), and their recent decisions with each decision's trace. Without a customer
// named, the most recently seen profiles are listed, each a link to its page.
//
// Each section loads on its own and shows its own error, so one unavailable service leaves the rest.

import { ApiError, SERVICES } from "../api.js";
import { disposeCharts } from "../charts.js";
import { dataTable, errorAlert, form, formatTime, h, loading, pageHash } from "../dom.js";
import { drawDecisions, drawDecisionTrace } from "./customer/decisions.js";
import { drawIdentityGraph } from "./customer/identity_graph.js";
import { drawIdentifiers, drawSummary, drawValue, identifierText, personLink } from "./customer/profile.js";
import { drawEventDetails } from "./customer/event_details.js";
import { drawTimeline } from "./customer/timeline.js";
import {
  narrowsTimeline,
  timelineFilterForm,
  timelineFiltersFromParams,
  timelineRequestFields,
  withTimelineParams,
} from "./customer/timeline_filters.js";

const TIMELINE_PAGE = 100; // events per timeline page; `?events=N` asks for another size (1 to 1,000)
const DECISIONS_PAGE = 20;
const RECENT_PROFILES = 20;
const DEFAULT_CURRENCY = "USD";
const IDENTIFIER_TYPES = [
  { value: "email", label: "Email" },
  { value: "phone", label: "Phone" },
  { value: "user_id", label: "User id" },
  { value: "anonymous_id", label: "Anonymous id (cookie)" },
  { value: "device_id", label: "Device id" },
  { value: "crm_id", label: "CRM id" },
  { value: "loyalty_id", label: "Loyalty id" },
  { value: "person_id", label: "Person id" },
];

// The timeline's page size: `?events=N` when it is a whole number from 1 to 1,000, else TIMELINE_PAGE.
function timelinePageSize(params) {
  const asked = Number(params.get("events"));
  return Number.isInteger(asked) && asked >= 1 && asked <= 1000 ? asked : TIMELINE_PAGE;
}

// `?identifier=type:value` or `?person=id` as a PersonRef (proto3 JSON); null when the page names nobody.
export function personRefFromParams(params) {
  const person = params.get("person");
  if (person) return { personId: person };
  const identifier = params.get("identifier") ?? "";
  const colon = identifier.indexOf(":");
  if (colon <= 0 || colon === identifier.length - 1) return null;
  return { identifier: { type: identifier.slice(0, colon), value: identifier.slice(colon + 1) } };
}

function refText(ref) {
  return ref.personId ? `person id ${ref.personId}` : `${ref.identifier.type} ${ref.identifier.value}`;
}

function section(title, testid) {
  const body = h("div", { class: "section-body" });
  const element = h("section", { class: "card", "data-testid": testid, "aria-label": title }, h("h2", {}, title), body);
  return { element, body };
}

// Fills a section's body in two steps: a loading line while `load()` fetches, then the drawing function it
// returns draws into the body (in the page by then, so that charts take its size). A failure is shown in
// place; an UNAUTHENTICATED one has already sent the user back to sign in (ctx.call), so it is dropped.
// Answers true when the body was drawn.
async function fill(body, load) {
  disposeCharts(body);
  body.replaceChildren(loading());
  try {
    const draw = await load();
    disposeCharts(body);
    body.replaceChildren();
    draw(body);
    return true;
  } catch (error) {
    if (error instanceof ApiError && error.code === "unauthenticated") return false;
    disposeCharts(body);
    body.replaceChildren(errorAlert(error));
    return false;
  }
}

function searchForm(ctx, ref) {
  const current = ref?.personId
    ? { type: "person_id", value: ref.personId }
    : { type: ref?.identifier?.type ?? "email", value: ref?.identifier?.value ?? "" };
  return form({
    testid: "customer-search",
    label: "Find a customer",
    submitLabel: "Find",
    fields: [
      { name: "type", label: "Identifier type", type: "select", options: IDENTIFIER_TYPES, value: current.type, testid: "customer-search-type" },
      { name: "value", label: "Identifier value", type: "search", value: current.value, required: true, testid: "customer-search-value", placeholder: "ann@example.com" },
    ],
    onSubmit: ({ type, value }) => {
      const text = String(value).trim();
      if (!text) return;
      ctx.navigate(pageHash("customer", type === "person_id" ? { person: text } : { identifier: `${type}:${text}` }));
    },
  });
}

async function renderRecent(root, ctx) {
  const recent = section("Recently seen customers", "customer-recent-section");
  root.append(recent.element);
  await fill(recent.body, async () => {
    const response = await ctx.call(SERVICES.identity, "ListProfiles", { pageSize: RECENT_PROFILES });
    return (body) => body.append(
      dataTable({
        caption: `The ${RECENT_PROFILES} most recently seen profiles`,
        testid: "customer-recent",
        rowKey: (profile) => profile.personId,
        empty: "No customer in this tenant yet.",
        columns: [
          { key: "personId", label: "Person", format: personLink },
          { key: "identifiers", label: "Identifiers", format: (ids) => ids.map((i) => identifierText(i.identifier)).join(", ") },
          { key: "lastSeenTime", label: "Last seen (UTC)", format: formatTime },
        ],
        rows: response.profiles,
      }),
    );
  });
}

// The currency of the customer's most recent event with revenue, so their value is counted in it.
function currencyOf(events) {
  return events.find((event) => event.revenue && event.revenue.currencyCode)?.revenue.currencyCode ?? null;
}

class CustomerView {
  constructor(root, ctx, ref) {
    this.root = root;
    this.ctx = ctx;
    this.ref = ref;
    this.sections = {
      profile: section("Profile", "customer-profile"),
      value: section("Customer value", "customer-value-section"),
      timeline: section("Timeline", "customer-timeline-section"),
      identity: section("Identity graph and merges", "customer-identity-section"),
      decisions: section("Recent decisions", "customer-decisions-section"),
    };
    this.canUnmerge = null; // null: not known yet
    this.timelinePage = timelinePageSize(ctx.params);
    this.timelineFilters = timelineFiltersFromParams(ctx.params);
  }

  async show() {
    let profile;
    try {
      profile = (await this.ctx.call(SERVICES.identity, "GetProfile", { person: this.ref })).profile;
    } catch (error) {
      if (error instanceof ApiError && error.code === "not_found") {
        this.root.append(
          h("p", { class: "empty-state", role: "status", "data-testid": "customer-not-found" }, `No customer found with ${refText(this.ref)}.`),
        );
        return;
      }
      throw error;
    }
    this.profile = profile;
    this.root.append(
      h("p", { class: "lead" }, "Customer ", h("strong", { "data-testid": "customer-person-id" }, profile.personId)),
      ...Object.values(this.sections).map((s) => s.element),
    );
    this.canUnmerge = await this.mayUnmerge(profile);
    await Promise.all([this.showProfile(), this.showTimelineAndValue(), this.showIdentity(), this.showDecisions()]);
  }

  // Whether the key may unmerge: the scopes when the shell knows them, else a validate-only unmerge (which
  // changes nothing) answered anything but PERMISSION_DENIED.
  async mayUnmerge(profile) {
    if (this.ctx.scopes instanceof Set) return this.ctx.scopes.has("admin") || this.ctx.scopes.has("SCOPE_ADMIN");
    if (profile.identifiers.length === 0) return false;
    try {
      await this.ctx.call(SERVICES.identity, "UnmergeIdentifier", {
        personId: profile.personId,
        identifier: profile.identifiers[profile.identifiers.length - 1].identifier,
        reason: "console: may this key unmerge? (validate only)",
        validateOnly: true,
      });
      return true;
    } catch (error) {
      if (error instanceof ApiError && error.code === "unauthenticated") throw error;
      return !(error instanceof ApiError && error.code === "permission_denied");
    }
  }

  async reloadProfile() {
    this.profile = (await this.ctx.call(SERVICES.identity, "GetProfile", { person: { personId: this.profile.personId } })).profile;
  }

  async showProfile() {
    await fill(this.sections.profile.body, async () => {
      const lifecycle = await this.ctx.call(SERVICES.journeys, "GetLifecycleStages", {
        persons: [{ personId: this.profile.personId }],
      });
      return (body) => {
        drawSummary(body, this.profile, lifecycle.persons[0]);
        drawIdentifiers(body, this.profile, { actionFor: this.canUnmerge ? (row) => this.unmergeButton(row) : null });
        if (!this.canUnmerge) {
          body.append(h("p", { class: "help", "data-testid": "unmerge-unavailable" }, "Unmerging an identifier needs a key with the admin scope."));
        }
        this.confirmHolder = h("div", { "data-testid": "unmerge-panel" });
        body.append(this.confirmHolder);
      };
    });
  }

  unmergeButton(row) {
    if (this.profile.identifiers.length < 2) return "—"; // a profile keeps at least one identifier
    const text = identifierText(row.identifier);
    return h(
      "button",
      {
        type: "button",
        class: "danger",
        "data-testid": "unmerge-button",
        "data-identifier": text,
        "aria-label": `Unmerge ${text} into a profile of its own`,
        onclick: (event) => this.confirmUnmerge(row.identifier, event.currentTarget),
      },
      "Unmerge…",
    );
  }

  confirmUnmerge(identifier, opener) {
    const text = identifierText(identifier);
    const reasonId = `unmerge-reason-${Date.now()}`;
    const reason = h("input", { id: reasonId, name: "reason", type: "text", required: true, "data-testid": "unmerge-reason", autocomplete: "off" });
    const status = h("div", { "aria-live": "polite" });
    const close = () => {
      this.confirmHolder.replaceChildren();
      opener?.focus();
    };
    const panel = h(
      "form",
      { class: "card", role: "group", "aria-labelledby": `${reasonId}-title`, "data-testid": "unmerge-confirm" },
      h("h3", { id: `${reasonId}-title` }, `Unmerge ${text}?`),
      h("p", {}, `${text} and the events that carry it move out of profile ${this.profile.personId} into a new profile. Identity then keeps them apart.`),
      h("div", { class: "field" }, h("label", { for: reasonId }, "Reason (kept in the audit log)"), reason),
      h("button", { type: "submit", class: "danger", "data-testid": "unmerge-confirm-submit" }, "Unmerge"),
      " ",
      h("button", { type: "button", "data-testid": "unmerge-cancel", onclick: close }, "Cancel"),
      status,
    );
    panel.addEventListener("keydown", (event) => {
      if (event.key === "Escape") close();
    });
    panel.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (!reason.value.trim()) {
        reason.focus();
        return;
      }
      status.replaceChildren(loading("Unmerging…"));
      try {
        const response = await this.ctx.call(SERVICES.identity, "UnmergeIdentifier", {
          personId: this.profile.personId,
          identifier,
          reason: reason.value.trim(),
        });
        await this.afterUnmerge(identifier, response.newProfile.personId);
      } catch (error) {
        if (error instanceof ApiError && error.code === "unauthenticated") return; // signed out already
        const shown =
          error instanceof ApiError && error.code === "permission_denied"
            ? new ApiError(error.code, `This key may not unmerge identifiers (it needs the admin scope). ${error.message}`)
            : error;
        status.replaceChildren(errorAlert(shown, { testid: "unmerge-error" }));
      }
    });
    this.confirmHolder.replaceChildren(panel);
    reason.focus();
  }

  async afterUnmerge(identifier, newPersonId) {
    const text = identifierText(identifier);
    const result = () =>
      h("p", { role: "status", "data-testid": "unmerge-result", "data-person": newPersonId }, `${text} now belongs to a profile of its own: `, personLink(newPersonId));
    await this.reloadProfile();
    await Promise.all([this.showProfile(), this.showIdentity()]);
    this.confirmHolder?.replaceChildren(result());
    // Journeys moves the events that carry the identifier when it applies identity's override, within
    // seconds: what is computed from events (the timeline, the value, the lifecycle stage) is drawn again
    // once the person's newest events no longer carry it.
    this.sections.timeline.body.replaceChildren(loading(`Moving the events that carry ${text}…`));
    await this.eventsMovedOff(identifier);
    await Promise.all([this.showProfile(), this.showTimelineAndValue()]);
    this.confirmHolder?.replaceChildren(result());
  }

  async eventsMovedOff(identifier, { attempts = 20, pauseMs = 500 } = {}) {
    const carries = (event) =>
      (event.identifiers ?? []).some((i) => i.type === identifier.type && i.value === identifier.value);
    for (let attempt = 0; attempt < attempts; attempt += 1) {
      try {
        const page = await this.ctx.call(SERVICES.journeys, "GetTimeline", {
          personId: this.profile.personId,
          order: "TIMELINE_ORDER_NEWEST_FIRST",
          pageSize: this.timelinePage,
        });
        if (!page.events.some(carries)) return;
      } catch {
        return; // the timeline section shows the error when it is drawn
      }
      await new Promise((resolve) => setTimeout(resolve, pauseMs));
    }
  }

  async showIdentity() {
    const onOpenPerson = (personId) => this.ctx.navigate(pageHash("customer", { person: personId }));
    await fill(this.sections.identity.body, async () => (body) => drawIdentityGraph(body, this.profile, { onOpenPerson }));
  }

  async showTimelineAndValue() {
    const events = await this.showTimeline();
    const filters = this.timelineFilters;
    const asLoaded = !narrowsTimeline(filters) && filters.newestFirst;
    const currency =
      this.ctx.params.get("currency") || (asLoaded ? currencyOf(events) : await this.latestCurrency()) || DEFAULT_CURRENCY;
    await this.showValue(currency);
  }

  // The timeline section: the filter bar, then the events GetTimeline returns for the filters, a page at a
  // time, each of which opens in full below them. Applying filters records them in the address and draws
  // this section again, nothing else. Returns the events of the first page (the array grows as more load).
  async showTimeline() {
    const events = [];
    let nextToken = "";
    const filters = this.timelineFilters;
    const results = h("div", { "data-testid": "customer-timeline-results" });
    const details = h("div", { class: "event-details", "data-testid": "timeline-event", "aria-live": "polite" });
    const apply = (chosen) => {
      this.timelineFilters = chosen;
      this.ctx.setParams?.(withTimelineParams(this.ctx.params, chosen));
      this.showTimeline();
    };
    disposeCharts(this.sections.timeline.body);
    this.sections.timeline.body.replaceChildren(timelineFilterForm(filters, apply), results, details);
    const loadPage = async () => {
      const response = await this.ctx.call(SERVICES.journeys, "GetTimeline", {
        personId: this.profile.personId,
        ...timelineRequestFields(filters),
        pageSize: this.timelinePage,
        pageToken: nextToken,
      });
      events.push(...response.events);
      nextToken = response.nextPageToken;
    };
    const load = async () => {
      await loadPage();
      return draw;
    };
    const draw = (target) =>
      drawTimeline(target, events, {
        hasMore: Boolean(nextToken),
        onMore: () => fill(results, load),
        newestFirst: filters.newestFirst,
        filtered: narrowsTimeline(filters),
        onOpen: (event) => drawEventDetails(details, event),
      });
    await fill(results, load);
    return events;
  }

  // The currency of the customer's most recent event with revenue among their newest page of events, for
  // when the timeline shown is filtered or oldest first; null when there is none or the call fails.
  async latestCurrency() {
    try {
      const page = await this.ctx.call(SERVICES.journeys, "GetTimeline", {
        personId: this.profile.personId,
        order: "TIMELINE_ORDER_NEWEST_FIRST",
        pageSize: this.timelinePage,
      });
      return currencyOf(page.events);
    } catch {
      return null; // the value is then counted in the default currency; the timeline shows any error
    }
  }

  async showValue(currency) {
    await fill(this.sections.value.body, async () => {
      const response = await this.ctx.call(SERVICES.journeys, "GetCustomerValue", {
        persons: [{ personId: this.profile.personId }],
        currencyCode: currency,
      });
      return (body) => drawValue(body, response.values[0], currency);
    });
  }

  async showDecisions() {
    const decisions = [];
    let nextToken = "";
    const body = this.sections.decisions.body;
    const trace = h("div", { "data-testid": "decision-trace", "aria-live": "polite" });
    const openTrace = async (decisionId) => {
      const drawn = await fill(trace, async () => {
        const response = await this.ctx.call(SERVICES.decision, "GetDecision", { decisionId });
        return (target) => drawDecisionTrace(target, response.decision);
      });
      const heading = drawn ? trace.querySelector("h3") : null;
      if (heading) {
        heading.setAttribute("tabindex", "-1");
        heading.focus();
      }
    };
    const loadPage = async () => {
      const response = await this.ctx.call(SERVICES.decision, "ListDecisions", {
        person: { personId: this.profile.personId },
        pageSize: DECISIONS_PAGE,
        pageToken: nextToken,
      });
      decisions.push(...response.decisions);
      nextToken = response.nextPageToken;
    };
    const load = async () => {
      await loadPage();
      return (target) => {
        drawDecisions(target, decisions, { onOpen: openTrace, hasMore: Boolean(nextToken), onMore: () => fill(body, load) });
        target.append(trace);
      };
    };
    await fill(body, load);
  }
}

export default {
  id: "customer",
  title: "Customer",
  async render(root, ctx) {
    root.append(h("h1", {}, "Customer"));
    const ref = personRefFromParams(ctx.params);
    root.append(searchForm(ctx, ref));
    if (!ref) {
      await renderRecent(root, ctx);
      return;
    }
    await new CustomerView(root, ctx, ref).show();
  },
};
