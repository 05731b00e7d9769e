"""Every overlay and component combination renders, on every machine: with kubectl's kustomize v5 where it
is, with the standalone kustomize `make tools` installs where it is not, and both give the same manifests.
What a combination refers to exists in it (an autoscaler's target, a disruption budget's pods)."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.kustomize import (
    COMPONENT_REQUIREMENTS,
    Combination,
    combinations,
    components,
    listed_components,
    render_combination,
    renderers,
)
from tests.deploy.network import selects
from wayline_ingest.settings import IngestSettings

Document = dict[str, Any]
COMBINATIONS = combinations()


def path_without_kubectl() -> str:
    """$PATH less every folder that holds a kubectl: what a fresh CI machine sees."""
    folders = os.environ.get("PATH", "").split(os.pathsep)
    return os.pathsep.join(folder for folder in folders if not (Path(folder) / "kubectl").exists())


def test_combinations_cover_both_overlays_and_every_component() -> None:
    assert {"overlays/dev", "overlays/production"} <= {c.name for c in COMBINATIONS}
    deployed = set(listed_components("overlays/production"))
    for combination in COMBINATIONS:
        deployed |= set(combination.components) if combination.on_overlay else set()
    for component in components():
        assert Combination("base", (*COMPONENT_REQUIREMENTS.get(component, ()), component)) in COMBINATIONS
        assert component in deployed, f"{component} is in no deployable rendering"
    assert set(COMPONENT_REQUIREMENTS) <= set(components())


@pytest.mark.parametrize("combination", COMBINATIONS, ids=lambda c: c.name)
def test_every_combination_renders_what_it_refers_to(combination: Combination) -> None:
    docs = render_combination(combination)
    workloads = {
        (d["kind"], d["metadata"]["name"]): d for d in docs if d["kind"] in ("Deployment", "StatefulSet")
    }
    assert workloads
    dangling = []
    for doc in docs:
        if doc["kind"] == "HorizontalPodAutoscaler":
            target = doc["spec"]["scaleTargetRef"]
            if (target["kind"], target["name"]) not in workloads:
                dangling.append(f"{doc['metadata']['name']} scales {target['kind']}/{target['name']}")
        if doc["kind"] == "PodDisruptionBudget":
            pods = [
                w
                for w in workloads.values()
                if selects(doc["spec"]["selector"], w["spec"]["template"]["metadata"]["labels"])
            ]
            if not pods:
                dangling.append(f"{doc['metadata']['name']} selects no pod")
    assert dangling == []


def test_without_kubectl_the_standalone_kustomize_renders() -> None:
    found = renderers(path_without_kubectl())
    assert found, "no standalone kustomize: `make tools` installs it (tools/ensure-kustomize.sh)"
    assert found[0].standalone
    production = next(c for c in COMBINATIONS if c.name == "overlays/production")
    assert render_combination(production, found[0]) == render_combination(production)


@pytest.mark.parametrize("combination", [c for c in COMBINATIONS if c.on_overlay], ids=lambda c: c.name)
def test_every_renderer_renders_the_same(combination: Combination) -> None:
    # On a machine with kubectl 1.27+ this compares kustomize v5 with the standalone v4 binary; the deployable
    # combinations hold every component between them. Elsewhere the standalone one is all there is.
    found = renderers()
    assert any(r.standalone for r in found), "no standalone kustomize: run `make tools`"
    expected = render_combination(combination, found[0])
    for renderer in found[1:]:
        assert render_combination(combination, renderer) == expected, f"{renderer} differs from {found[0]}"


def test_a_kubectl_whose_kustomize_predates_components_is_not_used(tmp_path: Path) -> None:
    # Debian's kubectl 1.20 reports kustomize v2.0.3, which knows no components.
    kubectl = tmp_path / "kubectl"
    kubectl.write_text(
        '#!/bin/sh\necho \'{"clientVersion": {"gitVersion": "v1.20.15"}, "kustomizeVersion": "v2.0.3"}\'\n'
    )
    kubectl.chmod(kubectl.stat().st_mode | stat.S_IXUSR)
    chosen = renderers(f"{tmp_path}{os.pathsep}{path_without_kubectl()}")
    assert chosen
    assert all(r.standalone for r in chosen)
    assert str(kubectl) not in [r.command[0] for r in chosen]


@pytest.mark.parametrize("combination", COMBINATIONS, ids=lambda c: c.name)
def test_journeys_runs_one_segment_evaluator_however_it_scales(combination: Combination) -> None:
    """Each tenant's segment changes have one writer (ADR 40's feed is ordered by it): where journeys can run
    more than one pod (replicas or an autoscaler), it is a StatefulSet naming its first pod as the evaluator,
    the one name a StatefulSet never runs twice at once."""
    docs = render_combination(combination)
    (journeys,) = [
        d for d in docs if d["kind"] in ("Deployment", "StatefulSet") and d["metadata"]["name"] == "journeys"
    ]
    scaled = journeys["spec"].get("replicas", 1) != 1 or any(
        d["kind"] == "HorizontalPodAutoscaler" and d["spec"]["scaleTargetRef"]["name"] == "journeys"
        for d in docs
    )
    (container,) = journeys["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container.get("env", [])}
    evaluator = env.get("WAYLINE_JOURNEYS_SEGMENT_EVALUATOR_HOST")
    if scaled:
        assert journeys["kind"] == "StatefulSet"
        assert evaluator == "journeys-0"


_BINARY_SUFFIXES = {"Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "Ti": 1024**4}


def _bytes(quantity: str) -> int:
    for suffix, factor in _BINARY_SUFFIXES.items():
        if quantity.endswith(suffix):
            return int(quantity.removesuffix(suffix)) * factor
    return int(quantity)


@pytest.mark.parametrize("combination", COMBINATIONS, ids=lambda c: c.name)
def test_ingest_refuses_with_spool_full_before_its_volume_fills(combination: Combination) -> None:
    """Past its quota the spool refuses writes with SPOOL_FULL (retryable) and recovers as the sinks catch
    up; a full disk instead closes it until the pod restarts. So the quota, plus a segment of overshoot and
    room for the rest of the data dir, stays below the volume the spool lives on."""
    docs = render_combination(combination)
    (ingest,) = [
        d for d in docs if d["kind"] in ("Deployment", "StatefulSet") and d["metadata"]["name"] == "ingest"
    ]
    (container,) = ingest["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container.get("env", [])}
    quota = int(
        env.get("WAYLINE_INGEST_SPOOL_MAX_BYTES") or IngestSettings.model_fields["spool_max_bytes"].default
    )
    (data_mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == "/var/lib/wayline"]
    claims = {c["metadata"]["name"]: c for c in ingest["spec"].get("volumeClaimTemplates", [])}
    volumes = {v["name"]: v for v in ingest["spec"]["template"]["spec"].get("volumes", [])}
    name = data_mount["name"]
    size = (
        _bytes(claims[name]["spec"]["resources"]["requests"]["storage"])
        if name in claims
        else _bytes(volumes[name]["emptyDir"]["sizeLimit"])
    )
    assert quota <= 0.9 * size, f"spool quota {quota} on a volume of {size}"
