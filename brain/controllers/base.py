"""The one interface every controller implements, and the registry that names them."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import ClassVar

import numpy as np

from brain.model import Network, Readings, SignalStatus
from brain.timing import Timing

__all__ = ["Controller", "NativeController", "register", "make", "names"]


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


_REGISTRY: dict[str, Callable[[], Controller]] = {}


def register(cls: type[Controller]) -> type[Controller]:
    """Class decorator adding a controller under ``cls.name``; a taken name raises."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    if cls.name in _REGISTRY:
        raise ValueError(f"controller name {cls.name!r} is already registered")
    _REGISTRY[cls.name] = cls
    return cls


def make(name: str, options: dict | None = None) -> Controller:
    """A new controller by registry name; an unknown name raises ``KeyError`` listing the known ones.

    ``NAME+priority`` wraps it in emergency-vehicle pre-emption (:mod:`brain.controllers.priority`).

    ``options`` configure a controller that has a ``Config`` class (built with its
    ``from_mapping``, so unknown keys raise ``ValueError``); others take none.
    """
    if name.endswith("+priority"):
        from brain.controllers.priority import Priority

        return Priority(make(name[: -len("+priority")], options))
    try:
        cls = _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown controller {name!r} (known: {', '.join(names())})") from None
    if not options:
        return cls()
    config = getattr(cls, "Config", None)
    if config is None:
        raise ValueError(f"controller {name!r} takes no options (got {', '.join(sorted(options))})")
    return cls(config.from_mapping(options))


def names() -> list[str]:
    return sorted(_REGISTRY)
