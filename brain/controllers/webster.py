"""Webster's fixed-time plan, re-planned from measured demand.

Every ``replan_s`` seconds the controller measures each incoming lane's arrival rate over the
last ``window_s`` seconds and computes Webster's optimum cycle
``C0 = (1.5 L + 5) / (1 - Y)`` and green splits proportional to each phase's critical flow
ratio ``y = q / s`` (the largest over the lanes it is critical for, see :func:`critical_lanes`). The lost time ``L`` is the yellow and
all-red of every phase; every green gets at least the minimum green.

Example:
    >>> round(webster_cycle(np.array([500 / 1600, 300 / 1600]), lost_time=16.0))
    58
"""

from __future__ import annotations

import numpy as np

from brain.controllers.base import Controller
from brain.controllers.registry import register
from brain.model import GREEN_CHARS, PRIORITY_CHARS, Intersection, Network, Readings, SignalStatus
from brain.timing import Crosswalks, Timing

__all__ = ["Webster", "critical_lanes", "webster_cycle", "webster_greens"]

SATURATION_VEH_PER_S = 1800.0 / 3600.0
"""Saturation flow per lane (1,800 veh/h, the HCM base for a through lane)."""


def webster_cycle(flow_ratios: np.ndarray, lost_time: float, y_cap: float = 0.95) -> float:
    """Webster's optimum cycle length (s) for critical flow ratios ``y`` and total lost time."""
    y_sum = min(float(np.sum(flow_ratios)), y_cap)
    return (1.5 * lost_time + 5.0) / (1.0 - y_sum)


def webster_greens(flow_ratios: np.ndarray, cycle: float, lost_time: float,
                   min_green: float | np.ndarray) -> np.ndarray:
    """Effective greens proportional to the flow ratios, none below ``min_green`` (one value, or
    one per phase)."""
    y = np.asarray(flow_ratios, dtype=np.float64)
    n = len(y)
    usable = max(cycle - lost_time, float(np.sum(np.broadcast_to(min_green, (n,)))))
    share = y / y.sum() if y.sum() > 0 else np.full(n, 1.0 / n)
    return np.maximum(usable * share, min_green)


def critical_lanes(x: Intersection) -> list[np.ndarray]:
    """Incoming lanes each phase is critical for: every lane belongs to the one phase serving the
    most of its links (ties: the most priority-green ``G`` ones), so a lane is not counted again
    by a phase that re-serves part of it (a protected-left phase after a permissive left)."""
    out: list[list[int]] = [[] for _ in range(x.n_phases)]
    for lane in x.in_lanes:
        links = [i for i, (a, _) in enumerate(x.links) if a == lane]
        prio = [sum(p.state[i] in PRIORITY_CHARS for i in links) for p in x.phases]
        served = [sum(p.state[i] in GREEN_CHARS for i in links) for p in x.phases]
        best = max(range(x.n_phases), key=lambda k: (served[k], prio[k]))
        if served[best]:
            out[best].append(lane)
    return [np.array(v, dtype=np.int64) for v in out]


@register
class Webster(Controller):
    """Fixed-time control with Webster's cycle and splits from measured demand."""

    name = "webster"
    interval = 1.0
    replan_s = 300.0
    window_s = 900.0
    max_cycle_s = 180.0

    def reset(self, network: Network, timing: Timing) -> None:
        super().reset(network, timing)
        self._lanes = [critical_lanes(x) for x in network.intersections]
        self._lost = []
        self._plans = []
        self._min = []  # per phase: the minimum green, or the pedestrians' minimum green where longer
        self._ask_min = []  # per phase: the earliest a switch may be asked (the walk where one shows)
        self._cross = [Crosswalks([p.state for p in x.phases], x.crossings, timing) for x in network.intersections]
        for i, x in enumerate(network.intersections):
            self._lost.append(sum(timing.change_of(x, k, (k + 1) % x.n_phases) for k in range(x.n_phases)))
            self._min.append(np.array(timing.ped_min_greens(x)))
            self._ask_min.append(np.array(timing.phase_min_greens(x)))
            own = np.array([p.duration for p in x.phases], dtype=np.float64)
            self._plans.append(self._asks(i, np.clip(own, self._min[-1], max(timing.max_green, self._min[-1].max()))))
        self._history: list[tuple[float, np.ndarray]] = []
        self._next_plan = -np.inf

    def plan(self, i: int) -> np.ndarray:
        """Current green time per phase of intersection ``i`` (s)."""
        return self._plans[i]

    def _replan(self, readings: Readings) -> None:
        self._history.append((readings.time, readings.arrivals.copy()))
        while len(self._history) > 1 and readings.time - self._history[0][0] > self.window_s:
            self._history.pop(0)
        t0, a0 = self._history[0]
        span = readings.time - t0
        if span <= 0:
            return
        rate = (readings.arrivals - a0) / span
        for i, lanes in enumerate(self._lanes):
            y = np.array([rate[ln].max() / SATURATION_VEH_PER_S if len(ln) else 0.0 for ln in lanes])
            cycle = min(webster_cycle(y, self._lost[i]), self.max_cycle_s)
            greens = webster_greens(y, cycle, self._lost[i], self._min[i])
            self._plans[i] = self._asks(i, np.minimum(greens, max(self.timing.max_green, self._min[i].max())))

    def _asks(self, i: int, greens: np.ndarray) -> np.ndarray:
        """When to ask each switch so the greens come out as planned: the actuator keeps a green
        longer for a pedestrian clearance (the hold), so the ask comes that much sooner."""
        cross = self._cross[i]
        if not cross:
            return greens
        x = self.network.intersections[i]
        lost = np.array([self.timing.change_of(x, k, (k + 1) % x.n_phases) for k in range(x.n_phases)])
        starts, cycle = cross.cycle(list(greens), list(lost))
        shown = np.diff(np.append(starts, cycle)) - lost  # green each phase gets, holds included
        return np.maximum(greens - (shown - greens), self._ask_min[i])

    def decide(self, readings: Readings, status: SignalStatus) -> np.ndarray:
        if readings.time >= self._next_plan:
            self._replan(readings)
            self._next_plan = readings.time + self.replan_s
        out = status.phase.copy()
        for i, plan in enumerate(self._plans):
            k = int(status.phase[i])
            if not status.in_transition[i] and status.green_time[i] >= plan[k]:
                out[i] = (k + 1) % len(plan)
        return out
