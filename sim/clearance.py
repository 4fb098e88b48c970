"""Clearance intervals from the ITE formulas, per intersection, from the SUMO network.

Yellow from the fastest approach's speed limit (level grade: SUMO networks here carry no
grades), clamped to 3-6 s; all-red from the time to clear the junction (its widest extent
plus a 6 m vehicle) at that speed.
"""

from __future__ import annotations

from dataclasses import replace
from types import ModuleType

import numpy as np

from brain.hcm import ite_all_red, ite_yellow
from brain.model import Network
from brain.timing import crosswalk_conflicts, priority_sets

__all__ = ["crossing_width", "ite_clearance", "with_ite_clearances", "check_timing", "is_crossing_lane"]


def crossing_width(ts: ModuleType, tls: str) -> float:
    """The junction's widest extent (m), the distance a vehicle clears; 15 m when unknown."""
    try:
        shape = np.array(ts.junction.getShape(tls), dtype=np.float64)
    except Exception:  # a traffic light whose id is not a junction's
        return 15.0
    if len(shape) < 2:
        return 15.0
    d = np.hypot(*(shape[:, None, :] - shape[None, :, :]).transpose(2, 0, 1))
    return float(d.max())


def ite_clearance(speed_ms: float, width_m: float) -> tuple[float, float]:
    """(yellow, all-red) in seconds, all-red rounded up to 0.5 s."""
    kmh = speed_ms * 3.6
    return ite_yellow(kmh), float(np.ceil(ite_all_red(kmh, width_m) * 2.0) / 2.0)


def with_ite_clearances(ts: ModuleType, network: Network) -> Network:
    """The network with every intersection's ``yellow_s`` and ``all_red_s`` from the ITE formulas."""
    inters = []
    for x in network.intersections:
        speed = float(max(network.lane_speed[list(x.in_lanes)])) if x.in_lanes else 13.9
        y, r = ite_clearance(speed, crossing_width(ts, x.id))
        inters.append(replace(x, yellow_s=y, all_red_s=r))
    return replace(network, intersections=tuple(inters))


def check_timing(ts: ModuleType, min_green: float = 5.0, walk: float = 7.0, ped_speed: float = 1.2) -> list[dict]:
    """Every rule a running scenario's own signal programs break.

    Rules: yellow within 3-6 s and not shorter than the ITE change interval of the fastest
    approach; all-red not shorter than the ITE red clearance (when the program has none, a
    finding); every green at least ``min_green``; a crossing's walk at least ``walk``, and after
    it ends no vehicle movement that is never green with it turns green before the crossing's
    length at ``ped_speed`` has passed (the rules the actuator and the safety monitor apply).
    """
    from sim.program import ProgramPhase

    if ped_speed <= 0 or walk < 0:
        raise ValueError(f"walk must be >= 0 and ped_speed > 0, got walk={walk:g}, ped_speed={ped_speed:g}")
    found = []
    for t in ts.trafficlight.getIDList():
        logic = ts.trafficlight.getAllProgramLogics(t)
        if not logic:
            continue
        phases = [ProgramPhase(p.state, p.duration, p.minDur) for p in logic[0].phases]
        links = ts.trafficlight.getControlledLinks(t)
        speeds = [ts.lane.getMaxSpeed(lk[0][0]) for lk in links if lk and not lk[0][0].startswith(":")]
        speed = max(speeds) if speeds else 13.9
        y_need, r_need = ite_clearance(speed, crossing_width(ts, t))
        crossing = {k: ts.lane.getLength(lk[0][1]) for k, lk in enumerate(links)
                    if lk and is_crossing_lane(ts, lk[0][1])}
        n = len(phases)
        for k, p in enumerate(phases):
            where = f"{t} phase {k} ({p.state})"
            if p.is_yellow:
                if p.duration < 3.0 or p.duration > 6.0:
                    found.append({"tls": t, "phase": k, "rule": "yellow 3-6 s", "have": p.duration, "need": "3-6",
                                  "detail": where})
                elif p.duration + 1e-9 < y_need:
                    found.append({"tls": t, "phase": k, "rule": f"ITE yellow at {speed * 3.6:.0f} km/h",
                                  "have": p.duration, "need": round(y_need, 2), "detail": where})
                nxt = phases[(k + 1) % n]
                red = nxt.duration if nxt.is_red else 0.0
                if red + 1e-9 < r_need:
                    found.append({"tls": t, "phase": k, "rule": "ITE all-red after yellow", "have": red,
                                  "need": r_need, "detail": where})
            elif p.is_green:
                if p.duration + 1e-9 < min_green:
                    found.append({"tls": t, "phase": k, "rule": f"minimum green {min_green:g} s", "have": p.duration,
                                  "need": min_green, "detail": where})
        found += _pedestrian_findings(t, phases, crossing, walk, ped_speed)
    return found


def _pedestrian_findings(t: str, phases: list, crossing: dict[int, float], walk: float,
                         ped_speed: float) -> list[dict]:
    """Walk and pedestrian-clearance findings of one program, run as a cycle."""
    found = []
    n = len(phases)
    greens = [frozenset(i for i, c in enumerate(p.state) if c in "Gg") for p in phases]
    prio = [frozenset(i for i, c in enumerate(p.state) if c == "G") for p in phases]
    conflicts = crosswalk_conflicts(greens, crossing)
    protected = crosswalk_conflicts(priority_sets([p.state for p in phases], crossing), crossing)
    for c, length in crossing.items():
        conflicting = conflicts[c]
        for k in range(n):
            if c not in greens[k] or c in greens[k - 1]:
                continue  # not where a walk starts
            span, j = 0.0, k
            while c in greens[j % n] and j < k + n:
                span += phases[j % n].duration
                j += 1
            where = f"{t} crossing link {c} walk from phase {k}"
            if span + 1e-9 < walk:
                found.append({"tls": t, "phase": k, "rule": f"pedestrian walk {walk:g} s", "have": span,
                              "need": walk, "detail": where})
            clear, need = 0.0, length / ped_speed
            for m in range(j, j + n):
                if greens[m % n] & conflicting or prio[m % n] & protected[c]:
                    break  # a conflicting green, or priority for a link that yields beside the walk
                clear += phases[m % n].duration
            if clear + 1e-9 < need:
                found.append({"tls": t, "phase": (j - 1) % n, "rule": f"pedestrian clearance at {ped_speed:g} m/s",
                              "have": clear, "need": round(need, 1), "detail": where})
    return found


def is_crossing_lane(ts: ModuleType, lane: str) -> bool:
    """True for the lane of a pedestrian crossing (an edge of function ``crossing``)."""
    try:
        return ts.edge.getFunction(ts.lane.getEdgeID(lane)) == "crossing"
    except Exception:  # older TraCI without edge.getFunction
        return "_c" in lane and lane.startswith(":")
