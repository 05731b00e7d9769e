"""The console's built files, read once from the package and served from memory with security headers.

Only files the build wrote can be served (the set is fixed when the gateway starts), so no request path ever
reaches the file system. Every answer carries the console's Content Security Policy: scripts and styles only
from the gateway itself, no inline script, no frames, no form posts, and calls only back to the gateway, so
data shown on a page can never run as code or leave for another origin. ECharts' SVG renderer sets `style`
attributes on the shapes it draws, hence `style-src-attr 'unsafe-inline'` (attributes cannot run script).
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable

__all__ = ["CONTENT_SECURITY_POLICY", "SECURITY_HEADERS", "Asset", "ConsoleAssets"]

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "style-src-attr 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}


@dataclass(frozen=True)
class Asset:
    body: bytes
    media_type: str
    etag: str  # strong, from the content: a rebuilt bundle is fetched again, an unchanged one is not
    # The body gzip'd once at start (the bundle: 0.76 MB, 0.26 MB gzip'd); None when it would not shrink.
    gzipped: bytes | None = None


def _asset(name: str, body: bytes) -> Asset:
    suffix = name[name.rfind(".") :] if "." in name else ""
    media = _TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"
    if media.startswith("text/") and "charset" not in media:
        media += "; charset=utf-8"
    packed = gzip.compress(body, compresslevel=9, mtime=0)
    return Asset(
        body,
        media,
        '"' + hashlib.sha256(body).hexdigest()[:32] + '"',
        packed if len(packed) < len(body) * 0.9 else None,
    )


class ConsoleAssets:
    """`index.html` and the files beside it, by name."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self._assets = {name: _asset(name, body) for name, body in files.items()}

    @classmethod
    def from_package(cls) -> ConsoleAssets:
        """The files `make console` wrote into this package's `static/` (committed, so always present)."""
        root = resources.files(__package__).joinpath("static")
        return cls(dict(_walk(root, "")))

    @property
    def index(self) -> Asset | None:
        return self._assets.get("index.html")

    def get(self, name: str) -> Asset | None:
        return None if name == "index.html" else self._assets.get(name)

    def names(self) -> list[str]:
        return sorted(self._assets)


def _walk(folder: Traversable, prefix: str) -> list[tuple[str, bytes]]:
    if not folder.is_dir():
        return []
    found: list[tuple[str, bytes]] = []
    for entry in folder.iterdir():
        if entry.name.startswith("."):
            continue
        name = prefix + entry.name
        if entry.is_dir():
            found += _walk(entry, name + "/")
        else:
            found.append((name, entry.read_bytes()))
    return found
