"""One round of sessions, walked step by step for all of them at once.

A session is a Markov walk over the shop's pages (home, lists, products, cart, checkout, order) with side
trips to a chat or a call, so journeys are not funnels: people go back to a product they already saw (a
loop; 30% of product views return to the session's first product), leave carts, jump from the web or app to
the chat or the phone and back. The transition probabilities depend on the person: price-sensitive people
abandon more at the cart and checkout, later lifecycle stages buy more readily, high-tier people call. Each
step is a handful of numpy operations over the sessions still going, so a round costs O(steps) Python calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np
from numpy.typing import NDArray

from wayline_ml.generator.catalogue import Catalogue
from wayline_ml.generator.events import EventSink
from wayline_ml.generator.people import People
from wayline_ml.generator.texts import draw_texts
from wayline_ml.generator.vocabulary import Channel, Kind

__all__ = ["Outcome", "State", "Visits", "email_variants", "walk"]


class State(IntEnum):
    HOME = 0
    LIST = 1
    PRODUCT = 2
    ADDED = 3
    CART = 4
    CHECKOUT = 5
    ORDER = 6
    CHAT = 7
    CALL = 8
    EXIT = 9


STATE_KIND = np.array(
    [Kind.HOME, Kind.PRODUCT_LIST, Kind.PRODUCT, Kind.ADDED, Kind.CART, Kind.CHECKOUT, Kind.ORDER, Kind.CHAT,
     Kind.CALL, -1],
    dtype=np.int8,
)  # fmt: skip
# Base transition probabilities (rows: from, columns: to, both in State order), before the person's modifiers.
BASE = np.array(
    [  #  HOME  LIST  PROD  ADD   CART  CHK   ORD   CHAT  CALL  EXIT
        [0.00, 0.45, 0.33, 0.00, 0.02, 0.00, 0.00, 0.03, 0.00, 0.17],  # HOME
        [0.05, 0.00, 0.70, 0.00, 0.00, 0.00, 0.00, 0.00, 0.00, 0.25],  # LIST
        [0.02, 0.18, 0.25, 0.25, 0.00, 0.00, 0.00, 0.03, 0.00, 0.27],  # PRODUCT
        [0.00, 0.05, 0.25, 0.00, 0.45, 0.00, 0.00, 0.00, 0.00, 0.25],  # ADDED
        [0.00, 0.00, 0.15, 0.00, 0.00, 0.50, 0.00, 0.03, 0.02, 0.30],  # CART
        [0.00, 0.00, 0.00, 0.00, 0.05, 0.00, 0.55, 0.04, 0.06, 0.30],  # CHECKOUT
        [0.08, 0.00, 0.17, 0.00, 0.00, 0.00, 0.00, 0.00, 0.00, 0.75],  # ORDER
        [0.00, 0.00, 0.40, 0.00, 0.20, 0.00, 0.00, 0.00, 0.00, 0.40],  # CHAT
        [0.00, 0.00, 0.00, 0.00, 0.00, 0.40, 0.00, 0.00, 0.00, 0.60],  # CALL
        [0.00, 0.00, 0.00, 0.00, 0.00, 0.00, 0.00, 0.00, 0.00, 1.00],  # EXIT
    ]
)
REVISIT = 0.3
EMAIL_VARIANT_P = np.array([0.6, 0.15, 0.1, 0.15])
MEAN_GAP_US = 40_000_000


@dataclass
class Visits:
    """The sessions of one round (one row each); `logged` is updated as people log in at checkout."""

    session: NDArray[np.int64]
    person: NDArray[np.int64]
    device: NDArray[np.int64]
    channel: NDArray[np.int8]
    start_us: NDArray[np.int64]
    stage: NDArray[np.int8]
    logged: NDArray[np.bool_]
    first: NDArray[np.int8]
    """The State the walk starts in (a product for sessions opened from an ad, an email or a push)."""


@dataclass(frozen=True)
class Outcome:
    ordered: NDArray[np.bool_]
    orders: NDArray[np.int64]
    open_cart: NDArray[np.float64]
    """The value of the cart the session left behind (0 when none)."""
    engaged: NDArray[np.bool_]
    """The session viewed at least one product."""
    end_us: NDArray[np.int64]


def email_variants(rng: np.random.Generator, n: int) -> NDArray[np.int8]:
    return rng.choice(len(EMAIL_VARIANT_P), size=n, p=EMAIL_VARIANT_P).astype(np.int8)


def _positive_tone(
    rng: np.random.Generator, satisfaction: NDArray[np.float64], after_checkout: NDArray[np.bool_]
) -> NDArray[np.bool_]:
    # Unhappy people, and people stuck at checkout, write negative texts more often.
    logit = 1.2 * satisfaction + 0.3 - 1.2 * after_checkout
    return rng.random(len(logit)) < 1.0 / (1.0 + np.exp(-logit))


def walk(  # noqa: PLR0917 - the round's arrays, passed explicitly
    visits: Visits,
    people: People,
    catalogue: Catalogue,
    rng: np.random.Generator,
    sink: EventSink,
    max_steps: int,
) -> Outcome:
    n = len(visits.session)
    person = visits.person
    ps, tier = people.price_sensitivity[person], people.value_tier[person]
    buy = (1.25 - 0.8 * ps) * (0.85 + 0.1 * visits.stage)
    add = 0.8 + 0.1 * visits.stage + 0.2 * (tier == 2)
    call = 0.5 + 0.5 * tier
    current = catalogue.pick(rng, tier)  # the landing product
    first = np.full(n, -1, dtype=np.int32)
    cart = np.zeros(n)
    orders = np.zeros(n, dtype=np.int64)
    engaged = np.zeros(n, dtype=bool)
    t = visits.start_us.copy()
    state = visits.first.astype(np.int64)
    previous = np.full(n, State.EXIT, dtype=np.int64)
    alive = np.flatnonzero(state != State.EXIT)
    for step in range(max_steps):
        if len(alive) == 0:
            break
        s = state[alive]
        _emit(visits, alive, s, previous[alive], t, current, first, cart, orders, engaged, people, catalogue,
              rng, sink)  # fmt: skip
        probabilities = BASE[s]
        probabilities[:, State.ADDED] *= add[alive]
        probabilities[:, State.CHECKOUT] *= buy[alive]
        probabilities[:, State.ORDER] *= buy[alive]
        probabilities[:, State.CALL] *= call[alive] * visits.logged[alive]  # callers give their account
        cumulative = np.cumsum(probabilities, axis=1)
        u = rng.random(len(alive)) * cumulative[:, -1]
        following = np.argmax(cumulative > u[:, None], axis=1)
        if step == max_steps - 1:
            following[:] = State.EXIT
        gap = (rng.exponential(MEAN_GAP_US, len(alive)) + 3_000_000).astype(np.int64)
        _log_in_at_checkout(visits, alive[following == State.CHECKOUT], t, gap[following == State.CHECKOUT],
                            rng, sink)  # fmt: skip
        previous[alive] = s
        state[alive] = following
        t[alive] += gap
        alive = alive[following != State.EXIT]
    return Outcome(ordered=orders > 0, orders=orders, open_cart=cart, engaged=engaged, end_us=t)


def _log_in_at_checkout(  # noqa: PLR0917 - the round's arrays, passed explicitly
    visits: Visits,
    rows: NDArray[np.int64],
    t: NDArray[np.int64],
    gap: NDArray[np.int64],
    rng: np.random.Generator,
    sink: EventSink,
) -> None:
    """Checkout needs an account: an anonymous visitor logs in (an identify on their device) first."""
    anonymous = ~visits.logged[rows]
    rows, gap = rows[anonymous], gap[anonymous]
    sink.add(
        len(rows),
        person=visits.person[rows],
        device=visits.device[rows],
        identified=True,
        email_variant=email_variants(rng, len(rows)),
        kind=Kind.IDENTIFY,
        channel=visits.channel[rows],
        time_us=t[rows] + gap // 2,
        session=visits.session[rows],
        stage=visits.stage[rows],
    )
    visits.logged[rows] = True


def _emit(  # noqa: PLR0917 - the round's arrays, passed explicitly
    visits: Visits,
    rows: NDArray[np.int64],
    s: NDArray[np.int64],
    previous: NDArray[np.int64],
    t: NDArray[np.int64],
    current: NDArray[np.int32],
    first: NDArray[np.int32],
    cart: NDArray[np.float64],
    orders: NDArray[np.int64],
    engaged: NDArray[np.bool_],
    people: People,
    catalogue: Catalogue,
    rng: np.random.Generator,
    sink: EventSink,
) -> None:
    """The event of each row's current state, and what it changes (product, cart, orders)."""
    person = visits.person[rows]
    viewing = s == State.PRODUCT
    if viewing.any():
        v = rows[viewing]
        fresh = catalogue.pick(rng, people.value_tier[person[viewing]])
        back = (first[v] >= 0) & (rng.random(len(v)) < REVISIT)
        sku = np.where(first[v] < 0, current[v], np.where(back, first[v], fresh))
        first[v] = np.where(first[v] < 0, sku, first[v])
        current[v] = sku
        engaged[v] = True
    adding = rows[s == State.ADDED]
    cart[adding] += catalogue.price[current[adding]]
    ordering = rows[s == State.ORDER]
    revenue = np.where(cart[ordering] > 0, cart[ordering], catalogue.price[current[ordering]])
    orders[ordering] += 1
    cart[ordering] = 0.0
    has_sku = viewing | (s == State.ADDED)
    has_cart = (s == State.CART) | (s == State.CHECKOUT)
    talking = (s == State.CHAT) | (s == State.CALL)
    text = np.full(len(rows), -1, dtype=np.int32)
    if talking.any():
        tone = _positive_tone(rng, people.satisfaction[person[talking]], previous[talking] == State.CHECKOUT)
        text[talking] = draw_texts(rng, people.french[person[talking]], tone)
    full_revenue = np.full(len(rows), np.nan)
    full_revenue[s == State.ORDER] = np.round(revenue, 2)
    channel = np.where(
        s == State.CHAT, Channel.CHATBOT, np.where(s == State.CALL, Channel.CALL_CENTER, visits.channel[rows])
    )
    sink.add(
        len(rows),
        person=person,
        device=np.where(s == State.CALL, -1, visits.device[rows]),
        identified=visits.logged[rows],
        kind=STATE_KIND[s],
        channel=channel,
        time_us=t[rows],
        session=visits.session[rows],
        stage=visits.stage[rows],
        sku=np.where(has_sku, current[rows], -1),
        price=np.where(has_sku, catalogue.price[current[rows]], np.nan),
        cart_value=np.where(has_cart, np.round(cart[rows], 2), np.nan),
        revenue=full_revenue,
        text=text,
    )
