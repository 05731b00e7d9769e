"""User-agent parsing: browser, operating system, device maker and model, and form factor.

Names and versions come from ua-parser (the Python binding of uap-core, the regex set that most analytics
tools share), so they match what other tools report. uap-core does not classify form factors, so the form
factor comes from the ordered rules below, applied to the raw string and ua-parser's device: the first rule
that matches wins, and the order settles the ambiguous strings (an Xbox sends "Windows NT", an iPad sends
"Mobile", a Fire TV stick sends "Android" without "Mobile").

Parsing one new string scans about a thousand regular expressions in pure Python (1-2 ms), while a
cache hit costs a dictionary look-up; user agents repeat heavily, so results are kept in a bounded LRU.
Parsing is a pure function of the string (for the locked versions of ua-parser and its regexes), so the
cache never changes a result. This module knows nothing of protobuf: the package maps its result onto an
event.
"""

from __future__ import annotations

import enum
import functools
import re
from dataclasses import dataclass

from ua_parser import BasicResolver, Device, Domain, load_builtins

__all__ = ["MAX_USER_AGENT_CHARS", "FormFactor", "UserAgentInfo", "UserAgentParser"]

# Only this prefix of a user agent is parsed (and used as the cache key): real ones are a few hundred
# characters, and the regex scan is linear in the length, so a huge header cannot stall the forwarder.
MAX_USER_AGENT_CHARS = 512


class FormFactor(enum.Enum):
    """The kind of device, as far as the user agent tells."""

    DESKTOP = "desktop"
    MOBILE = "mobile"
    TABLET = "tablet"
    TV = "tv"
    CONSOLE = "console"
    WEARABLE = "wearable"


@dataclass(frozen=True, slots=True)
class UserAgentInfo:
    """What a user agent says; empty strings (and `form_factor` None) where it says nothing reliable."""

    browser_name: str = ""
    browser_version: str = ""
    os_name: str = ""
    os_version: str = ""
    manufacturer: str = ""
    model: str = ""
    form_factor: FormFactor | None = None
    is_bot: bool = False


# The form-factor rules, first match wins (see the module docstring for why this order).
_WEARABLE = re.compile(r"watchos|wear ?os|\bwatch\b|\bsm-r\d{3}", re.IGNORECASE)
_CONSOLE = re.compile(r"playstation|xbox|nintendo", re.IGNORECASE)
_TV = re.compile(
    r"smart-?tv|hbbtv|apple ?tv|google ?tv|android ?tv|\bcrkey\b|\broku|\bbravia\b|web0s|netcast"
    r"|\btv safari\b|(?-i:; AFT[A-Z0-9]{1,6}\b)",
    re.IGNORECASE,
)
_TABLET = re.compile(r"ipad|tablet(?! pc)|\bkindle\b|\bsilk\b|playbook|(?-i:\bKF[A-Z]{2,6}\b)", re.IGNORECASE)
_MOBILE = re.compile(
    r"iphone|ipod|mobile|\bmobi\b|opera mini|blackberry|\bbb10\b|windows phone|midp|j2me|cldc|symbian"
    r"|series ?60",
    re.IGNORECASE,
)
_DESKTOP = re.compile(
    r"windows nt|macintosh|\bx11\b|\bcros\b|win64|wow64|windows (?:95|98|xp)", re.IGNORECASE
)
_ANDROID_BROWSER = re.compile(r"^Mozilla/.*\bAndroid\b", re.IGNORECASE)

# ua-parser's device brands that name no manufacturer; with "Generic" the model is a form factor too.
_GENERIC_BRAND = "Generic"
_SPIDER = "Spider"
# Chrome's reduced user agent freezes the Android model to this placeholder.
_PLACEHOLDER_MODELS = frozenset({"K"})


class UserAgentParser:
    """Parses user agents through a bounded LRU cache; build one per process and share it (thread-safe)."""

    def __init__(self, cache_size: int = 10_000) -> None:
        # Compiles every regex once, eagerly (a fraction of a second at start-up, none on the hot path).
        self._resolver = BasicResolver(load_builtins())
        self._cached = functools.lru_cache(maxsize=cache_size)(self._parse_uncached)

    def parse(self, user_agent: str) -> UserAgentInfo:
        """What `user_agent` says about the browser, the OS and the device."""
        return self._cached(user_agent[:MAX_USER_AGENT_CHARS])

    def cache_info(self) -> functools._CacheInfo:
        """Hits, misses and size of the cache, for tests and metrics."""
        return self._cached.cache_info()

    def _parse_uncached(self, user_agent: str) -> UserAgentInfo:
        result = self._resolver(user_agent, Domain.ALL)
        agent, system, device = result.user_agent, result.os, result.device
        browser_name = agent.family if agent is not None and agent.family != "Other" else ""
        browser_version = (
            _version(agent.major, agent.minor, agent.patch, agent.patch_minor)
            if browser_name and agent
            else ""
        )
        if device is not None and device.family == _SPIDER:
            # A crawler: its OS and device are the ones it imitates, so only its own name is kept.
            return UserAgentInfo(browser_name=browser_name, browser_version=browser_version, is_bot=True)
        os_name = system.family if system is not None and system.family != "Other" else ""
        os_version = (
            _version(system.major, system.minor, system.patch, system.patch_minor)
            if os_name and system
            else ""
        )
        manufacturer, model = _maker_and_model(device)
        return UserAgentInfo(
            browser_name=browser_name,
            browser_version=browser_version,
            os_name=os_name,
            os_version=os_version,
            manufacturer=manufacturer,
            model=model,
            form_factor=_form_factor(user_agent, device),
        )


def _version(*parts: str | None) -> str:
    """The leading parts that are present, joined by dots: ("17", "4", None, "2") -> "17.4"."""
    present: list[str] = []
    for part in parts:
        if part is None:
            break
        present.append(part)
    return ".".join(present)


def _maker_and_model(device: Device | None) -> tuple[str, str]:
    if device is None:
        return "", ""
    brand = device.brand or ""
    model = device.model or ""
    if brand == _GENERIC_BRAND:
        return "", ""  # the "model" is then "Smartphone" or "Tablet": a form factor, not a model
    if brand.startswith(_GENERIC_BRAND):
        brand = ""  # "Generic_Android": the model (a build name such as "SM-X710") is still real
    if model in _PLACEHOLDER_MODELS:
        model = ""
    return brand, model


def _form_factor(user_agent: str, device: Device | None) -> FormFactor | None:
    brand = device.brand or "" if device is not None else ""
    family = device.family if device is not None else ""
    if _WEARABLE.search(user_agent):
        return FormFactor.WEARABLE
    if _CONSOLE.search(user_agent):
        return FormFactor.CONSOLE
    if _TV.search(user_agent):
        return FormFactor.TV
    if _TABLET.search(user_agent) or brand == "Generic_Android_Tablet" or family == "Generic Tablet":
        return FormFactor.TABLET
    if _MOBILE.search(user_agent) or family in {"Generic Smartphone", "Generic Feature Phone"}:
        return FormFactor.MOBILE
    if _ANDROID_BROWSER.search(user_agent):
        # An Android browser without "Mobile" is a tablet by Google's convention. Only browsers follow it:
        # an app's HTTP client ("Dalvik/2.1.0 (Linux; U; Android 14; ...)") says nothing of the form factor.
        return FormFactor.TABLET
    if _DESKTOP.search(user_agent):
        return FormFactor.DESKTOP
    return None
