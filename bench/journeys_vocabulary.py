"""The vocabulary of generated journeys: channels, session kinds, the Markov chain over event names, and the
catalogues that properties are drawn from. Kept apart from the generator so the shape of the data can be
read (and tuned) in one place."""

from __future__ import annotations

from enum import IntEnum

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "APP_CONTEXT",
    "CHANNELS",
    "END_STATE",
    "FUNNEL",
    "GAP_SECONDS",
    "INITIAL",
    "KIND_CHANNEL",
    "KIND_SHARE",
    "MAX_SESSION",
    "PAGES",
    "SCREENS",
    "SEARCH_TERMS",
    "STATE_NAMES",
    "TRANSITIONS",
    "CallReasons",
    "Catalog",
    "Kind",
    "State",
    "campaigns",
    "traits",
]

# Stored channel names (the proto's enum names without CHANNEL_, lower case).
CHANNELS = ("web", "mobile_app", "email", "push", "sms", "call_center", "in_store")


class Kind(IntEnum):
    """What a session is; it decides the channel, the identifier events carry and the chain's first state."""

    WEB = 0
    MOBILE_APP = 1
    EMAIL = 2
    PUSH = 3
    SMS = 4
    CALL_CENTER = 5
    STORE = 6
    IDENTIFY = 7


KIND_SHARE = np.array([0.30, 0.16, 0.23, 0.10, 0.06, 0.04, 0.08, 0.03])
KIND_CHANNEL = np.array([0, 1, 2, 3, 4, 5, 6, 0], dtype=np.int8)  # identify: web, or the app (see generator)


class State(IntEnum):
    PAGE = 0  # a page view on the web, a screen view in the app
    SEARCHED = 1
    PRODUCT_VIEWED = 2
    PRODUCT_ADDED = 3
    CHECKOUT_STARTED = 4
    ORDER_COMPLETED = 5
    EMAIL_DELIVERED = 6
    EMAIL_OPENED = 7
    EMAIL_CLICKED = 8
    PUSH_DELIVERED = 9
    PUSH_OPENED = 10
    SMS_DELIVERED = 11
    SMS_CLICKED = 12
    CALL_STARTED = 13
    CALL_ENDED = 14
    ORDER_REFUNDED = 15
    IDENTIFY = 16
    STORE_ORDER = 17  # "Order Completed" in a store: its own state, since what follows differs


END_STATE = len(State)
MAX_SESSION = 40
FUNNEL = ("Product Viewed", "Product Added", "Checkout Started", "Order Completed")
STATE_NAMES = (
    "",  # pages and screens are named from PAGES and SCREENS
    "Products Searched",
    *FUNNEL,
    "Email Delivered",
    "Email Opened",
    "Email Clicked",
    "Push Delivered",
    "Push Opened",
    "SMS Delivered",
    "SMS Clicked",
    "Call Started",
    "Call Ended",
    "Order Refunded",
    "",  # identify calls have no name
    "Order Completed",
)

_S = State
_CHAIN: dict[State, dict[State | None, float]] = {  # None: the session ends
    _S.PAGE: {_S.PAGE: 0.30, _S.SEARCHED: 0.12, _S.PRODUCT_VIEWED: 0.40, _S.PRODUCT_ADDED: 0.03, None: 0.15},
    _S.SEARCHED: {_S.PAGE: 0.15, _S.SEARCHED: 0.10, _S.PRODUCT_VIEWED: 0.60, None: 0.15},
    _S.PRODUCT_VIEWED: {
        _S.PAGE: 0.20,
        _S.SEARCHED: 0.08,
        _S.PRODUCT_VIEWED: 0.30,
        _S.PRODUCT_ADDED: 0.25,
        _S.CHECKOUT_STARTED: 0.02,
        None: 0.15,
    },
    _S.PRODUCT_ADDED: {
        _S.PAGE: 0.10,
        _S.PRODUCT_VIEWED: 0.25,
        _S.PRODUCT_ADDED: 0.05,
        _S.CHECKOUT_STARTED: 0.45,
        None: 0.15,
    },
    _S.CHECKOUT_STARTED: {
        _S.PAGE: 0.15,
        _S.PRODUCT_VIEWED: 0.05,
        _S.CHECKOUT_STARTED: 0.05,
        _S.ORDER_COMPLETED: 0.55,
        None: 0.20,
    },
    _S.ORDER_COMPLETED: {_S.PAGE: 0.35, _S.PRODUCT_VIEWED: 0.15, None: 0.50},
    _S.EMAIL_DELIVERED: {_S.EMAIL_OPENED: 0.45, None: 0.55},
    _S.EMAIL_OPENED: {_S.EMAIL_CLICKED: 0.35, None: 0.65},
    _S.EMAIL_CLICKED: {None: 1.0},
    _S.PUSH_DELIVERED: {_S.PUSH_OPENED: 0.30, None: 0.70},
    _S.PUSH_OPENED: {None: 1.0},
    _S.SMS_DELIVERED: {_S.SMS_CLICKED: 0.15, None: 0.85},
    _S.SMS_CLICKED: {None: 1.0},
    _S.CALL_STARTED: {_S.CALL_ENDED: 1.0},
    _S.CALL_ENDED: {_S.ORDER_REFUNDED: 0.25, None: 0.75},
    _S.ORDER_REFUNDED: {None: 1.0},
    _S.IDENTIFY: {None: 1.0},
    _S.STORE_ORDER: {_S.ORDER_REFUNDED: 0.04, None: 0.96},
}
TRANSITIONS = np.zeros((len(State), END_STATE + 1))
for _state, _row in _CHAIN.items():
    for _next, _p in _row.items():
        TRANSITIONS[_state, END_STATE if _next is None else _next] = _p

