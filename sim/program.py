"""Reading a SUMO signal program: the greens a controller chooses between, and the transitions.

Pure functions over :class:`ProgramPhase` lists, so they are tested without SUMO. SUMO's state
characters keep SUMO's meaning (:mod:`brain.model`): ``G g O o`` let vehicles go, ``y Y`` are
yellow, ``r u`` red, ``s`` stop-then-go.

Real-world programs (Bologna's UTOPIA plans, say) write one green as many consecutive phases of
the same state, overlap movements across stages and show short intermediate greens. The reader:

- merges consecutive phases of the same state into one (their durations summed);
- takes every distinct green state as a green phase a controller may choose (phases that differ
  only in their pedestrian crossings are one: the walk and its clearance);
- keeps, for every pair of greens the program switches between directly, the program's own
  transition: the phases between them (yellow, all-red, and any intermediate green), so a
  controller switching the same way shows what the city's plan shows. A transition that would
  break the timing profile (a green that ends without yellow, a protected turn that turns
  permissive without yellow where the profile asks for it, a crosswalk's walk inside it) is not
  kept: the actuator makes its own;
- for a switch the program never makes: yellow for every link that stops (and for a protected
  turn turning permissive), then all-red, with the longest yellow and all-red the program shows
  at that signal.

Durations follow the applied rules (:func:`plan_transitions`): a yellow shorter than the
profile's minimum is raised to it, an explicit ``--yellow``/``--all-red`` replaces the program's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from brain.model import PRIORITY_CHARS, GreenPhase, is_green, is_yellow, keeps_green

__all__ = ["ProgramPhase", "Step", "green_phases", "merge_walk_phases", "merged_runs", "program_transitions",
           "illegal_reason", "plan_transitions", "generated_steps", "transition_states", "yellow_time", "all_red_time", "min_spans",
           "rewrite_clearances"]


@dataclass(frozen=True)
class ProgramPhase:
    """One phase of a SUMO program: its state, duration and (actuated) minimum and maximum."""

    state: str
    duration: float
    min_dur: float
    max_dur: float | None = None

    @property
    def is_green(self) -> bool:
        return any(is_green(c) for c in self.state) and not any(is_yellow(c) for c in self.state)

    @property
    def is_yellow(self) -> bool:
        return any(is_yellow(c) for c in self.state)

    @property
    def is_red(self) -> bool:
        return not any(is_green(c) or is_yellow(c) for c in self.state)


@dataclass(frozen=True)
class Step:
    """One interval of a transition: the state shown, for how long, and what it is
    (``yellow``, ``red`` for all-red, ``green`` for an intermediate green)."""

    state: str
    duration: float
    kind: str


def merged_runs(program: Sequence[ProgramPhase]) -> list[tuple[int, ProgramPhase]]:
    """Consecutive phases of the same state merged into one, in program order, each with the index
    of its first phase. The cycle wraps: a run at the end continues into the one at the start."""
    runs: list[tuple[int, ProgramPhase]] = []
    for i, p in enumerate(program):
        if runs and runs[-1][1].state == p.state:
            k, q = runs[-1]
            runs[-1] = (k, _joined(q, p))
        else:
            runs.append((i, p))
    if len(runs) > 1 and runs[0][1].state == runs[-1][1].state:
        _, last = runs.pop()
        runs[0] = (runs[0][0], _joined(last, runs[0][1]))
    return runs


def _joined(a: ProgramPhase, b: ProgramPhase) -> ProgramPhase:
    top = None if a.max_dur is None or b.max_dur is None else a.max_dur + b.max_dur
    return ProgramPhase(a.state, a.duration + b.duration, a.min_dur + b.min_dur, top)


def green_phases(program: Sequence[ProgramPhase]) -> tuple[GreenPhase, ...]:
    """The distinct green phases of a program, in program order, each with the duration of its
    run of consecutive phases (the first such run)."""
    seen: set[str] = set()
    out = []
    for i, p in merged_runs(program):
        if p.is_green and p.state not in seen:
            seen.add(p.state)
            out.append(GreenPhase(i, p.state, p.duration))
    return tuple(sorted(out, key=lambda g: g.program_index))


def merge_walk_phases(greens: Sequence[GreenPhase], crossings: set[int]) -> tuple[GreenPhase, ...]:
    """Green phases that differ only in their pedestrian crossings, merged into one.

    A program with crossings ends each walk with a phase that keeps the vehicles' greens and
    turns the crossings red (the pedestrian clearance). The actuator times walk and clearance
    itself, so the two are one green phase for the controllers: the first one's index, its state
    with every crossing green that either shows, and their durations summed.
    """
    if not crossings:
        return tuple(greens)
    groups: dict[str, list[GreenPhase]] = {}
    for g in greens:
        groups.setdefault(_vehicles(g.state, crossings), []).append(g)
    out = []
    for members in groups.values():
        first = members[0]
        walk = {i for g in members for i in g.green_links if i in crossings}
        state = "".join("G" if i in walk else ("r" if i in crossings else c) for i, c in enumerate(first.state))
        out.append(GreenPhase(first.program_index, state, sum(g.duration for g in members)))
    return tuple(sorted(out, key=lambda g: g.program_index))


def _vehicles(state: str, crossings: set[int] | frozenset[int]) -> str:
    """The state with the crossings blanked out (what the vehicles see)."""
    return "".join("-" if i in crossings else c for i, c in enumerate(state))


def program_transitions(program: Sequence[ProgramPhase], greens: Sequence[GreenPhase],
                        crossings: frozenset[int] = frozenset()) -> dict[tuple[int, int], tuple[Step, ...]]:
    """The program's own transitions between the green phases ``greens`` (indices into it): for
    every pair it switches between directly, the phases shown between them (first occurrence)."""
    by_state = {_vehicles(g.state, crossings): k for k, g in enumerate(greens)}
    runs = merged_runs(program)
    n = len(runs)
    out: dict[tuple[int, int], tuple[Step, ...]] = {}
    for p in range(n):
        _, run = runs[p]
        src = by_state.get(_vehicles(run.state, crossings)) if run.is_green else None
        if src is None:
            continue
        steps: list[Step] = []
        for q in range(1, n):
            _, nxt = runs[(p + q) % n]
            dst = by_state.get(_vehicles(nxt.state, crossings)) if nxt.is_green else None
            if dst is not None and dst != src:
                out.setdefault((src, dst), tuple(steps))
                break
            if dst == src:
                break  # the walk's clearance (a crossing-only change), or back to the same green
            kind = "yellow" if nxt.is_yellow else ("green" if nxt.is_green else "red")
            steps.append(Step(nxt.state, nxt.duration, kind))
    return out


def illegal_reason(src: str, steps: Sequence[Step], dst: str, crossings: frozenset[int] = frozenset(),
                   permissive_needs_yellow: bool = True, min_green: float = 0.0) -> str | None:
    """Why the program's transition ``src -> steps -> dst`` cannot be kept under the rules, or
    ``None``: a link that stops without yellow (or turns permissive without it, where the profile
    asks for yellow), goes from yellow back to green, is green inside the transition for less
    than the minimum green, or a crosswalk that walks inside it."""
    seq = [src, *(s.state for s in steps), dst]
    start = [float("-inf"), 0.0]  # when each of seq begins: src before the transition, the first step at 0
    for st in steps:
        start.append(start[-1] + st.duration)
    for link in range(len(src)):
        chars = [st[link] for st in seq]
        if link in crossings:
            if any(is_green(c) for c in chars[1:-1]):
                return f"crosswalk link {link} walks during the transition"
            continue
        green_from = start[0] if is_green(chars[0]) else None
        before_yellow = ""
        for k in range(1, len(chars)):
            a, b = chars[k - 1], chars[k]
            if a == b or (is_yellow(a) and is_yellow(b)):
                continue
            if is_yellow(b):
                before_yellow = a
            if is_green(a) and not is_green(b) and not is_yellow(b):
                return f"link {link} {a}->{b} without yellow"
            if is_green(a) and is_green(b) and not keeps_green(a, b, permissive_needs_yellow):
                return f"link {link} {a}->{b}: protected turn turned permissive without yellow"
            if is_yellow(a) and is_green(b) and not (before_yellow in PRIORITY_CHARS and b not in PRIORITY_CHARS):
                return f"link {link} yellow then green again"
            if is_green(b) and not is_green(a):
                green_from = start[k]
            elif is_green(a) and not is_green(b):
                if green_from is not None and start[k] - green_from < min_green - 1e-9:
                    return f"link {link} green {start[k] - green_from:g} s inside the transition"
                green_from = None
    return None


def transition_states(src: str, dst: str, crossings: frozenset[int] = frozenset(),
                      permissive_needs_yellow: bool = True) -> tuple[str, str]:
    """Yellow and all-red states for a switch from green state ``src`` to ``dst``.

    A link green in ``src`` but not in ``dst`` shows yellow, then red; so does a link that loses
    its priority (``G`` in ``src``, ``g`` in ``dst``: a protected turn becoming permissive while
    the opposing traffic may get green, the yellow arrow of signal practice) where
    ``permissive_needs_yellow``. A link green in both otherwise keeps its ``src`` character
    throughout; every other link keeps its ``src`` character in yellow and shows red (or its stop
    sign ``s``) in all-red. A pedestrian crossing (link index in ``crossings``) whose walk ends is
    red in both (pedestrians get no yellow).
    """
    if len(src) != len(dst):
        raise ValueError(f"states differ in length: {len(src)} vs {len(dst)}")
    yellow = []
    red = []
    for i, (a, b) in enumerate(zip(src, dst)):
        if keeps_green(a, b, permissive_needs_yellow):
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


def plan_transitions(greens: Sequence[GreenPhase], program: Sequence[ProgramPhase], *,
                     yellow: float | None, all_red: float | None, min_yellow: float, min_all_red: float,
                     keep_program: bool = True, permissive_needs_yellow: bool = True,
                     crossings: frozenset[int] = frozenset(), min_green: float = 0.0,
                     max_yellow: float = math.inf) -> dict[tuple[int, int], tuple[tuple[str, float], ...]]:
    """Every transition between the green phases, as ``(state, seconds)`` intervals, under the
    applied rules.

    ``yellow``/``all_red``: an explicit time for every yellow / all-red (``None``: the program's
    own for that transition, raised to ``min_yellow`` / ``min_all_red`` and cut to ``max_yellow``;
    for a switch the program never makes, the longest the program shows at the signal).
    ``keep_program``: use the program's own transitions where they are legal (:func:`illegal_reason`).
    """
    longest_y = min(max(yellow_time(program, default=min_yellow), min_yellow), max_yellow)
    longest_r = max(all_red_time(program), min_all_red)
    gen_y = yellow if yellow is not None else longest_y
    gen_r = all_red if all_red is not None else longest_r
    own = program_transitions(program, greens, crossings) if keep_program else {}
    out = {}
    for i, a in enumerate(greens):
        for j, b in enumerate(greens):
            if i == j:
                continue
            steps = own.get((i, j))
            if steps is not None and illegal_reason(a.state, steps, b.state, crossings, permissive_needs_yellow,
                                                    min_green) is None:
                try:
                    out[(i, j)] = _resolve(steps, yellow, all_red, min_yellow, min_all_red, max_yellow)
                    continue
                except Untimeable:
                    pass  # the actuator's own transition instead
            out[(i, j)] = generated_steps(a.state, b.state, gen_y, gen_r, crossings, permissive_needs_yellow)
    return out


def generated_steps(src: str, dst: str, yellow: float, all_red: float, crossings: frozenset[int] = frozenset(),
                    permissive_needs_yellow: bool = True) -> tuple[tuple[str, float], ...]:
    """A switch the program does not give: yellow for what stops (:func:`transition_states`),
    then all-red; nothing where no link stops (the new greens start at once)."""
    ys, rs = transition_states(src, dst, crossings, permissive_needs_yellow)
    if ys == src and rs == src:
        return ()
    seq = [(ys, yellow)] if ys != src else []
    if all_red > 0:
        seq.append((rs, all_red))
    return tuple(seq)


def _resolve(steps: Sequence[Step], yellow: float | None, all_red: float | None, min_yellow: float,
             min_all_red: float, max_yellow: float = math.inf) -> tuple[tuple[str, float], ...]:
    items = _retime([(s.state, s.duration, s.kind) for s in steps], yellow, all_red, min_yellow, min_all_red,
                    max_yellow)
    return tuple((st, d) for st, d, _ in items)


def _retime(items: list[tuple[str, float, str]], yellow: float | None, all_red: float | None, min_yellow: float,
            min_all_red: float, max_yellow: float = math.inf, strict: bool = True) -> list[tuple[str, float, str]]:
    """Time each group of consecutive yellow intervals and the red intervals right after it.

    Yellow: with an explicit ``yellow`` the group is scaled so that its longest yellow (per link,
    across the group's intervals) lasts ``yellow``; otherwise a group whose longest yellow exceeds
    ``max_yellow`` is scaled down to it, and every link's yellow is raised to ``min_yellow`` where
    shorter (the interval where it ends is lengthened). All-red: the red
    intervals after the group are scaled to ``all_red``, or raised to ``min_all_red``; where there
    are none and the rules ask for an all-red, one is inserted."""
    out = list(items)
    i = 0
    while i < len(out):
        if out[i][2] != "yellow":
            i += 1
            continue
        j = i
        while j < len(out) and out[j][2] == "yellow":
            j += 1
        states = [st for st, _, _ in out[i:j]]
        durs = _yellow_group([d for _, d, _ in out[i:j]], states, yellow, min_yellow, max_yellow, strict)
        out[i:j] = [(st, d, "yellow") for st, d in zip(states, durs)]
        k = j
        while k < len(out) and out[k][2] == "red":
            k += 1
        need = all_red if all_red is not None else min_all_red
        if k > j:
            total = sum(d for _, d, _ in out[j:k])
            target = all_red if all_red is not None else max(total, min_all_red)
            scale = target / total if total > 0 else 0.0
            out[j:k] = [(st, d * scale if total > 0 else target / (k - j), kind) for st, d, kind in out[j:k]]
        elif need > 0:
            red = "".join("r" if is_yellow(c) else c for c in states[-1])
            out.insert(j, (red, need, "red"))
            k = j + 1
        i = k
    return out


class Untimeable(ValueError):
    """A group of staggered yellows whose links' yellows cannot all be brought within the limits."""


def _spans(states: Sequence[str]) -> list[tuple[int, int]]:
    """(first, last) interval of each link's contiguous yellow in a group of yellow intervals."""
    out = []
    for link in range(len(states[0])):
        k = 0
        while k < len(states):
            if is_yellow(states[k][link]):
                m = k
                while m + 1 < len(states) and is_yellow(states[m + 1][link]):
                    m += 1
                out.append((k, m))
                k = m + 1
            else:
                k += 1
    return out


def _yellow_group(durs: list[float], states: list[str], yellow: float | None, min_yellow: float,
                  max_yellow: float = math.inf, strict: bool = True) -> list[float]:
    """Durations of consecutive yellow intervals (see :func:`_retime`) such that every link's
    yellow lasts from ``lo`` to ``hi`` (``yellow`` both, where given; else ``min_yellow`` and
    ``max_yellow``). Staggered yellows (links whose yellows overlap in part) may not allow it:
    then :class:`Untimeable` where ``strict``, else each interval is clamped on its own."""
    lo = yellow if yellow is not None else min_yellow
    hi = yellow if yellow is not None else max(max_yellow, min_yellow)
    found = _spans(states)
    if not found:
        return list(durs)
    out = list(durs)
    longest = max(sum(out[a:b + 1]) for a, b in found)
    if longest > hi and longest > 0:
        out = [d * hi / longest for d in out]
    for a, b in found:  # raise a short yellow where it ends
        short = lo - sum(out[a:b + 1])
        if short > 1e-9:
            out[b] += short
    if all(lo - 1e-6 <= sum(out[a:b + 1]) <= hi + 1e-6 for a, b in found):
        return out
    if strict:
        raise Untimeable(f"staggered yellows {states} cannot all last {lo:g}-{hi:g} s")
    return [min(max(d, lo), hi) for d in durs]


def rewrite_clearances(program: Sequence[ProgramPhase], *, yellow: float | None, all_red: float | None,
                       min_yellow: float, min_all_red: float, min_green: float = 0.0,
                       max_yellow: float = math.inf) -> list[ProgramPhase]:
    """The program with its yellow and all-red phases timed by the applied rules, for SUMO to run
    (``fixed``, ``actuated``; see :func:`_retime`); everything else is run as written.

    The cycle keeps its length where it can, as a retimed plan does in practice: the seconds a
    clearance gains are taken from the green just before it, down to ``min_green``, and the seconds
    it loses given to that green (so offsets and the coordination between signals stay as the
    program has them)."""
    kinds = ["yellow" if p.is_yellow else ("red" if p.is_red else "green") for p in program]
    timed = _retime([(p.state, p.duration, k) for p, k in zip(program, kinds)], yellow, all_red, min_yellow,
                    min_all_red, max_yellow, strict=False)
    out: list[ProgramPhase] = []
    k = 0
    last_green: int | None = None
    for st, d, kind in timed:
        if k < len(program) and program[k].state == st and kind == kinds[k]:
            p = program[k]
            k += 1
            gained = d - p.duration
            if kind == "green":
                out.append(p)
                last_green = len(out) - 1
                continue
            out.append(p if abs(gained) < 1e-9 else ProgramPhase(st, d, d, d))
        else:  # an all-red the rules insert
            gained = d
            out.append(ProgramPhase(st, d, d, d))
        if last_green is not None and abs(gained) > 1e-9:
            g = out[last_green]
            take = min(gained, max(g.duration - max(min_green, 0.0), 0.0))  # negative: seconds given back
            if abs(take) > 1e-9:
                top = None if g.max_dur is None else max(g.max_dur - take, g.duration - take)
                out[last_green] = ProgramPhase(g.state, g.duration - take, min(g.min_dur, g.duration - take), top)
    return out


def _is_all_red_after(y: ProgramPhase, r: ProgramPhase) -> bool:
    """True when ``r`` shows red to every link that ``y`` shows yellow (the clearance after it)."""
    return all(not is_green(b) for a, b in zip(y.state, r.state) if is_yellow(a))


def yellow_time(program: Sequence[ProgramPhase], default: float = 3.0) -> float:
    """Longest yellow phase of the program (``default`` when it has none)."""
    ys = [p.duration for _, p in merged_runs(program) if p.is_yellow] if program else []
    return max(ys) if ys else default


def all_red_time(program: Sequence[ProgramPhase]) -> float:
    """Longest all-red phase that directly follows a yellow phase (0 when none)."""
    runs = [p for _, p in merged_runs(program)] if program else []
    n = len(runs)
    reds = [runs[i].duration for i in range(n) if runs[i].is_red and runs[i - 1].is_yellow and n > 1]
    return max(reds) if reds else 0.0


def min_spans(program: Sequence[ProgramPhase], skip: frozenset[int] = frozenset()) -> tuple[float, float]:
    """Shortest green and shortest yellow any single link can see, running the program in a cycle.

    Each phase counts with its minimum duration (``min_dur``; equal to ``duration`` in a static
    program). Links in ``skip`` (pedestrian crossings) are left out. Returns ``(min_green,
    min_yellow)``; ``inf`` for a kind the program never shows.
    """
    n = len(program)
    if n == 0:
        return float("inf"), float("inf")
    n_links = len(program[0].state)
    best = {"g": float("inf"), "y": float("inf")}
    for link in range(n_links):
        if link in skip:
            continue
        kinds = ["g" if is_green(p.state[link]) else ("y" if is_yellow(p.state[link]) else "r") for p in program]
        if len(set(kinds)) == 1:
            continue  # never changes: no span ends
        # rotate so the cycle starts right after a change
        start = next(i for i in range(n) if kinds[i] != kinds[i - 1])
        span_kind, span = kinds[start], 0.0
        for k in range(n):
            i = (start + k) % n
            if kinds[i] != span_kind:
                if span_kind in best:
                    best[span_kind] = min(best[span_kind], span)
                span_kind, span = kinds[i], 0.0
            span += program[i].min_dur
        if span_kind in best:
            best[span_kind] = min(best[span_kind], span)
    return best["g"], best["y"]

