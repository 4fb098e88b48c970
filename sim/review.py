"""What the monitor finds in a scenario's programs before a run, and which signals a controller
may therefore drive: the same for the sim, the exported network and the brain."""

from __future__ import annotations

from dataclasses import dataclass, replace

from brain.model import Network
from brain.timing import Timing
from sim.clearance import program_findings
from sim.program import ProgramPhase
from sim.rules import native_monitor_rules
from sim.safety import read_conflicts

__all__ = ["Review", "review_programs", "driven", "controlled_network"]


@dataclass(frozen=True)
class Review:
    """What the monitor finds in a scenario's programs as written, before a run.

    Attributes:
        conflicts: per signal, SUMO's right-of-way data (:func:`sim.safety.read_conflicts`).
        findings: the programs' own findings, judged by the profile (:func:`sim.clearance.program_findings`).
        unsafe: signals whose program's own greens conflict by that data, with the detail: no
            controller drives them (they keep their program, and what they show is the program's).
    """

    conflicts: dict
    findings: list[dict]
    unsafe: dict[str, str]


def review_programs(backend, programs: dict[str, list[ProgramPhase]], timing: Timing) -> Review:
    """:class:`Review` of the programs a running scenario has (the sim and the brain alike)."""
    crossings = {t: frozenset(i for i, _ in backend.crossings(t)) for t in programs}
    ite = {t: backend.ite(t) for t in programs} if timing.clearance == "ite" else {}
    conflicts = read_conflicts(backend.scenario.net, programs)
    as_written = replace(timing, protocol="citybrain")
    judged = {t: native_monitor_rules(as_written, p, crossings[t], ite.get(t)) for t, p in programs.items()}
    findings = program_findings(programs, judged, conflicts)
    unsafe = {}
    for f in findings:
        if f["rule"] == "conflicting-greens":
            unsafe.setdefault(f["tls"], f["detail"])
    return Review(conflicts, findings, unsafe)


def driven(network: Network, review: Review) -> Network:
    """The part of ``network`` a controller drives: every signal but the unsafe ones."""
    return replace(network, intersections=tuple(x for x in network.intersections if x.id not in review.unsafe))


def controlled_network(scenario, timing: Timing) -> Network:
    """The network a controller drives in ``scenario`` under ``timing``: what :mod:`sim.loop` hands
    the controller at the start of a run, read without running it (``citybrain export-network``)."""
    from sim.backend import SumoBackend

    with SumoBackend(scenario) as b:
        network, programs = b.network(timing)
        return driven(network, review_programs(b, programs, timing))