_FIRST: dict[Kind, dict[State, float]] = {
    Kind.WEB: {_S.PAGE: 0.55, _S.SEARCHED: 0.15, _S.PRODUCT_VIEWED: 0.30},
    Kind.MOBILE_APP: {_S.PAGE: 0.55, _S.SEARCHED: 0.15, _S.PRODUCT_VIEWED: 0.30},
    Kind.EMAIL: {_S.EMAIL_DELIVERED: 1.0},
    Kind.PUSH: {_S.PUSH_DELIVERED: 1.0},
    Kind.SMS: {_S.SMS_DELIVERED: 1.0},
    Kind.CALL_CENTER: {_S.CALL_STARTED: 1.0},
    Kind.STORE: {_S.STORE_ORDER: 1.0},
    Kind.IDENTIFY: {_S.IDENTIFY: 1.0},
}
INITIAL = np.zeros((len(Kind), len(State)))
for _kind, _first in _FIRST.items():
    for _state, _p in _first.items():
        INITIAL[_kind, _state] = _p

# Mean seconds between an event and the one before it in its session, by the event's state.
GAP_SECONDS = np.full(len(State), 40.0)
GAP_SECONDS[[_S.EMAIL_OPENED, _S.EMAIL_CLICKED, _S.PUSH_OPENED, _S.SMS_CLICKED]] = (10_800, 90, 900, 600)
GAP_SECONDS[[_S.CALL_ENDED, _S.ORDER_REFUNDED]] = (420, 60)

PAGES = (
    ("Home", "/"),
    ("Category Shoes", "/c/shoes"),
    ("Category Bags", "/c/bags"),
    ("Category Coats", "/c/coats"),
    ("Search Results", "/search"),
    ("Product", "/p"),
    ("Cart", "/cart"),
    ("Account", "/account"),
    ("Help", "/help"),
    ("Stores", "/stores"),
)
SCREENS = ("Home", "Browse", "Product", "Cart", "Account", "Orders")
APP_CONTEXT = '{"app": {"name": "Wayline Shop", "version": "3.2.0"}}'
SEARCH_TERMS = tuple(f"term {i}" for i in range(50))
_CATEGORIES = ("shoes", "bags", "coats", "shirts", "dresses", "watches", "hats", "scarves")
_COUNTRIES = pa.array(["FR", "DE", "ES", "IT", "NL", "GB", "US", "BE", "PL", "SE"])
_COUNTRY_SHARE = np.array([0.22, 0.2, 0.12, 0.1, 0.08, 0.08, 0.08, 0.05, 0.04, 0.03])
_PLANS = pa.array(["free", "pro", "enterprise"])


class Catalog:
    """2,000 products; a few popular ones, a long tail. A product's properties depend only on its SKU."""

    size = 2000
    _rng = np.random.default_rng(7)
    _prices = (_rng.lognormal(3.5, 0.6, size) * 100).astype(np.int64) + 199
    properties = pa.array(
        [
            f'{{"sku": "SKU-{i:04d}", "category": "{_CATEGORIES[i % 8]}", "price": {p // 100}.{p % 100:02d}}}'
            for i, p in enumerate(_prices)
        ]
    )
    _popularity = 1.0 / (np.arange(size) + 10.0) ** 1.1

    @classmethod
    def draw(cls, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.choice(cls.size, size=n, p=cls._popularity / cls._popularity.sum())


class CallReasons:
    reasons = ("delivery", "refund", "size", "payment", "account")
    properties = pa.array([f'{{"reason": "{r}"}}' for r in reasons])
    transcripts = tuple(
        f"Customer called about {r}. Agent explained the next steps and the customer agreed." for r in reasons
    )


def campaigns() -> pa.Array:
    return pa.array([f'{{"campaign": "campaign-{i:02d}"}}' for i in range(12)])


def traits(rng: np.random.Generator, count: int, emails: pa.Array) -> pa.Array:
    """The traits of each person's identify calls: country, plan and email."""
    country = _COUNTRIES.take(rng.choice(len(_COUNTRY_SHARE), size=count, p=_COUNTRY_SHARE))
    plan = _PLANS.take(rng.choice(3, size=count, p=[0.7, 0.25, 0.05]))
    parts = ('{"country": "', country, '", "plan": "', plan, '", "email": "', emails, '"}')
    return pc.binary_join_element_wise(*parts, "")
