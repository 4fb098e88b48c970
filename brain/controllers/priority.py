"""Emergency-vehicle pre-emption around any controller.

An emergency vehicle reports its upcoming signalised movements (``Readings.emergency``: in-lane,
out-lane, distance to the stop line), as a transponder or its navigation would, up to 1 km
ahead. Each intersection on its way asks for the phase that gives its movement green and keeps
asking until it has passed; the nearest vehicle wins where two conflict. Everywhere else, and
after the vehicle has passed, the wrapped controller decides as usual.

- *When*: within ``always_m`` of the stop line always; further out (up to ``reach_m``) once its
  arrival (at ``ev_speed`` times the limit) is no further off than the time the signal needs:
  the change (yellow, all-red, a minimum green) plus ``headway_s`` per vehicle standing on the
  approach ahead of it, plus ``margin_s``. A queue ahead is flushed in time; an empty approach
  is not held longer than needed, which is what keeps the cost to everyone else small.
- *Which phase*: far out, of the phases showing its movement green, the one that lets most of
  its approach move (the vehicles ahead of it, in whichever lane, must clear for it to reach its
  own); within ``close_m``, the one giving its movement priority green ``G`` (a protected turn)
  first.

The actuator still ends the current green only after its minimum and always through yellow and
all-red (and any pedestrian clearance), so pre-emption never breaks the safety rules.

Example:
    >>> from brain.controllers import make
    >>> make("mpc+priority").name
    'mpc+priority'
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from brain.controllers.base import Controller
from brain.model import GREEN_CHARS, PRIORITY_CHARS, Network, Readings, SignalStatus
from brain.timing import Timing

__all__ = ["Priority", "PriorityConfig"]


@dataclass(frozen=True)
class PriorityConfig:
    """When and how pre-emption starts (see the module docstring); distances in metres."""

    reach_m: float = 1000.0
    close_m: float = 30.0
    always_m: float = 150.0
    ev_speed: float = 1.5
    headway_s: float = 2.0
    margin_s: float = 15.0


class Priority(Controller):
    """Pre-emption for emergency vehicles on top of ``inner`` (see the module docstring)."""

    def __init__(self, inner: Controller, config: PriorityConfig | None = None) -> None:
        self.inner = inner
        self.config = config or PriorityConfig()
        self.name = f"{inner.name}+priority"
        self.interval = inner.interval
        self.preemptions = 0

    def reset(self, network: Network, timing: Timing) -> None:
        super().reset(network, timing)
        self.inner.reset(network, timing)
        # (in_lane, out_lane) -> (intersection, phase while far, phase when close, the approach's
        # incoming lanes). Far, the phase showing the movement green that lets most of its approach
        # move (the vehicles queued ahead of the emergency vehicle, in whichever lane, must clear for
        # it to reach its own lane); close to the stop line, the one giving it priority green ``G``
        # (a protected turn) first.
        edge = [ln.rsplit("_", 1)[0] for ln in network.lanes]
        self._serving: dict[tuple[int, int], tuple[int, int, int, np.ndarray]] = {}
        for i, x in enumerate(network.intersections):
            for k, link in enumerate(x.links):
                if min(link) < 0 or link in self._serving:
                    continue
                approach = [m for m, lk in enumerate(x.links) if lk[0] >= 0 and edge[lk[0]] == edge[link[0]]]
                cands = [(-sum(p.state[m] in GREEN_CHARS for m in approach), 0 if p.state[k] in PRIORITY_CHARS else 1,
                          q) for q, p in enumerate(x.phases) if p.state[k] in GREEN_CHARS]
                if cands:
                    far = min(cands)[2]
                    close = min(cands, key=lambda c: (c[1], c[0]))[2]
                    lanes = np.array(sorted({x.links[m][0] for m in approach}), dtype=np.int64)
                    self._serving[link] = (i, far, close, lanes)
        # the longest a signal may need to change: a minimum green (or walk), a pedestrian hold,
        # yellow and all-red
        self._lost = np.array([max(timing.phase_min_greens(x)) + max(
            timing.yellow_of(x) + timing.all_red_of(x),
            max((timing.ped_clearance(length) for _, length in x.crossings), default=0.0))
            for x in network.intersections])
        self._speed = network.lane_speed
        self._active: set[int] = set()

    def decide(self, readings: Readings, status: SignalStatus) -> np.ndarray:
        wish = np.asarray(self.inner.decide(readings, status), dtype=np.int64).copy()
        chosen: dict[int, tuple[float, int]] = {}
        cfg = self.config
        for a, b, dist in readings.emergency:
            serving = self._serving.get((a, b))
            if dist > cfg.reach_m or serving is None:
                continue
            i, far, close, lanes = serving
            if dist > cfg.always_m:  # far out: only once the queue ahead needs the time to clear
                eta = dist / max(self._speed[a] * cfg.ev_speed, 1.0)
                lead = self._lost[i] + cfg.headway_s * float(readings.halting[lanes].max()) + cfg.margin_s
                if eta > lead:
                    continue
            if i not in chosen or dist < chosen[i][0]:
                chosen[i] = (dist, close if dist <= cfg.close_m else far)
        for i, (_, q) in chosen.items():
            wish[i] = q
        new = set(chosen) - self._active
        self.preemptions += len(new)
        self._active = set(chosen)
        return wish
