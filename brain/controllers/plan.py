"""The scenario's own fixed-time plan, driven through the actuator: the safe fallback.

Unlike ``fixed`` (SUMO runs the program itself), ``plan`` asks the actuator for each green of the
scenario's program in order, for that green's programmed duration (at least the minimum green),
so it can take over any single intersection mid-run from another controller, through the legal
transition, when that controller's inputs fail.

The plan keeps its own clock: each signal's cycle (its greens, each followed by the actuator's
yellow and all-red) is anchored at the first decision, and the wish is always the green the
cycle schedules now. A signal pushed off its cycle (a pre-emption for an emergency vehicle, a
takeover mid-cycle, a longer pedestrian clearance) therefore falls back into step with its
neighbours' coordination within one phase, as a real controller's transition back to
coordination does, instead of running out of step for the rest of the day.
"""

from __future__ import annotations

import numpy as np

from brain.controllers.base import Controller
from brain.controllers.registry import register
from brain.model import Network, Readings, SignalStatus
from brain.timing import Crosswalks, Timing

__all__ = ["FixedPlan"]


@register
class FixedPlan(Controller):
    """Cycle each signal's green phases with the durations of its own program."""

    name = "plan"
    interval = 1.0

    def reset(self, network: Network, timing: Timing) -> None:
        super().reset(network, timing)
        # within the actuator's limits: a programmed green longer than the maximum green would
        # otherwise be cut by the actuator while the plan still asks for it
        self.durations = [np.minimum(np.maximum(np.array([p.duration for p in x.phases]), timing.cycle_min_greens(x)),
                                     np.maximum(timing.max_green, timing.phase_min_greens(x)))
                          for x in network.intersections]
        # per signal: when each green's window starts in the cycle, and the cycle length (with each
        # switch's own transition, and the actuator's pedestrian holds where crosswalks ask for them)
        self.starts, cycles = [], []
        for x, d in zip(network.intersections, self.durations):
            cross = Crosswalks([p.state for p in x.phases], x.crossings, timing)
            n = x.n_phases
            st, cyc = cross.cycle(list(d), [timing.change_of(x, k, (k + 1) % n) for k in range(n)])
            self.starts.append(np.array(st))
            cycles.append(cyc)
        self.cycles = np.array(cycles)
        self.anchor: float | None = None

    def scheduled(self, now: float) -> np.ndarray:
        """The green each signal's cycle schedules at ``now`` (the next one during its yellow and all-red)."""
        if self.anchor is None:
            self.anchor = now
        out = np.zeros(len(self.durations), dtype=np.int64)
        for i, (d, st) in enumerate(zip(self.durations, self.starts)):
            pos = (now - self.anchor) % self.cycles[i]
            k = int(np.searchsorted(st, pos + 1e-9, side="right")) - 1
            out[i] = k if pos - st[k] < d[k] - 1e-9 else (k + 1) % len(d)  # asked to end at d[k]
        return out

    def decide(self, readings: Readings, status: SignalStatus) -> np.ndarray:
        wish = self.scheduled(readings.time)
        if status.in_transition.size:  # a switch under way is not asked again
            wish = np.where(status.in_transition, status.phase, wish)
        return wish
