"""The intersection model and the per-step readings every controller sees.

The simulator (or, later, the camera pipeline) fills these; controllers only read them. Lanes
are numbered once for the whole network, so per-lane readings are flat numpy arrays and each
intersection holds integer indices into them.

Example:
    >>> phase = GreenPhase(program_index=0, state="GGrr")
    >>> phase.green_links
    (0, 1)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "GREEN_CHARS",
    "PRIORITY_CHARS",
    "YELLOW_CHARS",
    "is_yellow",
    "GreenPhase",
    "Intersection",
    "Network",
    "Readings",
    "SignalStatus",
    "pack_approach",
    "is_green",
    "keeps_green",
]

GREEN_CHARS = frozenset("GgOo")
"""SUMO signal characters that let vehicles enter the junction without stopping: green with
priority (``G``), green that yields (``g``), and a signal switched off (``O``: no signal, the link
has the right of way; ``o``: blinking, it yields). ``s`` (stop, then go: a green right-turn arrow)
is not among them: vehicles stop first. ``r`` and ``u`` (red-yellow, before green) are red; ``y``
and ``Y`` (SUMO's major-road yellow) are yellow."""

PRIORITY_CHARS = frozenset("GO")
"""Green characters whose link does not yield to conflicting streams."""

YELLOW_CHARS = frozenset("yY")
"""SUMO's yellow characters (``y``; ``Y``, the same light on a link with the right of way)."""


def is_green(char: str) -> bool:
    """True for a SUMO state character that lets vehicles go (``G g O o``)."""
    return char in GREEN_CHARS


def is_yellow(char: str) -> bool:
    """True for a SUMO yellow (``y`` or ``Y``)."""
    return char in YELLOW_CHARS


def keeps_green(old: str, new: str, permissive_needs_yellow: bool = True) -> bool:
    """True when a link shown ``old`` may go on flowing into ``new`` with no yellow between: green
    in both and, where ``permissive_needs_yellow`` (MUTCD practice), not losing its priority (``G``
    to ``g``, a protected turn turned permissive, needs the yellow arrow)."""
    if not (is_green(old) and is_green(new)):
        return False
    return not (permissive_needs_yellow and old in PRIORITY_CHARS and new not in PRIORITY_CHARS)


@dataclass(frozen=True)
class GreenPhase:
    """One green phase of a signal program.

    Attributes:
        program_index: index of the phase in the scenario's own program.
        state: the SUMO state string shown during the phase (one character per link).
        duration: the phase duration in the scenario's own program (s).
    """

    program_index: int
    state: str
    duration: float = 0.0

    @property
    def green_links(self) -> tuple[int, ...]:
        """Link indices shown green in this phase."""
        return tuple(i for i, c in enumerate(self.state) if is_green(c))


@dataclass(frozen=True)
class Intersection:
    """A signalised intersection as the controllers see it.

    Attributes:
        id: the SUMO traffic-light id.
        phases: the green phases, in program order.
        links: per signal link, ``(in_lane, out_lane)`` as indices into ``Network.lanes``
            (``-1`` for a link SUMO reports without lanes).
        in_lanes: distinct incoming lane indices (sorted).
        out_lanes: distinct outgoing lane indices (sorted).
        yellow_s: yellow time the scenario's program uses (s).
        all_red_s: all-red time the scenario's program uses after yellow (s; 0 when none).
        crossings: pedestrian crossings the signal controls, each ``(link index, length m)``;
            their links carry ``(-1, -1)`` in ``links`` (no vehicle lanes). A crossing shown
            green in a phase is that phase's walk; the actuator times walk and clearance.
        change_s: per pair of phases ``(i, j)``, the seconds from the end of green ``i`` to the
            start of green ``j`` (the transition's yellow, all-red and any intermediate green the
            program shows between them); empty: ``yellow_s + all_red_s`` for every switch.
    """

    id: str
    phases: tuple[GreenPhase, ...]
    links: tuple[tuple[int, int], ...]
    in_lanes: tuple[int, ...]
    out_lanes: tuple[int, ...]
    yellow_s: float
    all_red_s: float
    crossings: tuple[tuple[int, float], ...] = ()
    change_s: tuple[tuple[float, ...], ...] = ()

    def __post_init__(self) -> None:
        if self.change_s and (len(self.change_s) != len(self.phases)
                              or any(len(row) != len(self.phases) for row in self.change_s)):
            raise ValueError(f"intersection {self.id!r}: change_s is not {len(self.phases)} x {len(self.phases)}")
        if not self.phases:
            raise ValueError(f"intersection {self.id!r} has no green phase")
        n = len(self.links)
        for p in self.phases:
            if len(p.state) != n:
                raise ValueError(
                    f"intersection {self.id!r}: phase {p.program_index} has {len(p.state)} "
                    f"signal characters but {n} links"
                )
        for i, length in self.crossings:
            if not 0 <= i < n or length <= 0:
                raise ValueError(f"intersection {self.id!r}: crossing {(i, length)} is out of range")

    @property
    def n_phases(self) -> int:
        return len(self.phases)

    def change(self, i: int, j: int) -> float:
        """Seconds from the end of green ``i`` to the start of green ``j``."""
        if i == j:
            return 0.0
        return self.change_s[i][j] if self.change_s else self.yellow_s + self.all_red_s

    def phase_in_lanes(self, k: int) -> tuple[int, ...]:
        """Distinct incoming lanes with at least one green link in phase ``k``."""
        return tuple(sorted({self.links[i][0] for i in self.phases[k].green_links if self.links[i][0] >= 0}))

    def phase_movements(self, k: int) -> tuple[tuple[int, int], ...]:
        """Distinct ``(in_lane, out_lane)`` pairs with a green link in phase ``k``."""
        return tuple(
            sorted({self.links[i] for i in self.phases[k].green_links if min(self.links[i]) >= 0})
        )


@dataclass(frozen=True)
class Network:
    """All controlled intersections and the lanes they touch.

    Attributes:
        intersections: in a fixed order; controllers index decisions by position.
        lanes: SUMO lane ids; readings are indexed the same way.
        lane_length: metres, shape ``(n_lanes,)``: for a controlled lane, its sensing zone.
        lane_speed: speed limit in m/s, shape ``(n_lanes,)``.
        feeds: ``(out_lane, in_lane, distance_m)``: an intersection's outgoing lane leads (directly,
            or through unsignalised lanes) to another intersection's incoming lane, whose stop
            line lies ``distance_m`` metres from the start of the outgoing lane. An outgoing lane
            that is itself the next signal's incoming lane feeds itself.
    """

    intersections: tuple[Intersection, ...]
    lanes: tuple[str, ...]
    lane_length: np.ndarray
    lane_speed: np.ndarray
    feeds: tuple[tuple[int, int, float], ...] = ()

    def __post_init__(self) -> None:
        n = len(self.lanes)
        for name in ("lane_length", "lane_speed"):
            arr = getattr(self, name)
            if arr.shape != (n,):
                raise ValueError(f"Network.{name} has shape {arr.shape}, expected ({n},)")
        for o, i, d in self.feeds:
            if not (0 <= o < n and 0 <= i < n) or d <= 0:
                raise ValueError(f"Network.feeds entry {(o, i, d)} is out of range")

    @property
    def n_lanes(self) -> int:
        return len(self.lanes)

    def index(self, tls_id: str) -> int:
        """Position of intersection ``tls_id`` in ``intersections``."""
        for i, x in enumerate(self.intersections):
            if x.id == tls_id:
                return i
        raise KeyError(f"no controlled intersection {tls_id!r}")


@dataclass(frozen=True)
class Readings:
    """What the sensors report at one instant, per lane of ``Network.lanes``.

    Attributes:
        time: simulation time (s).
        vehicles: vehicles in the lane's sensing zone now, shape ``(n_lanes,)``. An incoming lane's
            zone reaches upstream (an outgoing lane's downstream) up to the detection distance.
        halting: vehicles in the zone slower than 0.1 m/s now (the queue), ``(n_lanes,)``.
        arrivals: vehicles that have entered the lane itself since the start (cumulative).
        departures: vehicles that have left the lane itself since the start (cumulative): for an
            incoming lane, the stop-line count.
        emergency: emergency vehicles' upcoming signalised movements, each ``(in_lane, out_lane,
            distance_m)`` (lane indices; the distance to the stop line), as their transponders
            report them; empty when none is on the road.
        approach: where the moving vehicles of each zone are now, ``(n, 2)`` rows of
            ``(metres to the stop line, weight)`` (an incoming lane's; the weight is how likely
            the vehicle is to arrive there, 1 for every vehicle SUMO or a camera locates), lane ``l``'s rows being
            ``approach[approach_ptr[l]:approach_ptr[l + 1]]``; ``None`` when the sensors do not
            locate vehicles (the optimiser then spreads a zone's moving vehicles over its
            travel time).
        approach_ptr: row offsets of ``approach`` per lane, ``(n_lanes + 1,)``.
    """

    time: float
    vehicles: np.ndarray
    halting: np.ndarray
    arrivals: np.ndarray
    departures: np.ndarray
    emergency: tuple[tuple[int, int, float], ...] = ()
    approach: np.ndarray | None = None
    approach_ptr: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = self.vehicles.shape
        for name in ("halting", "arrivals", "departures"):
            if getattr(self, name).shape != n:
                raise ValueError(f"Readings.{name} has shape {getattr(self, name).shape}, expected {n}")
        if (self.approach is None) != (self.approach_ptr is None):
            raise ValueError("Readings.approach and approach_ptr come together")
        if self.approach is not None:
            ptr = self.approach_ptr
            if ptr.shape != (n[0] + 1,) or ptr[0] != 0 or (np.diff(ptr) < 0).any():
                raise ValueError(f"Readings.approach_ptr must be {n[0] + 1} non-decreasing offsets from 0")
            if self.approach.ndim != 2 or self.approach.shape != (int(ptr[-1]), 2):
                raise ValueError(f"Readings.approach has shape {self.approach.shape}, expected ({int(ptr[-1])}, 2)")


def pack_approach(per_lane: Sequence[Sequence[Sequence[float]]]) -> tuple[np.ndarray, np.ndarray]:
    """``(approach, approach_ptr)`` of :class:`Readings` from per-lane lists of
    ``(metres to the stop line, weight)`` pairs."""
    counts = np.array([len(x) for x in per_lane], dtype=np.int64)
    ptr = np.zeros(len(per_lane) + 1, dtype=np.int64)
    np.cumsum(counts, out=ptr[1:])
    rows = [p for lane in per_lane for p in lane]
    arr = np.array(rows, dtype=np.float64).reshape(len(rows), 2)
    return arr, ptr


@dataclass(frozen=True)
class SignalStatus:
    """Where each intersection's signal is, as the actuator reports it.

    Attributes:
        phase: current (or, during a transition, target) green phase index, ``(n_tls,)``.
        green_time: seconds the current green has been shown; 0 during a transition, ``(n_tls,)``.
        in_transition: True while yellow or all-red is shown, ``(n_tls,)``.
    """

    phase: np.ndarray
    green_time: np.ndarray
    in_transition: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
