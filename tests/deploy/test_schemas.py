"""Every document of every rendered combination would pass an API server's strict field validation, checked
offline: built-in kinds against the Kubernetes schemas kubernetes-validate bundles (the oldest version
deploy/README.md supports and the newest it knows), custom resources against the CRDs vendored in
deploy/crds/. And the validator rejects what a server would, naming the field."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.kustomize import Combination, combinations, render, render_combination
from tests.deploy.schemas import KUBERNETES_VERSIONS, CustomResourceSchemas, ManifestValidator

Document = dict[str, Any]
SAMPLE_CRDS = Path(__file__).parent / "crds"  # a real published CRD, for the validator's own tests


@pytest.fixture(scope="module")
def validator() -> ManifestValidator:
    return ManifestValidator(CustomResourceSchemas.load())


@pytest.mark.parametrize("combination", combinations(), ids=lambda c: c.name)
def test_every_rendered_document_validates(validator: ManifestValidator, combination: Combination) -> None:
    assert list(validator.all_problems(render_combination(combination))) == []


def test_the_versions_are_the_readmes_minimum_and_the_newest_known() -> None:
    oldest, newest = (tuple(int(part) for part in v.split(".")) for v in KUBERNETES_VERSIONS)
    assert oldest >= (1, 27)  # native gRPC probes are GA from 1.27
    assert newest >= oldest


def workload(docs: list[Document], name: str) -> Document:
    (found,) = [d for d in docs if d["kind"] == "StatefulSet" and d["metadata"]["name"] == name]
    return copy.deepcopy(found)


@pytest.mark.parametrize(
    ("change", "path", "words"),
    [
        (lambda d: d["spec"].__setitem__("replicas", "three"), "spec.replicas", "is not of type 'integer'"),
        (
            lambda d: d["spec"]["template"]["spec"]["containers"][0].__setitem__(
                "imagePullPolicy2", "Always"
            ),
            "spec.template.spec.containers.0",
            "'imagePullPolicy2' was unexpected",
        ),
        (
            lambda d: d["spec"]["template"]["spec"]["containers"][0]["ports"][0].__setitem__(
                "containerPort", "x"
            ),
            "spec.template.spec.containers.0.ports.0.containerPort",
            "is not of type 'integer'",
        ),
    ],
    ids=["wrong type", "unknown field", "nested wrong type"],
)
def test_a_broken_built_in_document_is_rejected_naming_the_field(
    validator: ManifestValidator, change: Any, path: str, words: str
) -> None:
    doc = workload(render("production"), "ingest")
    assert validator.problems(doc) == []
    change(doc)
    found = validator.problems(doc)
    assert found
    assert all(
        f"StatefulSet/ingest (Kubernetes {v}): {path}: " in p
        for p, v in zip(found, KUBERNETES_VERSIONS, strict=True)
    )
    assert all(words in p for p in found)


def test_a_kind_without_a_schema_is_rejected(validator: ManifestValidator) -> None:
    doc = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {}}
    (problem, *_) = validator.problems(doc)
    assert "Widget/w" in problem
    assert "no CustomResourceDefinition for it is vendored under deploy/crds" in problem


def sealed_secret() -> Document:
    """A SealedSecret as an operator would commit one for the suite's internal token."""
    return {
        "apiVersion": "bitnami.com/v1alpha1",
        "kind": "SealedSecret",
        "metadata": {"name": "wayline-internal", "namespace": "wayline"},
        "spec": {
            "encryptedData": {"token": "AgBy3i4OJSWK+PiTySYZZA=="},
            "template": {"metadata": None, "type": "Opaque"},
        },
    }


@pytest.fixture(scope="module")
def sample_validator() -> ManifestValidator:
    return ManifestValidator(CustomResourceSchemas.load(SAMPLE_CRDS))


def test_a_custom_resource_validates_against_its_vendored_crd(sample_validator: ManifestValidator) -> None:
    assert sample_validator.problems(sealed_secret()) == []  # `nullable` admits the null metadata
    preserved = sealed_secret()
    preserved["spec"]["template"]["metadata"] = {"name": "x", "anything": {"the CRD": "preserves"}}
    assert sample_validator.problems(preserved) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda d: d["spec"].__setitem__("encryptedDta", {}),
            "SealedSecret/wayline-internal: spec: Additional properties are not allowed ('encryptedDta' was",
        ),
        (
            lambda d: d["spec"]["template"].__setitem__("immutable", "yes"),
            "SealedSecret/wayline-internal: spec.template.immutable: 'yes' is not of type 'boolean'",
        ),
        (
            lambda d: d["spec"].pop("encryptedData"),
            "SealedSecret/wayline-internal: spec: 'encryptedData' is a required property",
        ),
        (
            lambda d: d["metadata"].__setitem__("label", {"a": "b"}),
            "SealedSecret/wayline-internal (Kubernetes 1.",  # metadata is judged as ObjectMeta
        ),
        (
            lambda d: d.__setitem__("apiVersion", "bitnami.com/v1"),
            "no CustomResourceDefinition for it is vendored",  # a version the CRD does not serve
        ),
    ],
    ids=["unknown field", "wrong type", "missing required", "unknown metadata field", "unserved version"],
)
def test_a_broken_custom_resource_is_rejected_naming_the_field(
    sample_validator: ManifestValidator, change: Any, expected: str
) -> None:
    doc = sealed_secret()
    change(doc)
    assert any(p.startswith(expected) or expected in p for p in sample_validator.problems(doc))


def test_a_crd_vendored_twice_is_refused(tmp_path: Path) -> None:
    (sample,) = SAMPLE_CRDS.glob("**/*.yaml")
    for name in ("a.yaml", "b.yaml"):
        (tmp_path / name).write_text(sample.read_text())
    with pytest.raises(AssertionError, match="vendored twice"):
        CustomResourceSchemas.load(tmp_path)
