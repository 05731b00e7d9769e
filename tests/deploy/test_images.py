"""The service images, checked without a container engine: what each image installs (the lock's closure for
`uv sync --no-dev --package wayline-<svc>`, the Dockerfile's own command) carries what the service imports
and nothing it must not; the Dockerfile and .dockerignore keep up with the workspace; `make images` builds
each service with the registry's ports, and refuses cleanly when no engine answers."""

from __future__ import annotations

import ast
import os
import re
import stat
import subprocess
import sys
import tomllib
from functools import cache
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

from tools.image_sizes import OTHER, distribution_sizes
from tools.images import service_ports
from wayline.common.registry import REGISTRY, SERVICES

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
FIRST_PARTY = {service.package for service in SERVICES} | {"wayline_ml", "wayline_cli"}

# Distributions an image may carry only for the services named (the rest of the suite must not pay for them).
ONLY_IN: dict[str, set[str]] = {
    "chdb": {"journeys"},
    "chdb-core": {"journeys"},
    "clickhouse-connect": {"journeys"},
    "pyarrow": {"journeys"},
    "pandas": {"journeys"},  # chDB's dependency
    "numpy": {"journeys", "decision"},  # chDB's pandas; decision's feature vectors
    "onnxruntime": {"decision"},
    "onnx": {"decision"},
    "redis": {"decision"},
}
# The ML side's training stack and the development tools: no image carries them.
NEVER = {
    "xgboost",
    "xgboost-cpu",
    "onnxmltools",
    "skl2onnx",
    "scikit-learn",
    "scipy",
    "grpcio-tools",
    "mypy-protobuf",
    "pytest",
    "hypothesis",
    "mypy",
    "ruff",
    "wayline-ml",
    "wayline-cli",
}


