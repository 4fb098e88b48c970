"""Reading a SUMO signal program: which phases are greens, what the transitions between them are.

Pure functions over ``(state, duration, min_duration)`` triples, so they are tested without
SUMO. A *green phase* shows at least one green and no yellow; a *yellow phase* shows yellow; an
*all-red phase* follows a yellow phase and shows neither green nor yellow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from brain.model import GreenPhase, is_green

__all__ = ["ProgramPhase", "green_phases", "merge_walk_phases", "yellow_time", "all_red_time", "min_spans"]


@dataclass(frozen=True)
class ProgramPhase:
    state: str
    duration: float
    min_dur: float

    @property
    def is_green(self) -> bool:
        return any(is_green(c) for c in self.state) and "y" not in self.state

    @property
    def is_yellow(self) -> bool:
        return "y" in self.state

    @property
    def is_red(self) -> bool:
        return not any(is_green(c) or c == "y" for c in self.state)


def green_phases(program: Sequence[ProgramPhase]) -> tuple[GreenPhase, ...]:
    """The distinct green phases of a program, in program order."""
    seen: set[str] = set()
    out = []
    for i, p in enumerate(program):
        if p.is_green and p.state not in seen:
            seen.add(p.state)
            out.append(GreenPhase(i, p.state, p.duration))
    return tuple(out)


def merge_walk_phases(greens: Sequence[GreenPhase], crossings: set[int]) -> tuple[GreenPhase, ...]:
    """Green phases that differ only in their pedestrian crossings, merged into one.

    A program with crossings ends each walk with a phase that keeps the vehicles' greens and
    turns the crossings red (the pedestrian clearance). The actuator times walk and clearance
    itself, so the two are one green phase for the controllers: the first one's index, its state
    with every crossing green that either shows, and their durations summed.
    """
    if not crossings:
        return tuple(greens)
    groups: dict[frozenset[int], list[GreenPhase]] = {}
    for g in greens:
        groups.setdefault(frozenset(i for i in g.green_links if i not in crossings), []).append(g)
    out = []
    for members in groups.values():
        first = members[0]
        walk = {i for g in members for i in g.green_links if i in crossings}
        state = "".join("G" if i in walk else ("r" if i in crossings else c) for i, c in enumerate(first.state))
        out.append(GreenPhase(first.program_index, state, sum(g.duration for g in members)))
    return tuple(sorted(out, key=lambda g: g.program_index))


def yellow_time(program: Sequence[ProgramPhase], default: float = 3.0) -> float:
    """Longest yellow phase of the program (``default`` when it has none)."""
    ys = [p.duration for p in program if p.is_yellow]
    return max(ys) if ys else default


def all_red_time(program: Sequence[ProgramPhase]) -> float:
    """Longest all-red phase that directly follows a yellow phase (0 when none)."""
    n = len(program)
    reds = [program[i].duration for i in range(n) if program[i].is_red and program[i - 1].is_yellow]
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
        kinds = ["g" if is_green(p.state[link]) else ("y" if p.state[link] == "y" else "r") for p in program]
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
