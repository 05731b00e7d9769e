"""What the generator remembers about each person between rounds: logged in or not (and on which devices),
orders, whether they became advocates, and their latent lifecycle stage, which only ever moves forward."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from wayline_ml.generator.people import People
from wayline_ml.generator.sessions import Visits
from wayline_ml.generator.vocabulary import Stage

__all__ = ["JourneyState"]


@dataclass
class JourneyState:
    known: NDArray[np.bool_]
    """The person has logged in once (the shop knows their user id and email)."""
    device_logged: NDArray[np.bool_]
    """Per device: an identify has joined it to its person."""
    orders: NDArray[np.int64]
    advocated: NDArray[np.bool_]
    stage: NDArray[np.int8]

    @classmethod
    def empty(cls, people: People) -> JourneyState:
        n = len(people)
        return cls(
            known=np.zeros(n, dtype=bool),
            device_logged=np.zeros(len(people.device_person), dtype=bool),
            orders=np.zeros(n, dtype=np.int64),
            advocated=np.zeros(n, dtype=bool),
            stage=np.full(n, Stage.AWARENESS, dtype=np.int8),
        )

    def after_walk(self, visits: Visits, orders: NDArray[np.int64]) -> None:
        """People who logged in at checkout are known from now on, on that device too."""
        self.known[visits.person] |= visits.logged
        on_device = visits.logged & (visits.device >= 0)
        self.device_logged[visits.device[on_device]] = True
        self.orders[visits.person] += orders

    def advance_stages(self, persons: NDArray[np.int64], k: int) -> None:
        """The stage after round k: acquisition once known, engagement from the third session or the first
        order, retention from the second order, advocacy after a review or a share."""
        known, orders = self.known[persons], self.orders[persons]
        reached = np.select(
            [self.advocated[persons], orders >= 2, known & ((k >= 2) | (orders >= 1)), known],
            [Stage.ADVOCACY, Stage.RETENTION, Stage.ENGAGEMENT, Stage.ACQUISITION],
            Stage.AWARENESS,
        )
        self.stage[persons] = np.maximum(self.stage[persons], reached)
