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

from brain.model import GreenPhase, is_green, keeps_green
from brain.timing import Crosswalks, Timing

__all__ = ["SignalMachine", "transition_states"]


def transition_states(src: str, dst: str, crossings: frozenset[int] = frozenset()) -> tuple[str, str]:
    """Yellow and all-red states for a switch from green state ``src`` to ``dst``.

    A link green in ``src`` but not in ``dst`` shows yellow, then red; so does a link that loses
    its priority (``G`` in ``src``, ``g`` in ``dst``: a protected turn becoming permissive while
    the opposing traffic may get green, the yellow arrow of signal practice). A link green in both
    otherwise keeps its ``src`` character throughout; every other link keeps its ``src`` character
    in yellow and shows red (or its stop sign ``s``) in all-red. A pedestrian crossing (link index
    in ``crossings``) whose walk ends is red in both (pedestrians get no yellow).
    """
    if len(src) != len(dst):
        raise ValueError(f"states differ in length: {len(src)} vs {len(dst)}")
    yellow = []
    red = []
    for i, (a, b) in enumerate(zip(src, dst)):
        if keeps_green(a, b):
            yellow.append(a)
            red.append(a)
        elif is_green(a) and i in crossings:
            yellow.append("r")
            red.append("r")
        elif is_green(a):
            yellow.append("y")
            red.append("r")
        else:
            yellow.append(a)
            red.append("s" if a == "s" else "r")
    return "".join(yellow), "".join(red)


_GREEN, _YELLOW, _ALL_RED, _PED_CLEAR = 0, 1, 2, 3


class SignalMachine:
    """Legal-path state machine of one intersection.

    Args:
        phases: the intersection's green phases.
        timing: the rules to enforce.
        now: simulation time the machine starts at; it starts in phase 0, green.
        all_red: all-red time to insert (used when ``timing.all_red`` is ``None``).
        initial_phase: phase to start in.
        crossings: the pedestrian crossings, ``(link index, length m)`` (see the module doc).
    """

    def __init__(
        self,
        phases: list[GreenPhase] | tuple[GreenPhase, ...],
        timing: Timing,
        now: float,
        all_red: float = 0.0,
        initial_phase: int = 0,
        crossings: tuple[tuple[int, float], ...] | list[tuple[int, float]] = (),
    ) -> None:
        if not phases:
            raise ValueError("a signal needs at least one green phase")
        self._phases = tuple(phases)
        self._timing = timing
        self._all_red = timing.all_red if timing.all_red is not None else all_red
        self._phase = initial_phase
        self._target = initial_phase
        self._mode = _GREEN
        self._since = now  # when the current mode began
        self._until = now  # when the current transition mode ends
        self._cross = Crosswalks([p.state for p in self._phases], crossings, timing)
        self._crossings = frozenset(self._cross.clearance)
        self._states = {(i, j): transition_states(a.state, b.state, self._crossings)
                        for i, a in enumerate(self._phases)
                        for j, b in enumerate(self._phases) if i != j}
        self._walk_end: dict[int, float] = {}  # when each crosswalk's last walk ended
        self.state = self._phases[initial_phase].state
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

    def request(self, now: float, phase: int) -> bool:
        """Ask for ``phase`` to be served. Returns True if a switch started.

        Keeping the current phase is always legal (until maximum green, see :meth:`tick`).
        Switching is refused, and counted, during a transition or before minimum green, and so is
        a phase the signal does not have (counted in :attr:`invalid` too).
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
        need = self._timing.min_green
        if self._cross and self._cross.ending(self._phase, phase):
            need = max(need, self._timing.walk)
        if now - self._since < need:
            self.refused += 1
            return False
        self._start_switch(now, phase)
        return True

    def tick(self, now: float) -> str:
        """Advance to time ``now`` and return the state SUMO should show."""
        if self._mode == _YELLOW and now >= self._until:
            if self._all_red > 0:
                self._mode, self._since, self._until = _ALL_RED, now, now + self._all_red
                self.state = self._states[(self._phase, self._target)][1]
            else:
                self._enter_green(now)
        elif self._mode == _ALL_RED and now >= self._until:
            self._enter_green(now)
        elif self._mode == _PED_CLEAR and now >= self._until:
            self._start_yellow(now)
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

    def _start_switch(self, now: float, phase: int) -> None:
        self._target = phase
        self.switches += 1
        hold = 0.0
        if self._cross:
            ending = self._cross.ending(self._phase, phase)
            for c in ending:
                self._walk_end[c] = now
            hold = self._cross.hold(self._phase, phase, now, self._timing.yellow + self._all_red, self._walk_end)
            if hold > 1e-9:
                self._mode, self._since, self._until = _PED_CLEAR, now, now + hold
                self.state = "".join("r" if k in ending else ch for k, ch in enumerate(self._phases[self._phase].state))
                return
        self._start_yellow(now)

    def _start_yellow(self, now: float) -> None:
        self._mode, self._since, self._until = _YELLOW, now, now + self._timing.yellow
        self.state = self._states[(self._phase, self._target)][0]

    def _enter_green(self, now: float) -> None:
        self._phase = self._target
        self._mode, self._since = _GREEN, now
        self.state = self._phases[self._phase].state
        for c in [c for c in self._walk_end if is_green(self.state[c])]:
            del self._walk_end[c]  # a new walk: its clearance starts again when it ends
