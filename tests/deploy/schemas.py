"""Offline schema validation of rendered manifests, as an API server with strict field validation would judge
them, without a cluster.

Built-in kinds validate against the Kubernetes OpenAPI schemas that kubernetes-validate bundles, in strict
mode (an unknown field fails), at the oldest Kubernetes deploy/README.md supports and at the newest the
library knows: a manifest must apply on every version in between. Custom resources validate against the
CustomResourceDefinitions vendored under deploy/crds/<operator>/ (the schema of the version the document's
apiVersion names), made as strict as the API server is: unknown fields fail except where the CRD preserves
them. A document of a kind neither knows fails: its schema has to be vendored.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate  # type: ignore[import-untyped]
import kubernetes_validate.utils  # type: ignore[import-untyped]
import yaml

__all__ = [
    "CRDS",
    "KUBERNETES_VERSIONS",
    "CustomResourceSchemas",
    "ManifestValidator",
    "kubernetes_minimum",
]

ROOT = Path(__file__).resolve().parents[2]
CRDS = ROOT / "deploy" / "crds"

Document = dict[str, Any]

# kubernetes-validate reads and parses a schema file (the shared definitions are 1 MB of JSON) on every call;
# the files never change, and reading each once makes validating a rendering several times faster.
kubernetes_validate.utils.schema_contents = cache(kubernetes_validate.utils.schema_contents)


def kubernetes_minimum() -> str:
    """The oldest Kubernetes the manifests support, as deploy/README.md states it ("Requires Kubernetes
    1.27+")."""
    match = re.search(r"Requires Kubernetes (\d+\.\d+)\+", (ROOT / "deploy" / "README.md").read_text())
    assert match is not None, "deploy/README.md states no minimum Kubernetes version"
    return match.group(1)


KUBERNETES_VERSIONS = (
    kubernetes_minimum(),
    ".".join(str(kubernetes_validate.latest_version()).split(".")[:2]),
)


def _path(error: jsonschema.ValidationError) -> str:
    return ".".join(str(part) for part in error.absolute_path) or "(document)"


def _name(doc: Document) -> str:
    return f"{doc.get('kind')}/{(doc.get('metadata') or {}).get('name')}"


def _strict(schema: dict[str, Any], *, root: bool = False) -> dict[str, Any]:
    """The CRD's structural schema judged as the API server does: objects with declared properties reject
    others unless x-kubernetes-preserve-unknown-fields; `nullable` admits null; the root and embedded
    resources carry apiVersion, kind and metadata."""
    schema = dict(schema)
    if root or schema.get("x-kubernetes-embedded-resource"):
        schema["properties"] = {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            **schema.get("properties", {}),
        }
    if "properties" in schema:
        schema["properties"] = {key: _strict(value) for key, value in schema["properties"].items()}
        if "additionalProperties" not in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
            schema["additionalProperties"] = False
    if isinstance(schema.get("additionalProperties"), dict):
        schema["additionalProperties"] = _strict(schema["additionalProperties"])
    if isinstance(schema.get("items"), dict):
        schema["items"] = _strict(schema["items"])
    for keyword in ("allOf", "anyOf", "oneOf"):
        if keyword in schema:
            schema[keyword] = [_strict(part) for part in schema[keyword]]
    if schema.get("nullable") and isinstance(schema.get("type"), str):
        schema["type"] = [schema["type"], "null"]
    return schema


@dataclass
class CustomResourceSchemas:
    """(group, version, kind) → the vendored CRD's schema for it, made strict."""

    validators: dict[tuple[str, str, str], jsonschema.Draft4Validator] = field(default_factory=dict)

    @classmethod
    def load(cls, folder: Path = CRDS) -> CustomResourceSchemas:
        found = cls()
        for path in sorted(folder.glob("**/*.y*ml")):
            for doc in yaml.load_all(path.read_text(), Loader=yaml.CSafeLoader):
                if doc and doc.get("kind") == "CustomResourceDefinition":
                    found.add(doc, source=path)
        return found

    def add(self, crd: Document, source: Path | None = None) -> None:
        spec = crd["spec"]
        for version in spec["versions"]:
            if not version.get("served", True):  # the API server refuses a version it does not serve
                continue
            key = (spec["group"], version["name"], spec["names"]["kind"])
            assert key not in self.validators, f"{source}: {key} is vendored twice"
            # OpenAPI v3.0 schemas are JSON Schema draft 4 with extensions (x-kubernetes-*, nullable).
            schema = _strict(version["schema"]["openAPIV3Schema"], root=True)
            self.validators[key] = jsonschema.Draft4Validator(schema)

    def validator(self, doc: Document) -> jsonschema.Draft4Validator | None:
        group, _, version = str(doc.get("apiVersion", "")).rpartition("/")
        return self.validators.get((group, version, str(doc.get("kind"))))

    def problems(self, doc: Document) -> list[str]:
        validator = self.validator(doc)
        assert validator is not None
        found = [f"{_name(doc)}: {_path(e)}: {e.message}" for e in validator.iter_errors(doc)]
        # The API server checks a custom resource's metadata as every object's: as ObjectMeta.
        carrier = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": doc.get("metadata", {})}
        return found + [p.replace("ConfigMap/", f"{doc.get('kind')}/", 1) for p in _builtin_problems(carrier)]


def _builtin_problems(doc: Document) -> list[str]:
    found = []
    for version in KUBERNETES_VERSIONS:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            found.append(f"{_name(doc)} (Kubernetes {version}): {_path(error)}: {error.message}")
        except kubernetes_validate.SchemaNotFoundError:
            found.append(
                f"{_name(doc)}: Kubernetes {version} has no {doc.get('apiVersion')} {doc.get('kind')}, and "
                "no CustomResourceDefinition for it is vendored under deploy/crds/<operator>/"
            )
    return found


class ManifestValidator:
    """Judges documents against the bundled Kubernetes schemas and `crds`, each distinct document once (most
    documents repeat across the rendered combinations)."""

    def __init__(self, crds: CustomResourceSchemas) -> None:
        self.crds = crds
        self._verdicts: dict[str, tuple[str, ...]] = {}

    def problems(self, doc: Document) -> list[str]:
        """Why `doc` would not apply (empty when it would)."""
        key = json.dumps(doc, sort_keys=True, default=str)
        if key not in self._verdicts:
            found = (
                self.crds.problems(doc) if self.crds.validator(doc) is not None else _builtin_problems(doc)
            )
            self._verdicts[key] = tuple(found)
        return list(self._verdicts[key])

    def all_problems(self, docs: Iterable[Document]) -> Iterator[str]:
        for doc in docs:
            yield from self.problems(doc)
