"""The Models page in Chromium against the loaded suite: a model with two versions the ML pipeline packaged,
pushed and deployed through the gateway in a tenant of its own (version 1 stable, version 2 a judged canary
on 30% of persons). The page shows the model's traffic split, its versions and its canary (how it is judged
and the judge's last verdict, when it has looked) as ListModels returns them; A's and B's read keys see no
such model."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import pytest
from playwright.sync_api import Page, expect

from tests.conftest import API_KEY
from tests.console.browser import Console, read_table
from tests.console.calls import DECISION, Rpc
from tests.console.loading import ConsoleData, Tenant, make_tenant
from tests.decision.lifecycle_calls import push
from tests.decision.ml_package import ml_package
from wayline.decision.v1 import decision_service_pb2 as pb
from wayline.decision.v1 import model_pb2

MODEL = "console-offers"
CANARY_PERCENT = 30


@pytest.fixture(scope="module")
def models_tenant(console_data: ConsoleData, console_channel: grpc.Channel) -> Tenant:
    """The tenant of this module's model (made once the suite is loaded, through the same gateway)."""
    return make_tenant(console_channel, API_KEY, "models")


@pytest.fixture(scope="module")
def deployed(
    models_tenant: Tenant,
    console_channel: grpc.Channel,
    rpc: Callable[[str], Rpc],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """MODEL's versions 1 (stable) and 2 (a canary on CANARY_PERCENT% of persons, judged automatically)."""
    auth = (("authorization", f"Bearer {models_tenant.keys['admin']}"),)
    packages = tmp_path_factory.mktemp("console-models")
    for version in ("1", "2"):
        push(console_channel, ml_package(packages / version, model_id=MODEL, version=version), auth)
    admin = rpc(models_tenant.keys["admin"])
    admin.call(
        DECISION, "DeployModel", {"name": f"models/{MODEL}", "version": "1", "mode": "DEPLOY_MODE_FULL"}
    )
    judgement = model_pb2.CanaryJudgement(enabled=True, margin=0.02, min_decisions=1000, confidence=0.95)
    admin.call(
        DECISION,
        "DeployModel",
        pb.DeployModelRequest(
            name=f"models/{MODEL}",
            version="2",
            mode=pb.DEPLOY_MODE_CANARY,
            canary_percent=CANARY_PERCENT,
            judgement=judgement,
        ),
    )


def _cells(page: Page, testid: str) -> dict[str, dict[str, str]]:
    """The table `testid` by row key: column key → raw value (numeric cells) or shown text."""
    table = read_table(page.get_by_test_id(testid))
    return dict(zip(table.row_keys, table.rows, strict=True))


def _model(reader: Rpc) -> dict[str, Any]:
    models = reader.json(DECISION, "ListModels", {"pageSize": 200})["models"]
    found: dict[str, Any] = next(m for m in models if m["name"] == f"models/{MODEL}")
    return found


def _canary_figures(page: Page) -> dict[str, str]:
    return {row: cells["value"] for row, cells in _cells(page, f"model-{MODEL}-canary-table").items()}


def test_the_models_page_shows_the_traffic_split_versions_and_canary_list_models_returns(
    console: Console, models_tenant: Tenant, rpc: Callable[[str], Rpc], deployed: None
) -> None:
    reader = rpc(models_tenant.keys["read"])
    before = _model(reader)
    page = console.open("#/models", key=models_tenant.keys["read"])
    model = _model(reader)
    if before.get("canaryEvaluation") != model.get("canaryEvaluation"):
        # The canary judge looks every minute, and it looked while the page loaded: read the page again.
        # A reload, not a second `open`: the tab's session keeps the key, so no sign-in form comes back.
        page.reload()
        console.wait_ready("models")
        model = _model(reader)
    traffic = model["traffic"]
    assert (traffic["stableVersion"], traffic["canaryVersion"], traffic["canaryPercent"]) == (
        "1",
        "2",
        CANARY_PERCENT,
    )

    summary = _cells(page, "models-table")[MODEL]
    assert (summary["versions"], summary["stable"], summary["canary"], summary["canaryPercent"]) == (
        str(len(model["versions"])),
        "1",
        "2",
        str(CANARY_PERCENT),
    )
    split = _cells(page, f"model-{MODEL}-traffic-table")
    assert {version: (cells["role"], int(cells["percent"])) for version, cells in split.items()} == {
        traffic["stableVersion"]: ("Stable", 100 - traffic["canaryPercent"]),
        traffic["canaryVersion"]: ("Canary", traffic["canaryPercent"]),
    }
    expect(page.get_by_test_id(f"model-{MODEL}-traffic-chart").locator("svg")).to_have_count(1)

    versions = _cells(page, f"model-{MODEL}-versions-table")
    assert list(versions) == [v["version"] for v in model["versions"]]  # newest first, as listed
    for version in model["versions"]:
        cells = versions[version["version"]]
        state = version["state"].removeprefix("MODEL_VERSION_STATE_").capitalize()
        assert (cells["state"], cells["role"]) == (state, {"1": "Stable", "2": "Canary"}[version["version"]])
        for metric, value in version["metrics"].items():
            shown = f"{int(value):,}" if float(value).is_integer() else f"{value:.4f}"
            assert f"{metric} {shown}" in cells["metrics"]
    assert all(v["metrics"] for v in model["versions"])  # the pipeline's offline evaluation

    state = page.get_by_test_id(f"model-{MODEL}-canary-state")
    expect(state).to_contain_text(f"Version 2 serves {CANARY_PERCENT}% of persons beside stable version 1")
    expect(state).to_contain_text("by more than 2.00 pp")
    expect(state).to_contain_text("95.0% confidence, after at least 1,000 decisions per arm")
    evaluation = model.get("canaryEvaluation")
    if evaluation is None:
        expect(page.get_by_test_id(f"model-{MODEL}-canary-none")).to_be_visible()
    else:  # the judge has looked: too few decisions for a verdict, and the page says so with its figures
        figures = _canary_figures(page)
        assert (
            figures["verdict"]
            == evaluation["verdict"].removeprefix("CANARY_VERDICT_").replace("_", " ").capitalize()
        )
        assert figures["explanation"] == evaluation["explanation"]
        assert (figures["canaryVersion"], figures["stableVersion"]) == ("2", "1")
        assert int(figures["canaryDecisions"]) == int(evaluation["canaryDecisions"])
    console.shot("models")


@pytest.mark.parametrize("tenant", ["a", "b"])
def test_another_tenants_read_key_sees_no_model(
    console: Console, console_data: ConsoleData, deployed: None, tenant: str
) -> None:
    key = {"a": console_data.read_key_a, "b": console_data.read_key_b}[tenant]
    page = console.open("#/models", key=key)
    expect(page.get_by_test_id(f"model-{MODEL}")).to_have_count(0)
    expect(page.locator(f'[data-testid="models-table"] tr[data-row="{MODEL}"]')).to_have_count(0)
    console.shot(f"tenant-{tenant}")
