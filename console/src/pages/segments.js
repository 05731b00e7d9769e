// Segments (#/segments): every segment's size and freshness, as a bar chart of members and a table; opening
// one (#/segments?segment=segments/<id>, from a bar or the row's button) lists its members, each linking to
// the customer page, and charts its entries and exits per day (CountSegmentMembershipChanges).
//
// Query: segment (the opened segment's resource name), page (its members' page token), days (the span of the
// entries and exits, default 30: the change feed's retention).

import { chart } from "../charts.js";
import {
  dataTable,
  emptyState,
  enumLabel,
  formatDate,
  formatDuration,
  formatNumber,
  formatTime,
  h,
  pageHash,
  toggleTable,
} from "../dom.js";

const JOURNEYS = "wayline.journeys.v1.JourneyService";
const SEGMENTS_PAGE_SIZE = 1000;
const MAX_SEGMENT_PAGES = 10;
const MEMBERS_PAGE_SIZE = 50;
const CHANGE_DAYS = 30;
const DAY_MS = 86_400_000;

function segmentLabel(segment) {
  return segment.displayName || segment.name;
}

function segmentHash(segment, extra = {}) {
  return pageHash("segments", { segment: segment.name, ...extra });
}

// "3m 20s ago" from `time` to `now` (ms); "not yet" when the segment has no freshness (building).
function staleness(time, now) {
  if (!time) return "not yet";
  return `${formatDuration(Math.max(0, (now - Date.parse(time)) / 1000))} ago`;
}

// Draws a ListSegmentsResponse: members per segment as bars, and the table of state, size and freshness.
// options.open(segment): what a click on a bar or a row's "Members" button does (none without it, as in a
// report); options.now: the instant staleness is measured from (ms since the epoch; default now). A report
// (options.report) is read long after it was made: it gives "Data as of" without a staleness from now.
export function drawSegments(root, response, options = {}) {
  const segments = response.segments ?? [];
  const now = options.now ?? Date.now();
  const showStaleness = !options.report || options.now !== undefined;
  if (segments.length === 0) {
    root.append(emptyState("The tenant has no segment yet."));
    return;
  }
  const container = h("div", { class: "chart chart-segments", "data-testid": "segments-chart" });
  root.append(container);
  const instance = chart(
    container,
    {
      tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
      grid: { left: 180, right: 48, top: 8, bottom: 40 },
      xAxis: { type: "value", name: "Members", nameLocation: "middle", nameGap: 26, minInterval: 1 },
      yAxis: { type: "category", inverse: true, data: segments.map(segmentLabel) },
      series: [
        {
          type: "bar",
          name: "Members",
          data: segments.map((s) => Number(s.status?.memberCount ?? 0)),
          label: { show: true, position: "right" },
          cursor: options.open ? "pointer" : "default",
        },
      ],
    },
    {
      label: `Members of each of ${segments.length} segments; the numbers are in the table below`,
      height: Math.max(160, segments.length * 32 + 60),
    },
  );
  if (options.open) instance.on("click", (event) => options.open(segments[event.dataIndex]));
  const columns = [
    { key: "name", label: "Segment", value: segmentLabel },
    {
      key: "state",
      label: "State",
      value: (s) => s.status?.state,
      // A failed evaluation says why (text only, as every cell).
      format: (state, s) =>
        state === "SEGMENT_STATE_FAILED" && s.status?.errorMessage
          ? `Failed: ${s.status.errorMessage}`
          : enumLabel(state, "SEGMENT_STATE_"),
    },
    { key: "members", label: "Members", numeric: true, value: (s) => Number(s.status?.memberCount ?? 0) },
    { key: "dataAsOf", label: "Data as of", value: (s) => s.status?.dataAsOf, format: (t) => formatTime(t) },
    showStaleness
      ? { key: "staleness", label: "Staleness", value: (s) => s.status?.dataAsOf, format: (t) => staleness(t, now) }
      : null,
    {
      key: "lastFull",
      label: "Last full evaluation",
      value: (s) => s.status?.lastFullEvaluationTime,
      format: (t) => formatTime(t),
    },
  ];
  if (options.open) {
    columns.push({
      key: "open",
      label: "Members",
      value: (s) => s,
      format: (s) =>
        h(
          "button",
          {
            type: "button",
            "data-testid": "segment-open",
            "aria-label": `Show the members of ${segmentLabel(s)}`,
            onclick: () => options.open(s),
          },
          "Members",
        ),
    });
  }
  root.append(
    dataTable({
      caption: "Segments: state, members and freshness (membership reflects every event received before “Data as of”)",
      columns: columns.filter(Boolean),
      rows: segments,
      rowKey: (s) => s.name,
      testid: "segments-table",
    }),
  );
}

// Draws a ListSegmentMembersResponse: how many members, and a table of this page's members, each linking to
// the customer page.
export function drawMembers(root, response, { label = "the segment" } = {}) {
  const members = response.members ?? [];
  root.append(h("p", { "data-testid": "segment-members-total" }, `${formatNumber(response.totalSize ?? 0)} members`));
  root.append(
    dataTable({
      caption: `Members of ${label}, by person id`,
      columns: [
        {
          key: "personId",
          label: "Person",
          format: (id) =>
            h("a", { href: pageHash("customer", { person: id }), "data-testid": "segment-member-link" }, id),
        },
        { key: "enterTime", label: "Entered", format: (t) => formatTime(t) },
      ],
      rows: members,
      rowKey: (m) => m.personId,
      testid: "segment-members-table",
      empty: "The segment has no member now.",
    }),
  );
}

