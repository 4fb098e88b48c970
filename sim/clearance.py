"""Clearance intervals from the ITE formulas, per intersection, from the SUMO network.

Yellow from the fastest approach's speed limit (level grade: SUMO networks here carry no
grades), clamped to 3-6 s; all-red from the time to clear the junction (its widest extent
plus a 6 m vehicle) at that speed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from types import ModuleType

import numpy as np

from brain.hcm import ite_all_red, ite_yellow
from brain.model import Network
from brain.timing import Timing
from sim.program import ProgramPhase
from sim.rules import native_monitor_rules
from sim.safety import Conflicts, SafetyMonitor, SafetyRules

__all__ = ["crossing_width", "ite_clearance", "with_ite_clearances", "check_timing", "program_findings",
           "is_crossing_lane"]


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


def program_findings(programs: Mapping[str, Sequence[ProgramPhase]], rules: Mapping[str, SafetyRules],
                     conflicts: Mapping[str, Conflicts], cycles: int = 3) -> list[dict]:
    """What the safety monitor finds in each program run as written, cycle after cycle.

    Each program is played through a fresh :class:`sim.safety.SafetyMonitor` for ``cycles``
    cycles (each phase for its duration); the first cycle only sets the spans up. Returns one
    finding per signal, phase pair and rule: ``{tls, phases: [from, to], rule, detail}``.
    """
    out = []
    for t, program in programs.items():
        if not program or sum(p.duration for p in program) <= 0:
            continue
        mon = SafetyMonitor({t: rules[t]}, {t: conflicts[t]} if t in conflicts else {}, keep=10_000)
        now = 0.0
        for _ in range(cycles):
            for k, p in enumerate(program):
                mon.observe(now, t, p.state, k)
                now += p.duration
        seen: dict[tuple, dict] = {}
        for v in mon.kept:
            key = (v.tls, v.phases, v.kind)
            if key not in seen:
                seen[key] = {"tls": v.tls, "phases": list(v.phases) if v.phases else None, "rule": v.kind,
                             "detail": v.detail}
        out.extend(seen.values())
    return out


def check_timing(ts: ModuleType, timing: Timing | None = None, conflicts: Mapping[str, Conflicts] | None = None,
                 ) -> list[dict]:
    """Every rule a running scenario's own signal programs (the ones running now) break.

    Everything the safety monitor checks, from the programs alone (:func:`program_findings`,
    under ``timing``'s profile: yellow below its minimum, a green that ends without yellow, a
    protected turn made permissive without yellow where the profile asks for it, greens below the
    minimum, conflicting links going together, walks and pedestrian clearances), and the
    engineering checks: yellow within 3-6 s and not shorter than the ITE change interval of the
    fastest approach, all-red not shorter than the ITE red clearance. Each finding:
    ``{tls, phase, phases, rule, have, need, detail}``.
    """


    timing = replace(timing or Timing(), protocol="citybrain")
    found = []
    programs, rules = {}, {}
    for t in ts.trafficlight.getIDList():
        current = ts.trafficlight.getProgram(t)
        logic = next((lg for lg in ts.trafficlight.getAllProgramLogics(t) if lg.programID == current), None)
        if logic is None:
            continue
        phases = [ProgramPhase(p.state, p.duration, p.minDur) for p in logic.phases]
        links = ts.trafficlight.getControlledLinks(t)
        cross = frozenset(k for k, lk in enumerate(links) if lk and is_crossing_lane(ts, lk[0][1]))
        programs[t] = phases
        rules[t] = native_monitor_rules(timing, phases, cross)
        speeds = [ts.lane.getMaxSpeed(lk[0][0]) for lk in links if lk and not lk[0][0].startswith(":")]
        speed = max(speeds) if speeds else 13.9
        y_need, r_need = ite_clearance(speed, crossing_width(ts, t))
        n = len(phases)
        for k, p in enumerate(phases):
            if not p.is_yellow or phases[k - 1].is_yellow:
                continue
            where = f"{t} phase {k} ({p.state})"
            span = sum(phases[(k + m) % n].duration for m in range(n) if all(phases[(k + i) % n].is_yellow
                                                                              for i in range(m + 1)))
            if span < 3.0 or span > 6.0:
                found.append({"tls": t, "phase": k, "rule": "yellow 3-6 s", "have": span, "need": "3-6",
                              "detail": where})
            elif span + 1e-9 < y_need:
                found.append({"tls": t, "phase": k, "rule": f"ITE yellow at {speed * 3.6:.0f} km/h",
                              "have": span, "need": round(y_need, 2), "detail": where})
            m = k
            while phases[(m + 1) % n].is_yellow and (m + 1) % n != k:
                m += 1
            nxt = phases[(m + 1) % n]
            red = nxt.duration if nxt.is_red else 0.0
            if red + 1e-9 < r_need:
                found.append({"tls": t, "phase": k, "rule": "ITE all-red after yellow", "have": red,
                              "need": r_need, "detail": where})
    for f in program_findings(programs, rules, conflicts or {}):
        a, b = f["phases"] or (None, None)
        found.append({"tls": f["tls"], "phase": b, "phases": f["phases"], "rule": f["rule"], "have": None,
                      "need": None, "detail": f"{f['tls']} phase {a}->{b}: {f['detail']}"})
    return found


def is_crossing_lane(ts: ModuleType, lane: str) -> bool:
    """True for the lane of a pedestrian crossing (an edge of function ``crossing``)."""
    try:
        return ts.edge.getFunction(ts.lane.getEdgeID(lane)) == "crossing"
    except Exception:  # older TraCI without edge.getFunction
        return "_c" in lane and lane.startswith(":")
