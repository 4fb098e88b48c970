"""Gridlock watch: a signal whose approaches let nobody across their stop lines while vehicles wait.

With teleporting off (the RESCO settings, which every measured run uses), a jam SUMO cannot
resolve stays for the rest of the run and dominates its mean delay: vehicles of crossing
movements locked inside a large clustered junction, or a queue reaching back through every exit
of a signal. A run then looks like an outlier with no explanation. :class:`GridlockWatch` names
the signal and the time instead: it flags a signal once no vehicle has left its approach lanes
for :data:`AFTER_S` while vehicles stood on them. No controller keeps every approach of a signal
red that long (maximum green is 120 s), so a flag means a jam, whatever the controller. The run
goes on; the record lists the flags.

A vehicle counts as gone only when it is on none of the signal's approach lanes any more: one
changing lanes within the approach (which a per-lane counter sees as a departure) is still
waiting.

Example:
    >>> w = GridlockWatch(["a"], [[0, 1]], after_s=300.0)
    >>> w.observe(0.0, [("v1",), ()])
    []
    >>> w.observe(310.0, [(), ("v1",)])   # a lane change: still nobody across
    [{'tls': 'a', 'since_s': 0.0, 'seen_s': 310.0}]
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["GridlockWatch", "AFTER_S", "EVERY_S"]

AFTER_S = 300.0
"""Seconds without a vehicle leaving, vehicles waiting, before a signal is flagged (SUMO's default
time-to-teleport: the wait after which SUMO itself would have removed a stuck vehicle)."""

EVERY_S = 10.0
"""How often the run checks (simulated seconds)."""


class GridlockWatch:
    """Flags signals that stopped discharging (see the module docstring).

    Args:
        tls: the signals' ids.
        in_lanes: per signal, the indices of its approach lanes in the per-lane lists given to
            :meth:`observe`.
        after_s: seconds without a vehicle leaving, vehicles waiting, before a flag.
    """

    def __init__(self, tls: Sequence[str], in_lanes: Sequence[Sequence[int]], after_s: float = AFTER_S) -> None:
        if len(tls) != len(in_lanes):
            raise ValueError(f"{len(tls)} signals but {len(in_lanes)} lane lists")
        self.tls = list(tls)
        self.lanes = [sorted(set(x)) for x in in_lanes]
        self.after_s = after_s
        self._on: list[set[str] | None] = [None] * len(self.tls)  # vehicles on the approaches at the last check
        self._last_move = [0.0] * len(self.tls)
        self._flagged = [False] * len(self.tls)
        self.events: list[dict] = []

    def observe(self, now: float, lane_vehicles: Sequence[Sequence[str]]) -> list[dict]:
        """Take the ids of the vehicles on each lane now; return the signals flagged by this call
        (each ``{"tls", "since_s", "seen_s"}``: the last check at which a vehicle had left or the
        approaches were empty, and when the flag was raised)."""
        new = []
        for i, lanes in enumerate(self.lanes):
            on = {v for j in lanes for v in lane_vehicles[j]}
            before, self._on[i] = self._on[i], on
            if before is None or not on or before - on:  # first look, empty, or someone left
                self._last_move[i] = now
                self._flagged[i] = False  # it moves again: a later jam is a new event
                continue
            if not self._flagged[i] and now - self._last_move[i] >= self.after_s:
                self._flagged[i] = True
                ev = {"tls": self.tls[i], "since_s": float(self._last_move[i]), "seen_s": float(now)}
                self.events.append(ev)
                new.append(ev)
        return new
