// The Models page (#/models): each decision model's versions (state, registration, offline metrics), its
// traffic split across versions, and its canary: how it is judged and the judge's last verdict with the
// figures behind it. drawModels() draws a ListModels response, for the page and for `wayline report`.

import { SERVICES } from "../api.js";
import { chart, PALETTE } from "../charts.js";
import { dataTable, emptyState, enumLabel, formatNumber, formatPercent, formatTime, h, keyFigures } from "../dom.js";

function modelId(name) {
  return String(name ?? "").replace(/^models\//, "");
}

function heading(level, text) {
  return h(`h${Math.min(6, level)}`, {}, text);
}

function points(value) {
  const number = Number(value);
  if (!Number.isFinite(number)) return "—";
  return `${number > 0 ? "+" : ""}${(number * 100).toFixed(2)} pp`;
}

// The share of persons each version serves: [{version, role, percent}], stable first. A shadow version scores
// beside the serving one and serves nobody.
export function trafficShares(traffic) {
  if (!traffic?.stableVersion) return [];
  const canaryPercent = traffic.canaryVersion ? Number(traffic.canaryPercent ?? 0) : 0;
  const shares = [{ version: traffic.stableVersion, role: "Stable", percent: 100 - canaryPercent }];
  if (traffic.canaryVersion) shares.push({ version: traffic.canaryVersion, role: "Canary", percent: canaryPercent });
  if (traffic.shadowVersion) shares.push({ version: traffic.shadowVersion, role: "Shadow", percent: 0 });
  return shares;
}

function roleOf(version, traffic) {
  if (!traffic) return "";
  if (version === traffic.stableVersion) return "Stable";
  if (version === traffic.canaryVersion) return "Canary";
  if (version === traffic.shadowVersion) return "Shadow";
  return "";
}

function metricsText(metrics) {
  const entries = Object.entries(metrics ?? {}).sort(([a], [b]) => a.localeCompare(b));
  if (entries.length === 0) return "—";
  const shown = (value) => (Number.isInteger(Number(value)) ? formatNumber(value) : Number(value).toFixed(4));
  return entries.map(([name, value]) => `${name} ${shown(value)}`).join(", ");
}

function rate(conversions, decisions) {
  const d = Number(decisions);
  return d > 0 ? Number(conversions) / d : null;
}

// How the canary is judged, and the judge's last evaluation: a figure/value table (and a bar chart of the two
// arms' conversion rates when there is an evaluation).
function drawCanary(root, model, id, level) {
  const traffic = model.traffic;
  const judgement = traffic?.judgement;
  const evaluation = model.canaryEvaluation;
  root.append(heading(level, "Canary"));
  if (traffic?.canaryVersion) {
    root.append(
      h(
        "p",
        { "data-testid": `model-${id}-canary-state` },
        `Version ${traffic.canaryVersion} serves ${traffic.canaryPercent}% of persons beside stable version ${traffic.stableVersion}. `,
        judgement?.enabled
          ? `Judged automatically: promoted or rolled back when its conversion rate differs from the stable version's by more than ${(Number(judgement.margin) * 100).toFixed(2)} pp, with ${formatPercent(judgement.confidence)} confidence, after at least ${formatNumber(judgement.minDecisions)} decisions per arm.`
          : "Promotion and rollback are left to the operator.",
      ),
    );
  } else {
    root.append(h("p", { "data-testid": `model-${id}-canary-state` }, "No canary is running."));
  }
  if (!evaluation) {
    root.append(
      h("p", { class: "empty-state", "data-testid": `model-${id}-canary-none` }, "The canary judge has not judged a canary of this model."),
    );
    return;
  }
  const stableRate = rate(evaluation.stableConversions, evaluation.stableDecisions);
  const canaryRate = rate(evaluation.canaryConversions, evaluation.canaryDecisions);
  const container = h("div", { "data-testid": `model-${id}-canary-chart` });
  root.append(container);
  chart(
    container,
    {
      grid: { left: 60, right: 20, top: 20, bottom: 30 },
      xAxis: {
        type: "category",
        data: [`Stable ${evaluation.stableVersion || ""}`.trim(), `Canary ${evaluation.canaryVersion || ""}`.trim()],
      },
      yAxis: { type: "value", axisLabel: { formatter: (value) => formatPercent(value) } },
      series: [
        {
          type: "bar",
          barMaxWidth: 60,
          data: [
            { value: stableRate ?? 0, itemStyle: { color: PALETTE[0] } },
            { value: canaryRate ?? 0, itemStyle: { color: PALETTE[1] } },
          ],
          label: { show: true, position: "top", formatter: (item) => formatPercent(item.value) },
        },
      ],
    },
    { label: `Conversion rates of the stable and canary arms of ${id} at the judge's last look`, height: 240 },
  );
  const rows = [
    { figure: "Verdict", key: "verdict", value: enumLabel(evaluation.verdict, "CANARY_VERDICT_") },
    { figure: "Why", key: "explanation", value: evaluation.explanation || "—" },
    { figure: "Canary version judged", key: "canaryVersion", value: evaluation.canaryVersion || "—" },
    { figure: "Against stable version", key: "stableVersion", value: evaluation.stableVersion || "—" },
    { figure: "Stable decisions", key: "stableDecisions", raw: Number(evaluation.stableDecisions), value: formatNumber(evaluation.stableDecisions) },
    { figure: "Stable conversions", key: "stableConversions", raw: Number(evaluation.stableConversions), value: formatNumber(evaluation.stableConversions) },
    { figure: "Canary decisions", key: "canaryDecisions", raw: Number(evaluation.canaryDecisions), value: formatNumber(evaluation.canaryDecisions) },
    { figure: "Canary conversions", key: "canaryConversions", raw: Number(evaluation.canaryConversions), value: formatNumber(evaluation.canaryConversions) },
    { figure: "Difference in conversion rate", key: "difference", raw: Number(evaluation.difference), value: points(evaluation.difference) },
    {
      figure: "Always-valid interval of the difference",
      key: "interval",
      value: `${points(evaluation.differenceLower)} to ${points(evaluation.differenceUpper)}`,
    },
    { figure: "Judged at", key: "evaluateTime", value: formatTime(evaluation.evaluateTime) },
  ];
  const table = dataTable({
    caption: `The canary judge's last verdict on ${id}`,
    testid: `model-${id}-canary-table`,
    rowKey: (row) => row.key,
    columns: [
      { key: "figure", label: "Figure" },
      { key: "value", label: "Value", value: (row) => row.value },
    ],
    rows,
  });
  // The counts' raw values on their cells (as numeric columns carry them), for whoever reads them back.
  for (const row of rows) {
    if (row.raw !== undefined) table.querySelector(`tr[data-row="${row.key}"] td`)?.setAttribute("data-value", String(row.raw));
  }
  root.append(table);
}

function drawModel(root, model, level) {
  const id = modelId(model.name);
  const traffic = model.traffic;
  const shares = trafficShares(traffic);
  root.append(heading(level, model.displayName ? `${model.displayName} (${id})` : id));
  if (model.description) root.append(h("p", {}, model.description));
  root.append(
    keyFigures(
      [
        { label: "Stable version", value: traffic?.stableVersion || "Not deployed", testid: `model-${id}-stable` },
        {
          label: "Canary",
          value: traffic?.canaryVersion ? `${traffic.canaryVersion} (${traffic.canaryPercent}%)` : "None",
          testid: `model-${id}-canary`,
        },
        { label: "Shadow", value: traffic?.shadowVersion || "None", testid: `model-${id}-shadow` },
        { label: "Previous stable", value: model.previousStableVersion || "—", testid: `model-${id}-previous` },
        { label: "Traffic changed", value: formatTime(model.updateTime), testid: `model-${id}-updated` },
      ],
      { label: `Traffic of ${id}` },
    ),
    heading(level + 1, "Traffic split"),
  );
  if (shares.length === 0) {
    root.append(emptyState("This model has never been deployed."));
  } else {
    const container = h("div", { "data-testid": `model-${id}-traffic-chart` });
    root.append(container);
    chart(
      container,
      {
        tooltip: { show: false },
        legend: { bottom: 0 },
        series: [
          {
            type: "pie",
            radius: ["35%", "65%"],
            data: shares
              .filter((s) => s.percent > 0)
              .map((s, index) => ({ name: `${s.role} ${s.version}`, value: s.percent, itemStyle: { color: PALETTE[index] } })),
            label: { formatter: "{b}: {c}%" },
          },
        ],
      },
      { label: `Share of persons each version of ${id} serves`, height: 260 },
    );
  }
  root.append(
    dataTable({
      caption: `Traffic split of ${id}`,
      testid: `model-${id}-traffic-table`,
      rowKey: (row) => row.version,
      columns: [
        { key: "version", label: "Version" },
        { key: "role", label: "Role" },
        { key: "percent", label: "Persons served", numeric: true, format: (value, row) => (row.role === "Shadow" ? "0% (scores beside)" : `${value}%`) },
      ],
      rows: shares,
      empty: "Not deployed.",
    }),
    heading(level + 1, "Versions"),
    dataTable({
      caption: `Versions of ${id}, newest first`,
      testid: `model-${id}-versions-table`,
      rowKey: (row) => row.version,
      columns: [
        { key: "version", label: "Version" },
        { key: "state", label: "State", format: (value) => enumLabel(value, "MODEL_VERSION_STATE_") },
        { key: "role", label: "Serving", value: (row) => roleOf(row.version, traffic) || "—" },
        { key: "registerTime", label: "Registered", format: formatTime },
        { key: "metrics", label: "Offline metrics", format: metricsText },
        { key: "errorMessage", label: "Load error", format: (value) => value || "—" },
      ],
      rows: model.versions ?? [],
      empty: "No version registered.",
    }),
  );
  drawCanary(root, model, id, level + 1);
}

// Draws a ListModels response into root. options: headingLevel (of each model's heading, default 2).
export function drawModels(root, response, options = {}) {
  // In a report the section's own h2 names the page, so each model's heading goes one level down.
  const level = options.headingLevel ?? (options.report ? 3 : 2);
  const models = response?.models ?? [];
  if (models.length === 0) {
    root.append(emptyState("No model yet. Upload one with `wayline models push`."));
    return;
  }
  root.append(
    dataTable({
      caption: `Models (${formatNumber(response.totalSize ?? models.length)})`,
      testid: "models-table",
      rowKey: (row) => modelId(row.name),
      columns: [
        { key: "name", label: "Model", format: modelId },
        { key: "versions", label: "Versions", numeric: true, value: (row) => (row.versions ?? []).length },
        { key: "stable", label: "Stable", value: (row) => row.traffic?.stableVersion || "—" },
        { key: "canary", label: "Canary", value: (row) => row.traffic?.canaryVersion || "—" },
        { key: "canaryPercent", label: "Canary share", numeric: true, value: (row) => (row.traffic?.canaryVersion ? Number(row.traffic.canaryPercent) : 0), format: (value) => `${value}%` },
        {
          key: "verdict",
          label: "Last verdict",
          value: (row) => (row.canaryEvaluation ? enumLabel(row.canaryEvaluation.verdict, "CANARY_VERDICT_") : "—"),
        },
      ],
      rows: models,
    }),
  );
  for (const model of models) {
    const section = h("section", { "data-testid": `model-${modelId(model.name)}`, class: "model" });
    root.append(section);
    drawModel(section, model, level);
  }
}

export default {
  id: "models",
  title: "Models",
  async render(root, ctx) {
    root.append(h("h1", {}, "Models"));
    const response = await ctx.call(SERVICES.decision, "ListModels", { pageSize: 200 });
    drawModels(root, response, { headingLevel: 2 });
  },
};
