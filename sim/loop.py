"""One closed-loop run: SUMO, the controller, the actuator, the safety monitor, the measurement.

Each step: the controller (when a decision is due) states its wishes, the actuator turns them
into legal states, SUMO advances, and the monitor checks the states SUMO showed. At the end the
tripinfo gives the trip figures. Native controllers (fixed-time, actuated) leave the signals
to SUMO, and the monitor watches them the same way.

Example:
    >>> rec = run_scenario(load_scenario("single"), "max-pressure", seed=1)   # doctest: +SKIP
    >>> rec.safety_violations                                                 # doctest: +SKIP
    0
"""

from __future__ import annotations

import logging
import math
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from brain.controllers import Controller, NativeController, make
from brain.model import Network, SignalStatus
from brain.timing import Timing
from sim.backend import SumoBackend, SumoError
from sim.gridlock import EVERY_S, GridlockWatch
from sim.measure import read_tripinfo
from sim.program import ProgramPhase
from sim.provenance import provenance
from sim.review import driven, review_programs
from sim.rules import monitor_rules, native_monitor_rules, native_program
from sim.safety import SafetyMonitor
from sim.scenario import Scenario
from sim.signal import SignalMachine

__all__ = ["RunRecord", "Stop", "run_scenario", "check_end", "CEILING_S", "MOST_NOT_INSERTED"]

log = logging.getLogger(__name__)

Progress = Callable[[float, float], None]
"""Called with (simulated seconds done, simulated seconds in all)."""

CEILING_S = 86_400.0
"""A scenario without an end runs until every vehicle due has arrived, at most this long."""

MOST_NOT_INSERTED = 0.5
"""A run in which more than this share of the vehicles due were never inserted is flagged."""

BACKLOG_EVERY_S = 60.0
"""How often the insertion backlog is read (simulated seconds)."""


@dataclass
class RunRecord:
    """The result of one run; ``asdict`` gives the JSON record.

    ``interventions`` lists what the controller did on its own to clear a jam (each ``{"tls",
    "time_s", "kind", "why"}``; see ``Controller.interventions``).

    ``safety_violations`` and ``violation_kinds`` count what a citybrain controller showed (the
    signals it drove); what SUMO's own programs showed (``fixed``, ``actuated``, and signals no
    controller drives) are the programs' findings, in ``program_findings``. ``warnings`` say
    why a figure may not be trusted (no signal controlled, most demand never inserted, nothing
    arrived, an end capped).
    """

    scenario: str
    controller: str
    seed: int
    avg_delay_s: float
    avg_trip_time_s: float
    avg_wait_s: float
    throughput: int
    vehicles: int
    mean_queue: float
    safety_violations: int
    decisions: int
    wall_s: float
    refused_requests: int = 0
    max_outs: int = 0
    switches: int = 0
    sim_s: float = 0.0
    intersections: int = 0
    violation_kinds: dict[str, int] = field(default_factory=dict)
    complete: bool = True
    error: str | None = None
    ev_trips: int = 0
    ev_avg_trip_time_s: float | None = None
    ev_avg_delay_s: float | None = None
    others_avg_delay_s: float | None = None
    ped_trips: int = 0
    ped_avg_delay_s: float | None = None
    gridlocks: list[dict] = field(default_factory=list)
    interventions: list[dict] = field(default_factory=list)
    not_inserted: int = 0
    insertion: dict = field(default_factory=dict)
    program_findings: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    provenance: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, float) and not math.isfinite(v):
                d[k] = None
        return d


class Stop(Exception):
    """Raised by an ``on_step`` hook to end a run early (a signal to the process, say): the record
    keeps what was measured until then, with this as its ``error``."""


def _status(machines: list[SignalMachine], now: float) -> SignalStatus:
    return SignalStatus(
        phase=np.array([m.phase for m in machines], dtype=np.int64),
        green_time=np.array([m.green_time(now) for m in machines], dtype=np.float64),
        in_transition=np.array([m.in_transition for m in machines], dtype=bool),
    )


