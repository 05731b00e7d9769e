"""Every console page, rendered with A's data, passes axe-core's WCAG 2 A/AA rules with no serious or
critical violation: labels, names, roles, contrast, headings, tables (axe-core is the console's locked npm
dev dependency; the browser context lets the test add it beside the console's own script, which the
console's CSP would otherwise refuse)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from playwright.sync_api import Browser, Page

from tests.console.loading import ConsoleData

ROOT = Path(__file__).parents[2]
AXE = ROOT / "console" / "node_modules" / "axe-core" / "axe.min.js"
KEY_STORAGE = "wayline.console.apiKey"  # console/src/api.js
PAGES = ("paths", "funnels", "customer", "retention", "lifecycle", "segments", "flows", "models")
_READY = "main section.page:not([aria-busy])"


@pytest.fixture(scope="module")
def axe_source(tmp_path_factory: pytest.TempPathFactory) -> str:
    """axe-core's script, from the console's locked npm packages (the build script installs them when
    console/node_modules is not current, as for tests/console/test_bundle.py)."""
    out = tmp_path_factory.mktemp("console-build")
    subprocess.run([str(ROOT / "tools" / "build-console.sh"), "--outdir", str(out)], check=True, timeout=300)
    return AXE.read_text()


@pytest.fixture
def signed_in(browser: Browser, console_data: ConsoleData) -> Iterator[Page]:
    context = browser.new_context(bypass_csp=True, viewport={"width": 1280, "height": 900}, locale="en-GB")
    context.add_init_script(
        f"sessionStorage.setItem({json.dumps(KEY_STORAGE)}, {json.dumps(console_data.read_key_a)})"
    )
    yield context.new_page()
    context.close()


@pytest.mark.parametrize("page_id", PAGES)
def test_every_page_passes_wcag_a_and_aa(
    signed_in: Page, axe_source: str, console_url: str, console_data: ConsoleData, page_id: str
) -> None:
    query = f"?identifier={quote(console_data.ann.identifier)}" if page_id == "customer" else ""
    signed_in.goto(f"{console_url}/console/#/{page_id}{query}")
    signed_in.wait_for_selector(_READY, timeout=60_000)
    signed_in.add_script_tag(content=axe_source)
    result = signed_in.evaluate(
        "async () => { const rules = {runOnly: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']};"
        " const r = await axe.run(document, rules);"
        " return {passes: r.passes.length, violations: r.violations.map(v => ({id: v.id, impact: v.impact,"
        " help: v.help, nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}))}; }"
    )
    assert result["passes"] > 10  # the rules ran against a drawn page
    serious = [v for v in result["violations"] if v["impact"] in ("serious", "critical")]
    assert serious == [], json.dumps(serious, indent=1)
