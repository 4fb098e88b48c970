"""The scenario's own fixed-time plan, driven through the actuator: the safe fallback.

Unlike ``fixed`` (SUMO runs the program itself), ``plan`` asks the actuator for each green of the
scenario's program in order, for that green's programmed duration (at least the minimum green),
so it can take over any single intersection mid-run from another controller, through the legal
transition, when that controller's inputs fail.
"""

from __future__ import annotations

import numpy as np

from brain.controllers.base import Controller, register
from brain.model import Network, Readings, SignalStatus
from brain.timing import Timing

__all__ = ["FixedPlan"]


@register
class FixedPlan(Controller):
    """Cycle each signal's green phases with the durations of its own program."""

    name = "plan"
    interval = 1.0

    def reset(self, network: Network, timing: Timing) -> None:
        super().reset(network, timing)
        self.durations = [np.array([max(p.duration, timing.min_green) for p in x.phases]) for x in network.intersections]

    def decide(self, readings: Readings, status: SignalStatus) -> np.ndarray:
        wish = status.phase.astype(np.int64).copy()
        for i, d in enumerate(self.durations):
            if status.in_transition.size and status.in_transition[i]:
                continue
            p = int(status.phase[i])
            if status.green_time[i] >= d[p] - 1e-9:
                wish[i] = (p + 1) % len(d)
        return wish
