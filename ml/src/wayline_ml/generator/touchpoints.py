"""The touchpoints around a session's walk: how the person arrived (directly, from an ad, a post, an email or
a push, or by walking into a store), the identify that joins a device once they are known, the reviews and
shares of advocates, and the actions decisions send with the orders that answer them."""

from __future__ import annotations

from enum import IntEnum

import numpy as np
from numpy.typing import NDArray

from wayline_ml.generator.catalogue import Catalogue
from wayline_ml.generator.decisions import Decisions
from wayline_ml.generator.events import EventSink
from wayline_ml.generator.journey_state import JourneyState
from wayline_ml.generator.people import People
from wayline_ml.generator.schedule import Schedule
from wayline_ml.generator.sessions import State, Visits, email_variants
from wayline_ml.generator.texts import draw_texts
from wayline_ml.generator.vocabulary import Action, Channel, Kind, Stage

__all__ = ["Entry", "emit_actions", "emit_advocacy", "emit_entries", "open_sessions"]

SECOND = 1_000_000
HOUR = 3_600 * SECOND


class Entry(IntEnum):
    DIRECT = 0
    AD = 1
    SOCIAL = 2
    EMAIL = 3
    PUSH = 4
    STORE = 5


ENTRY_KIND = {Entry.AD: Kind.AD_CLICKED, Entry.SOCIAL: Kind.POST_ENGAGED, Entry.PUSH: Kind.PUSH_OPENED}
ENTRY_CHANNEL = {Entry.AD: Channel.DISPLAY_ADS, Entry.SOCIAL: Channel.SOCIAL, Entry.PUSH: Channel.PUSH}
# The kind and channel of each action's event; NONE sends nothing.
ACTION_EVENT = {
    Action.DISCOUNT_10: (Kind.OFFER_SENT, Channel.EMAIL),
    Action.FREE_SHIPPING: (Kind.OFFER_SENT, Channel.EMAIL),
    Action.EMAIL_REMINDER: (Kind.EMAIL_SENT, Channel.EMAIL),
    Action.PUSH_REMINDER: (Kind.PUSH_SENT, Channel.PUSH),
    Action.CALL_BACK: (Kind.CALL_BACK, Channel.CALL_CENTER),
}
ORDER_CHANNEL = np.array([Channel.WEB, Channel.WEB, Channel.WEB, Channel.WEB, Channel.MOBILE_APP,
                          Channel.CALL_CENTER], dtype=np.int8)  # fmt: skip


def _draw(rng: np.random.Generator, weights: NDArray[np.float64]) -> NDArray[np.int64]:
    cumulative = np.cumsum(weights, axis=1)
    u = rng.random(len(weights)) * cumulative[:, -1]
    chosen: NDArray[np.int64] = np.argmax(cumulative > u[:, None], axis=1)
    return chosen


def open_sessions(  # noqa: PLR0917 - the round's arrays, passed explicitly
    k: int,
    persons: NDArray[np.int64],
    sessions: NDArray[np.int64],
    schedule: Schedule,
    people: People,
    state: JourneyState,
    rng: np.random.Generator,
) -> tuple[Visits, NDArray[np.int64]]:
    """Round k's sessions: the device (app-affine people pick their app installs), how they arrived (email,
    push and store need a known person, push an app), and whether they are logged in from the start."""
    known = state.known[persons] | (k >= people.identify_after[persons])
    state.known[persons] = known
    app = people.app_affinity[persons]
    slots = people.device_start[persons][:, None] + np.arange(3)
    exists = np.arange(3) < people.n_devices[persons][:, None]
    is_app = people.device_app[np.minimum(slots, len(people.device_app) - 1)] & exists
    device = slots[
        np.arange(len(persons)),
        _draw(rng, exists * (np.where(is_app, app[:, None], 1 - app[:, None]) + 0.05)),
    ]
    on_app = people.device_app[device]
    mail = people.email_affinity[persons]
    weights = np.stack(
        [
            np.full(len(persons), 0.45),
            np.full(len(persons), 0.12),
            np.full(len(persons), 0.08),
            0.3 * (0.2 + mail) * known,
            0.3 * (0.2 + app) * known * on_app,
            0.05 * known,
        ],
        axis=1,
    )
    entry = _draw(rng, weights)
    store = entry == Entry.STORE
    first = np.select(
        [store, entry == Entry.DIRECT, entry == Entry.SOCIAL],
        [State.EXIT, State.HOME, State.HOME],
        State.PRODUCT,
    ).astype(np.int8)
    visits = Visits(
        session=sessions,
        person=persons,
        device=np.where(store, -1, device),
        channel=np.where(store, Channel.IN_STORE, np.where(on_app, Channel.MOBILE_APP, Channel.WEB)).astype(
            np.int8
        ),
        start_us=schedule.start_us[sessions],
        stage=state.stage[persons],
        logged=known.copy(),
        first=first,
    )
    return visits, entry


