"""Safety monitor: checks every signal state SUMO actually shows, link by link.

It knows nothing of controllers or of the actuator; it reads the states SUMO displays each
step and counts every breach of these rules:

- ``green-to-red``: a link goes from green (``G``/``g``) to anything but yellow.
- ``short-green``: a link's green ends (turns yellow) before the minimum green.
- ``short-yellow``: a link's yellow ends before the minimum yellow.
- ``no-all-red``: a link turns green sooner than the all-red time after another link's yellow ended.
- ``conflicting-green``: the links shown green together are not a subset of any green phase of
  the scenario's own program (the only combinations its designer declared conflict-free).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

from brain.model import is_green

__all__ = ["SafetyRules", "SafetyMonitor", "Violation"]


@dataclass(frozen=True)
class SafetyRules:
    """What one intersection must respect (seconds)."""

    allowed_greens: tuple[frozenset[int], ...]
    min_green: float
    min_yellow: float
    all_red: float = 0.0


@dataclass(frozen=True)
class Violation:
    time: float
    tls: str
    kind: str
    detail: str


class _LinkTrack:
    __slots__ = ("state", "since", "last_yellow_end")

    def __init__(self, state: str) -> None:
        self.state = state
        self.since = [-math.inf] * len(state)  # spans begun before the first look are not judged
        self.last_yellow_end = -math.inf


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
        for i, (old, new) in enumerate(zip(track.state, state)):
            if old == new or (is_green(old) and is_green(new)):
                continue
            held = now - track.since[i]
            if is_green(old) and new != "y":
                self._flag(now, tls, "green-to-red", f"link {i} {old}->{new} without yellow")
            elif is_green(old) and held < rules.min_green - 1e-6:
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

    def _check_greens(self, now: float, tls: str, state: str) -> None:
        greens = frozenset(i for i, c in enumerate(state) if is_green(c))
        if greens and not any(greens <= allowed for allowed in self._rules[tls].allowed_greens):
            self._flag(now, tls, "conflicting-green", f"greens {sorted(greens)} in no program phase")

    def _flag(self, now: float, tls: str, kind: str, detail: str) -> None:
        self.counts[kind] += 1
        if len(self.kept) < self._keep:
            self.kept.append(Violation(now, tls, kind, detail))
