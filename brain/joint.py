"""Signals planned as one: nodes of one crossing that a network leaves as separate signals.

A generator's clustering (or a city's drawing) can leave two nodes of one crossing as two signals
joined by a link that stores no vehicle (``rand-3``'s signals ``2`` and ``16``, 0.20 m apart). A
vehicle that crosses one of them into that link goes on only when the other shows its
continuing movement green; until then it waits inside the first junction, in the way of what
that one serves. Planned apart, neither signal knows what the other shows.

:func:`join_signals` plans such a group as one signal. Its phases are every combination of the
members' phases (the ones their own programs show together, time-aligned over one cycle, first
and in that order: the group's program); in the planner's model a movement into the short link
is green only where the continuing movement out of it is green too. :class:`Joined` turns the
actuator's status into the joint one and a joint wish back into one wish per member. The
actuator still times every member on its own (minimum green, yellow, all-red).

Example:
    >>> import numpy as np
    >>> from brain.model import GreenPhase, Intersection, Network
    >>> a = Intersection("a", (GreenPhase(0, "Gr", 30), GreenPhase(2, "rG", 30)), ((0, 2), (1, 3)), (0, 1), (2, 3), 3, 0)
    >>> b = Intersection("b", (GreenPhase(0, "Gr", 30), GreenPhase(2, "rG", 30)), ((2, 4), (5, 6)), (2, 5), (4, 6), 3, 0)
    >>> net = Network((a, b), tuple("0123456"), np.array([50, 50, 0.2, 50, 50, 50, 50.]), np.full(7, 13.9))
    >>> j = join_signals(net, 7.5)
    >>> [x.id for x in j.network.intersections], j.members, j.order[0]
    (['a+b'], ((0, 1),), (0, 1))
    >>> [p.state for p in j.network.intersections[0].phases]  # a's 0 -> 2 only while b's 2 -> 4 is green
    ['GrGr', 'rGrG', 'rrrG', 'rGGr']
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from brain.model import GreenPhase, Intersection, Network, SignalStatus, is_green

__all__ = ["Joined", "join_signals", "MAX_JOINT_PHASES"]

SAMPLE_S = 0.5
"""Resolution (s) of the time alignment of the members' programs."""
MIN_OVERLAP_S = 1.0
"""Seconds per cycle two members' greens must show together to be a phase of the group's program."""
CYCLE_TOLERANCE = 0.05
"""Largest relative difference of the members' cycles that still keeps their programs in step."""
MAX_JOINT_PHASES = 36
"""A group with more combinations than this stays planned apart (the search grows with their cube)."""


@dataclass(frozen=True)
class Joined:
    """A network with some signals planned as one.

    Attributes:
        network: what the planner sees: one intersection per group of joined signals (at the
            place of its first member), the others as they are.
        members: per planned intersection, the indices of its signals in the original network.
        phases: per planned intersection, ``(n_phases, n_members)``: each member's phase in each
            joint phase.
        order: per planned intersection, its program's phases in order (a joined group's: the
            combinations its members' programs show together).
        ids: the original network's signal ids.
    """

    network: Network
    members: tuple[tuple[int, ...], ...]
    phases: tuple[np.ndarray, ...]
    order: tuple[tuple[int, ...], ...]
    ids: tuple[str, ...]

    @cached_property
    def joined(self) -> bool:
        """True when at least one group was joined (read at every decision: computed once)."""
        return any(len(m) > 1 for m in self.members)

    def groups(self) -> list[tuple[str, ...]]:
        """The ids of the signals of every joined group."""
        return [tuple(self.ids[k] for k in m) for m in self.members if len(m) > 1]

    def status(self, outer: SignalStatus) -> SignalStatus:
        """The planned intersections' status from the members': the combination they show (a
        member in transition: its target), the shortest green age, in transition while any
        member is."""
        if not self.joined:
            return outer
        n = len(self.members)
        phase = np.zeros(n, dtype=np.int64)
        green = np.zeros(n)
        trans = np.zeros(n, dtype=bool)
        tr = outer.in_transition if outer.in_transition.size else np.zeros(len(outer.phase), dtype=bool)
        for i, (m, table) in enumerate(zip(self.members, self.phases)):
            idx = list(m)
            phase[i] = int(np.argmax((table == outer.phase[idx]).all(axis=1))) if len(idx) > 1 else outer.phase[idx[0]]
            green[i] = float(np.min(outer.green_time[idx]))
            trans[i] = bool(tr[idx].any())
        return SignalStatus(phase, green, trans)

    def expand(self, choice: np.ndarray) -> np.ndarray:
        """One wished phase per original signal from one per planned intersection."""
        if not self.joined:
            return np.asarray(choice, dtype=np.int64).copy()
        out = np.zeros(len(self.ids), dtype=np.int64)
        for i, (m, table) in enumerate(zip(self.members, self.phases)):
            out[list(m)] = table[int(choice[i])]
        return out

    def next_phase(self, i: int, k: int) -> int:
        """The phase the program of planned intersection ``i`` shows after phase ``k`` (for a
        combination outside the program: the program's next phase of its first member)."""
        order = self.order[i]
        if k in order:
            return order[(order.index(k) + 1) % len(order)]
        table = self.phases[i]
        nxt = (table[k, 0] + 1) % (int(table[:, 0].max()) + 1)
        return next((j for j in order if table[j, 0] == nxt), order[0])


