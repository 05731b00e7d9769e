// Event-name suggestions for the filter bars: a <datalist> of the tenant's names (ListEventNames, the most
// frequent first) that text inputs point to with `list`. Suggestions only: a failure leaves the list empty.

import { FIRST_VIEW_MAX_STALE, SERVICES } from "../../api.js";
import { h, uniqueId } from "../../dom.js";

// {element (the datalist), id, names: Promise<[{name, eventCount, personCount}]>}.
export function eventNameSuggestions(call, timeRange) {
  const id = uniqueId("event-names");
  const element = h("datalist", { id, "data-testid": "event-name-suggestions" });
  // Suggestions need not be fresh: a kept answer (ADR 58) spares a scan of the range on every visit.
  const names = call(SERVICES.journeys, "ListEventNames", { timeRange, pageSize: 200 }, { maxStale: FIRST_VIEW_MAX_STALE })
    .then((response) => response.eventNames ?? [])
    .catch(() => []);
  names.then((list) => {
    for (const entry of list) {
      element.append(h("option", { value: entry.name }, `${entry.name} (${Number(entry.eventCount)} events)`));
    }
  });
  return { element, id, names };
}

// An EventMatcher for what a filter field holds: a page path (starting with "/") matches page events by
// `context.page.path`, as path labels are; anything else is an event name.
export function eventMatcher(text) {
  const value = String(text ?? "").trim();
  if (!value) return null;
  if (value.startsWith("/")) {
    return {
      eventType: "EVENT_TYPE_PAGE",
      propertyFilters: [{ property: "context.page.path", operator: "FILTER_OPERATOR_EQUALS", values: [value] }],
    };
  }
  return { eventName: value };
}
