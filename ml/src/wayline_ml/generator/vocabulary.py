"""The generator's fixed vocabularies: channels, event kinds, lifecycle stages, persona segments and actions.

Everything the generator emits is a small integer code into one of these tuples, so events stay columnar
numpy arrays; the adapters turn codes into contract enums and names only at the edge. Channel names are the
suffixes of `wayline.event.v1.Channel` (a test holds the two together) and event names follow the demo's
Segment-style e-commerce vocabulary, so generated journeys read like the demo's in every analytics query.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

__all__ = [
    "ACTIONS",
    "CHANNELS",
    "KINDS",
    "SEGMENTS",
    "STAGES",
    "Action",
    "Channel",
    "Kind",
    "KindSpec",
    "Segment",
    "Stage",
]


class Channel(IntEnum):
    """A touchpoint channel; `CHANNELS[code]` is the `wayline.event.v1.Channel` name without its prefix."""

    WEB = 0
    MOBILE_APP = 1
    EMAIL = 2
    PUSH = 3
    CALL_CENTER = 4
    CHATBOT = 5
    IN_STORE = 6
    DISPLAY_ADS = 7
    SOCIAL = 8
    OTHER = 9  # the system's own records (logged decisions), not a touchpoint


CHANNELS: tuple[str, ...] = tuple(channel.name.lower() for channel in Channel)


@dataclass(frozen=True)
class KindSpec:
    """How one kind of event is sent: its Segment call and name. `view` kinds are pages on the web and
    screens in the app (Segment's `page`/`screen`), tracks elsewhere."""

    call: str  # "track", "identify" or "view"
    name: str


class Kind(IntEnum):
    """What happened. The values index KINDS."""

    IDENTIFY = 0
    HOME = 1
    PRODUCT_LIST = 2
    PRODUCT = 3
    ADDED = 4
    CART = 5
    CHECKOUT = 6
    ORDER = 7
    CHAT = 8
    CALL = 9
    AD_CLICKED = 10
    POST_ENGAGED = 11
    EMAIL_OPENED = 12
    EMAIL_CLICKED = 13
    PUSH_OPENED = 14
    REVIEW = 15
    SHARED = 16
    OFFER_SENT = 17
    EMAIL_SENT = 18
    PUSH_SENT = 19
    CALL_BACK = 20
    DECISION = 21  # a logged decision: the anchor of a training row


KINDS: tuple[KindSpec, ...] = (
    KindSpec("identify", ""),
    KindSpec("view", "Home"),
    KindSpec("view", "Product List Viewed"),
    KindSpec("view", "Product Viewed"),
    KindSpec("track", "Product Added"),
    KindSpec("view", "Cart Viewed"),
    KindSpec("track", "Checkout Started"),
    KindSpec("track", "Order Completed"),
    KindSpec("track", "Chat Message"),
    KindSpec("track", "Call Completed"),
    KindSpec("track", "Ad Clicked"),
    KindSpec("track", "Post Engaged"),
    KindSpec("track", "Email Opened"),
    KindSpec("track", "Email Clicked"),
    KindSpec("track", "Push Opened"),
    KindSpec("track", "Review Submitted"),
    KindSpec("track", "Product Shared"),
    KindSpec("track", "Offer Sent"),
    KindSpec("track", "Email Sent"),
    KindSpec("track", "Push Sent"),
    KindSpec("track", "Call Back Completed"),
    KindSpec("track", "Decision Logged"),
)


class Stage(IntEnum):
    """The latent lifecycle stage, named as in `wayline.journeys.v1.LifecycleStage` (onboarding, which the
    store derives from time since an identify, is not a latent state of the person)."""

    AWARENESS = 0
    ACQUISITION = 1
    ENGAGEMENT = 2
    RETENTION = 3
    ADVOCACY = 4


STAGES: tuple[str, ...] = tuple(stage.name.lower() for stage in Stage)


class Segment(IntEnum):
    """The persona archetype a person's latent traits are drawn from."""

    BARGAIN_HUNTER = 0
    PREMIUM = 1
    APP_NATIVE = 2
    INBOX_READER = 3
    CASUAL = 4


SEGMENTS: tuple[str, ...] = tuple(segment.name.lower() for segment in Segment)


class Action(IntEnum):
    """The next best actions a decision chooses among. The values index ACTIONS and the columns of every
    per-action matrix (eligibility, propensities, true responses)."""

    NONE = 0
    DISCOUNT_10 = 1
    FREE_SHIPPING = 2
    EMAIL_REMINDER = 3
    PUSH_REMINDER = 4
    CALL_BACK = 5


ACTIONS: tuple[str, ...] = tuple(action.name.lower() for action in Action)