// Draws a CountSegmentMembershipChangesResponse: entries (up) and exits (down) per period, and the table
// behind a "Show table" toggle (open with options.tableOpen, as in a report).
export function drawMembershipChanges(root, response, options = {}) {
  const counts = response.counts ?? [];
  if (counts.length === 0) {
    root.append(emptyState("No period to show."));
    return;
  }
  const container = h("div", { class: "chart chart-changes", "data-testid": "segment-changes-chart" });
  const table = dataTable({
    caption: "Entries and exits per day (UTC)",
    columns: [
      { key: "periodStart", label: "Day", format: (t) => formatDate(t) },
      { key: "enteredCount", label: "Entered", numeric: true },
      { key: "exitedCount", label: "Exited", numeric: true },
    ],
    rows: counts,
    rowKey: (c) => formatDate(c.periodStart),
    testid: "segment-changes-table",
  });
  // A day per row is long and mostly zeros: the table waits behind its toggle, the chart shows the shape.
  root.append(toggleTable(container, table, { open: Boolean(options.tableOpen) }));
  chart(
    container,
    {
      tooltip: { trigger: "axis" },
      legend: { top: 0 },
      grid: { left: 56, right: 24, top: 36, bottom: 32 },
      xAxis: { type: "category", data: counts.map((c) => formatDate(c.periodStart)) },
      yAxis: { type: "value", name: "Persons", minInterval: 1 },
      series: [
        { type: "bar", name: "Entered", stack: "changes", color: "#2b8a3e", data: counts.map((c) => Number(c.enteredCount)) },
        { type: "bar", name: "Exited", stack: "changes", color: "#c92a2a", data: counts.map((c) => -Number(c.exitedCount)) },
      ],
    },
    { label: `Entries (up) and exits (down) per day over ${counts.length} days; the numbers are in the table`, height: 260 },
  );
}

// Every segment of the tenant, page after page (at most MAX_SEGMENT_PAGES of them).
async function listSegments(call) {
  const segments = [];
  let pageToken = "";
  let totalSize = 0;
  for (let page = 0; page < MAX_SEGMENT_PAGES; page += 1) {
    const response = await call(JOURNEYS, "ListSegments", { pageSize: SEGMENTS_PAGE_SIZE, pageToken });
    segments.push(...(response.segments ?? []));
    totalSize = response.totalSize;
    pageToken = response.nextPageToken ?? "";
    if (!pageToken) break;
  }
  return { segments, totalSize };
}

async function renderOpened(root, ctx, segment) {
  const section = h("section", { class: "segment-detail", "data-testid": "segment-detail", "aria-labelledby": "segment-detail-title" });
  root.append(section);
  const title = h(
    "h2",
    { id: "segment-detail-title", "data-testid": "segment-detail-title", tabindex: "-1" },
    segmentLabel(segment),
  );
  section.append(title);
  if (segment.description) section.append(h("p", {}, segment.description));
  const pageToken = ctx.params.get("page") ?? "";
  const now = Date.now();
  const end = new Date(Math.ceil(now / DAY_MS) * DAY_MS);
  const [members, changes] = await Promise.all([
    ctx.call(JOURNEYS, "ListSegmentMembers", { segment: segment.name, pageSize: MEMBERS_PAGE_SIZE, pageToken }),
    ctx.call(JOURNEYS, "CountSegmentMembershipChanges", {
      segment: segment.name,
      period: "RETENTION_PERIOD_DAY",
      timeRange: { start: new Date(end.getTime() - CHANGE_DAYS * DAY_MS).toISOString(), end: end.toISOString() },
    }),
  ]);
  section.append(h("h3", {}, `Entries and exits, last ${CHANGE_DAYS} days`));
  drawMembershipChanges(section, changes);
  section.append(h("h3", {}, "Members"));
  drawMembers(section, members, { label: segmentLabel(segment) });
  const pager = h("div", { class: "pager" });
  if (pageToken) {
    pager.append(
      h("button", { type: "button", "data-testid": "segment-members-first", onclick: () => ctx.navigate(segmentHash(segment)) }, "First page"),
    );
  }
  if (members.nextPageToken) {
    pager.append(
      h(
        "button",
        {
          type: "button",
          "data-testid": "segment-members-next",
          onclick: () => ctx.navigate(segmentHash(segment, { page: members.nextPageToken })),
        },
        "Next page",
      ),
    );
  }
  section.append(pager);
  // Opened from a row's button: the keyboard continues from the segment, not from the top of the list.
  title.focus();
}

export default {
  id: "segments",
  title: "Segments",
  async render(root, ctx) {
    root.append(h("h1", {}, "Segments"));
    const results = h("div", { class: "results", "data-testid": "segments-results" });
    root.append(results);
    const listed = await listSegments(ctx.call);
    const total = Number(listed.totalSize ?? 0);
    results.append(
      h("p", { "data-testid": "segments-total" }, `${formatNumber(total)} ${total === 1 ? "segment" : "segments"}`),
    );
    drawSegments(results, listed, { open: (segment) => ctx.navigate(segmentHash(segment)) });
    const opened = ctx.params.get("segment");
    if (!opened) return;
    // The opened segment from the list, or by name when it is beyond the pages read (NOT_FOUND when gone).
    const segment = listed.segments.find((s) => s.name === opened) ?? (await ctx.call(JOURNEYS, "GetSegment", { name: opened })).segment;
    await renderOpened(results, ctx, segment);
  },
};
