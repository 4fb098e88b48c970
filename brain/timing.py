"""Signal timing rules shared by the controllers and the actuator that enforces them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

from brain.model import GREEN_CHARS, PRIORITY_CHARS, keeps_green

__all__ = ["Timing", "Profile", "PROFILES", "PROTOCOLS", "Crosswalks", "crosswalk_conflicts", "priority_sets",
           "RULES", "timing_of"]


@dataclass(frozen=True)
class Profile:
    """A jurisdiction's rules for signal changes.

    Attributes:
        name: ``mutcd`` (US practice, the default) or ``eu``.
        min_yellow: the shortest yellow allowed (s); a program's shorter yellows are raised to it.
        max_yellow: the longest (s; the MUTCD's 3-6 s): longer yellows, which drivers learn to
            take as green, are cut to it.
        min_all_red: the shortest all-red after a yellow (s; 0: the program decides).
        permissive_needs_yellow: a protected turn (``G``) that becomes permissive (``g``) shows
            yellow first (the MUTCD's yellow arrow); under ``eu`` it may change directly.
    """

    name: str
    min_yellow: float
    min_all_red: float
    permissive_needs_yellow: bool
    max_yellow: float = 6.0


PROFILES = {
    "mutcd": Profile("mutcd", 3.0, 0.0, True, 6.0),
    "eu": Profile("eu", 3.0, 0.0, False, 6.0),
}
"""The named timing profiles."""

PROTOCOLS = ("citybrain", "resco")
"""``citybrain``: one set of rules for every controller, SUMO's own programs included (each
transition's yellow and all-red the program's own, raised to the profile's minimum). ``resco``:
the RESCO benchmark's protocol: 3 s yellow for the adaptive controllers, the programs run as
written for fixed time and actuated."""


@dataclass(frozen=True)
class Timing:
    """Signal timing rules the actuator enforces (seconds).

    Attributes:
        step: how often controllers are asked for a decision.
        yellow: yellow time of every switch; ``None`` (the default): each transition's yellow is
            the program's own for it, raised to the profile's minimum (for a switch the program
            never makes, the longest yellow the program shows at that signal).
        all_red: all-red time after yellow; ``None`` takes the program's own, in the same way.
        min_green: shortest green the actuator lets a controller end.
        max_green: longest green; the actuator ends it at this age whatever the controller asks.
        clearance: ``fixed`` (``yellow`` and ``all_red`` everywhere) or ``ite`` (each
            intersection's own from the ITE formulas: yellow from its approach speed limit,
            clamped to 3-6 s; all-red from its crossing width; set on ``Intersection.yellow_s``
            and ``all_red_s`` by the loop).
        walk: pedestrian walk interval (MUTCD minimum 7 s): a green that shows a crossing's walk
            is not ended sooner.
        ped_speed: walking speed for the pedestrian clearance (m/s): after a walk ends, no
            vehicle movement crossing that crosswalk turns green before the crossing's length
            at this speed has passed (the clearance may overlap yellow and all-red).
        profile: the jurisdiction's rules (:data:`PROFILES`).
        protocol: :data:`PROTOCOLS`; under ``resco`` an unset ``yellow`` is 3 s and SUMO's own
            programs run as written.
    """

    step: float = 10.0
    yellow: float | None = None
    all_red: float | None = None
    min_green: float = 5.0
    max_green: float = 120.0
    clearance: str = "fixed"
    walk: float = 7.0
    ped_speed: float = 1.2
    profile: str = "mutcd"
    protocol: str = "citybrain"

    def __post_init__(self) -> None:
        if self.clearance not in ("fixed", "ite"):
            raise ValueError(f"Timing.clearance must be 'fixed' or 'ite', got {self.clearance!r}")
        if self.profile not in PROFILES:
            raise ValueError(f"Timing.profile must be one of {', '.join(PROFILES)}, got {self.profile!r}")
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"Timing.protocol must be one of {', '.join(PROTOCOLS)}, got {self.protocol!r}")
        if self.protocol == "resco" and self.yellow is None:
            object.__setattr__(self, "yellow", 3.0)
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, str):
                continue
            if v is not None and v < 0:
                raise ValueError(f"Timing.{f.name} must be >= 0, got {v}")
        if self.step <= 0:
            raise ValueError(f"Timing.step must be > 0, got {self.step}")
        if self.yellow is not None and self.yellow <= 0:
            raise ValueError("Timing.yellow must be > 0: the actuator never switches without yellow")
        if self.ped_speed <= 0:
            raise ValueError(f"Timing.ped_speed must be > 0, got {self.ped_speed}")
        if self.max_green < self.min_green:
            raise ValueError(f"Timing.max_green ({self.max_green}) is below min_green ({self.min_green})")

    @property
    def rules(self) -> Profile:
        """The profile's rules."""
        return PROFILES[self.profile]

    @property
    def permissive_needs_yellow(self) -> bool:
        return PROFILES[self.profile].permissive_needs_yellow

    @property
    def native_as_written(self) -> bool:
        """True where SUMO's own programs (``fixed``, ``actuated``) run exactly as written."""
        return self.protocol == "resco"

    def yellow_of(self, x) -> float:
        """The longest yellow the actuator shows at intersection ``x`` (the applied rules are set on
        ``x.yellow_s`` when the network is read; an explicit ``yellow`` wins over it)."""
        return self.yellow if self.yellow is not None and self.clearance == "fixed" else x.yellow_s

    def all_red_of(self, x) -> float:
        """The longest all-red after yellow at intersection ``x``."""
        return self.all_red if self.all_red is not None and self.clearance == "fixed" else x.all_red_s

    def change_of(self, x, i: int, j: int) -> float:
        """Seconds from the end of green ``i`` to the start of green ``j`` at ``x``."""
        if i == j:
            return 0.0
        if x.change_s:
            return x.change_s[i][j]
        return self.yellow_of(x) + self.all_red_of(x)

    def ped_clearance(self, length_m: float) -> float:
        """Pedestrian clearance time for a crossing ``length_m`` long (s)."""
        return length_m / self.ped_speed

    def phase_min_greens(self, x) -> list[float]:
        """Earliest green time at which a switch away from each of ``x``'s phases may be asked:
        the minimum green, or the walk for a phase that shows a crosswalk's walk. (The actuator
        may then keep the vehicles' green longer for the pedestrian clearance, see
        :class:`Crosswalks`.)"""
        return [max(self.min_green, self.walk) if any(p.state[i] in GREEN_CHARS for i, _ in x.crossings) else self.min_green
                for p in x.phases]

    def cycle_min_greens(self, x) -> list[float]:
        """Shortest green each of ``x``'s phases needs when the phases run in program order (a plan):
        the minimum green where a link the switch to the next phase stops started its green in
        this phase; nothing more where every such link was already green in the phase before (an
        overlap: real-world programs show 2-3 s intermediate greens); the walk where one ends."""
        n = len(x.phases)
        out = []
        walks = self.phase_min_greens(x)
        for k, p in enumerate(x.phases):
            prev, nxt = x.phases[k - 1].state, x.phases[(k + 1) % n].state
            ending = [i for i, (a, b) in enumerate(zip(p.state, nxt))
                      if a in GREEN_CHARS and not keeps_green(a, b, self.permissive_needs_yellow)]
            fresh = any(prev[i] not in GREEN_CHARS for i in ending) or n < 2
            need = self.min_green if fresh else 0.0
            out.append(max(need, walks[k]) if walks[k] > self.min_green else need)
        return out

    def ped_min_greens(self, x) -> list[float]:
        """Shortest green each of ``x``'s phases needs for its pedestrians (for planners): the walk
        plus the part of the crossing's clearance that yellow and all-red do not cover (the
        classic pedestrian minimum green), or the minimum green."""
        lost = self.yellow_of(x) + self.all_red_of(x)
        out = []
        for p in x.phases:
            walks = [self.ped_clearance(length) for i, length in x.crossings if p.state[i] in GREEN_CHARS]
            out.append(max(self.min_green, self.walk + max(max(walks) - lost, 0.0)) if walks else self.min_green)
        return out

    @classmethod
    def from_mapping(cls, values: dict[str, float | None]) -> Timing:
        """Build from a config mapping; unknown keys raise ``ValueError``."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown timing key(s): {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        return cls(**values)


RULES = ("yellow", "all_red", "min_green", "max_green", "clearance", "walk", "ped_speed", "profile", "protocol")
"""The :class:`Timing` fields a service config carries (its decision interval is its own)."""


def timing_of(cfg, step: float) -> Timing:
    """The :class:`Timing` of a config object that has the :data:`RULES` fields (raises
    ``ValueError`` on a bad value)."""
    return Timing(step=step, **{k: getattr(cfg, k) for k in RULES})


def crosswalk_conflicts(greens: Sequence[frozenset[int]], crossings) -> dict[int, frozenset[int]]:
    """Per crosswalk link: the vehicle links never green together with it in any of ``greens``
    (the program's phases, the only combinations its designer declared compatible)."""
    cross = frozenset(crossings)
    links = frozenset().union(*greens) - cross if greens else frozenset()
    return {c: frozenset(v for v in links if not any(c in g and v in g for g in greens)) for c in cross}


def priority_sets(states: Sequence[str], crossings) -> list[frozenset[int]]:
    """Per phase state: the links shown with priority (``G``) and the crossings shown walking.
    :func:`crosswalk_conflicts` over these gives the links that may never have *priority* during a
    walk (a link a phase shows as ``g`` beside a walk yields to the pedestrians; as ``G`` it does
    not), so they wait for the clearance when they gain it."""
    cross = frozenset(crossings)
    return [frozenset(k for k, ch in enumerate(st) if ch in PRIORITY_CHARS or (k in cross and ch in GREEN_CHARS))
            for st in states]


class Crosswalks:
    """The pedestrian clearance rule of one signal, for the actuator and for planners.

    A crosswalk's walk ends when a switch leaves the phases showing it. No vehicle link that is
    never green together with that crosswalk (its *conflicts*, as the program's phases declare them)
    may turn green before the crossing's clearance time has passed since, and no link that is never
    shown with priority (``G``) beside its walk (its *protected* conflicts) may gain priority before
    then. A switch whose target turns such a link green is therefore preceded by a *hold*: the
    vehicles keep their green (the crosswalk shows don't walk) for whatever of the clearance the
    yellow and all-red do not cover. A switch to a phase without conflicting links needs no hold;
    the clearance then carries over to the next switch.

    Args:
        states: the green phases' signal states; crossings: ``(link index, length m)``.
    """

    def __init__(self, states: Sequence[str], crossings: Sequence[tuple[int, float]], timing: Timing) -> None:
        self.clearance = {i: timing.ped_clearance(length) for i, length in crossings}
        self._permissive_needs_yellow = timing.permissive_needs_yellow
        self._states = list(states)
        self._greens = [frozenset(k for k, ch in enumerate(st) if ch in GREEN_CHARS) for st in states]
        self._prio = [frozenset(k for k, ch in enumerate(st) if ch in PRIORITY_CHARS) for st in states]
        self.conflicts = crosswalk_conflicts(self._greens, self.clearance)
        self.protected = crosswalk_conflicts(priority_sets(states, self.clearance), self.clearance)

    def __bool__(self) -> bool:
        return bool(self.clearance)

    def ending(self, src: int, dst: int) -> frozenset[int]:
        """Crosswalks whose walk a switch from phase ``src`` to ``dst`` ends."""
        return frozenset(c for c in self.clearance if c in self._greens[src] and c not in self._greens[dst])

    def hold(self, src: int, dst: int, now: float, lost: float, walk_end: dict[int, float]) -> float:
        """Seconds the vehicles keep their green before the yellow of a switch ``src -> dst`` asked
        at ``now``; ``walk_end``: when each crosswalk's last walk ended (this switch's included)."""
        a, b = self._states[src], self._states[dst]
        newly = frozenset(k for k in self._greens[dst] if not keeps_green(a[k], b[k], self._permissive_needs_yellow))
        gains = self._prio[dst] - self._prio[src]
        need = 0.0
        for c, ended in walk_end.items():
            if self.conflicts[c] & newly or self.protected[c] & gains:
                need = max(need, ended + self.clearance[c] - (now + lost))
        return need

    def cycle(self, asks: Sequence[float], lost: float | Sequence[float], cycles: int = 3) -> tuple[list[float], float]:
        """Run the phases in order, asking each switch ``asks[k]`` seconds into green ``k``, with
        the holds the rule adds; ``lost``: the seconds between two greens, for every switch or per
        switch ``k -> k + 1``. Returns when each green starts in the steady cycle and its length."""
        n = len(asks)
        losts = [float(lost)] * n if isinstance(lost, (int, float)) else [float(v) for v in lost]
        walk_end: dict[int, float] = {}
        t = 0.0
        starts: list[float] = []
        for _ in range(cycles):
            starts = []
            for k in range(n):
                starts.append(t)
                for c in self.clearance:
                    if c in self._greens[k]:
                        walk_end.pop(c, None)
                t_ask = t + asks[k]
                nxt = (k + 1) % n
                for c in self.ending(k, nxt):
                    walk_end[c] = t_ask
                t = t_ask + max(self.hold(k, nxt, t_ask, losts[k], walk_end), 0.0) + losts[k]
        first = starts[0]
        return [x - first for x in starts], t - first
