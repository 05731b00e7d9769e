// Suppressions by reason for the Flows page: the contacts the contact policy refused, by the kind of rule
// that refused them (FlowStats.suppressions, StepStats.suppressions), as a bar chart and its tables.

import { chart } from "../../charts.js";
import { dataTable, enumLabel, h } from "../../dom.js";

export function reasonLabel(reason) {
  return reason === "CONTACT_BLOCK_REASON_UNSPECIFIED"
    ? "Unrecorded reason"
    : enumLabel(reason, "CONTACT_BLOCK_REASON_");
}

// The flow's suppressions by reason: a bar chart, the flow's table and each action step's table.
export function drawSuppressions(root, stats) {
  const total = stats?.suppressions ?? [];
  const perStep = [];
  for (const step of stats?.steps ?? []) {
    for (const counted of step.suppressions ?? []) {
      perStep.push({ step: step.stepId, reason: counted.reason, count: Number(counted.count) });
    }
  }
  const rows = total.map((c) => ({ reason: c.reason, count: Number(c.count) }));
  if (rows.length > 0) {
    const container = h("div", { "data-testid": "flow-suppressions-chart" });
    root.append(container);
    chart(
      container,
      {
        grid: { left: 150, right: 30, top: 10, bottom: 30 },
        xAxis: { type: "value", minInterval: 1, name: "Contacts", nameLocation: "middle", nameGap: 22 },
        yAxis: { type: "category", inverse: true, data: rows.map((r) => reasonLabel(r.reason)) },
        series: [{ type: "bar", data: rows.map((r) => r.count), label: { show: true, position: "right" } }],
      },
      { label: "Suppressed contacts by the kind of contact-policy rule that refused them", height: 60 + 40 * rows.length },
    );
  }
  root.append(
    h(
      "p",
      { class: "help" },
      `${Number(stats?.suppressedCount ?? 0).toLocaleString("en-US")} contacts suppressed. A contact refused by rules of several kinds counts under each.`,
    ),
    dataTable({
      caption: "Suppressed contacts by reason, whole flow",
      testid: "flow-suppressions-table",
      rowKey: (row) => row.reason,
      columns: [
        { key: "reason", label: "Reason", format: reasonLabel },
        { key: "count", label: "Contacts", numeric: true },
      ],
      rows,
      empty: "No contact was suppressed.",
    }),
    dataTable({
      caption: "Suppressed contacts by reason, per action step",
      testid: "flow-step-suppressions-table",
      rowKey: (row) => `${row.step}/${row.reason}`,
      columns: [
        { key: "step", label: "Step" },
        { key: "reason", label: "Reason", format: reasonLabel },
        { key: "count", label: "Contacts", numeric: true },
      ],
      rows: perStep,
      empty: "No contact was suppressed.",
    }),
  );
}
