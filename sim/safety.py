"""Safety monitor: checks every signal state SUMO actually shows, link by link.

It knows nothing of controllers or of the actuator; it reads the states SUMO displays each
step and counts every breach of these rules:

- ``green-to-red``: a link goes from green (``G``/``g``) to anything but yellow, or from green
  with priority (``G``) to green without it (``g``: a protected turn turned permissive) without
  yellow in between.
- ``short-green``: a link's green ends (turns yellow) before the minimum green.
- ``short-yellow``: a link's yellow ends before the minimum yellow.
- ``no-all-red``: a link turns green sooner than the all-red time after another link's yellow ended.
- ``conflicting-green``: the links shown green together are not a subset of any green phase of
  the scenario's own program (the only combinations its designer declared conflict-free).

Pedestrian crossings are judged by their own rules (a walk ends straight into don't walk, so
``green-to-red`` does not apply to them):

- ``short-walk``: a crossing's walk (green) ends before the walk interval.
- ``ped-clearance``: a vehicle link that is never green together with a crossing turns green,
  or one never shown with priority (``G``) beside its walk gains priority, sooner than the
  crossing's clearance time after its walk ended.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

from brain.model import is_green, keeps_green
from brain.timing import crosswalk_conflicts, priority_sets

__all__ = ["SafetyRules", "SafetyMonitor", "Violation"]


@dataclass(frozen=True)
class SafetyRules:
    """What one intersection must respect (seconds)."""

    allowed_greens: tuple[frozenset[int], ...]
    min_green: float
    min_yellow: float
    all_red: float = 0.0
    crossings: tuple[tuple[int, float], ...] = ()
    """Pedestrian crossings: ``(link index, clearance s)``."""
    walk: float = 0.0
    allowed_states: tuple[str, ...] = ()
    """The program's phase states behind ``allowed_greens``: which of their greens have priority
    (``G``). Empty: every green counts as priority."""

    def conflicts(self) -> dict[int, frozenset[int]]:
        """Per crossing link: the vehicle links never green together with it."""
        return crosswalk_conflicts(self.allowed_greens, (c for c, _ in self.crossings))

    def protected_conflicts(self) -> dict[int, frozenset[int]]:
        """Per crossing link: the vehicle links never shown with priority beside its walk."""
        cross = [c for c, _ in self.crossings]
        sets = priority_sets(self.allowed_states, cross) if self.allowed_states else self.allowed_greens
        return crosswalk_conflicts(sets, cross)


@dataclass(frozen=True)
class Violation:
    time: float
    tls: str
    kind: str
    detail: str


class _LinkTrack:
    __slots__ = ("state", "since", "last_yellow_end", "walk_end")

    def __init__(self, state: str) -> None:
        self.state = state
        self.since = [-math.inf] * len(state)  # spans begun before the first look are not judged
        self.last_yellow_end = -math.inf
        self.walk_end: dict[int, float] = {}


class SafetyMonitor:
    """Counts safety violations over the states shown by many intersections.

    Args:
        rules: per traffic-light id.
        keep: how many violations to keep in full (all are counted).
    """

    def __init__(self, rules: dict[str, SafetyRules], keep: int = 100) -> None:
        self._rules = rules
        self._tracks: dict[str, _LinkTrack] = {}
        self._keep = keep
        self._cross = {t: (dict(r.crossings), r.conflicts(), r.protected_conflicts())
                       for t, r in rules.items() if r.crossings}
        self.kept: list[Violation] = []
        self.counts: Counter[str] = Counter()
        self.checked = 0

    @property
    def violations(self) -> int:
        return sum(self.counts.values())

    def observe(self, now: float, tls: str, state: str) -> None:
        """Record the state ``tls`` shows at time ``now``."""
        self.checked += 1
        track = self._tracks.get(tls)
        if track is None:
            self._tracks[tls] = _LinkTrack(state)
            self._check_greens(now, tls, state)
            return
        if state == track.state:
            return
        rules = self._rules[tls]
        if len(state) != len(track.state):
            self._flag(now, tls, "conflicting-green", f"state length changed to {len(state)}")
            self._tracks[tls] = _LinkTrack(state)
            return
        if any(o == "y" and n != "y" for o, n in zip(track.state, state)):
            track.last_yellow_end = now  # before the green checks: a same-instant green is a breach
        clearance, conflicts, protected = self._cross.get(tls, ({}, {}, {}))
        for c in clearance:  # walks first: a conflicting green at the same instant is a breach
            if is_green(track.state[c]) and not is_green(state[c]):
                track.walk_end[c] = now
                held = now - track.since[c]
                if held < rules.walk - 1e-6:
                    self._flag(now, tls, "short-walk", f"crossing link {c} walk {held:g}s < {rules.walk:g}s")
        for i, (old, new) in enumerate(zip(track.state, state)):
            if old == new:
                continue
            if keeps_green(old, new):
                if new == "G" and i not in clearance:  # g -> G: it gains priority over the crossings
                    self._check_walks(now, tls, track, i, protected, clearance)
                continue
            held = now - track.since[i]
            if is_green(new) and i not in clearance:
                self._check_walks(now, tls, track, i, protected if new == "G" else conflicts, clearance)
            if i in clearance:  # a crosswalk: judged above
                pass
            elif is_green(old):
                if new != "y":
                    self._flag(now, tls, "green-to-red", f"link {i} {old}->{new} without yellow")
                elif held < rules.min_green - 1e-6:
                    self._flag(now, tls, "short-green", f"link {i} green {held:g}s < {rules.min_green:g}s")
            elif old == "y":
                if held < rules.min_yellow - 1e-6:
                    self._flag(now, tls, "short-yellow", f"link {i} yellow {held:g}s < {rules.min_yellow:g}s")
            if is_green(new) and now - track.last_yellow_end < rules.all_red - 1e-6:
                self._flag(now, tls, "no-all-red",
                           f"link {i} green {now - track.last_yellow_end:g}s after yellow < {rules.all_red:g}s")
            track.since[i] = now
        track.state = state
        self._check_greens(now, tls, state)

    def _check_walks(self, now: float, tls: str, track: _LinkTrack, i: int, conflicts: dict, clearance: dict) -> None:
        """Link ``i`` turns green (or gains priority) now: no crossing it conflicts with may be
        in its clearance."""
        for c, ended in track.walk_end.items():
            if i in conflicts[c] and now - ended < clearance[c] - 1e-6:
                self._flag(now, tls, "ped-clearance", f"link {i} green {now - ended:g}s after crossing "
                                                      f"link {c}'s walk ended < {clearance[c]:g}s")

    def _check_greens(self, now: float, tls: str, state: str) -> None:
        greens = frozenset(i for i, c in enumerate(state) if is_green(c))
        if greens and not any(greens <= allowed for allowed in self._rules[tls].allowed_greens):
            self._flag(now, tls, "conflicting-green", f"greens {sorted(greens)} in no program phase")

    def _flag(self, now: float, tls: str, kind: str, detail: str) -> None:
        self.counts[kind] += 1
        if len(self.kept) < self._keep:
            self.kept.append(Violation(now, tls, kind, detail))
