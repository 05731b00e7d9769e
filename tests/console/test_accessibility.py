"""Every console page, rendered with A's data, passes axe-core's WCAG 2 A/AA rules with no serious or
critical violation: labels, names, roles, contrast, headings, tables (axe-core is the console's locked npm
dev dependency, evaluated in the page beside the console's own script)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from urllib.parse import quote

import pytest
from playwright.sync_api import expect

from tests.console.browser import Console
from tests.console.loading import ConsoleData

ROOT = Path(__file__).parents[2]
AXE = ROOT / "console" / "node_modules" / "axe-core" / "axe.min.js"
PAGES = (
    "paths",
    "funnels",
    "trends",
    "customer",
    "retention",
    "lifecycle",
    "value",
    "segments",
    "flows",
    "models",
)


@pytest.fixture(scope="module")
def axe_source(tmp_path_factory: pytest.TempPathFactory) -> str:
    """axe-core's script, from the console's locked npm packages (the build script installs them when
    console/node_modules is not current, as for tests/console/test_bundle.py)."""
    out = tmp_path_factory.mktemp("console-build")
    subprocess.run([str(ROOT / "tools" / "build-console.sh"), "--outdir", str(out)], check=True, timeout=300)
    return AXE.read_text()


# Views of a page that draw parts its default view does not, with a part each must show (and a button to click
# first, whose answer is then awaited): the Trends page's formulas with the previous period by channel, its
# stickiness mode, its lifecycle mode, and that mode with the persons of a count listed.
VIEWS: dict[str, tuple[str, str] | tuple[str, str, str]] = {
    "trends-formula-compare": (
        "#/trends?formula=A%20*%202&compare=1&breakdown=channel",
        "trends-compare-line",
    ),
    "trends-stickiness": (
        "#/trends?mode=stickiness&breakdown=channel&period=day",
        "trends-stickiness-table-0",
    ),
    "trends-lifecycle": (
        "#/trends?mode=lifecycle&period=day",
        "trends-lifecycle-table-0",
    ),
    "trends-lifecycle-persons": (
        "#/trends?mode=lifecycle&period=day",
        "trends-lifecycle-table-0",
        "trends-lifecycle-count",
    ),
}


def _serious_violations(
    console: Console, axe_source: str, route: str, drawn: str = "", click: str = ""
) -> list[dict[str, object]]:
    page = console.open(route)
    if drawn:
        page.get_by_test_id(drawn).wait_for()
    if click:
        # The first such button; what it opens is checked once its answer is in (an answer, not an error).
        page.get_by_test_id(click).first.click()
        expect(page.get_by_test_id("loading")).to_have_count(0)
        expect(page.get_by_test_id("error")).to_have_count(0)
    # Evaluated through the browser's debugging protocol, which the console's CSP does not govern (a
    # script tag would be refused, and reported as a violation by the harness).
    page.evaluate(axe_source)
    result = page.evaluate(
        "async () => { const rules = {runOnly: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']};"
        " const r = await axe.run(document, rules);"
        " return {passes: r.passes.length, violations: r.violations.map(v => ({id: v.id, impact: v.impact,"
        " help: v.help, nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}))}; }"
    )
    assert result["passes"] > 10  # the rules ran against a drawn page
    return [v for v in result["violations"] if v["impact"] in ("serious", "critical")]


@pytest.mark.parametrize("page_id", PAGES)
def test_every_page_passes_wcag_a_and_aa(
    console: Console, axe_source: str, console_data: ConsoleData, page_id: str
) -> None:
    queries = {"customer": f"?identifier={quote(console_data.ann.identifier)}", "funnels": "?trend=week"}
    query = queries.get(page_id, "")  # the funnel with its trend: every part of the page drawn
    serious = _serious_violations(console, axe_source, f"#/{page_id}{query}")
    assert serious == [], json.dumps(serious, indent=1)


@pytest.mark.parametrize("view", sorted(VIEWS))
def test_other_views_pass_wcag_a_and_aa(console: Console, axe_source: str, view: str) -> None:
    route, drawn, *click = VIEWS[view]
    serious = _serious_violations(console, axe_source, route, drawn, *click)
    assert serious == [], json.dumps(serious, indent=1)