def emit_entries(  # noqa: PLR0917 - the round's arrays, passed explicitly
    visits: Visits,
    entry: NDArray[np.int64],
    people: People,
    catalogue: Catalogue,
    state: JourneyState,
    rng: np.random.Generator,
    sink: EventSink,
) -> None:
    def rows(mask: NDArray[np.bool_], **columns: object) -> None:
        sink.add(
            int(mask.sum()),
            session=visits.session[mask],
            stage=visits.stage[mask],
            person=visits.person[mask],
            **columns,
        )

    joining = visits.logged & (visits.device >= 0)
    joining[joining] = ~state.device_logged[visits.device[joining]]
    state.device_logged[visits.device[joining]] = True
    rows(joining, device=visits.device[joining], identified=True, kind=Kind.IDENTIFY,
         email_variant=email_variants(rng, int(joining.sum())), channel=visits.channel[joining],
         time_us=visits.start_us[joining] - SECOND)  # fmt: skip
    for way in (Entry.AD, Entry.SOCIAL, Entry.PUSH):
        mask = entry == way
        rows(mask, device=visits.device[mask], identified=visits.logged[mask], kind=ENTRY_KIND[way],
             channel=ENTRY_CHANNEL[way], time_us=visits.start_us[mask] - 5 * SECOND)  # fmt: skip
    mail = entry == Entry.EMAIL
    for kind, before in ((Kind.EMAIL_OPENED, 120), (Kind.EMAIL_CLICKED, 5)):
        rows(mail, email_variant=email_variants(rng, int(mail.sum())), kind=kind, channel=Channel.EMAIL,
             time_us=visits.start_us[mail] - before * SECOND)  # fmt: skip
    store = entry == Entry.STORE
    sku = catalogue.pick(rng, people.value_tier[visits.person[store]])
    rows(store, identified=True, kind=Kind.ORDER, channel=Channel.IN_STORE, time_us=visits.start_us[store],
         sku=sku, price=catalogue.price[sku], revenue=catalogue.price[sku])  # fmt: skip


def emit_advocacy(  # noqa: PLR0917 - the round's arrays, passed explicitly
    visits: Visits,
    end_us: NDArray[np.int64],
    people: People,
    state: JourneyState,
    rng: np.random.Generator,
    sink: EventSink,
) -> None:
    """Satisfied retained customers sometimes review (mostly kindly) or share, and become advocates."""
    person = visits.person
    advocate = (
        (state.stage[person] >= Stage.RETENTION)
        & (people.satisfaction[person] > 0.3)
        & (visits.device >= 0)
        & (rng.random(len(person)) < 0.3)
    )
    state.advocated[person[advocate]] = True
    review = advocate & (rng.random(len(person)) < 0.5)
    share = advocate & ~review
    texts = draw_texts(rng, people.french[person[review]], rng.random(int(review.sum())) < 0.9)
    for mask, columns in (
        (review, {"kind": Kind.REVIEW, "channel": visits.channel[review], "text": texts}),
        (share, {"kind": Kind.SHARED, "channel": Channel.SOCIAL}),
    ):
        sink.add(int(mask.sum()), person=person[mask], device=visits.device[mask], identified=True,
                 time_us=end_us[mask] + 60 * SECOND, session=visits.session[mask], stage=visits.stage[mask],
                 **columns)  # fmt: skip


def emit_actions(
    log: Decisions, first_id: int, state: JourneyState, rng: np.random.Generator, sink: EventSink
) -> None:
    """Each decision as the decision service logs it (`Decision Logged`: the action and its propensity), each
    action's message (emails carry the address, the rest the user id), and an order some hours later, carrying
    the decision id, for every decision that converted."""
    decision = first_id + np.arange(len(log), dtype=np.int64)
    stage = state.stage[log.person]
    sink.add(len(log), person=log.person, identified=True, kind=Kind.DECISION, channel=Channel.OTHER,
             time_us=log.time_us, stage=stage, action=log.action, decision=decision,
             propensity=log.propensity)  # fmt: skip
    for action, (kind, channel) in ACTION_EVENT.items():
        mask = log.action == action
        by_email = channel == Channel.EMAIL
        sink.add(
            int(mask.sum()),
            person=log.person[mask],
            identified=not by_email,
            kind=kind,
            channel=channel,
            email_variant=email_variants(rng, int(mask.sum())) if by_email else -1,
            time_us=log.time_us[mask],
            stage=stage[mask],
            action=action,
            decision=decision[mask],
        )
    won = log.converted
    paid = np.where(log.action == Action.DISCOUNT_10, 0.9, 1.0) * log.amount
    # Capped at a day, so that nothing lands later than a day after the period ends.
    delay = np.minimum(rng.exponential(6 * HOUR, int(won.sum())) + 600 * SECOND, 24 * HOUR).astype(np.int64)
    sink.add(int(won.sum()), person=log.person[won], identified=True, kind=Kind.ORDER,
             channel=ORDER_CHANNEL[log.action[won]], time_us=log.time_us[won] + delay, stage=stage[won],
             revenue=np.round(paid[won], 2), action=log.action[won], decision=decision[won])  # fmt: skip
