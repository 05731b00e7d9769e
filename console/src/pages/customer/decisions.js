// The customer's recent decisions (DecisionService.ListDecisions, newest first) and, on request, one
// decision's full trace (GetDecision): the candidates with what filtered or ranked each, the priority
// factors, the features the model saw, the explanation's contributions and the feedback received.

import { dataTable, enumLabel, formatNumber, formatTime, h } from "../../dom.js";

function chosenCandidate(decision) {
  return (decision.candidates ?? []).find((c) => c.candidate?.actionId === decision.chosenActionId) ?? null;
}

function chosenText(decision) {
  if (decision.chosenActionId) return decision.chosenActionId;
  return decision.holdout ? "none (holdout)" : "none (all filtered)";
}

// The decisions loaded so far; `onOpen(decisionId)` opens a trace, `onMore` loads the next page.
export function drawDecisions(root, decisions, { onOpen, hasMore = false, onMore = null } = {}) {
  root.append(
    dataTable({
      caption: "Recent decisions, newest first",
      testid: "customer-decisions",
      rowKey: (decision) => decision.decisionId,
      empty: "No decision recorded for this customer yet.",
      columns: [
        { key: "decideTime", label: "Time (UTC)", format: formatTime },
        { key: "channel", label: "Channel", format: (channel) => enumLabel(channel, "CHANNEL_") },
        { key: "placement", label: "Placement" },
        { key: "chosenActionId", label: "Chosen action", value: chosenText },
        {
          key: "score",
          label: "Score",
          numeric: true,
          value: (decision) => chosenCandidate(decision)?.factors?.priority ?? null,
        },
        {
          key: "propensity",
          label: "Propensity",
          numeric: true,
          value: (decision) => chosenCandidate(decision)?.factors?.propensity ?? null,
        },
        { key: "model", label: "Model", value: (decision) => `${decision.model} ${decision.modelVersion}`.trim() },
        { key: "arm", label: "Arm", format: (arm) => enumLabel(arm, "MODEL_ARM_") },
        {
          key: "trace",
          label: "Trace",
          value: (decision) => decision.decisionId,
          format: (decisionId) =>
            h(
              "button",
              {
                type: "button",
                class: "link-button",
                "data-testid": "decision-open",
                "data-decision": decisionId,
                "aria-label": `Open the trace of decision ${decisionId}`,
                onclick: () => onOpen(decisionId),
              },
              "Open trace",
            ),
        },
      ],
      rows: decisions,
    }),
  );
  if (hasMore && onMore) {
    root.append(
      h("button", { type: "button", "data-testid": "customer-decisions-more", onclick: onMore }, "Load older decisions"),
    );
  }
}

function valueText(value) {
  if (value === null || value === undefined) return "missing";
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}

// One decision's trace (GetDecision's `decision`) into root.
export function drawDecisionTrace(root, decision) {
  const facts = [
    ["Decision", decision.decisionId],
    ["Time (UTC)", formatTime(decision.decideTime)],
    ["Channel", enumLabel(decision.channel, "CHANNEL_")],
    ["Placement", decision.placement || "—"],
    ["Model", decision.model],
    ["Model version", decision.modelVersion],
    ["Arm", enumLabel(decision.arm, "MODEL_ARM_")],
    ["Features from", enumLabel(decision.featureSource, "FEATURE_SOURCE_")],
    ["Holdout", decision.holdout ? `yes (${decision.holdoutGroupId})` : "no"],
    ["Chosen action", chosenText(decision)],
    ["Probability of the choice", formatNumber(decision.chosenProbability)],
  ];
  root.append(
    h("h3", { id: "decision-trace-heading" }, `Trace of decision ${decision.decisionId}`),
    dataTable({
      caption: "Decision",
      testid: "decision-trace-summary",
      rowKey: (row) => row[0],
      columns: [
        { key: "fact", label: "Fact", value: (row) => row[0] },
        { key: "value", label: "Value", value: (row) => row[1] },
      ],
      rows: facts,
    }),
    dataTable({
      caption: "Candidates: eligibility, policy and scores",
      testid: "decision-trace-candidates",
      rowKey: (c) => c.candidate?.actionId ?? "",
      columns: [
        { key: "action", label: "Action", value: (c) => c.candidate?.actionId ?? "—" },
        { key: "outcome", label: "Outcome", format: (o) => enumLabel(o, "CANDIDATE_OUTCOME_") },
        { key: "rank", label: "Rank", numeric: true, value: (c) => (c.rank ? c.rank : null) },
        { key: "propensity", label: "Propensity", numeric: true, value: (c) => c.factors?.propensity ?? null },
        { key: "value", label: "Value", numeric: true, value: (c) => c.factors?.value ?? null },
        { key: "contextWeight", label: "Context weight", numeric: true, value: (c) => c.factors?.contextWeight ?? null },
        { key: "lever", label: "Lever", numeric: true, value: (c) => c.factors?.lever ?? null },
        { key: "priority", label: "Priority", numeric: true, value: (c) => c.factors?.priority ?? null },
        {
          key: "filter",
          label: "Filtered by",
          value: (c) =>
            c.filterReason && c.filterReason !== "FILTER_REASON_UNSPECIFIED"
              ? [enumLabel(c.filterReason, "FILTER_REASON_"), c.filteredBy, c.filterDescription].filter(Boolean).join(" · ")
              : "—",
        },
      ],
      rows: decision.candidates ?? [],
    }),
  );
  const explanation = decision.explanation;
  if (explanation && (explanation.contributions ?? []).length > 0) {
    root.append(
      dataTable({
        caption: `Why ${explanation.actionId}: ${explanation.summary || "feature contributions (log-odds)"}`,
        testid: "decision-trace-contributions",
        rowKey: (c) => c.feature,
        columns: [
          { key: "feature", label: "Feature" },
          { key: "value", label: "Value", format: valueText },
          { key: "contribution", label: "Contribution", numeric: true },
        ],
        rows: explanation.contributions,
      }),
    );
  }
  const features = Object.entries(decision.features ?? {}).sort(([a], [b]) => a.localeCompare(b));
  root.append(
    dataTable({
      caption: "Features the model saw",
      testid: "decision-trace-features",
      rowKey: (row) => row[0],
      empty: "No feature values kept with this trace.",
      columns: [
        { key: "feature", label: "Feature", value: (row) => row[0] },
        { key: "value", label: "Value", value: (row) => valueText(row[1]) },
      ],
      rows: features,
    }),
    dataTable({
      caption: "Feedback received",
      testid: "decision-trace-feedback",
      rowKey: (f) => f.feedbackId,
      empty: "No feedback yet.",
      columns: [
        { key: "time", label: "Time (UTC)", format: formatTime },
        { key: "outcome", label: "Outcome", format: (o) => enumLabel(o, "FEEDBACK_OUTCOME_") },
        { key: "actionId", label: "Action" },
      ],
      rows: decision.feedback ?? [],
    }),
  );
}
