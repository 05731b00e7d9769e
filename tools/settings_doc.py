"""Write docs/configuration.md from the services' settings classes (`--check`: fail when it is stale).

The settings classes are the only code that reads the environment, so they are the reference: this file
turns their fields, defaults and descriptions into the table operators read.
"""

from __future__ import annotations

import argparse
import sys

from pydantic.fields import FieldInfo

from tools.generated import ROOT, write_or_check
from tools.service_settings import settings_class
from wayline.common.registry import SERVICES
from wayline.common.settings import ServiceSettings

DOC = ROOT / "docs" / "configuration.md"


def _default(field: FieldInfo) -> str:
    value = field.get_default(call_default_factory=True)
    if value is None or value == "":
        return "(unset)"
    return f"`{value}`"


# Fields every service reads under one global name (no service prefix).
GLOBAL_FIELDS = {name for name, f in ServiceSettings.model_fields.items() if f.validation_alias is not None}


def _rows(settings: type[ServiceSettings], shared: bool) -> list[str]:
    variables = settings.environment_variables()
    rows = []
    for name, field in settings.model_fields.items():
        if (name in GLOBAL_FIELDS) != shared:
            continue
        names = " or ".join(f"`{variable}`" for variable in variables[name])
        rows.append(f"| {names} | {_default(field)} | {field.description} |")
    return rows


def render() -> str:
    lines = [
        "# Configuration",
        "",
        "Every setting is an environment variable. Generated from the settings classes by",
        "`make docs`; a test fails when this page is stale.",
        "",
        "## Every service",
        "",
        "| variable | default | meaning |",
        "|---|---|---|",
        *_rows(ServiceSettings, shared=True),
    ]
    # By port: the gateway, the front door, first; then the services in the order data flows through them.
    for settings in (settings_class(service) for service in sorted(SERVICES, key=lambda s: s.port)):
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
    parser.add_argument("--check", action="store_true", help="fail when docs/configuration.md is stale")
    return write_or_check(DOC, render(), check=parser.parse_args().check, command="make docs")


if __name__ == "__main__":
    sys.exit(main())
