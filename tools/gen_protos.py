"""Generate the Python contracts from protos/ — the one command behind `make protos`.

Writes `*_pb2.py`, `*_pb2_grpc.py` and their mypy stubs (`.pyi`) into services/common/src, one package per
proto package (`wayline.<area>.v1`). The compiler is grpcio-tools' bundled protoc, pinned in uv.lock, so the
generated code always matches the protobuf runtime we lock. With `--check` it generates into a temporary
directory and exits non-zero when the committed code has drifted from protos/.
"""

from __future__ import annotations

import argparse
import filecmp
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

from tools.generated import PROTOS, ROOT, proto_sources, well_known_protos

OUT = ROOT / "services" / "common" / "src"
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi")


def generate(out: Path) -> None:
    """Compile every .proto under protos/ into `out` and make each generated folder a package."""
    sources = proto_sources()
    well_known = well_known_protos()
    args = [
        "protoc",
        f"--proto_path={PROTOS}",
        f"--proto_path={well_known}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        f"--mypy_out={out}",
        f"--mypy_grpc_out={out}",
        "--mypy_opt=quiet",
        "--mypy_grpc_opt=quiet",
        *sources,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed; see the messages above")
    for source in sources:
        package_dir = out / Path(source).parent
        while package_dir != out:
            (package_dir / "__init__.py").touch()
            package_dir = package_dir.parent


def generated_files(root: Path) -> set[Path]:
    """Every generated file (and package marker of a generated folder) below root's proto packages."""
    found: set[Path] = set()
    top_levels = sorted(p.name for p in PROTOS.iterdir() if p.is_dir())
    for path in (path for top in top_levels for path in (root / top).rglob("*")):
        if path.name.endswith(GENERATED_SUFFIXES):
            found.add(path.relative_to(root))
            found.add(path.parent.relative_to(root) / "__init__.py")
    return found


def remove_generated(root: Path) -> None:
    for rel in generated_files(root):
        if rel.name != "__init__.py":
            (root / rel).unlink()


def check() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        fresh_root = Path(tmp)
        generate(fresh_root)
        fresh = generated_files(fresh_root)
        committed = generated_files(OUT)
        drift = sorted(str(p) for p in fresh ^ committed)
        drift += sorted(
            str(p) for p in fresh & committed if not filecmp.cmp(fresh_root / p, OUT / p, shallow=False)
        )
    if drift:
        print("generated code is stale; run `make protos` and commit:", *drift, sep="\n  ", file=sys.stderr)
        return 1
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if the committed code has drifted")
    if parser.parse_args().check:
        return check()
    remove_generated(OUT)
    generate(OUT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
