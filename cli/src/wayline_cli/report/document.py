"""A report as ONE self-contained HTML file: the console's report bundle and stylesheet inlined, the recorded
answers as a JSON data block, and a Content Security Policy that lets exactly that script and that style run.

Safety rests on three things:
- the data is a `<script type="application/json">` block (never executed) whose every `<` is written as
  `\\u003c`, so no value, whatever it holds (`</script>`, `<!--`), can end the block or open markup; the
  bundle draws it with text nodes only;
- the policy (a `<meta>`, as a file has no headers) names the inline script and style by their SHA-256, and
  allows nothing else: no other script, no connection (`default-src 'none'`: the report never calls the
  gateway, it only draws what it holds), no form, no base URL; ECharts' SVG renderer sets `style`
  attributes, hence `style-src-attr 'unsafe-inline'`, as on the console;
- the inlined files cannot close their own element: their `<` in `</` and in `<!--` (after which a `<script`
  would keep the closing tag from closing) is written `\\x3C`, the same character to JavaScript in strings,
  templates and regular expressions (the only places a minified bundle has them) and harmless in comments;
  in the stylesheet `</` is written with CSS's escape, `\\3c /`.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from dataclasses import dataclass
from datetime import datetime, time
from importlib import resources
from typing import Any

from wayline_cli.report.collect import Section

__all__ = ["ReportAssets", "ReportHeader", "content_security_policy", "render"]

DATA_ELEMENT_ID = "wayline-report-data"


@dataclass(frozen=True)
class ReportAssets:
    """The console's report bundle and its stylesheet (console.css and the report's print styles, which
    the build gathers from the bundle's imports into report.css), as the gateway package ships them."""

    script: str
    style: str

    @classmethod
    def from_package(cls) -> ReportAssets:
        static = resources.files("wayline_gateway.console").joinpath("static")
        return cls(
            script=static.joinpath("report.js").read_text(encoding="utf-8"),
            style=static.joinpath("report.css").read_text(encoding="utf-8"),
        )


@dataclass(frozen=True)
class ReportHeader:
    """What the report says about itself."""

    tenant: str  # as the reader knows the tenant; the key decided whose data the report holds
    start: datetime
    end: datetime
    generated_at: datetime

    @property
    def title(self) -> str:
        whose = f"{self.tenant}: " if self.tenant else ""
        days = all(moment.timetz().replace(tzinfo=None) == time() for moment in (self.start, self.end))
        shown = "%Y-%m-%d" if days else "%Y-%m-%d %H:%M UTC"
        return f"Wayline journey report, {whose}{self.start:{shown}} to {self.end:{shown}}"

    def to_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "tenant": self.tenant,
            "startTime": _rfc3339(self.start),
            "endTime": _rfc3339(self.end),
            "generatedAt": _rfc3339(self.generated_at),
        }


def _rfc3339(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _sha256(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


def content_security_policy(script: str, style: str) -> str:
    """The policy that runs `script` and applies `style` (both as inlined) and nothing else."""
    return "; ".join(
        (
            "default-src 'none'",
            f"script-src '{_sha256(script)}'",
            f"style-src '{_sha256(style)}'",
            "style-src-attr 'unsafe-inline'",
            "img-src data:",
            "base-uri 'none'",
            "form-action 'none'",
        )
    )


def data_block(value: Any) -> str:
    """JSON that cannot leave its script element: every `<` escaped, which JSON.parse reads back as `<`."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")


def _inlined_script(text: str) -> str:
    return text.replace("</", "\\x3C/").replace("<!--", "\\x3C!--")


def _inlined_style(text: str) -> str:
    return text.replace("</", "\\3c /")  # CSS's escape of `<`, the space ending it


def render(header: ReportHeader, sections: list[Section], assets: ReportAssets) -> str:
    """The report's HTML."""
    script = _inlined_script(assets.script)
    style = _inlined_style(assets.style)
    data = data_block({**header.to_json(), "sections": [section.to_json() for section in sections]})
    policy = content_security_policy(script, style)
    return "\n".join(
        (
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            f'<meta http-equiv="Content-Security-Policy" content="{html.escape(policy)}">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            '<meta name="referrer" content="no-referrer">',
            f"<title>{html.escape(header.title)}</title>",
            f"<style>{style}</style>",
            "</head>",
            '<body class="report">',
            f'<main id="report" data-testid="report"><h1>{html.escape(header.title)}</h1>'
            f'<p data-testid="report-generated">Generated {html.escape(_rfc3339(header.generated_at))}. '
            "Drawing the report needs JavaScript.</p></main>",
            f'<script type="application/json" id="{DATA_ELEMENT_ID}">{data}</script>',
            f"<script>{script}</script>",
            "</body>",
            "</html>",
            "",
        )
    )
