"""The console in a browser page, as a test drives it: open a page signed in with a key, take screenshots as
test artefacts, and collect every JavaScript error and Content-Security-Policy violation the page reports, so
that the `console` fixture fails a test whose page had one.

What counts as a problem: an uncaught exception (`pageerror`), a `console.error` message, a CSP violation
(Chromium logs "Refused to ..." or "... violates the following Content Security Policy directive ...", and
fires `securitypolicyviolation`, which an init script forwards). Not a problem: Chromium's "Failed to load
resource" line for a 4xx answer of the JSON bridge (a path `/wayline.<package>.<Service>/<Method>`) — the
console asked, the bridge refused (a wrong key, a person of another tenant), and the page shows the error
itself, which the test asserts; nor the 404 of `/favicon.ico`, which Chromium asks for by itself when a page
declares no icon. A 5xx answer, or a 4xx for anything else (a missing asset), is a problem."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import ConsoleMessage, Error, Locator, Page, expect

__all__ = ["CHROMIUM", "Console", "Table", "artifacts_dir", "read_table"]

CHROMIUM = "/usr/bin/chromium"

# How long a step of the console may take to show, for Playwright's actions and its `expect` (the machine is
# shared and noisy: generous, and never a measurement).
STEP_TIMEOUT_MS = 15_000

# Forwards CSP violations to the console as errors; added through the DevTools protocol, so the console's own
# CSP (no inline script) does not apply to it.
_REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error(`CSP violation: ${event.violatedDirective} blocked ${event.blockedURI || "inline"}`
    + ` at ${event.sourceFile}:${event.lineNumber}`);
});
"""

_CLIENT_ERROR = re.compile(r"Failed to load resource: the server responded with a status of 4\d\d\b")
_BRIDGE_PATH = re.compile(r"^https?://[^/]+/wayline\.[a-z0-9_.]+\.[A-Za-z0-9]+/[A-Za-z0-9]+$")
_BROWSER_OWN = re.compile(r"^https?://[^/]+/favicon\.ico$")


# Reads a console data table (dom.js `dataTable`) in one round trip: the header labels, and per body row its
# key (`data-row`) and each cell's raw value (`data-value`, numeric columns) and shown text, by column key
# (`data-key`).
_READ_TABLE = """
table => ({
  columns: [...table.querySelectorAll("thead th")].map(th => th.textContent.trim()),
  rows: [...table.querySelectorAll("tbody tr")]
    .filter(row => !row.querySelector("td.empty"))
    .map(row => ({
      key: row.dataset.row ?? "",
      cells: [...row.cells].map((cell, index) => ({
        key: cell.dataset.key ?? String(index),
        value: cell.dataset.value ?? null,
        text: cell.textContent.trim(),
      })),
    })),
})
"""


@dataclass(frozen=True)
class Table:
    """A console data table as read from the page: header labels, and its body rows (an empty table's "no
    data" row left out)."""

    columns: list[str]
    rows: list[dict[str, str]]
    """Per row, column key → the cell's raw value (`data-value`, which numeric columns carry unformatted:
    int64 counts as the RPC's strings, ratios as numbers) or, for other columns, the text shown."""
    texts: list[list[str]]
    """Per row, each cell's text as shown (formatted numbers, percentages, durations)."""
    row_keys: list[str]
    """Per row, its `data-row` key (dataTable's `rowKey`), "" where the page gave none."""

    def column(self, key: str) -> list[str]:
        """One column's values, top to bottom."""
        return [row[key] for row in self.rows]


def read_table(table: Locator) -> Table:
    """The table `table` locates (e.g. `page.get_by_test_id("funnel-table")`), read whether it is shown or
    folded behind its "Show table" toggle."""
    read = table.evaluate(_READ_TABLE)
    cells = [row["cells"] for row in read["rows"]]
    rows = [
        {cell["key"]: cell["text"] if cell["value"] is None else cell["value"] for cell in row}
        for row in cells
    ]
    texts = [[cell["text"] for cell in row] for row in cells]
    return Table(read["columns"], rows, texts, [row["key"] for row in read["rows"]])


def artifacts_dir(root: Path) -> Path:
    """Where screenshots go: `$WAYLINE_TEST_ARTIFACTS/console`, else `<repo>/test-artifacts/console`."""
    base = os.environ.get("WAYLINE_TEST_ARTIFACTS")
    return (Path(base) if base else root / "test-artifacts") / "console"


def _route(path: str) -> str:
    """`#/paths?x=1` from `#/paths?x=1`, `/paths?x=1` or `paths?x=1`; "" for ""."""
    return "" if not path else path if path.startswith("#") else f"#/{path.lstrip('/')}"


