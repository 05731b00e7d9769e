"""Build the service images from the one Dockerfile: `make images` (`python -m tools.images`).

Each build gets `SERVICE` and the metadata the Dockerfile cannot know by itself: the ports the service
listens on by default (its settings' defaults, which come from the registry), and the version and description
from its pyproject.toml. After the builds it prints each image's size. Without a container engine that answers
(`docker info`, then `podman info`), it builds nothing, says why and what to run instead, and exits non-zero.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tools.service_settings import settings_class
from wayline.common.registry import REGISTRY, SERVICES

__all__ = ["ENGINES", "ImageBuild", "find_engine", "image_build", "image_size", "main", "service_ports"]

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
ENGINES = ("docker", "podman")  # tried in this order; both take the same `build` arguments
ENGINE_TIMEOUT_SECONDS = 20


@dataclass(frozen=True)
class ImageBuild:
    """One image: `wayline/<service>:<tag>` from the Dockerfile with its build arguments."""

    service: str
    tag: str
    build_args: dict[str, str] = field(default_factory=dict)

    @property
    def image(self) -> str:
        return f"wayline/{self.service}:{self.tag}"

    def command(self, engine: str) -> list[str]:
        arguments = [
            arg for key, value in self.build_args.items() for arg in ("--build-arg", f"{key}={value}")
        ]
        # Relative to the repository root, where it runs: the command printed is the one a person would type.
        return [engine, "build", "-f", DOCKERFILE.name, *arguments, "-t", self.image, "."]


def service_ports(service: str) -> list[int]:
    """The ports `service` listens on by default: every `*port` setting whose default is not 0 (off)."""
    fields = settings_class(REGISTRY[service]).model_fields
    return [
        value.default
        for name, value in fields.items()
        if name.endswith("port") and isinstance(value.default, int) and value.default
    ]


def image_build(service: str, tag: str, revision: str = "") -> ImageBuild:
    project = tomllib.loads((ROOT / "services" / service / "pyproject.toml").read_text())["project"]
    return ImageBuild(
        service=service,
        tag=tag,
        build_args={
            "SERVICE": service,
            "PORTS": " ".join(str(port) for port in service_ports(service)),
            "VERSION": project["version"],
            "REVISION": revision,
            "DESCRIPTION": project["description"],
        },
    )


def find_engine(candidates: Sequence[str] = ENGINES) -> tuple[str | None, list[str]]:
    """The first engine whose `info` succeeds, and why each one before it could not be used."""
    reasons: list[str] = []
    for engine in candidates:
        if shutil.which(engine) is None:
            reasons.append(f"{engine}: not installed")
            continue
        try:
            answer = subprocess.run(
                [engine, "info"], capture_output=True, text=True, timeout=ENGINE_TIMEOUT_SECONDS, check=False
            )
        except subprocess.TimeoutExpired:
            reasons.append(f"{engine}: `{engine} info` did not answer within {ENGINE_TIMEOUT_SECONDS} s")
            continue
        if answer.returncode == 0:
            return engine, reasons
        said = [line.strip() for line in (answer.stderr or answer.stdout).splitlines() if line.strip()]
        last_words = said[-1] if said else f"exit status {answer.returncode}"
        reasons.append(f"{engine}: `{engine} info` failed: {last_words}")
    return None, reasons


def image_size(engine: str, image: str) -> str:
    """The image's uncompressed size as the engine reports it, in MB ("?" when it does not say)."""
    answer = subprocess.run(
        [engine, "image", "inspect", "--format", "{{.Size}}", image],
        capture_output=True,
        text=True,
        check=False,
    )
    size = answer.stdout.strip()
    return f"{int(size) / 1_000_000:.1f} MB" if answer.returncode == 0 and size.isdigit() else "?"


def git_revision() -> str:
    """The commit the images are built from, for their revision label; empty outside a git checkout."""
    try:
        answer = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=False
        )
    except FileNotFoundError:
        return ""
    return answer.stdout.strip() if answer.returncode == 0 else ""


def explain_no_engine(reasons: list[str], tag: str) -> str:
    lines = ["No container engine answers, so no image was built:"]
    lines += [f"  {reason}" for reason in reasons]
    lines += [
        "Start Docker (or install Podman) and run `make images` again; or build one image by hand, from the "
        "repository root:",
        f"  docker build --build-arg SERVICE=journeys -t wayline/journeys:{tag} .",
        "Without an engine, `make image-sizes` measures what each image's venv would hold.",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.images", description=__doc__.splitlines()[0])
    parser.add_argument("services", nargs="*", metavar="SERVICE", help=f"default: {', '.join(REGISTRY)}")
    parser.add_argument("--tag", default="dev", help="image tag (default: dev)")
    parser.add_argument("--engine", choices=ENGINES, help="use this engine instead of the first that answers")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.services) - set(REGISTRY))
    if unknown:
        parser.error(f"not a service: {', '.join(unknown)}")

    engine, reasons = find_engine([args.engine] if args.engine else ENGINES)
    if engine is None:
        print(explain_no_engine(reasons, args.tag), file=sys.stderr)
        return 1
    revision = git_revision()
    built: list[str] = []
    for service in args.services or [service.name for service in SERVICES]:
        build = image_build(service, args.tag, revision)
        command = build.command(engine)
        print("+ " + " ".join(command), flush=True)
        if subprocess.run(command, cwd=ROOT, check=False).returncode != 0:
            print(f"building {build.image} failed; the images before it were built", file=sys.stderr)
            return 1
        built.append(build.image)
    print("\nBuilt (uncompressed size, for docs/images.md):")
    for image in built:
        print(f"  {image}  {image_size(engine, image)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