def check_end(scenario: Scenario, end: float | None) -> None:
    """Raise ``ValueError`` for an ``--end`` that leaves nothing to run."""
    if end is None:
        return
    if not math.isfinite(end) or end < 0:
        raise ValueError(f"--end {end:g}: must be a time of day in seconds, at least 0")
    if end <= scenario.begin:
        raise ValueError(f"--end {end:g} is not after the scenario's begin {scenario.begin:g} "
                         f"({scenario.path.name}): nothing would run")


def run_scenario(
    scenario: Scenario,
    controller: str | Controller,
    *,
    seed: int = 1,
    timing: Timing | None = None,
    gui: bool = False,
    out_dir: Path | None = None,
    end: float | None = None,
    progress: Progress | None = None,
    use_traci: bool = False,
    extra: Sequence[str] = (),
    additional: Sequence[Path] = (),
    step_length: float | None = None,
    on_step: Callable[[SumoBackend], None] | None = None,
    options: dict | None = None,
) -> RunRecord:
    """Run ``scenario`` under ``controller`` and measure it.

    Args:
        scenario: a checked scenario.
        controller: a registry name or a controller instance.
        seed: SUMO's seed.
        timing: the rules every signal runs by (:mod:`sim.rules`; default: the ``citybrain``
            protocol under the MUTCD profile, RESCO's 10 s decisions).
        gui: watch it in sumo-gui (through TraCI).
        out_dir: the run's folder (SUMO's tripinfo, the run's configuration, the scenario's own
            outputs); a temporary folder when ``None``.
        end: the end of the run (s of simulation time); ``None``: the scenario's, or, where it
            has none, until every vehicle due has arrived (at most :data:`CEILING_S`).
        progress: called every simulated minute.
        use_traci: run SUMO as a separate process over TraCI (as ``gui`` does) instead of libsumo.
        extra: further SUMO options.
        additional: further additional files (the report's edge data).
        step_length: SUMO's step (s); ``None``: the scenario's own.
        on_step: called with the backend after every simulation step (camera feeds); raising
            :class:`Stop` ends the run there.
        options: the controller's options, for the record's provenance.

    Returns:
        The run's record. If SUMO dies mid-run the record carries ``error`` and the figures of
        the trips written until then (``complete`` False); nothing raises after SUMO started.

    libsumo keeps some state from one simulation to the next in one process (a run after a
    Bologna run measures a little differently): figures meant to be compared are made one run per
    process, as ``citybrain bench`` does.
    """
    check_end(scenario, end)
    ctrl = make(controller) if isinstance(controller, str) else controller
    timing = timing or Timing()
    tmp = None
    if out_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="citybrain-run-")
        out_dir = Path(tmp.name)
    out_dir.mkdir(parents=True, exist_ok=True)
    tripinfo = out_dir / "tripinfo.xml"
    t_wall = time.perf_counter()
    open_ended = end is None and scenario.end is None
    sumo_end = end if end is not None else (scenario.begin + CEILING_S if open_ended else None)
    more = ["--route-steps", "0"] if open_ended else []  # every vehicle known from the start: "all arrived" is exact
    backend = SumoBackend(scenario, seed=seed, gui=gui, tripinfo=tripinfo, run_dir=out_dir, end=sumo_end,
                          step_length=step_length, additional=additional, use_traci=use_traci,
                          extra=[*more, *extra])
    if open_ended:
        log.warning("%s sets no <end>: running until every vehicle due has arrived, at most until t=%g "
                    "(give --end to choose)", scenario.path.name, sumo_end)
    try:
        backend.start()
    except BaseException:
        backend.close()
        if tmp is not None:
            tmp.cleanup()
        raise
    state = _Loop(backend, ctrl, timing, on_step, open_ended)
    state.end_reason = "--end" if end is not None else ("ceiling" if open_ended else "config")
    error = None
    try:
        state.run(sumo_end, progress)
    except SumoError as e:
        error = str(e)
        state.end_reason = "error"
        log.error("%s under %s (seed %d): %s", scenario.name, ctrl.name, seed, e)
    except Stop as e:
        error = f"{e} at t={state.begin + state.simulated:g}"
        state.end_reason = "stopped"
        log.warning("%s under %s (seed %d): %s", scenario.name, ctrl.name, seed, error)
    except Exception as e:  # a SUMO call failing outside step(), or a controller bug: keep the results
        error = f"{type(e).__name__} at t={state.begin + state.simulated:g}: {e}"
        state.end_reason = "error"
        log.exception("%s under %s (seed %d) failed", scenario.name, ctrl.name, seed)
    finally:
        state.read_backlog()
        step = backend.step_length
        backend.close()
    trips = read_tripinfo(tripinfo)
    mon = state.monitor
    ours = mon.count_for(state.driven) if mon else 0
    kinds = {}
    if mon:
        for (t, kind), n in mon.by_signal.items():
            if t in state.driven:
                kinds[kind] = kinds.get(kind, 0) + n
    rec = RunRecord(
        scenario=scenario.name,
        controller=ctrl.name,
        seed=seed,
        avg_delay_s=trips.avg_delay_s,
        avg_trip_time_s=trips.avg_trip_time_s,
        avg_wait_s=trips.avg_wait_s,
        throughput=trips.arrived,
        vehicles=trips.vehicles,
        mean_queue=state.mean_queue,
        safety_violations=ours,
        decisions=state.decisions,
        wall_s=time.perf_counter() - t_wall,
        refused_requests=sum(m.refused for m in state.machines),
        max_outs=sum(m.max_outs for m in state.machines),
        switches=sum(m.switches for m in state.machines),
        sim_s=state.simulated,
        intersections=state.controlled,
        violation_kinds=kinds,
        complete=error is None and trips.complete,
        error=error,
        ev_trips=trips.ev_trips,
        ev_avg_trip_time_s=trips.ev_avg_trip_time_s,
        ev_avg_delay_s=trips.ev_avg_delay_s,
        others_avg_delay_s=trips.others_avg_delay_s,
        ped_trips=trips.ped_trips,
        ped_avg_delay_s=trips.ped_avg_delay_s,
        gridlocks=list(state.gridlock.events) if state.gridlock else [],
        interventions=list(getattr(ctrl, "interventions", ())),
        not_inserted=trips.not_inserted,
        insertion=state.insertion(trips),
        program_findings=state.findings(),
        provenance=provenance(scenario, seed=seed, timing=timing, begin=state.begin,
                              end=state.begin + state.simulated, end_reason=state.end_reason,
                              step_length=step, controller=ctrl.name, options=options),
    )
    rec.warnings = _warnings(rec, state, scenario)
    for w in rec.warnings:
        log.info("%s under %s (seed %d): %s", scenario.name, ctrl.name, seed, w)
    invalid = sum(m.invalid for m in state.machines)
    if invalid:
        log.warning("%s asked %d times for a phase a signal does not have (refused)", ctrl.name, invalid)
    if mon:
        for v in [v for v in mon.kept if v.tls in state.driven][:5]:
            log.error("safety violation at t=%g on %s: %s (%s)", v.time, v.tls, v.kind, v.detail)
    if tmp is not None:
        tmp.cleanup()
    return rec


