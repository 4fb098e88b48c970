"""The actuator: turns a controller's wish ("serve phase k") into legal signal states.

Every intersection has one :class:`SignalMachine`. It is the only way a controller reaches a
signal: a switch happens only after the current green has run its minimum, always passes
through yellow (and all-red when the scenario's program has it), and a green that reaches its
maximum is ended even if the controller asks to keep it.

Pedestrian crossings (rest in walk): a crossing shown green in a phase is that phase's walk,
shown from the start of the green. A switch that ends a walk is refused before the walk has
run ``Timing.walk`` (maximum green waits for it too); once accepted, the crossing turns red
(don't walk) at once. No vehicle movement conflicting with it turns green before the crossing's
length at ``Timing.ped_speed`` has passed: where a switch would turn one green sooner, the
vehicles keep their green for what yellow and all-red do not cover (:class:`brain.timing.Crosswalks`).
Crossings never show yellow.

Example:
    >>> from brain.model import GreenPhase
    >>> from brain.timing import Timing
    >>> m = SignalMachine([GreenPhase(0, "GGrr"), GreenPhase(2, "rrGG")], Timing(), now=0.0)
    >>> m.request(2.0, 1)      # too early: minimum green not yet served
    False
    >>> m.request(10.0, 1)
    True
    >>> m.state
    'yyrr'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from brain.model import GreenPhase, is_green, keeps_green
from brain.timing import Crosswalks, Timing
from sim.program import generated_steps, transition_states

__all__ = ["SignalMachine", "transition_states", "generated_transitions"]

Transitions = Mapping[tuple[int, int], Sequence[tuple[str, float]]]
"""Per switch ``(from phase, to phase)``: the intervals shown between the two greens, each
``(state, seconds)`` (yellow, all-red, any intermediate green of the program's own transition)."""


def generated_transitions(phases: Sequence[GreenPhase], yellow: float, all_red: float,
                          crossings: frozenset[int] = frozenset(),
                          permissive_needs_yellow: bool = True) -> dict[tuple[int, int], tuple[tuple[str, float], ...]]:
    """Yellow then all-red for every switch (:func:`sim.program.generated_steps`)."""
    return {(i, j): generated_steps(a.state, b.state, yellow, all_red, crossings, permissive_needs_yellow)
            for i, a in enumerate(phases) for j, b in enumerate(phases) if i != j}


_GREEN, _CHANGE, _PED_CLEAR = 0, 1, 3


class SignalMachine:
    """Legal-path state machine of one intersection.

    Args:
        phases: the intersection's green phases.
        timing: the rules to enforce.
        now: simulation time the machine starts at; it starts in phase 0, green.
        all_red: all-red time to insert (used when ``timing.all_red`` is ``None`` and no
            ``transitions`` are given).
        initial_phase: phase to start in.
        crossings: the pedestrian crossings, ``(link index, length m)`` (see the module doc).
        transitions: the intervals of every switch (:data:`Transitions`), e.g. from
            :func:`sim.program.plan_transitions`; ``None``: yellow and all-red (``timing.yellow``,
            or the profile's minimum yellow where it is unset).
    """

    def __init__(
        self,
        phases: list[GreenPhase] | tuple[GreenPhase, ...],
        timing: Timing,
        now: float,
        all_red: float = 0.0,
        initial_phase: int = 0,
        crossings: tuple[tuple[int, float], ...] | list[tuple[int, float]] = (),
        transitions: Transitions | None = None,
    ) -> None:
        if not phases:
            raise ValueError("a signal needs at least one green phase")
        self._phases = tuple(phases)
        self._timing = timing
        self._permissive_needs_yellow = timing.permissive_needs_yellow
        self._phase = initial_phase
        self._target = initial_phase
        self._mode = _GREEN
        self._since = now  # when the current mode began
        self._until = now  # when the current interval ends
        self._cross = Crosswalks([p.state for p in self._phases], crossings, timing)
        self._crossings = frozenset(self._cross.clearance)
        if transitions is None:
            yellow = timing.yellow if timing.yellow is not None else timing.rules.min_yellow
            transitions = generated_transitions(self._phases, yellow,
                                                timing.all_red if timing.all_red is not None else all_red,
                                                self._crossings, self._permissive_needs_yellow)
        missing = [(i, j) for i in range(len(phases)) for j in range(len(phases)) if i != j and (i, j) not in transitions]
        if missing:
            raise ValueError(f"no transition given for switches {missing[:3]}")
        self._steps = {k: tuple((st, float(d)) for st, d in v if d > 0) for k, v in transitions.items()}
        self._lost = {k: sum(d for _, d in v) for k, v in self._steps.items()}
        self._step = 0
        self._walk_end: dict[int, float] = {}  # when each crosswalk's last walk ended
        self.state = self._phases[initial_phase].state
        self._green_since = [now if is_green(c) else float("-inf") for c in self.state]
        self.refused = 0
        """Requests refused because they would break a rule (counted, never applied)."""
        self.max_outs = 0
        """Greens ended by the actuator at maximum green."""
        self.invalid = 0
        """Requests for a phase the signal does not have (refused)."""
        self.switches = 0

    @property
    def phase(self) -> int:
        """Current green phase, or the target phase during a transition."""
        return self._target

    @property
    def in_transition(self) -> bool:
        return self._mode != _GREEN

    def green_time(self, now: float) -> float:
        """Seconds the current green has been shown (0 during a transition)."""
        return now - self._since if self._mode == _GREEN else 0.0

    def lost_time(self, src: int, dst: int) -> float:
        """Seconds between green ``src`` and green ``dst`` (without pedestrian holds)."""
        return self._lost[(src, dst)]

    def _ending(self, phase: int) -> list[int]:
        """Links the switch to ``phase`` stops (or takes priority from), as shown now."""
        nxt = self._phases[phase].state
        first = self._steps[(self._phase, phase)][0][0] if self._steps[(self._phase, phase)] else nxt
        return [k for k, (a, b) in enumerate(zip(self.state, first))
                if is_green(a) and not keeps_green(a, b, self._permissive_needs_yellow)]

    def request(self, now: float, phase: int) -> bool:
        """Ask for ``phase`` to be served. Returns True if a switch started.

        Keeping the current phase is always legal (until maximum green, see :meth:`tick`).
        Switching is refused, and counted, during a transition, and before every link it stops has
        been green for the minimum green (a crosswalk's walk for the walk interval), and so is a
        phase the signal does not have (counted in :attr:`invalid` too).
        """
        if not 0 <= phase < len(self._phases):
            self.refused += 1
            self.invalid += 1
            return False
        if self._mode != _GREEN:
            if phase != self._target:
                self.refused += 1
            return False
        if phase == self._phase:
            return False
        ending_walks = self._cross.ending(self._phase, phase) if self._cross else frozenset()
        for k in self._ending(phase):
            need = self._timing.walk if k in ending_walks else self._timing.min_green
            if k in self._crossings and k not in ending_walks:
                continue
            if now - self._green_since[k] < need - 1e-9:
                self.refused += 1
                return False
        for c in ending_walks:
            if now - self._green_since[c] < self._timing.walk - 1e-9:
                self.refused += 1
                return False
        self._start_switch(now, phase)
        return True

    def tick(self, now: float) -> str:
        """Advance to time ``now`` and return the state SUMO should show."""
        if self._mode == _CHANGE and now >= self._until - 1e-9:
            self._next_step(now)
        elif self._mode == _PED_CLEAR and now >= self._until - 1e-9:
            self._start_steps(now)
        elif self._mode == _GREEN and len(self._phases) > 1 and now - self._since >= self._max_green():
            self.max_outs += 1
            self._start_switch(now, (self._phase + 1) % len(self._phases))
        return self.state

    def _max_green(self) -> float:
        """Maximum green of the current phase (never below the walk it would end)."""
        nxt = (self._phase + 1) % len(self._phases)
        if self._cross and self._cross.ending(self._phase, nxt):
            return max(self._timing.max_green, self._timing.walk)
        return self._timing.max_green

    def _show(self, now: float, state: str) -> None:
        for k, (a, b) in enumerate(zip(self.state, state)):
            if is_green(b) and not is_green(a):
                self._green_since[k] = now
        self.state = state

    def _start_switch(self, now: float, phase: int) -> None:
        self._target = phase
        self.switches += 1
        hold = 0.0
        if self._cross:
            ending = self._cross.ending(self._phase, phase)
            for c in ending:
                self._walk_end[c] = now
            hold = self._cross.hold(self._phase, phase, now, self._lost[(self._phase, phase)], self._walk_end)
            if hold > 1e-9:
                self._mode, self._since, self._until = _PED_CLEAR, now, now + hold
                self._show(now, "".join("r" if k in ending else ch
                                        for k, ch in enumerate(self._phases[self._phase].state)))
                return
        self._start_steps(now)

    def _start_steps(self, now: float) -> None:
        self._mode, self._since, self._step = _CHANGE, now, -1
        self._next_step(now)

    def _next_step(self, now: float) -> None:
        """Show the next interval of the transition under way, or its target green."""
        steps = self._steps[(self._phase, self._target)]
        self._step += 1
        if self._step >= len(steps):
            self._enter_green(now)
            return
        state, dur = steps[self._step]
        self._until = now + dur  # from when it is shown: an interval is never cut by the step length
        self._show(now, state)

    def _enter_green(self, now: float) -> None:
        self._phase = self._target
        self._mode, self._since = _GREEN, now
        self._show(now, self._phases[self._phase].state)
        for c in [c for c in self._walk_end if is_green(self.state[c])]:
            del self._walk_end[c]  # a new walk: its clearance starts again when it ends
