"""The journey generator: a seeded, vectorised population of customers, their multi-channel journeys and a
log of next-best-action decisions with their propensities and true responses. See docs/ml.md."""

from wayline_ml.generator.config import GeneratorConfig
from wayline_ml.generator.decisions import Decisions
from wayline_ml.generator.effects import TrueResponse, true_response
from wayline_ml.generator.events import Events, uuid_strings
from wayline_ml.generator.people import People
from wayline_ml.generator.population import Population, Progress, generate
from wayline_ml.generator.texts import TEXT_FRENCH, TEXT_POSITIVE, TEXTS
from wayline_ml.generator.vocabulary import (
    ACTIONS,
    CHANNELS,
    KINDS,
    SEGMENTS,
    STAGES,
    Action,
    Channel,
    Kind,
    Segment,
    Stage,
)

__all__ = [
    "ACTIONS",
    "CHANNELS",
    "KINDS",
    "SEGMENTS",
    "STAGES",
    "TEXTS",
    "TEXT_FRENCH",
    "TEXT_POSITIVE",
    "Action",
    "Channel",
    "Decisions",
    "Events",
    "GeneratorConfig",
    "Kind",
    "People",
    "Population",
    "Progress",
    "Segment",
    "Stage",
    "TrueResponse",
    "generate",
    "true_response",
    "uuid_strings",
]
