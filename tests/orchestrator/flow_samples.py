"""Flow definitions for the flow tests, in their proto3 JSON form: the shipped examples (abandoned cart, win
back) and a small valid flow to break one rule at a time."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

__all__ = ["ABANDONED_CART", "WIN_BACK", "abandoned_cart", "small_flow", "win_back"]

ABANDONED_CART = Path(__file__).resolve().parents[2] / "examples" / "flows" / "abandoned_cart.yaml"
WIN_BACK = ABANDONED_CART.with_name("win_back.yaml")


def abandoned_cart() -> dict[str, Any]:
    """The shipped example as a mapping (a Flow in proto3 JSON form)."""
    loaded: dict[str, Any] = yaml.safe_load(ABANDONED_CART.read_text())
    return loaded


def win_back() -> dict[str, Any]:
    """The shipped win-back example (entered from a segment) as a mapping."""
    loaded: dict[str, Any] = yaml.safe_load(WIN_BACK.read_text())
    return loaded


def small_flow() -> dict[str, Any]:
    """A complete definition: on `Signed Up`, wait a day, email, split 50/50 into an email or nothing."""
    return copy.deepcopy(
        {
            "trigger": {"event": {"event": {"event_name": "Signed Up"}}},
            "entry_step_id": "wait",
            "steps": [
                {"id": "wait", "wait": {"duration": "86400s", "next_step_id": "welcome"}},
                {
                    "id": "welcome",
                    "action": {"channel": "CHANNEL_EMAIL", "action_id": "welcome", "next_step_id": "split"},
                },
                {
                    "id": "split",
                    "split": {
                        "variants": [
                            {"label": "tips", "weight": 50.0, "next_step_id": "tips"},
                            {"label": "control", "weight": 50.0, "control": True},
                        ]
                    },
                },
                {
                    "id": "tips",
                    "action": {"channel": "CHANNEL_EMAIL", "action_id": "tips", "next_step_id": "done"},
                },
                {"id": "done", "exit": {"reason": "finished"}},
            ],
            "goal": {"event": {"event_name": "Order Completed"}, "window": "604800s"},
        }
    )
