"""The service tables people read (README.md, deploy/README.md) stay text, and agree with the registry:
one row per service, with its proto package and its ports."""

from __future__ import annotations

import re
from pathlib import Path

from wayline.common.registry import REGISTRY

ROOT = Path(__file__).resolve().parents[2]


def service_rows(path: Path) -> dict[str, list[str]]:
    """Service name → the cells of its row, for every table row whose first cell names a service."""
    rows: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if not line.startswith("|"):
            continue
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        name = re.sub(r"^\[(.+?)\]\(.*\)$", r"\1", cells[0])  # "[gateway](services/gateway)" → "gateway"
        if name in REGISTRY:
            assert name not in rows, f"{path.name}: two rows for {name}"
            rows[name] = cells
    return rows


def leading_number(cell: str) -> int:
    match = re.match(r"\d+", cell)
    assert match is not None, cell
    return int(match.group())


def test_the_readme_table_has_every_service_with_its_package_and_ports() -> None:
    rows = service_rows(ROOT / "README.md")
    assert sorted(rows) == sorted(REGISTRY)
    for name, (_, packages, ports, *_) in rows.items():
        service = REGISTRY[name]
        assert re.findall(r"`([^`]+)`", packages)[0] == service.proto_package, name
        assert ports == f"{service.port} / {service.metrics_port}", name


def test_the_deploy_table_has_every_service_with_its_ports() -> None:
    rows = service_rows(ROOT / "deploy" / "README.md")
    assert sorted(rows) == sorted(REGISTRY)
    for name, (_, grpc_port, metrics_port, *_) in rows.items():
        service = REGISTRY[name]
        assert (leading_number(grpc_port), int(metrics_port)) == (service.port, service.metrics_port), name