def _short_links(network: Network, storage_m: float) -> list[tuple[int, int]]:
    """Pairs of signals joined by a lane leaving one and entering the other that is shorter than
    ``storage_m`` (it stores no vehicle)."""
    fed_by: dict[int, set[int]] = {}
    for i, x in enumerate(network.intersections):
        for ln in x.out_lanes:
            fed_by.setdefault(ln, set()).add(i)
    pairs = set()
    for j, x in enumerate(network.intersections):
        for ln in x.in_lanes:
            if network.lane_length[ln] < storage_m:
                pairs.update((min(i, j), max(i, j)) for i in fed_by.get(ln, ()) if i != j)
    return sorted(pairs)


def _timeline(x: Intersection) -> tuple[list[tuple[float, float, int]], float]:
    """A signal's greens over one cycle of its own program: ``(start, end, phase)`` and the cycle."""
    t, spans = 0.0, []
    for k, p in enumerate(x.phases):
        spans.append((t, t + p.duration, k))
        t += p.duration + x.change(k, (k + 1) % x.n_phases)
    return spans, t


def _align(xs: list[Intersection]) -> dict[tuple[int, ...], float] | None:
    """The combinations of phases the members' programs show together, in order of first
    appearance over one cycle, with their seconds per cycle; ``None`` where the programs do not
    run in step (cycles apart, a phase without duration, a phase never shown with the others)."""
    if any(p.duration <= 0 for x in xs for p in x.phases):
        return None
    lines = [_timeline(x) for x in xs]
    cycles = [c for _, c in lines]
    top = max(cycles)
    if top - min(cycles) > CYCLE_TOLERANCE * top:
        return None
    seen: dict[tuple[int, ...], float] = {}
    for t in np.arange(0.5 * SAMPLE_S, top, SAMPLE_S):
        combo = tuple(next((k for a, b, k in spans if a <= t % cycle < b), -1) for spans, cycle in lines)
        if min(combo) >= 0:
            seen[combo] = seen.get(combo, 0.0) + SAMPLE_S
    joint = {c: d for c, d in seen.items() if d >= MIN_OVERLAP_S}
    if any({c[m] for c in joint} != set(range(x.n_phases)) for m, x in enumerate(xs)):
        return None
    return joint


def _merge(xs: list[Intersection], combos: list[tuple[int, ...]], seconds: dict[tuple[int, ...], float],
           inner: set[int]) -> Intersection:
    """One intersection over ``xs``: a phase per combination, each member's links in turn; a link
    into an ``inner`` lane is green only where a link out of it is green in the same combination."""
    links, crossings, base = [], [], 0
    for x in xs:
        links.extend(x.links)
        crossings.extend((i + base, length) for i, length in x.crossings)
        base += len(x.links)
    leaving: dict[int, list[int]] = {}
    for k, (a, _) in enumerate(links):
        if a in inner:
            leaving.setdefault(a, []).append(k)
    phases = []
    for j, combo in enumerate(combos):
        state = list("".join(x.phases[combo[m]].state for m, x in enumerate(xs)))
        shown = state.copy()
        for k, (_, b) in enumerate(links):
            if b in inner and is_green(shown[k]) and not any(is_green(shown[o]) for o in leaving.get(b, ())):
                state[k] = "r"  # the vehicle would stand in the junction: it goes nowhere this phase
        phases.append(GreenPhase(j, "".join(state), seconds.get(combo, 0.0)))
    n = len(combos)
    change = tuple(tuple(max((x.change(combos[a][m], combos[b][m]) for m, x in enumerate(xs)
                              if combos[a][m] != combos[b][m]), default=0.0) for b in range(n)) for a in range(n))
    return Intersection("+".join(x.id for x in xs), tuple(phases), tuple(links),
                        tuple(sorted({ln for x in xs for ln in x.in_lanes})),
                        tuple(sorted({ln for x in xs for ln in x.out_lanes})),
                        max(x.yellow_s for x in xs), max(x.all_red_s for x in xs), tuple(crossings), change)


def join_signals(network: Network, storage_m: float) -> Joined:
    """Plan as one every group of signals joined by links shorter than ``storage_m`` whose programs
    run in step (at most :data:`MAX_JOINT_PHASES` combinations); every other signal stays as it is."""
    n = len(network.intersections)
    root = list(range(n))

    def find(i: int) -> int:
        while root[i] != i:
            root[i] = root[root[i]]
            i = root[i]
        return i

    for i, j in _short_links(network, storage_m):
        root[find(j)] = find(i)
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(find(i), []).append(i)
    inters, members, tables, orders = [], [], [], []
    done: set[int] = set()
    for i in range(n):
        if i in done:
            continue
        g = groups[find(i)]
        xs = [network.intersections[k] for k in g]
        count = int(np.prod([x.n_phases for x in xs]))
        aligned = _align(xs) if 1 < len(g) and count <= MAX_JOINT_PHASES else None
        if aligned is None:
            g, x = [i], network.intersections[i]
            inters.append(x)
            tables.append(np.arange(x.n_phases, dtype=np.int64)[:, None])
            orders.append(tuple(range(x.n_phases)))
        else:
            program = list(aligned)
            combos = program + [c for c in itertools.product(*(range(x.n_phases) for x in xs)) if c not in aligned]
            ins = [set(x.in_lanes) for x in xs]
            inner = {ln for m, x in enumerate(xs) for ln in x.out_lanes
                     if network.lane_length[ln] < storage_m and any(ln in s for k, s in enumerate(ins) if k != m)}
            inters.append(_merge(xs, combos, aligned, inner))
            tables.append(np.array(combos, dtype=np.int64))
            orders.append(tuple(range(len(program))))
        members.append(tuple(g))
        done.update(g)
    net = Network(tuple(inters), network.lanes, network.lane_length, network.lane_speed, network.feeds)
    return Joined(net, tuple(members), tuple(tables), tuple(orders), tuple(x.id for x in network.intersections))
