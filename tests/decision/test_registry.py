"""The directory registry: atomic, immutable, per tenant; concurrent pushes of one version make it once."""

from __future__ import annotations

import shutil
import stat
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.decision.model_packages import build_package
from wayline_decision.errors import ModelVersionExists
from wayline_decision.packages import PackageId
from wayline_decision.registry import Registration
from wayline_decision.registry.directory import RECORD_FILE, DirectoryRegistry
from wayline_decision.validation import ValidationLimits, ValidPackage, validate_package


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2025, 6, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(minutes=1)
        return self.now


@pytest.fixture
def registry(tmp_path: Path) -> DirectoryRegistry:
    return DirectoryRegistry(tmp_path / "registry", clock=Clock())


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Source packages: 1.0.0, 1.0.0 with another model card, and 1.1.0."""
    root = tmp_path_factory.mktemp("packages")
    build_package(root / "a", version="1.0.0")
    build_package(root / "a-changed", version="1.0.0", card=" Changed.")
    build_package(root / "b", version="1.1.0")
    return root


def stage(registry: DirectoryRegistry, tenant: str, source: Path) -> tuple[Path, ValidPackage]:
    """Copy a package into a staging directory the registry hands out, and validate it there."""
    package = validate_package(source, ValidationLimits())
    staging = registry.open_staging(tenant, package.manifest.model_id)
    for file in source.iterdir():
        shutil.copyfile(file, staging / file.name)
    return staging, package


def register(registry: DirectoryRegistry, tenant: str, source: Path) -> Registration:
    staging, package = stage(registry, tenant, source)
    return registry.register(tenant, staging, package)


def test_register_makes_an_immutable_version(registry: DirectoryRegistry, packages: Path) -> None:
    made = register(registry, "acme", packages / "a")
    assert made.created
    dest = registry.root / "acme" / "next-best-offer" / "1.0.0"
    assert made.version.location == str(dest.resolve())
    assert made.version.package == PackageId("next-best-offer", "1.0.0")
    assert sorted(p.name for p in dest.iterdir()) == sorted(
        [RECORD_FILE, *(p.name for p in (packages / "a").iterdir())]
    )
    for path in (dest, *dest.iterdir()):
        assert not path.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH), path
    assert [p.name for p in dest.parent.iterdir()] == ["1.0.0"]  # no staging left beside it
    assert registry.find("acme", PackageId("next-best-offer", "1.0.0")) == made.version


def test_a_version_is_never_replaced(registry: DirectoryRegistry, packages: Path) -> None:
    first = register(registry, "acme", packages / "a")
    again = register(registry, "acme", packages / "a")
    assert (again.created, again.version) == (False, first.version)
    with pytest.raises(ModelVersionExists) as exists:
        register(registry, "acme", packages / "a-changed")
    assert exists.value.reason == "MODEL_VERSION_EXISTS"
    assert registry.find("acme", PackageId("next-best-offer", "1.0.0")) == first.version
    assert [p.name for p in (registry.root / "acme" / "next-best-offer").iterdir()] == ["1.0.0"]


@pytest.mark.parametrize("other", ["a", "a-changed"])
def test_concurrent_pushes_of_one_version_make_it_once(
    registry: DirectoryRegistry, packages: Path, other: str
) -> None:
    """Both stage and validate, then race to register: one makes it, the other gets the idempotent answer
    (same content) or MODEL_VERSION_EXISTS (other content)."""
    staged = [stage(registry, "acme", packages / "a"), stage(registry, "acme", packages / other)]
    start = threading.Barrier(2)
    answers: list[Registration | Exception] = []

    def push(staging: Path, package: ValidPackage) -> None:
        start.wait()
        try:
            answers.append(registry.register("acme", staging, package))
        except ModelVersionExists as error:
            answers.append(error)

    threads = [threading.Thread(target=push, args=pair) for pair in staged]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    made = [a for a in answers if isinstance(a, Registration) and a.created]
    assert len(made) == 1
    (loser,) = [a for a in answers if a is not made[0]]
    if other == "a":
        assert isinstance(loser, Registration)
        assert (loser.created, loser.version) == (False, made[0].version)
    else:
        assert isinstance(loser, ModelVersionExists)
    assert [p.name for p in (registry.root / "acme" / "next-best-offer").iterdir()] == ["1.0.0"]


def test_versions_are_listed_newest_first_per_tenant(registry: DirectoryRegistry, packages: Path) -> None:
    register(registry, "acme", packages / "b")
    register(registry, "acme", packages / "a")
    versions = registry.versions("acme", "next-best-offer")
    assert [v.package.version for v in versions] == ["1.0.0", "1.1.0"]  # 1.0.0 was registered last
    assert versions[0].register_time > versions[1].register_time
    assert registry.model_ids("acme") == ["next-best-offer"]
    assert registry.model_ids("globex") == []
    assert registry.versions("globex", "next-best-offer") == []
    assert registry.find("globex", PackageId("next-best-offer", "1.0.0")) is None


def test_an_abandoned_upload_is_no_model_and_is_swept(registry: DirectoryRegistry, packages: Path) -> None:
    staging, _ = stage(registry, "acme", packages / "a")
    assert registry.model_ids("acme") == []
    assert registry.versions("acme", "next-best-offer") == []
    assert registry.sweep_staging(older_than_seconds=3600) == 0
    assert registry.sweep_staging(older_than_seconds=-1) == 1
    assert not staging.exists()


def test_a_tenant_id_that_is_no_plain_name_stays_inside_the_root(
    registry: DirectoryRegistry, packages: Path
) -> None:
    made = register(registry, "../escape", packages / "a")
    assert made.created
    assert Path(made.version.location).is_relative_to(registry.root.resolve())
    assert registry.model_ids("../escape") == ["next-best-offer"]
    assert registry.model_ids("escape") == []


def test_hidden_files_are_no_part_of_a_package(registry: DirectoryRegistry, packages: Path) -> None:
    """The registry's own record sits in the version; a stored version validates as the package it is."""
    made = register(registry, "acme", packages / "a")
    stored = validate_package(Path(made.version.location), ValidationLimits())
    assert RECORD_FILE not in stored.digests
    assert stored.digest == made.version.digest
