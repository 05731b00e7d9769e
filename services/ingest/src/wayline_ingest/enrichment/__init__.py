"""Enrichment that costs CPU: context derived from the user agent, and the sentiment of `text`.

It runs off the acknowledgement path (the forwarder applies it on the way to the sinks), for every event,
so the expensive parts are built once per process and user-agent parses are cached. The modules beside
this one know nothing of protobuf; `Enricher` maps their results onto an event.

Rules that make it safe to run again on a replayed event:

- It only fills what the caller left empty, group by group: the browser (name and version), the OS (name
  and version) and the device's maker and model are each derived only when the caller sent none of the
  group, so a caller's value is never mixed with a derived one; `device.type` is filled when unspecified;
  `sentiment_score` is set only when absent and `text` is not blank.
- It is deterministic: the same event, with the same library versions, always gets the same result.
"""

from __future__ import annotations

from wayline.event.v1 import event_pb2
from wayline_ingest.enrichment.language import Language, choose_language
from wayline_ingest.enrichment.sentiment import DEFAULT_MAX_CHARS, SentimentScorer
from wayline_ingest.enrichment.useragent import FormFactor, UserAgentInfo, UserAgentParser

__all__ = ["Enricher", "FormFactor", "Language", "SentimentScorer", "UserAgentInfo", "UserAgentParser"]

_DEVICE_TYPES = {
    FormFactor.DESKTOP: event_pb2.DEVICE_TYPE_DESKTOP,
    FormFactor.MOBILE: event_pb2.DEVICE_TYPE_MOBILE,
    FormFactor.TABLET: event_pb2.DEVICE_TYPE_TABLET,
    FormFactor.TV: event_pb2.DEVICE_TYPE_TV,
    FormFactor.CONSOLE: event_pb2.DEVICE_TYPE_CONSOLE,
    FormFactor.WEARABLE: event_pb2.DEVICE_TYPE_WEARABLE,
}


class Enricher:
    """Fills derived context and sentiment into events, in place; one per process, shared by threads.

    `user_agents` and `sentiment` turn each part off; a part that is off is not even loaded.
    `user_agent_cache_size` bounds the LRU of parsed user agents; `max_text_chars` bounds the text scored.
    """

    def __init__(
        self,
        user_agents: bool = True,
        sentiment: bool = True,
        *,
        user_agent_cache_size: int = 10_000,
        max_text_chars: int = DEFAULT_MAX_CHARS,
    ) -> None:
        self._user_agents = UserAgentParser(user_agent_cache_size) if user_agents else None
        self._sentiment = SentimentScorer(max_text_chars) if sentiment else None

    def enrich(self, event: event_pb2.Event) -> None:
        """Derives what `event` lacks from its user agent and text (see the module docstring)."""
        if self._user_agents is not None and event.context.user_agent:
            _apply_user_agent(event.context, self._user_agents.parse(event.context.user_agent))
        if self._sentiment is not None and not event.HasField("sentiment_score") and event.text.strip():
            language = choose_language(event.context.locale, event.text)
            event.sentiment_score = self._sentiment.score(event.text, language)


def _apply_user_agent(context: event_pb2.EventContext, info: UserAgentInfo) -> None:
    # Reading a sub-message does not create it: an event only gains the parts that get a value.
    browser = context.browser
    if info.browser_name and not (browser.name or browser.version):
        browser.name = info.browser_name
        browser.version = info.browser_version
    system = context.os
    if info.os_name and not (system.name or system.version):
        system.name = info.os_name
        system.version = info.os_version
    device = context.device
    if info.form_factor is not None and device.type == event_pb2.DEVICE_TYPE_UNSPECIFIED:
        device.type = _DEVICE_TYPES[info.form_factor]
    if (info.manufacturer or info.model) and not (device.manufacturer or device.model):
        device.manufacturer = info.manufacturer
        device.model = info.model
