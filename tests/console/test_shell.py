"""The console's shell in Chromium: served under its Content-Security-Policy and security headers, it loads
without a script error or CSP violation, signs in with a read key to the navigation of all ten pages,
refuses a wrong key on the sign-in form, is usable from the keyboard alone, and forgets the key on
sign-out."""

from __future__ import annotations

import httpx
from playwright.sync_api import expect

from tests.console.browser import Console
from tests.console.loading import ConsoleData

PAGES = {
    "paths": "Paths",
    "funnels": "Funnels",
    "trends": "Trends",
    "customer": "Customer",
    "retention": "Retention",
    "lifecycle": "Lifecycle",
    "value": "Customer value",
    "segments": "Segments",
    "flows": "Flows",
    "models": "Models",
}

# ADR 0051's policy: nothing but the console's own scripts, styles, images, fonts and calls; no framing, no
# form posts, no inline script (inline style attributes only, which ECharts' SVG renderer sets).
CSP = {
    "default-src": {"'none'"},
    "script-src": {"'self'"},
    "style-src": {"'self'"},
    "style-src-attr": {"'unsafe-inline'"},
    "img-src": {"'self'", "data:"},
    "font-src": {"'self'"},
    "connect-src": {"'self'"},
    "base-uri": {"'none'"},
    "form-action": {"'none'"},
    "frame-ancestors": {"'none'"},
}


def _directives(policy: str) -> dict[str, set[str]]:
    parsed: dict[str, set[str]] = {}
    for directive in filter(None, (part.strip() for part in policy.split(";"))):
        name, *sources = directive.split()
        assert name not in parsed, f"{name} given twice"
        parsed[name] = set(sources)
    return parsed


def _assert_secured(answer: httpx.Response) -> None:
    headers = answer.headers
    assert _directives(headers["content-security-policy"]) == CSP
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["cross-origin-opener-policy"] == "same-origin"
    assert headers["cross-origin-resource-policy"] == "same-origin"


def test_the_console_and_its_assets_are_served_under_the_policy(console_url: str) -> None:
    index = httpx.get(f"{console_url}/console/", timeout=10)
    assert index.status_code == 200
    assert index.headers["content-type"].startswith("text/html")
    _assert_secured(index)
    for asset, content_type in (("console.js", "text/javascript"), ("console.css", "text/css")):
        answer = httpx.get(f"{console_url}/console/assets/{asset}", timeout=10)
        assert answer.status_code == 200, asset
        assert answer.headers["content-type"].startswith(content_type), asset
        _assert_secured(answer)
    # The page itself runs no inline script: every script is an asset of the console.
    assert "<script>" not in index.text
    assert httpx.get(f"{console_url}/console/assets/nothing.js", timeout=10).status_code == 404


def test_a_read_key_signs_in_to_the_navigation_of_every_page(console: Console) -> None:
    page = console.load()
    expect(page.get_by_label("API key")).to_be_visible()
    expect(console.nav).to_be_hidden()
    console.shot("sign-in")
    console.sign_in()
    links = console.nav.get_by_role("link")
    expect(links).to_have_text(list(PAGES.values()))
    for page_id, title in PAGES.items():
        page.get_by_test_id(f"nav-{page_id}").click()
        section = console.wait_ready(page_id)
        expect(section.locator("h1")).to_be_visible()
        expect(section.get_by_test_id("error")).to_have_count(0)  # a read key reads every page
        expect(page.get_by_test_id(f"nav-{page_id}")).to_have_attribute("aria-current", "page")
        assert page.url.split("#", 1)[1].startswith(f"/{page_id}")
        assert title in page.title()
    console.shot("signed-in")


def test_a_wrong_key_shows_the_error_and_stays_on_sign_in(console: Console) -> None:
    page = console.load()
    page.get_by_test_id("key-input").fill("wl_not_a_key")
    page.get_by_test_id("sign-in").click()
    error = page.get_by_test_id("error")
    expect(error).to_be_visible()
    expect(error).to_have_attribute("data-code", "unauthenticated")
    expect(page.get_by_test_id("key-input")).to_be_visible()
    expect(console.nav).to_be_hidden()
    console.shot("refused")


def _focused_test_id(console: Console) -> str:
    return str(console.page.evaluate("() => document.activeElement?.getAttribute('data-testid') ?? ''"))


def _blur(console: Console) -> None:
    """Take the focus off whatever holds it, so that the next Tab starts from the top of the document: blur()
    alone leaves Chromium's sequential focus starting point where the focus was (a page's heading, with the
    page's own controls after it), so the body takes the focus for a moment first."""
    console.page.evaluate(
        """() => {
            document.activeElement?.blur();
            const body = document.body;
            body.setAttribute("tabindex", "-1");
            body.focus();
            body.blur();
            body.removeAttribute("tabindex");
        }"""
    )


def test_the_keyboard_reaches_the_key_input_and_every_page(
    console: Console, console_data: ConsoleData
) -> None:
    page = console.load()
    _blur(console)
    for _ in range(6):
        page.keyboard.press("Tab")
        if _focused_test_id(console) == "key-input":
            break
    assert _focused_test_id(console) == "key-input"
    page.keyboard.type(console_data.read_key_a)
    page.keyboard.press("Enter")
    expect(console.nav).to_be_visible()
    console.wait_ready()
    _blur(console)
    reached = set()
    for _ in range(20):
        page.keyboard.press("Tab")
        reached.add(_focused_test_id(console))
        if {f"nav-{page_id}" for page_id in PAGES} <= reached:
            break
    assert {f"nav-{page_id}" for page_id in PAGES} <= reached, reached
    # Enter on a focused link opens its page, whose heading then has the focus.
    page.get_by_test_id("nav-funnels").focus()
    page.keyboard.press("Enter")
    console.wait_ready("funnels")
    expect(page.locator("main h1")).to_be_focused()


def test_sign_out_forgets_the_key(console: Console, console_data: ConsoleData) -> None:
    page = console.open()
    assert console_data.read_key_a in page.evaluate("() => Object.values(sessionStorage)")
    page.get_by_test_id("sign-out").click()
    expect(page.get_by_test_id("key-input")).to_be_visible()
    expect(console.nav).to_be_hidden()
    assert console_data.read_key_a not in page.evaluate("() => Object.values(sessionStorage)")
    page.reload()
    expect(page.get_by_test_id("key-input")).to_be_visible()
    expect(console.nav).to_be_hidden()
