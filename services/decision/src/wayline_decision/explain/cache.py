"""Explainers built on first use and kept for the life of a loaded model version.

Reading a graph's ensemble and laying out its leaf paths takes tens of milliseconds for a hundred trees: a
decision that does not ask for an explanation must not pay it, and one that does must not pay it twice. The
first caller builds under a lock (callers arriving meanwhile wait for that one build rather than start their
own); later callers read the finished explainer without locking.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

from wayline_decision.explain.covers import CoversInvalid, read_covers
from wayline_decision.explain.ensemble import EnsembleUnsupported, read_ensemble
from wayline_decision.explain.treeshap import TreeShap

__all__ = ["Explainers", "NotExplainable"]


class NotExplainable(Exception):
    """The graph cannot be explained; the message says why in words a model owner can act on."""


class Explainers:
    """One lazily built TreeShap per graph role."""

    def __init__(self, graphs: Mapping[int, bytes], covers: Mapping[int, bytes], width: int) -> None:
        self._graphs = dict(graphs)
        self._covers = dict(covers)
        self._width = width
        self._built: dict[int, TreeShap] = {}
        self._lock = threading.Lock()

    def get(self, role: int) -> TreeShap:
        explainer = self._built.get(role)
        if explainer is not None:
            return explainer
        with self._lock:
            explainer = self._built.get(role)
            if explainer is None:
                explainer = self._build(role)
                self._built[role] = explainer
            return explainer

    def _build(self, role: int) -> TreeShap:
        covers = self._covers.get(role)
        if covers is None:
            raise NotExplainable(
                "its package carries no node covers for the graph (cover_file): repackage the model with "
                "a wayline-ml that writes them"
            )
        try:
            ensemble = read_ensemble(self._graphs[role], self._width)
            return TreeShap(ensemble, read_covers(covers, ensemble))
        except (EnsembleUnsupported, CoversInvalid) as error:
            raise NotExplainable(str(error)) from None