def _page_id(route: str) -> str:
    """The page id of a hash route: `paths` for `#/paths?x=1`."""
    return route.removeprefix("#/").split("?", 1)[0].strip("/")


def _file_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")


@dataclass
class Console:
    """One browser page of the console. `open` signs in and navigates; `page` is Playwright's page for
    everything else (`page.get_by_test_id(...)`, `expect(...)`)."""

    page: Page
    base_url: str
    default_key: str
    artifacts: Path
    test_name: str
    problems: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.page.set_default_timeout(STEP_TIMEOUT_MS)
        self.page.add_init_script(_REPORT_CSP_VIOLATIONS)
        self.page.on("console", self._on_console)
        self.page.on("pageerror", lambda error: self.problems.append(f"uncaught: {error}"))

    def _on_console(self, message: ConsoleMessage) -> None:
        text = message.text
        if text.startswith(("Refused to", "CSP violation:")) or "Content Security Policy" in text:
            self.problems.append(f"CSP: {text}")
        elif message.type == "error" and not self._expected_refusal(message):
            self.problems.append(f"console.error: {text} ({message.location.get('url', '')})")

    @staticmethod
    def _expected_refusal(message: ConsoleMessage) -> bool:
        """Chromium's line for a bridge call answered with a 4xx (which the page handles and shows), or for
        the favicon Chromium asked for by itself."""
        url = str(message.location.get("url", ""))
        return bool(
            _CLIENT_ERROR.search(message.text) and (_BRIDGE_PATH.match(url) or _BROWSER_OWN.match(url))
        )

    @property
    def url(self) -> str:
        """The console's own address, `<base>/console/`."""
        return f"{self.base_url}/console/"

    def load(self) -> Page:
        """Load the console without signing in: the sign-in form (the pages if the session holds a key)."""
        self.page.goto(self.url)
        return self.page

    def sign_in(self, key: str | None = None) -> None:
        """Type `key` (A's read key by default) into the sign-in form and wait for the pages' navigation."""
        self.page.get_by_test_id("key-input").fill(self.default_key if key is None else key)
        self.page.get_by_test_id("sign-in").click()
        expect(self.nav).to_be_visible()

    @property
    def nav(self) -> Locator:
        """The navigation between the pages (`<nav aria-label="Pages">`)."""
        return self.page.get_by_role("navigation", name="Pages")

    def open(self, path: str = "", key: str | None = None) -> Page:
        """Load the console at `path`, a hash route such as `#/paths?depth=4` (or `paths?depth=4`; the first
        page when empty), sign in with `key` (A's read key by default) and wait until the page has rendered;
        returns Playwright's page."""
        route = _route(path)
        self.page.goto(self.url + route)
        self.sign_in(key)
        self.wait_ready(_page_id(route))
        return self.page

    def go(self, path: str) -> Page:
        """Navigate within the signed-in console to `path` (as for `open`) and wait until that page has
        rendered (the page shown before is marked, so that it is never mistaken for the new one)."""
        route = _route(path)
        self.page.evaluate(
            """route => {
                if (window.location.hash === route) return;  // already there: no new render to wait for
                for (const shown of document.querySelectorAll("main section.page")) {
                    shown.setAttribute("data-e2e-left", "");
                }
                window.location.hash = route;
            }""",
            route,
        )
        self.wait_ready(_page_id(route))
        return self.page

    def wait_ready(self, page_id: str = "") -> Locator:
        """Wait until a page (the one with `page_id`, if given) has rendered: the shell marks the page's
        `<section class="page" data-page="<id>">` busy (`aria-busy`) while its render runs. Returns it."""
        selector = "main section.page:not([aria-busy]):not([data-e2e-left])"
        if page_id:
            selector += f'[data-page="{page_id}"]'
        section = self.page.locator(selector)
        expect(section).to_have_count(1)
        return section

    def shot(self, name: str) -> Path:
        """A full-page screenshot, `<artifacts>/<test name>-<name>.png`; returns its path."""
        self.artifacts.mkdir(parents=True, exist_ok=True)
        path = self.artifacts / f"{_file_name(self.test_name)}-{_file_name(name)}.png"
        try:
            self.page.screenshot(path=str(path), full_page=True)
        except Error as error:  # a page that crashed cannot be photographed; the test reports why
            self.problems.append(f"screenshot {name}: {error}")
        return path

    def assert_no_problems(self) -> None:
        assert not self.problems, "the console reported problems:\n" + "\n".join(self.problems)
