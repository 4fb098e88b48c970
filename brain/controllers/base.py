"""The one interface every controller implements (the registry that names them: :mod:`brain.controllers.registry`)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np

from brain.model import Network, Readings, SignalStatus
from brain.timing import Timing

__all__ = ["Controller", "NativeController"]


class Controller(ABC):
    """Decides, for every intersection, which green phase it wants served.

    The actuator is the only one to touch signals: it serves a wish only through the legal path
    (minimum green, yellow, all-red, maximum green), so a controller may ask for anything.

    Attributes:
        name: registry name, as used on the command line.
        interval: seconds between decisions; ``None`` uses ``Timing.step``.
        interventions: what the controller did on its own to clear a jam in this run, each
            ``{"tls", "time_s", "kind", "why"}`` (the run's record lists them).
    """

    name: ClassVar[str] = ""
    interval: float | None = None

    def reset(self, network: Network, timing: Timing) -> None:
        """Prepare for a new run on ``network``."""
        self.network = network
        self.timing = timing
        self.interventions: list[dict] = []

    @abstractmethod
    def decide(self, readings: Readings, status: SignalStatus) -> np.ndarray:
        """Wished green phase per intersection, shape ``(n_intersections,)`` of int."""


class NativeController(Controller):
    """A controller that SUMO itself runs: the loop installs ``program`` and only watches.

    Attributes:
        program: ``"own"`` keeps the scenario's programs; ``"actuated"`` installs SUMO's
            actuated control over the same phases.
    """

    program: ClassVar[str] = "own"

    def decide(self, readings: Readings, status: SignalStatus) -> np.ndarray:
        return status.phase.copy()
