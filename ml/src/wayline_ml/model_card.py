"""The model card: what the model is for, what it was trained on, and how well it did, in markdown beside the
ONNX files (Mitchell et al., "Model Cards for Model Reporting"). It is written from the same `Evaluation` the
manifest's metrics come from, so the two cannot disagree."""

from __future__ import annotations

from datetime import UTC, datetime

from wayline_ml.evaluate import Evaluation
from wayline_ml.policy_value import PolicyValue
from wayline_ml.train import TrainedModels

__all__ = ["render_model_card"]


def _when(us: int) -> str:
    return datetime.fromtimestamp(us / 1e6, tz=UTC).isoformat(timespec="seconds")


def _policy_row(value: PolicyValue) -> str:
    interval = f"{value.low:.4f} to {value.high:.4f}"
    return f"| {value.name} | {value.ipw:.4f} | {value.snips:.4f} | {value.matched} | {interval} |"


def render_model_card(name: str, version: str, models: TrainedModels, evaluation: Evaluation) -> str:
    """The card as markdown."""
    response, policy = evaluation.response, evaluation.policy
    pct = int(policy.confidence * 100)
    low, high = policy.lift_vs_best_single_interval
    lines = [
        f"# Model card: {name} {version}",
        "",
        "## What it does",
        "Next best action. For a customer's features and each candidate action, `response.onnx` gives",
        "P(convert | features, action) and `value.onnx` gives E[value | converted, features, action];",
        "the policy picks the action with the highest product. Actions: "
        + ", ".join(f"`{a}`" for a in models.actions)
        + ".",
        "",
        "## Training data",
        f"- training window: {_when(models.training_from_us)} → {_when(models.training_to_us)} "
        f"({models.split.holdout_start} logged decisions; the last "
        f"{models.split.holdout_start - models.split.validation_start} chose the number of trees)",
        f"- held out: {_when(evaluation.holdout_from_us)} → {_when(evaluation.holdout_to_us)} "
        f"({evaluation.holdout_rows} decisions, after the time cut-off)",
        f"- features ({len(models.schema)}): "
        + ", ".join(f"`{f.name}` ({f.type.value})" for f in models.schema.features),
        f"- XGBoost {models.config.max_depth}-deep trees, eta {models.config.learning_rate}; trees kept: "
        f"response {models.rounds.get('response')}, value {models.rounds.get('value')}; "
        f"seed {models.config.seed}",
        "",
        "## Response model (held-out rows, logged actions)",
        f"AUC {response.auc:.4f} · log loss {response.log_loss:.4f} · expected calibration error "
        f"{response.expected_calibration_error:.4f} · base rate {response.base_rate:.4f}",
        "",
        "| predicted | rows | mean predicted | observed |",
        "|---|---:|---:|---:|",
        *(
            f"| {b.low:.1f}-{b.high:.1f} | {b.rows} | {b.mean_predicted:.4f} | {b.observed_rate:.4f} |"
            for b in response.bins
        ),
        "",
        "## Value model",
        f"RMSE {evaluation.value_rmse:.3f} on held-out conversions (mean value {evaluation.value_mean:.3f}).",
        "",
        "## Offline policy value (IPW over logged decisions, held-out rows)",
        f"{pct}% bootstrap intervals over {policy.bootstrap_rounds} resamples. The best single action is "
        "chosen on these same rows (a baseline in hindsight).",
        "",
        "| policy | IPW | SNIPS | matched rows | interval (IPW) |",
        "|---|---:|---:|---:|---|",
        _policy_row(policy.learned),
        _policy_row(policy.random),
        *(_policy_row(value) for value in policy.single_actions),
        "",
        f"Learned vs random: {policy.lift_vs_random:+.1%}. Learned vs best single action "
        f"(`{policy.best_single.name}`): {policy.lift_vs_best_single:+.1%} "
        f"(interval {low:+.1%} to {high:+.1%}).",
        "",
        "The learned policy picks: "
        + ", ".join(f"`{a}` {share:.0%}" for a, share in evaluation.chosen_share.items())
        + ".",
        "",
        "## Limits",
        "- IPW trusts the logged propensities; a wrong or near-zero one biases or swamps the estimate.",
        "- Held-out rows are later decisions, not necessarily new customers; a customer seen before",
        "  the cut-off can appear after it.",
        "- Offline value is an estimate for the logged population; a canary or A/B test confirms it online.",
        "",
    ]
    return "\n".join(lines)