def _warnings(rec: RunRecord, state: _Loop, scenario: Scenario) -> list[str]:
    """Why the record's figures may not be trusted, one line each."""
    out = list(state.notes)
    if state.network is not None and not state.network.intersections:
        out.append("no signal with two or more green phases: nothing was controlled (the figures are the "
                   "scenario's own programs)")
    if rec.vehicles == 0 and rec.error is None:
        out.append("no vehicle was due in the simulated window: an empty run")
    elif rec.vehicles and rec.not_inserted > MOST_NOT_INSERTED * rec.vehicles:
        out.append(f"{rec.not_inserted:,} of {rec.vehicles:,} vehicles due were never inserted (no room to "
                   "enter): most of the demand is not in the figures")
    if rec.vehicles and rec.throughput == 0 and rec.error is None:
        out.append(f"none of the {rec.vehicles:,} vehicles arrived")
    if state.end_reason == "ceiling":
        out.append(f"{scenario.path.name} sets no <end> and vehicles were still under way at the ceiling "
                   f"t={state.begin + state.simulated:g}: the run was cut there")
    return out


class _Loop:
    """The per-step machinery of one run (kept apart so errors can still report its counters)."""

    def __init__(self, backend: SumoBackend, controller: Controller, timing: Timing,
                 on_step: Callable[[SumoBackend], None] | None = None, open_ended: bool = False) -> None:
        self.backend = backend
        self.on_step = on_step
        self.controller = controller
        self.timing = timing
        self.machines: list[SignalMachine] = []
        self.monitor: SafetyMonitor | None = None
        self.network: Network | None = None
        self.driven: set[str] = set()
        self.decisions = 0
        self.begin = backend.time
        self.simulated = 0.0
        self.open_ended = open_ended
        self.end_reason = "config"
        self._queue_sum = 0.0
        self._queue_steps = 0
        self.gridlock: GridlockWatch | None = None
        self._static: list[dict] = []
        self.notes: list[str] = []
        self._drive: list = []
        self.controlled = 0
        self._backlog_max: dict[str, int] = {}
        self._backlog_end: dict[str, int] = {}

    @property
    def mean_queue(self) -> float:
        """Mean halted vehicles per controlled incoming lane (its whole approach zone), over the run."""
        return self._queue_sum / self._queue_steps if self._queue_steps else float("nan")

    def _setup(self) -> None:
        b, timing = self.backend, self.timing
        network, programs = b.network(timing)
        native = isinstance(self.controller, NativeController)
        crossings = {t: frozenset(i for i, _ in b.crossings(t)) for t in programs}
        ite = {t: b.ite(t) for t in programs} if timing.clearance == "ite" else {}
        review = review_programs(b, programs, timing)
        self._static = review.findings
        drive = network if native else driven(network, review)
        if not native:
            self.driven = {x.id for x in drive.intersections}
            for t, detail in review.unsafe.items():
                if any(x.id == t for x in network.intersections):
                    self.notes.append(f"signal {t}: its program's own greens conflict by SUMO's right-of-way "
                                      f"data ({detail}); left on its own program")
        running: dict[str, list[ProgramPhase]] = {}
        for t, prog in programs.items():
            if t in self.driven:
                continue
            new = native_program(prog, timing, ite.get(t))
            if new is not None:
                b.install_program(t, new)
            running[t] = new or list(prog)
        if native and self.controller.program == "actuated":
            for x in network.intersections:
                b.install_actuated(x.id, timing.min_green, timing.max_green, "citybrain-actuated", timing.walk)
                running[x.id] = b.program(x.id)
        rules = {t: native_monitor_rules(timing, running[t], crossings[t], ite.get(t)) for t in running}
        now = b.time
        self._drive = [x for x in drive.intersections if x.id in self.driven]
        self.controlled = len(drive.intersections)
        for x in self._drive:
            rules[x.id] = monitor_rules(timing, b.applied[x.id])
            m = SignalMachine(x.phases, timing, now, crossings=x.crossings, transitions=b.applied[x.id].transitions)
            self.machines.append(m)
            b.set_state(x.id, m.state)
        self._sent = [m.state for m in self.machines]
        self.controller.reset(drive, timing)
        self.network = network  # measured whoever drives: every controller is judged on the same signals
        self.monitor = SafetyMonitor(rules, review.conflicts)
        b.watch(network.lanes, list(programs))
        self._in_lanes = sorted({ln for x in network.intersections for ln in x.in_lanes})
        self.gridlock = GridlockWatch([x.id for x in network.intersections],
                                      [x.in_lanes for x in network.intersections])

    def findings(self) -> list[dict]:
        """The programs' own findings: as written (judged by the profile), and what SUMO's programs
        showed in the run (signals no citybrain controller drove)."""
        out = [dict(f, source="program as written") for f in self._static]
        if self.monitor:
            for (t, a, b, kind), n in sorted(self.monitor.by_phases.items()):
                if t not in self.driven:
                    out.append({"tls": t, "phases": [a, b], "rule": kind, "count": n, "source": "run"})
        return out

    def read_backlog(self) -> None:
        """Note the vehicles waiting to be inserted, per entry edge (a last reading at the end)."""
        try:
            pending = self.backend.pending_by_entry()
        except (SumoError, *self.backend.errors) as e:  # a SUMO that died: keep what was read before
            log.debug("insertion backlog not read: %s", e)
            return
        self._backlog_end = pending
        for e, n in pending.items():
            self._backlog_max[e] = max(self._backlog_max.get(e, 0), n)

    def insertion(self, trips) -> dict:
        """Demand that could not enter, per entry edge: vehicles waiting at the end and at most,
        and how long inserted vehicles waited to get in."""
        entries = trips.entries or {}
        edges = sorted(set(self._backlog_max) | {e for e, (k, d) in entries.items() if d > 0})
        by_entry = {e: {"waiting_at_end": self._backlog_end.get(e, 0), "waiting_max": self._backlog_max.get(e, 0),
                        "inserted": entries.get(e, (0, 0.0))[0],
                        "mean_insert_delay_s": round(entries.get(e, (0, 0.0))[1], 2)} for e in edges}
        return {"not_inserted": trips.not_inserted, "waiting_at_end": sum(self._backlog_end.values()),
                "by_entry": by_entry}

    def run(self, end: float | None, progress: Progress | None) -> None:
        b = self.backend
        self._setup()
        begin = b.time
        stop = min(x for x in (end, b.end) if x is not None) if (end is not None or b.end is not None) else None
        if stop is None:
            raise SumoError(f"{b.scenario.path}: sets no <end> time; give one with --end")
        total = stop - begin
        interval = self.controller.interval or self.timing.step
        next_decision = begin
        next_report = begin + 60.0
        next_watch = begin + EVERY_S
        next_backlog = begin + BACKLOG_EVERY_S
        drive = bool(self.machines)
        now = begin
        n_in = max(len(self._in_lanes), 1)
        while now < stop - 1e-9:
            if drive:
                if now >= next_decision - 1e-9:
                    status = _status(self.machines, now)
                    wishes = self.controller.decide(b.read(), status)
                    for m, w in zip(self.machines, wishes):
                        m.request(now, int(w))
                    self.decisions += len(self.machines)
                    next_decision += interval
                for i, (x, m) in enumerate(zip(self._drive, self.machines)):
                    shown = m.tick(now)
                    if shown != self._sent[i]:
                        b.set_state(x.id, shown)
                        self._sent[i] = shown
            b.step()
            if self.on_step is not None:
                self.on_step(b)
            for tls, (shown, phase) in b.shown_phases().items():
                self.monitor.observe(now, tls, shown, None if tls in self.driven else phase)
            now = b.time
            self.simulated = now - begin
            self._queue_sum += b.halting_on(self._in_lanes) / n_in
            self._queue_steps += 1
            if now >= next_watch:
                next_watch += EVERY_S
                for ev in self.gridlock.observe(now, b.lane_vehicles()):
                    log.warning("gridlock at signal %s: no vehicle has crossed its stop lines since t=%g "
                                "while vehicles wait (teleporting is off, so it may never clear)",
                                ev["tls"], ev["since_s"])
            if now >= next_backlog:
                next_backlog += BACKLOG_EVERY_S
                self.read_backlog()
            if self.open_ended and b.ts.simulation.getMinExpectedNumber() == 0:
                self.end_reason = "all arrived"
                break
            if progress is not None and now >= next_report:
                progress(self.simulated, total)
                next_report += 60.0
