"""What each service image's venv holds, measured without a container engine: `make image-sizes`.

For every service it runs the Dockerfile's own install, `uv sync --frozen --no-dev --no-editable --package
wayline-<svc>` with bytecode compiled, into a throwaway environment (the shared uv cache makes it quick and,
once the cache has the wheels, offline), then adds up the files by the distribution whose RECORD lists them
(a module's compiled bytecode counts with its source). Sizes are apparent sizes, the bytes a layer's tar
carries before compression; the base image (python:3.11-slim) comes on top. Prints a Markdown table for
docs/images.md.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from wayline.common.registry import REGISTRY, SERVICES

__all__ = ["OTHER", "distribution_sizes", "main", "sync_image_venv"]

ROOT = Path(__file__).resolve().parents[1]
OTHER = "(venv itself)"  # files no RECORD lists: pyvenv.cfg, activate scripts, the launcher
MB = 1_000_000


def sync_image_venv(service: str, venv: Path) -> None:
    """Install into `venv` exactly what the Dockerfile installs for `service`."""
    uv = os.environ.get("UV") or shutil.which("uv") or "uv"
    environment = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}  # uv warns when it differs
    environment |= {
        "UV_PROJECT_ENVIRONMENT": str(venv),
        "UV_COMPILE_BYTECODE": "1",
        "UV_LINK_MODE": "copy",
        "UV_PYTHON_DOWNLOADS": "never",
    }
    command = [uv, "sync", "--frozen", "--no-dev", "--no-editable", "--quiet"]
    command += ["--package", f"wayline-{service}"]
    subprocess.run(command, cwd=ROOT, env=environment, check=True)


def _source_of(path: Path) -> Path:
    """`pkg/__pycache__/mod.cpython-311.pyc` → `pkg/mod.py`: bytecode belongs to its source's distribution."""
    if path.parent.name == "__pycache__" and path.suffix == ".pyc":
        return path.parent.parent / (path.name.split(".", 1)[0] + ".py")
    return path


def _owners(venv: Path) -> dict[Path, str]:
    """Every file some distribution's RECORD lists → that distribution's name."""
    owners: dict[Path, str] = {}
    for record in venv.glob("lib/python*/site-packages/*.dist-info/RECORD"):
        site_packages = record.parent.parent
        name = record.parent.name.split("-", 1)[0]
        for line in (record.parent / "METADATA").read_text(errors="replace").splitlines():
            if line.startswith("Name:"):
                name = line.removeprefix("Name:").strip()
                break
        with record.open(newline="") as rows:
            for row in csv.reader(rows):
                if row:
                    owners[Path(os.path.normpath(site_packages / row[0]))] = name
    return owners


def distribution_sizes(venv: Path) -> Counter[str]:
    """Bytes per distribution for every regular file under `venv` (symlinks, such as the interpreter, are not
    counted: they point into the base image)."""
    owners = _owners(venv)
    sizes: Counter[str] = Counter()
    for directory, _, names in os.walk(venv):
        for name in names:
            path = Path(directory) / name
            if path.is_symlink() or not path.is_file():
                continue
            sizes[owners.get(_source_of(path), OTHER)] += path.stat().st_size
    return sizes


def markdown(results: dict[str, Counter[str]], top: int) -> str:
    lines = [
        "| service | venv (MB) | biggest distributions (MB) |",
        "|---|---:|---|",
    ]
    for service, sizes in results.items():
        biggest = ", ".join(f"{name} {size / MB:.1f}" for name, size in sizes.most_common(top))
        lines.append(f"| {service} | {sum(sizes.values()) / MB:.1f} | {biggest} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.image_sizes", description=__doc__.splitlines()[0])
    parser.add_argument("services", nargs="*", metavar="SERVICE", help=f"default: {', '.join(REGISTRY)}")
    parser.add_argument("--top", type=int, default=6, help="distributions listed per service (default: 6)")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.services) - set(REGISTRY))
    if unknown:
        parser.error(f"not a service: {', '.join(unknown)}")

    results: dict[str, Counter[str]] = {}
    with tempfile.TemporaryDirectory(prefix="wayline-image-sizes-") as scratch:
        for service in args.services or [service.name for service in SERVICES]:
            venv = Path(scratch) / service
            sync_image_venv(service, venv)
            results[service] = distribution_sizes(venv)
    print(f"Measured {datetime.now(UTC):%Y-%m-%d} with `python -m tools.image_sizes` (`make image-sizes`).\n")
    print(markdown(results, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
