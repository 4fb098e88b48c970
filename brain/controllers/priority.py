"""Emergency-vehicle pre-emption around any controller.

An emergency vehicle reports its upcoming signalised movements (``Readings.emergency``: in-lane,
out-lane, distance to the stop line). For every intersection such a movement passes within
``reach_m``, the wrapper asks for the phase that gives that movement green (priority green ``G``
first) and keeps asking until the vehicle has passed; the nearest vehicle wins where two
conflict. The actuator still ends the current green only after its minimum and always through
yellow and all-red, so pre-emption never breaks the safety rules. Everywhere else, and after the
vehicle has passed, the wrapped controller decides as usual.

Example:
    >>> from brain.controllers import make
    >>> make("mpc+priority").name
    'mpc+priority'
"""

from __future__ import annotations

import numpy as np

from brain.controllers.base import Controller
from brain.model import Network, Readings, SignalStatus
from brain.timing import Timing

__all__ = ["Priority"]


class Priority(Controller):
    """Pre-emption for emergency vehicles on top of ``inner`` (see the module docstring)."""

    def __init__(self, inner: Controller, reach_m: float = 400.0) -> None:
        self.inner = inner
        self.name = f"{inner.name}+priority"
        self.interval = inner.interval
        self.reach_m = reach_m
        self.preemptions = 0

    def reset(self, network: Network, timing: Timing) -> None:
        super().reset(network, timing)
        self.inner.reset(network, timing)
        # (in_lane, out_lane) -> [(intersection, phase)] green for it, priority green first
        self._serving: dict[tuple[int, int], list[tuple[int, int]]] = {}
        for i, x in enumerate(network.intersections):
            for k, link in enumerate(x.links):
                if min(link) < 0:
                    continue
                cands = [(0 if p.state[k] == "G" else 1, q) for q, p in enumerate(x.phases) if p.state[k] in "Gg"]
                for _, q in sorted(cands):
                    self._serving.setdefault(link, []).append((i, q))
        self._active: set[int] = set()

    def decide(self, readings: Readings, status: SignalStatus) -> np.ndarray:
        wish = np.asarray(self.inner.decide(readings, status), dtype=np.int64).copy()
        chosen: dict[int, tuple[float, int]] = {}
        for a, b, dist in readings.emergency:
            if dist > self.reach_m:
                continue
            for i, q in self._serving.get((a, b), [])[:1]:
                if i not in chosen or dist < chosen[i][0]:
                    chosen[i] = (dist, q)
        for i, (_, q) in chosen.items():
            wish[i] = q
        new = set(chosen) - self._active
        self.preemptions += len(new)
        self._active = set(chosen)
        return wish
