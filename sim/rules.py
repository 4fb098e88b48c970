"""The applied rules of one run: what every signal shows on a switch, and what the monitor demands.

One set of rules for every controller in a comparison (:class:`brain.timing.Timing`):

- ``citybrain`` protocol (the default): each transition's yellow and all-red are the program's own
  for it, raised to the profile's minimum (3 s yellow); for a switch the program never makes, the
  longest yellow and all-red the program shows at that signal. SUMO's own programs (``fixed``,
  ``actuated``, and the signals no controller drives) run with the same clearances
  (:func:`native_program`). An explicit ``--yellow``/``--all-red`` or ``--clearance ite`` sets
  them for every controller alike.
- ``resco`` protocol: the adaptive controllers switch with 3 s yellow (RESCO's setting), SUMO's
  own programs run exactly as written.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from brain.model import GreenPhase, is_green, is_yellow
from brain.timing import Timing
from sim.program import ProgramPhase, all_red_time, min_spans, plan_transitions, rewrite_clearances
from sim.safety import SafetyRules

__all__ = ["Applied", "apply_rules", "native_program", "monitor_rules", "native_monitor_rules", "clearances"]


@dataclass(frozen=True)
class Applied:
    """What the applied rules give one controlled signal.

    Attributes:
        transitions: per switch ``(i, j)``, the intervals shown, ``(state, seconds)``.
        yellow: the longest yellow it shows (s); all_red: the longest all-red (s).
        change: per switch, seconds from the end of one green to the start of the next.
        floor_yellow / floor_all_red: the shortest yellow and all-red the rules allow there.
    """

    transitions: dict[tuple[int, int], tuple[tuple[str, float], ...]]
    yellow: float
    all_red: float
    change: tuple[tuple[float, ...], ...]
    floor_yellow: float
    floor_all_red: float


def clearances(timing: Timing, ite: tuple[float, float] | None = None) -> tuple[float | None, float | None]:
    """The explicit yellow and all-red of the rules at one signal (``None``: the program's own)."""
    if timing.clearance == "ite":
        if ite is None:
            raise ValueError("ITE clearances need the signal's approach speed and crossing width")
        return ite
    return timing.yellow, timing.all_red


def apply_rules(greens: Sequence[GreenPhase], program: Sequence[ProgramPhase], crossings: frozenset[int],
                timing: Timing, ite: tuple[float, float] | None = None) -> Applied:
    """Every switch of one signal under ``timing``."""
    prof = timing.rules
    yellow, all_red = clearances(timing, ite)
    if timing.protocol == "resco" and all_red is None:
        all_red = all_red_time(program)  # RESCO: the program's all-red, as the benchmark's environment does
    trans = plan_transitions(greens, program, yellow=yellow, all_red=all_red, min_yellow=prof.min_yellow,
                             min_all_red=prof.min_all_red, keep_program=timing.protocol != "resco",
                             permissive_needs_yellow=timing.permissive_needs_yellow, crossings=crossings,
                             min_green=timing.min_green, max_yellow=prof.max_yellow)
    y_shown = max((d for steps in trans.values() for st, d in steps if any(is_yellow(c) for c in st)),
                  default=yellow if yellow is not None else prof.min_yellow)
    r_shown = max((d for steps in trans.values() for st, d in steps
                   if not any(is_yellow(c) or is_green(c) for c in st)), default=0.0)
    n = len(greens)
    change = tuple(tuple(0.0 if i == j else sum(d for _, d in trans[(i, j)]) for j in range(n)) for i in range(n))
    floor_y = yellow if yellow is not None else prof.min_yellow
    floor_r = all_red if all_red is not None else prof.min_all_red
    return Applied(trans, float(y_shown), float(r_shown), change, float(floor_y), float(floor_r))


def native_program(program: Sequence[ProgramPhase], timing: Timing,
                   ite: tuple[float, float] | None = None) -> list[ProgramPhase] | None:
    """The program SUMO runs for ``fixed``/``actuated`` and for undriven signals under the rules,
    or ``None`` where it runs as written (the ``resco`` protocol, or nothing to change)."""
    if timing.native_as_written:
        return None
    prof = timing.rules
    yellow, all_red = clearances(timing, ite)
    out = rewrite_clearances(program, yellow=yellow, all_red=all_red, min_yellow=prof.min_yellow,
                             min_all_red=prof.min_all_red, min_green=timing.min_green, max_yellow=prof.max_yellow)
    same = len(out) == len(program) and all(a.state == b.state and abs(a.duration - b.duration) < 1e-9
                                            for a, b in zip(out, program))
    return None if same else out


def monitor_rules(timing: Timing, applied: Applied, ped_speed: float | None = None) -> SafetyRules:
    """The limits the monitor judges a controlled signal by."""
    return SafetyRules(min_green=timing.min_green, min_yellow=applied.floor_yellow, all_red=applied.floor_all_red,
                       walk=timing.walk, ped_speed=ped_speed or timing.ped_speed,
                       permissive_needs_yellow=timing.permissive_needs_yellow,
                       max_yellow=max(timing.rules.max_yellow, applied.floor_yellow))


def native_monitor_rules(timing: Timing, program: Sequence[ProgramPhase], crossings: frozenset[int],
                         ite: tuple[float, float] | None = None) -> SafetyRules:
    """The limits the monitor judges a program SUMO runs by: the applied rules' (the same as for
    every controller), or under ``resco`` the program's own shortest spans."""
    if timing.native_as_written:
        g, y = min_spans(program, crossings)
        return SafetyRules(min_green=g if math.isfinite(g) else 0.0, min_yellow=y if math.isfinite(y) else 0.0,
                           all_red=0.0, walk=timing.walk, ped_speed=timing.ped_speed,
                           permissive_needs_yellow=timing.permissive_needs_yellow)
    yellow, all_red = clearances(timing, ite)
    prof = timing.rules
    floor = yellow if yellow is not None else prof.min_yellow
    return SafetyRules(min_green=timing.min_green, min_yellow=floor,
                       all_red=all_red if all_red is not None else prof.min_all_red, walk=timing.walk,
                       ped_speed=timing.ped_speed, permissive_needs_yellow=timing.permissive_needs_yellow,
                       max_yellow=max(prof.max_yellow, floor))
