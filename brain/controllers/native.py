"""Controllers SUMO runs itself: the scenario's own fixed-time plan, and SUMO's actuated control."""

from __future__ import annotations

from brain.controllers.base import NativeController
from brain.controllers.registry import register

__all__ = ["FixedTime", "Actuated"]


@register
class FixedTime(NativeController):
    """The scenario's own signal programs, exactly as SUMO runs them."""

    name = "fixed"
    program = "own"


@register
class Actuated(NativeController):
    """SUMO's gap-based actuated control over the scenario's phases (min/max green from Timing)."""

    name = "actuated"
    program = "actuated"
