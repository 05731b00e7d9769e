"""Write docs/configuration.md from the services' settings classes (`--check`: fail when it is stale).

The settings classes are the only code that reads the environment, so they are the reference: this file
turns their fields, defaults and descriptions into the table operators read.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pydantic.fields import FieldInfo

from wayline.common.settings import ServiceSettings
from wayline_decision.settings import DecisionSettings
from wayline_gateway.settings import GatewaySettings
from wayline_identity.settings import IdentitySettings
from wayline_ingest.settings import IngestSettings
from wayline_journeys.settings import JourneysSettings
from wayline_orchestrator.settings import OrchestratorSettings

DOC = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"
SERVICES: list[type[ServiceSettings]] = [
    GatewaySettings,
    IngestSettings,
    IdentitySettings,
    JourneysSettings,
    DecisionSettings,
    OrchestratorSettings,
]


def _env_names(name: str, field: FieldInfo, prefix: str) -> str:
    alias = field.validation_alias
    if isinstance(alias, str):
        return f"`{alias}`"
    if alias is not None:
        return " or ".join(f"`{choice}`" for choice in alias.choices)  # type: ignore[union-attr]
    return f"`{prefix}{name.upper()}`"


def _default(field: FieldInfo) -> str:
    value = field.get_default(call_default_factory=True)
    if value is None or value == "":
        return "(unset)"
    return f"`{value}`"


# Fields every service reads under one global name (no service prefix).
GLOBAL_FIELDS = {name for name, f in ServiceSettings.model_fields.items() if f.validation_alias is not None}


def _rows(settings: type[ServiceSettings], shared: bool) -> list[str]:
    prefix = str(settings.model_config.get("env_prefix", ""))
    rows = []
    for name, field in settings.model_fields.items():
        if (name in GLOBAL_FIELDS) != shared:
            continue
        rows.append(f"| {_env_names(name, field, prefix)} | {_default(field)} | {field.description} |")
    return rows


def render() -> str:
    lines = [
        "# Configuration",
        "",
        "Every setting is an environment variable. Generated from the settings classes by",
        "`uv run python tools/settings_doc.py`; a test fails when this page is stale.",
        "",
        "## Every service",
        "",
        "| variable | default | meaning |",
        "|---|---|---|",
        *_rows(ServiceSettings, shared=True),
    ]
    for settings in SERVICES:
        lines += [
            "",
            f"## {settings.service_name}",
            "",
            "| variable | default | meaning |",
            "|---|---|---|",
            *_rows(settings, shared=False),
        ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true")
    text = render()
    if parser.parse_args().check:
        if DOC.read_text() != text:
            print(
                "docs/configuration.md is stale: run `uv run python tools/settings_doc.py`", file=sys.stderr
            )
            return 1
        return 0
    DOC.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
