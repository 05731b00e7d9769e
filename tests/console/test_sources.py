"""The console's JavaScript keeps the rules that make its output safe under its CSP (ADR 0052).

Data reaches the page only as text nodes and attribute values (console/src/dom.js's h()), never as parsed
HTML; no code is made from strings; the only network access is api.js's call() to the gateway's own origin.
A source that breaks one of these fails here, naming the file and line.
"""

from __future__ import annotations

import re
from pathlib import Path

SOURCES = Path(__file__).resolve().parents[2] / "console" / "src"

FORBIDDEN = {
    "innerHTML": re.compile(r"\.innerHTML\b"),
    "outerHTML": re.compile(r"\.outerHTML\b"),
    "insertAdjacentHTML": re.compile(r"\binsertAdjacentHTML\b"),
    "document.write": re.compile(r"\bdocument\.write(ln)?\b"),
    "createContextualFragment": re.compile(r"\bcreateContextualFragment\b"),
    "DOMParser": re.compile(r"\bDOMParser\b"),
    "eval": re.compile(r"(?<![.\w])eval\s*\("),
    "new Function": re.compile(r"\bnew\s+Function\b"),
    "string timer": re.compile(r"\bset(Timeout|Interval)\s*\(\s*[\"'`]"),
    "import from a URL": re.compile(r"""\bimport\b[^;]*?["']https?://"""),
    "XMLHttpRequest": re.compile(r"\bXMLHttpRequest\b"),
    "WebSocket": re.compile(r"\bWebSocket\b"),
    "EventSource": re.compile(r"\bEventSource\b"),
    "sendBeacon": re.compile(r"\bsendBeacon\b"),
}
# The one module allowed to use fetch (to `/<package.Service>/<Method>` on the console's own origin).
FETCH_ALLOWED = {"api.js"}
FETCH = re.compile(r"(?<![.\w])fetch\s*\(")


def _sources() -> list[Path]:
    return sorted(SOURCES.rglob("*.js"))


def _without_comments(line: str) -> str:
    return line.split("//", 1)[0] if line.lstrip().startswith("//") else line


def test_console_sources_never_parse_data_as_html_nor_make_code_from_strings() -> None:
    sources = _sources()
    assert {path.name for path in sources} >= {"api.js", "dom.js", "charts.js", "main.js", "report.js"}
    found: list[str] = []
    for path in sources:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            code = _without_comments(line)
            found.extend(
                f"{path.relative_to(SOURCES)}:{number}: {rule}"
                for rule, pattern in FORBIDDEN.items()
                if pattern.search(code)
            )
            if FETCH.search(code) and path.name not in FETCH_ALLOWED:
                found.append(f"{path.relative_to(SOURCES)}:{number}: fetch outside api.js")
    assert found == []


# A style sheet may load nothing from elsewhere either (style-src and font-src 'self', img-src 'self' data:).
REMOTE_IN_CSS = re.compile(
    r"""(url\(\s*["']?\s*(https?:)?//|@import\s+["']?\s*(url\()?\s*["']?\s*(https?:)?//)""", re.I
)


def test_console_styles_load_nothing_from_elsewhere() -> None:
    sheets = sorted(SOURCES.rglob("*.css"))
    assert any(path.name == "console.css" for path in sheets)
    found = [
        f"{path.relative_to(SOURCES)}:{number}"
        for path in sheets
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if REMOTE_IN_CSS.search(line)
    ]
    assert found == []
