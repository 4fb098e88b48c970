"""Safety monitor: an independent check of every signal state SUMO actually shows, link by link.

It shares nothing with the actuator or the controllers. What conflicts with what comes from SUMO's
own network: each junction's right-of-way matrices (``foes``: the links whose paths cross or
merge; ``response``: the links a link must yield to), read with sumolib by :func:`read_conflicts`.
What a state character means is SUMO's (``G``/``O`` go with priority, ``g``/``o`` go and yield,
``y``/``Y`` yellow, ``r``/``u`` red, ``s`` stop then go). The timing limits it judges by are the
applied rules, handed over as plain numbers (:class:`SafetyRules`). It counts every breach of:

- ``no-yellow-before-red``: a link that was going (``G g O o``) is shown red (``r u``) or stop
  (``s``) without yellow in between.
- ``no-yellow-before-permissive``: a link with priority (``G O``) is shown going without it (``g
  o``: a protected turn made permissive) without yellow in between, where the profile asks for
  the yellow arrow (``mutcd``; not ``eu``).
- ``green-below-minimum``: a link's green ends (turns yellow) before the minimum green.
- ``yellow-below-minimum``: a link's yellow ends before the minimum yellow.
- ``yellow-above-maximum``: a link's yellow lasts longer than the maximum (drivers learn to take a
  long yellow as green).
- ``green-after-yellow``: a yellow followed by green again instead of red (a steady yellow is
  followed by red), but for the yellow arrow: a protected turn (``G``) showing yellow before it
  turns permissive (``g``).
- ``all-red-below-minimum``: a link (a crosswalk's walk too) starts going while a conflicting
  link is still yellow, or sooner than the all-red after that link's yellow ended (unless it
  yields to it).
- ``conflicting-greens``: two conflicting links (foes in SUMO's matrix, from different approaches)
  go at once and neither yields to the other (a link yields when it shows ``g o`` and SUMO's
  response has it give way to the other, or when it shows ``s``: SUMO's stop-then-go passes only
  where no vehicle uses a foe stream).
- ``state-length-changed``: a signal shows a state of another length than before.

Pedestrian crossings (SUMO crossings) are judged by their own rules (a walk ends straight into
don't walk, so the yellow rules do not apply to them):

- ``walk-below-minimum``: a crossing's walk (green) ends before the walk interval.
- ``ped-clearance-below-minimum``: a vehicle link that conflicts with a crossing starts going, or
  gains priority, sooner than the crossing's length at the walking speed after its walk ended
  (unless it yields to the pedestrians).

Example:
    >>> rules = {"J": SafetyRules(min_green=5, min_yellow=3)}
    >>> conflicts = {"J": Conflicts.of_pairs(4, foes=[(0, 2), (0, 3), (1, 2), (1, 3)])}
    >>> m = SafetyMonitor(rules, conflicts)
    >>> for t, s in [(0, "GGrr"), (10, "rrGG")]:
    ...     m.observe(float(t), "J", s)
    >>> dict(m.counts)
    {'no-yellow-before-red': 2}
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["SafetyRules", "SafetyMonitor", "Violation", "Conflicts", "read_conflicts", "RULE_NAMES"]

_GO = frozenset("GgOo")
_PRIORITY = frozenset("GO")
_YELLOW = frozenset("yY")
_STOPPED = frozenset("rus")

RULE_NAMES = ("no-yellow-before-red", "no-yellow-before-permissive", "green-below-minimum", "yellow-below-minimum",
              "yellow-above-maximum", "green-after-yellow", "all-red-below-minimum", "conflicting-greens",
              "walk-below-minimum", "ped-clearance-below-minimum", "state-length-changed")
"""Every rule the monitor checks, by name."""


@dataclass(frozen=True)
class SafetyRules:
    """The limits one signal is judged by (seconds, m/s), as plain numbers.

    Attributes:
        min_green: shortest green a link may see before its yellow.
        min_yellow: shortest yellow; max_yellow: longest.
        all_red: shortest time from a link's yellow ending to a conflicting link going.
        walk: shortest walk of a crossing.
        ped_speed: walking speed for the pedestrian clearance (crossing length / speed).
        permissive_needs_yellow: a protected turn becoming permissive shows yellow first.
    """

    min_green: float = 0.0
    min_yellow: float = 0.0
    all_red: float = 0.0
    walk: float = 0.0
    ped_speed: float = 1.2
    permissive_needs_yellow: bool = True
    max_yellow: float = math.inf


@dataclass(frozen=True)
class Conflicts:
    """What conflicts at one signal, from SUMO's right-of-way data.

    Attributes:
        n_links: the signal's link count.
        foes: pairs ``(a, b)``, ``a < b``, of links that conflict (same junction, different
            approaches, foes in SUMO's matrix).
        yields: ordered pairs ``(a, b)``: link ``a`` gives way to ``b`` (``b`` in ``a``'s response).
        crossings: per crossing link, its length (m).
    """

    n_links: int
    foes: frozenset[tuple[int, int]] = frozenset()
    yields: frozenset[tuple[int, int]] = frozenset()
    crossings: dict[int, float] = field(default_factory=dict)

    @classmethod
    def of_pairs(cls, n_links: int, foes: Iterable[tuple[int, int]] = (), yields: Iterable[tuple[int, int]] = (),
                 crossings: dict[int, float] | None = None) -> Conflicts:
        return cls(n_links, frozenset((min(a, b), max(a, b)) for a, b in foes), frozenset(yields),
                   dict(crossings or {}))

    def foes_of(self) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {}
        for a, b in self.foes:
            out.setdefault(a, []).append(b)
            out.setdefault(b, []).append(a)
        return out


def read_conflicts(net_file: Path, tls_ids: Iterable[str] | None = None) -> dict[str, Conflicts]:
    """Every signal's conflicts from the network file (sumolib; gzipped files too).

    A signal link may control several connections (lanes of one approach, or a turn and a
    crosswalk on one head): two links conflict when any of their connections are foes at the same
    junction from different approaches, and a link gives way to another only when each of its
    conflicting connections gives way. A link is a crossing when all its connections are."""
    import sumolib

    net = sumolib.net.readNet(str(net_file), withPedestrianConnections=True, withInternal=True)
    want = set(tls_ids) if tls_ids is not None else None
    out = {}
    for tls in net.getTrafficLights():
        if want is not None and tls.getID() not in want:
            continue
        links: dict[int, list[tuple[object, int, object, str]]] = {}
        crossing_m: dict[int, list[float | None]] = {}
        n = 0
        for in_lane, out_lane, idx in tls.getConnections():
            n = max(n, idx + 1)
            conn = next((c for c in in_lane.getOutgoing() if c.getToLane() == out_lane), None)
            if conn is None:
                continue
            lane_id = in_lane.getID()
            node = net.getNode(lane_id[1:].rsplit("_", 2)[0]) if lane_id.startswith(":") else \
                in_lane.getEdge().getToNode()
            if node is None:
                continue
            j = node.getLinkIndex(conn)
            if j < 0:
                continue
            links.setdefault(idx, []).append((node, j, conn, in_lane.getEdge().getID()))
            is_cross = out_lane.getEdge().getFunction() == "crossing"
            crossing_m.setdefault(idx, []).append(float(out_lane.getLength()) if is_cross else None)
        crossings = {k: max(v) for k, v in crossing_m.items() if v and all(x is not None for x in v)}
        foes, yields = set(), set()
        ids = sorted(links)
        for x, a in enumerate(ids):
            for b in ids[x + 1:]:
                pairs = [(ca, cb, na, ja, jb) for na, ja, ca, ea in links[a] for nb, jb, cb, eb in links[b]
                         if na is nb and ea != eb and (na.areFoes(ja, jb) or na.areFoes(jb, ja))]
                if not pairs:
                    continue  # another junction of a joined signal, the same approach, or no crossing paths
                foes.add((a, b))
                if all(node.forbids(cb, ca) for ca, cb, node, _, _ in pairs):
                    yields.add((a, b))
                if all(node.forbids(ca, cb) for ca, cb, node, _, _ in pairs):
                    yields.add((b, a))
        out[tls.getID()] = Conflicts(n, frozenset(foes), frozenset(yields), crossings)
    return out


@dataclass(frozen=True)
class Violation:
    time: float
    tls: str
    kind: str
    detail: str
    phases: tuple[int, int] | None = None
    """The program's phase before and after the change, where the program's phase is known."""


class _Track:
    __slots__ = ("state", "since", "yellow_end", "walk_end", "phase", "before_yellow")

    def __init__(self, state: str, phase: int | None) -> None:
        self.state = state
        self.since = [-math.inf] * len(state)  # spans begun before the first look are not judged
        self.yellow_end = [-math.inf] * len(state)
        self.walk_end: dict[int, float] = {}
        self.phase = phase
        self.before_yellow = [""] * len(state)  # what each link showed before its yellow


class SafetyMonitor:
    """Counts safety violations over the states shown by many signals.

    Args:
        rules: per traffic-light id, the limits.
        conflicts: per traffic-light id, what conflicts (:func:`read_conflicts`); a signal
            without entry is judged on its own sequence only (no conflict rules).
        keep: how many violations to keep in full (all are counted).
    """

    def __init__(self, rules: dict[str, SafetyRules], conflicts: dict[str, Conflicts] | None = None,
                 keep: int = 100) -> None:
        self._rules = rules
        self._conf = conflicts or {}
        self._foes = {t: c.foes_of() for t, c in self._conf.items()}
        self._tracks: dict[str, _Track] = {}
        self._bad_pairs: dict[tuple[str, str], list[tuple[int, int]]] = {}
        self._keep = keep
        self.kept: list[Violation] = []
        self.counts: Counter[str] = Counter()
        self.by_signal: Counter[tuple[str, str]] = Counter()
        """Count per ``(tls, rule)``."""
        self.by_phases: Counter[tuple[str, int, int, str]] = Counter()
        """Count per ``(tls, phase before, phase after, rule)`` where phases were given."""
        self.checked = 0

    @property
    def violations(self) -> int:
        return sum(self.counts.values())

    def count_for(self, tls_ids: Iterable[str]) -> int:
        """Violations at the given signals."""
        want = set(tls_ids)
        return sum(n for (t, _), n in self.by_signal.items() if t in want)

    def observe(self, now: float, tls: str, state: str, phase: int | None = None) -> None:
        """Record the state ``tls`` shows at time ``now`` (``phase``: the program's phase index,
        where a program runs it)."""
        self.checked += 1
        track = self._tracks.get(tls)
        if track is None:
            self._tracks[tls] = _Track(state, phase)
            self._check_pairs(now, tls, state, (phase, phase))
            return
        if state == track.state:
            track.phase = phase if phase is not None else track.phase
            return
        phases = (track.phase, phase if phase is not None else track.phase)
        if len(state) != len(track.state):
            self._flag(now, tls, "state-length-changed", f"{len(track.state)} links shown, then {len(state)}", phases)
            self._tracks[tls] = _Track(state, phase)
            return
        rules = self._rules.get(tls, SafetyRules())
        conf = self._conf.get(tls)
        crossings = conf.crossings if conf else {}
        foes = self._foes.get(tls, {})
        old_state = track.state
        for i, (old, new) in enumerate(zip(old_state, state)):
            if old in _YELLOW and new not in _YELLOW:
                track.yellow_end[i] = now  # before the checks below: a same-instant green is a breach
        for c in crossings:  # walks first: a conflicting green at the same instant is a breach
            if old_state[c] in _GO and state[c] not in _GO:
                track.walk_end[c] = now
                held = now - track.since[c]
                if held < rules.walk - 1e-6:
                    self._flag(now, tls, "walk-below-minimum", f"crossing link {c} walk {held:g}s < {rules.walk:g}s",
                               phases)
        for i, (old, new) in enumerate(zip(old_state, state)):
            if old == new or (old in _YELLOW and new in _YELLOW):  # y <-> Y: the same yellow goes on
                continue
            if i in crossings:  # judged above; only the start of its walk or don't-walk matters
                if (new in _GO) != (old in _GO):
                    track.since[i] = now
                    if new in _GO:  # a walk starts: no conflicting vehicle may still be clearing
                        self._check_clearing(now, tls, track, state, i, foes, crossings, rules, phases)
                continue
            held = now - track.since[i]
            was_go, is_go = old in _GO, new in _GO
            if was_go and is_go:
                if old in _PRIORITY and new not in _PRIORITY:
                    if rules.permissive_needs_yellow:
                        self._flag(now, tls, "no-yellow-before-permissive",
                                   f"link {i} {old}->{new}: protected turn made permissive without yellow", phases)
                elif new in _PRIORITY:  # gains priority: no crossing it conflicts with may be clearing
                    self._check_clearing(now, tls, track, state, i, foes, crossings, rules, phases)
                continue  # its green goes on
            if was_go:
                if new in _STOPPED:
                    self._flag(now, tls, "no-yellow-before-red", f"link {i} {old}->{new} without yellow", phases)
                elif new in _YELLOW and held < rules.min_green - 1e-6:
                    self._flag(now, tls, "green-below-minimum", f"link {i} green {held:g}s < {rules.min_green:g}s",
                               phases)
            elif old in _YELLOW and is_go:
                if not (track.before_yellow[i] in _PRIORITY and new not in _PRIORITY):  # not the yellow arrow
                    self._flag(now, tls, "green-after-yellow", f"link {i} {old}->{new}: a yellow not followed by red",
                               phases)
            elif old in _YELLOW and held < rules.min_yellow - 1e-6:
                self._flag(now, tls, "yellow-below-minimum", f"link {i} yellow {held:g}s < {rules.min_yellow:g}s",
                           phases)
            elif old in _YELLOW and held > rules.max_yellow + 1e-6:
                self._flag(now, tls, "yellow-above-maximum", f"link {i} yellow {held:g}s > {rules.max_yellow:g}s",
                           phases)
            if is_go:
                self._check_clearing(now, tls, track, state, i, foes, crossings, rules, phases)
            if new in _YELLOW:
                track.before_yellow[i] = old
            track.since[i] = now
        track.state = state
        track.phase = phases[1]
        self._check_pairs(now, tls, state, phases)

    def _yields(self, tls: str, state: str, a: int, b: int) -> bool:
        """Link ``a`` as shown in ``state`` gives way to ``b``."""
        ch = state[a]
        if ch == "s":
            return True
        conf = self._conf[tls]
        return ch not in _PRIORITY and (a, b) in conf.yields

    def _check_clearing(self, now: float, tls: str, track: _Track, state: str, i: int, foes: dict[int, list[int]],
                        crossings: dict[int, float], rules: SafetyRules, phases) -> None:
        """Link ``i`` starts going (or gains priority) now: no conflicting link may still be
        clearing (yellow, or within the all-red after it), no conflicting crossing within its
        pedestrian clearance."""
        for j in foes.get(i, ()):
            if j >= len(state) or self._yields(tls, state, i, j):
                continue
            if j in crossings:
                ended = track.walk_end.get(j)
                need = crossings[j] / rules.ped_speed if rules.ped_speed > 0 else 0.0
                if ended is not None and now - ended < need - 1e-6 and state[j] not in _GO:
                    self._flag(now, tls, "ped-clearance-below-minimum",
                               f"link {i} {state[i]} {now - ended:g}s after crossing link {j}'s walk ended "
                               f"< {need:.1f}s", phases)
                continue
            if state[j] in _YELLOW:
                self._flag(now, tls, "all-red-below-minimum", f"link {i} {state[i]} while conflicting link {j} "
                                                              "is yellow", phases)
            elif now - track.yellow_end[j] < rules.all_red - 1e-6:
                self._flag(now, tls, "all-red-below-minimum",
                           f"link {i} {state[i]} {now - track.yellow_end[j]:g}s after conflicting link {j}'s "
                           f"yellow < {rules.all_red:g}s", phases)

    def _check_pairs(self, now: float, tls: str, state: str, phases) -> None:
        conf = self._conf.get(tls)
        if conf is None or not conf.foes:
            return
        key = (tls, state)
        bad = self._bad_pairs.get(key)
        if bad is None:
            if len(state) < conf.n_links:
                bad = []
            else:
                bad = [(a, b) for a, b in sorted(conf.foes) if state[a] in _GO and state[b] in _GO
                       and not (self._yields(tls, state, a, b) or self._yields(tls, state, b, a))]
            self._bad_pairs[key] = bad
        if bad:
            pairs = ", ".join(f"{a}{state[a]}/{b}{state[b]}" for a, b in bad[:4])
            self._flag(now, tls, "conflicting-greens", f"conflicting links go together: {pairs}", phases)

    def _flag(self, now: float, tls: str, kind: str, detail: str, phases=None) -> None:
        self.counts[kind] += 1
        self.by_signal[(tls, kind)] += 1
        if phases is not None and phases[0] is not None and phases[1] is not None:
            self.by_phases[(tls, int(phases[0]), int(phases[1]), kind)] += 1
        if len(self.kept) < self._keep:
            ph = (int(phases[0]), int(phases[1])) if phases and phases[0] is not None and phases[1] is not None else None
            self.kept.append(Violation(now, tls, kind, detail, ph))
