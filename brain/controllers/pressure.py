"""Queue-driven controllers: max-pressure (Varaiya) and greedy longest-queue."""

from __future__ import annotations

import numpy as np

from brain.controllers.base import Controller
from brain.controllers.registry import register
from brain.model import Network, Readings, SignalStatus
from brain.timing import Timing

__all__ = ["MaxPressure", "Greedy", "best_phase"]


def best_phase(scores: np.ndarray, current: int) -> int:
    """Highest-scoring phase; the current one wins ties, so a signal never switches for nothing."""
    top = scores.max()
    return current if scores[current] >= top else int(scores.argmax())


class _PhaseScoring(Controller):
    """Picks, per intersection, the phase with the highest score from the readings."""

    def reset(self, network: Network, timing: Timing) -> None:
        super().reset(network, timing)
        self._prepare(network)

    def _prepare(self, network: Network) -> None:
        raise NotImplementedError

    def _scores(self, i: int, readings: Readings) -> np.ndarray:
        raise NotImplementedError

    def decide(self, readings: Readings, status: SignalStatus) -> np.ndarray:
        out = status.phase.copy()
        for i in range(len(self.network.intersections)):
            out[i] = best_phase(self._scores(i, readings), int(status.phase[i]))
        return out


@register
class MaxPressure(_PhaseScoring):
    """Varaiya's max-pressure: serve the phase whose movements have the largest
    upstream-minus-downstream vehicle count."""

    name = "max-pressure"

    def _prepare(self, network: Network) -> None:
        self._moves = []
        for x in network.intersections:
            per_phase = [np.array(x.phase_movements(k), dtype=np.int64).reshape(-1, 2) for k in range(x.n_phases)]
            self._moves.append(per_phase)

    def _scores(self, i: int, readings: Readings) -> np.ndarray:
        veh = readings.vehicles
        return np.array([float((veh[m[:, 0]] - veh[m[:, 1]]).sum()) for m in self._moves[i]])


@register
class Greedy(_PhaseScoring):
    """Greedy longest-queue: serve the phase whose incoming lanes hold the most halted vehicles."""

    name = "greedy"

    def _prepare(self, network: Network) -> None:
        self._lanes = [[np.array(x.phase_in_lanes(k), dtype=np.int64) for k in range(x.n_phases)]
                       for x in network.intersections]

    def _scores(self, i: int, readings: Readings) -> np.ndarray:
        halt = readings.halting
        return np.array([float(halt[ln].sum()) for ln in self._lanes[i]])
