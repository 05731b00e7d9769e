"""The journey console's committed bundle is what its sources build, and the gateway ships it as package data.

The bundle (services/gateway/src/wayline_gateway/console/static/) is generated from console/ by esbuild and
committed, like the protobuf code (ADR 0052): this rebuilds it into a temporary folder through the same
script as `make console` (npm ci from the lock file when console/node_modules is not current) and compares
bytes, so a source change without `make console` fails here.
"""

from __future__ import annotations

import fcntl
import subprocess
import time
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "services" / "gateway" / "src" / "wayline_gateway" / "console" / "static"
BUILD = ROOT / "tools" / "build-console.sh"
BUNDLE_FILES = {"console.js", "console.css", "report.js", "report.css", "index.html"}


def _files(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in folder.iterdir() if path.is_file()}


def test_committed_bundle_matches_a_fresh_build(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(BUILD), "--outdir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    fresh = _files(tmp_path)
    committed = _files(STATIC)
    assert set(fresh) == BUNDLE_FILES
    assert set(committed) == set(fresh), "run `make console` and commit the bundle"
    stale = sorted(name for name in fresh if fresh[name] != committed[name])
    assert not stale, f"the committed bundle is stale ({', '.join(stale)}): run `make console` and commit it"


class _PageInventory(HTMLParser):
    """What index.html loads and whether it carries anything the console's CSP would refuse."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []
        self.stylesheets: list[str | None] = []
        self.inline: list[str] = []
        self.tags: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        attributes = dict(attrs)
        if tag == "script":
            self.scripts.append(attributes)
            self._in_script = True
        if tag == "style":
            self.inline.append("<style>")
        if tag == "link" and attributes.get("rel") == "stylesheet":
            self.stylesheets.append(attributes.get("href"))
        self.inline.extend(f"{tag} {name}" for name, _ in attrs if name == "style" or name.startswith("on"))

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline.append("inline script")


def test_the_gateway_package_carries_the_console_and_its_page_loads_only_its_own_assets() -> None:
    static = resources.files("wayline_gateway").joinpath("console", "static")
    for name in BUNDLE_FILES:
        assert static.joinpath(name).is_file(), name

    page = _PageInventory()
    page.feed(static.joinpath("index.html").read_text(encoding="utf-8"))

    # Nothing inline (script-src 'self', style-src 'self'), nothing from elsewhere (no CDN at run time).
    assert page.inline == []
    assert page.scripts == [{"type": "module", "src": "/console/assets/console.js"}]
    assert page.stylesheets == ["/console/assets/console.css"]
    assert "main" in page.tags


def test_a_build_waits_while_another_installs_the_npm_packages(tmp_path: Path) -> None:
    """Three test files call the build script on different worker processes (ADR 62); two `npm ci` at once
    into one console/node_modules delete each other's files (CI failed so). The script holds
    console/.npm-ci.lock while it checks and installs: a build started while another holds it waits."""
    with (ROOT / "console" / ".npm-ci.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        build = subprocess.Popen([str(BUILD), "--outdir", str(tmp_path)], cwd=ROOT, stderr=subprocess.PIPE)
        try:
            time.sleep(1.5)
            assert build.poll() is None, "the build went on while another process held the install lock"
            assert not (tmp_path / "console.js").exists()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    _, stderr = build.communicate(timeout=300)
    assert build.returncode == 0, stderr.decode()
    assert (tmp_path / "console.js").exists()
