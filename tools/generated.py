"""What the generators in tools/ share: where the protos are, and writing or checking a generated file."""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path

__all__ = ["PROTOS", "ROOT", "proto_sources", "well_known_protos", "write_or_check"]

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"


def proto_sources() -> list[str]:
    """Every .proto under protos/, relative to it, in a stable order."""
    return sorted(str(path.relative_to(PROTOS)) for path in PROTOS.rglob("*.proto"))


def well_known_protos() -> str:
    """The google/protobuf/*.proto files that ship with grpcio-tools' protoc."""
    return str(resources.files("grpc_tools") / "_proto")


def write_or_check(path: Path, text: str, *, check: bool, command: str) -> int:
    """Write `text` to `path`, or with `check` exit status 1 when `path` differs from it."""
    if not check:
        path.write_text(text)
        return 0
    if path.read_text() != text:
        print(f"{path.relative_to(ROOT)} is stale: run `{command}`", file=sys.stderr)
        return 1
    return 0