# The Dockerfile's `uv sync` options, as an export: one requirement a line, no hashes, no comments.
EXPORT_OPTIONS = ("--frozen", "--no-dev", "--no-editable", "--no-hashes", "--no-header", "--no-annotate")


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@cache
def closure(service: str) -> frozenset[str]:
    """The distributions the image of `service` installs: the locked export of the Dockerfile's command
    (workspace members appear as their folder, named here `wayline-<folder>`)."""
    uv = os.environ.get("UV", "uv")
    exported = subprocess.run(
        [uv, "export", *EXPORT_OPTIONS, "--package", f"wayline-{service}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    names: set[str] = set()
    for line in exported.splitlines():
        if not line.strip() or line[0] in " #-":
            continue
        if line.startswith("./"):
            names.add(f"wayline-{Path(line.split()[0]).name}")
        else:
            names.add(normalize(re.split(r"[=<>~!; \[]", line, maxsplit=1)[0]))
    return frozenset(names)


@pytest.mark.parametrize("service", list(REGISTRY))
def test_each_image_carries_its_package_the_kit_and_no_other_service(service: str) -> None:
    names = closure(service)
    assert {f"wayline-{service}", "wayline-common", "grpcio", "protobuf"} <= names
    others = {f"wayline-{other}" for other in REGISTRY if other != service}
    assert not names & others, f"{service} would carry another service's package"


@pytest.mark.parametrize("service", list(REGISTRY))
def test_heavy_dependencies_stay_in_the_images_that_use_them(service: str) -> None:
    names = closure(service)
    misplaced = sorted(name for name, owners in ONLY_IN.items() if name in names and service not in owners)
    assert not misplaced, f"{service}'s image would carry {misplaced}"
    assert not names & NEVER, f"{service}'s image would carry {sorted(names & NEVER)}"


def test_journeys_and_decision_carry_their_engines() -> None:
    """The exclusions above are checked against a parse that does see heavy packages."""
    assert {"chdb", "clickhouse-connect", "pyarrow"} <= closure("journeys")
    assert {"onnxruntime", "numpy", "onnx", "redis"} <= closure("decision")


def imported_modules(source_root: Path) -> dict[str, set[Path]]:
    """Top-level module → the files that import it, absolute imports and `importlib.import_module("...")`
    alike (ingest loads its sentiment lexicons that way)."""
    found: dict[str, set[Path]] = {}
    for path in source_root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "import_module"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                names = [node.args[0].value]
            for name in names:
                found.setdefault(name.split(".")[0], set()).add(path.relative_to(ROOT))
    return found


@pytest.mark.parametrize("service", list(REGISTRY))
def test_a_service_imports_only_what_its_image_carries(service: str) -> None:
    """An image holds only its own package, wayline-common and their dependencies: an import of another
    service's code, or of a library only the developer's environment has, would fail at pod start."""
    providers = packages_distributions()
    names = closure(service)
    problems: list[str] = []
    for module, files in sorted(imported_modules(ROOT / "services" / service / "src").items()):
        if module in sys.stdlib_module_names or module in {"wayline", REGISTRY[service].package}:
            continue
        if module in FIRST_PARTY:
            problems.append(f"{module} (another Wayline package) in {sorted(map(str, files))}")
        elif not {normalize(dist) for dist in providers.get(module, [])} & names:
            problems.append(f"{module} (not in the image's locked closure) in {sorted(map(str, files))}")
    assert not problems, f"{service}: " + "; ".join(problems)


def workspace_members() -> set[str]:
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["uv"]["workspace"]["members"]
    return {
        str(folder.relative_to(ROOT))
        for pattern in patterns
        for folder in ROOT.glob(pattern)
        if (folder / "pyproject.toml").is_file()
    }


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per instruction, continuation lines joined, comments dropped."""
    lines = [line for line in dockerfile.read_text().splitlines() if not line.startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line.strip() else "")
        for line in (raw.strip() for raw in joined.splitlines())
        if line
    ]


def test_the_dockerfile_copies_every_workspace_members_pyproject() -> None:
    """uv needs every member's metadata to use the one lock: a new member without its COPY line breaks
    every image's dependency layer."""
    copied = {
        match.group(1)
        for name, arguments in instructions(DOCKERFILE)
        if name == "COPY" and (match := re.fullmatch(r"(\S+)/pyproject\.toml \1/", arguments))
    }
    assert copied == workspace_members()


def stages(dockerfile: Path) -> dict[str, list[tuple[str, str]]]:
    found: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for name, arguments in instructions(dockerfile):
        if name == "FROM":
            current = found.setdefault(arguments.split()[-1], [])
        current.append((name, arguments))
    return found


def test_the_runtime_stage_is_non_root_and_runs_the_service_module() -> None:
    runtime = stages(DOCKERFILE)["runtime"]
    assert ("USER", "10001:10001") in runtime
    assert ("STOPSIGNAL", "SIGTERM") in runtime
    assert ("ENTRYPOINT", '["/app/.venv/bin/wayline-service"]') in runtime
    # The runtime stage installs nothing but the gateway's nginx data plane (ADR 105), in its image only.
    installs = [arguments for _, arguments in runtime if "apt-get" in arguments]
    assert [a.split(";")[0].strip() for a in installs] == ['if [ "${SERVICE}" = gateway ]']
    assert "install -y --no-install-recommends nginx libnginx-mod-http-lua" in installs[0]
    assert all("uv " not in arguments for _, arguments in runtime)
    build = " ".join(arguments for name, arguments in stages(DOCKERFILE)["build"] if name == "RUN")
    assert 'exec /app/.venv/bin/python -m wayline_%s "$@"' in build
    assert 'uv sync --frozen --no-dev --no-editable --package "wayline-${SERVICE}"' in build


GLOB_PARTS = {"**": ".*", "*": "[^/]*", "?": "[^/]"}


def glob_regex(pattern: str) -> str:
    """A .dockerignore pattern as a regular expression (Go's filepath.Match, plus `**` for any folders)."""
    parts = re.split(r"(\*\*|\*|\?|\[[^\]]*\])", pattern)
    return "".join(GLOB_PARTS.get(part, part if part.startswith("[") else re.escape(part)) for part in parts)


def dockerignore_admits(path: str) -> bool:
    """Whether `path` (relative to the root) reaches the build context: the last matching pattern wins, and a
    pattern that matches a parent folder matches what is inside it (Docker's rules)."""
    parents = [str(Path(*Path(path).parts[: i + 1])) for i in range(len(Path(path).parts))]
    admitted = True
    for raw in (ROOT / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        regex = glob_regex(line.removeprefix("!").removeprefix("./"))
        if any(re.fullmatch(regex, parent) for parent in parents):
            admitted = line.startswith("!")
    return admitted


def test_the_dockerignore_admits_what_the_dockerfile_copies_and_nothing_local() -> None:
    needed = ["pyproject.toml", "uv.lock", *(f"{member}/pyproject.toml" for member in workspace_members())]
    for service in ["common", *REGISTRY]:
        needed += [
            str(path.relative_to(ROOT))
            for path in (ROOT / "services" / service / "src").rglob("*")
            if path.is_file()
            and path.suffix not in {".pyc", ".so"}  # build products of this checkout, not sources
            and not any(part == "__pycache__" or part.endswith(".egg-info") for part in path.parts)
        ]
    assert [path for path in needed if not dockerignore_admits(path)] == []
    kept_out = [".venv/pyvenv.cfg", ".git/HEAD", "tests/conftest.py", "services/x/src/__pycache__/a.pyc"]
    kept_out += [".env", "services/gateway/src/.wayline/gateway.db", "ml/src/wayline_ml/__init__.py"]
    kept_out += ["services/ingest/src/wayline_ingest.egg-info/PKG-INFO", "services/gateway/src/stray.pyc"]
    kept_out += ["services/ingest/src/wayline_ingest/_wire.cpython-311-x86_64-linux-gnu.so"]  # host-built
    assert [path for path in kept_out if dockerignore_admits(path)] == []


def fake_engine(folder: Path, name: str, *, answers: bool) -> Path:
    """A stand-in for the docker (or podman) client, the one tool outside Wayline here: `info` succeeds or
    fails as told; every other call is recorded and succeeds."""
    log = folder / f"{name}.calls"
    script = folder / name
    script.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = info ]; then\n'
        + ("  exit 0\n" if answers else '  echo "Cannot connect to the Docker daemon." >&2; exit 1\n')
        + "fi\n"
        + f'printf "%s\\n" "$*" >> "{log}"\n'
        + 'if [ "$1" = image ]; then echo 123456789; fi\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return log


def run_images(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tools.images", *args],
        cwd=ROOT,
        env={"PATH": str(path), "HOME": str(path)},
        capture_output=True,
        text=True,
        check=False,
    )


def test_make_images_refuses_cleanly_without_an_engine(tmp_path: Path) -> None:
    calls = fake_engine(tmp_path, "docker", answers=False)
    result = run_images(tmp_path)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "No container engine answers" in result.stderr
    assert "docker: `docker info` failed: Cannot connect to the Docker daemon." in result.stderr
    assert "podman: not installed" in result.stderr
    assert "docker build --build-arg SERVICE=journeys -t wayline/journeys:dev ." in result.stderr
    assert not calls.exists(), "nothing may be built without an engine"


def test_make_images_builds_every_service_with_its_ports(tmp_path: Path) -> None:
    calls = fake_engine(tmp_path, "docker", answers=True)
    result = run_images(tmp_path, "--tag", "1.2.3")
    assert result.returncode == 0, result.stderr
    builds = [call for call in calls.read_text().splitlines() if call.startswith("build ")]
    assert len(builds) == len(SERVICES)
    for service, build in zip(SERVICES, builds, strict=True):
        assert build.startswith("build -f Dockerfile --build-arg SERVICE=" + service.name + " "), build
        assert build.endswith(f"-t wayline/{service.name}:1.2.3 ."), build
        ports = re.search(r"PORTS=([\d ]+?) --build-arg", build)
        assert ports is not None, build
        assert {service.port, service.metrics_port} <= {int(port) for port in ports.group(1).split()}
    assert service_ports("gateway") == [50051, 9460, 8080]  # the gateway's HTTP port is one of its own
    for service in SERVICES:  # each image's size as the engine reports it, for docs/images.md
        assert f"wayline/{service.name}:1.2.3  123.5 MB" in result.stdout


def test_image_sizes_count_bytecode_with_its_source_and_skip_the_interpreter(tmp_path: Path) -> None:
    site = tmp_path / "lib" / "python3.11" / "site-packages"
    (site / "pkg" / "__pycache__").mkdir(parents=True)
    (site / "pkg-1.0.dist-info").mkdir()
    (tmp_path / "bin").mkdir()
    (site / "pkg" / "__init__.py").write_bytes(b"x" * 10)
    (site / "pkg" / "__pycache__" / "__init__.cpython-311.pyc").write_bytes(b"x" * 100)
    (site / "pkg-1.0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: Pkg\n")
    (tmp_path / "bin" / "pkg-tool").write_bytes(b"x" * 1000)
    (site / "pkg-1.0.dist-info" / "RECORD").write_text(
        "pkg/__init__.py,,\npkg-1.0.dist-info/METADATA,,\npkg-1.0.dist-info/RECORD,,\n../../../bin/pkg-tool,,\n"
    )
    (tmp_path / "pyvenv.cfg").write_bytes(b"x" * 7)
    (tmp_path / "bin" / "python").symlink_to(sys.executable)
    metadata = sum((site / "pkg-1.0.dist-info" / name).stat().st_size for name in ("METADATA", "RECORD"))
    assert distribution_sizes(tmp_path) == {"Pkg": 10 + 100 + metadata + 1000, OTHER: 7}


def test_make_images_runs_the_build_tool_with_the_tag() -> None:
    # UV given on the command line: make then never runs the uv bootstrap, and prints what it would run.
    result = subprocess.run(
        ["make", "--no-print-directory", "-n", "images", "TAG=1.2.3", "UV=uv"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == "uv run --locked python -m tools.images --tag 1.2.3"
