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
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from brain.controllers import Controller, NativeController, make
from brain.model import Network, SignalStatus, is_green
from brain.timing import Timing
from sim.backend import SumoBackend, SumoError
from sim.gridlock import EVERY_S, GridlockWatch
from sim.measure import read_tripinfo
from sim.program import ProgramPhase, min_spans
from sim.safety import SafetyMonitor, SafetyRules
from sim.scenario import Scenario
from sim.signal import SignalMachine

__all__ = ["RunRecord", "Stop", "run_scenario"]

log = logging.getLogger(__name__)

Progress = Callable[[float, float], None]
"""Called with (simulated seconds done, simulated seconds in all)."""


@dataclass
class RunRecord:
    """The result of one run; ``asdict`` gives the JSON record."""

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

    def to_dict(self) -> dict:
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, float) and not math.isfinite(v):
                d[k] = None
        return d


class Stop(Exception):
    """Raised by an ``on_step`` hook to end a run early (a signal to the process, say): the record
    keeps what was measured until then, with this as its ``error``."""


def _native_rules(program: list[ProgramPhase], crossings: tuple[tuple[int, float], ...], timing: Timing) -> SafetyRules:
    min_green, min_yellow = min_spans(program, frozenset(i for i, _ in crossings))
    greens = tuple(frozenset(i for i, c in enumerate(p.state) if is_green(c)) for p in program)
    return SafetyRules(greens, min_green if math.isfinite(min_green) else 0.0,
                       min_yellow if math.isfinite(min_yellow) else 0.0, 0.0,
                       tuple((i, timing.ped_clearance(length)) for i, length in crossings), timing.walk,
                       tuple(p.state for p in program))


def _status(machines: list[SignalMachine], now: float) -> SignalStatus:
    return SignalStatus(
        phase=np.array([m.phase for m in machines], dtype=np.int64),
        green_time=np.array([m.green_time(now) for m in machines], dtype=np.float64),
        in_transition=np.array([m.in_transition for m in machines], dtype=bool),
    )


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
    on_step: Callable[[SumoBackend], None] | None = None,
) -> RunRecord:
    """Run ``scenario`` under ``controller`` and measure it.

    Args:
        scenario: a checked scenario.
        controller: a registry name or a controller instance.
        seed: SUMO's seed.
        timing: the rules the actuator enforces (defaults: RESCO's 10 s decisions, 3 s yellow).
        gui: watch it in sumo-gui (through TraCI).
        out_dir: where SUMO's tripinfo is kept; a temporary folder when ``None``.
        end: stop earlier than the scenario's own end (s of simulation time).
        progress: called every simulated minute.
        use_traci: run SUMO as a separate process over TraCI (as ``gui`` does) instead of libsumo.
        extra: further SUMO options (e.g. ``--step-length``).
        on_step: called with the backend after every simulation step (camera feeds); raising
            :class:`Stop` ends the run there.

    Returns:
        The run's record. If SUMO dies mid-run the record carries ``error`` and the figures of
        the trips written until then (``complete`` False); nothing raises after SUMO started.
    """
    ctrl = make(controller) if isinstance(controller, str) else controller
    timing = timing or Timing()
    tmp = None
    if out_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="citybrain-run-")
        out_dir = Path(tmp.name)
    out_dir.mkdir(parents=True, exist_ok=True)
    tripinfo = out_dir / "tripinfo.xml"
    t_wall = time.perf_counter()
    backend = SumoBackend(scenario, seed=seed, gui=gui, tripinfo=tripinfo, use_traci=use_traci, extra=extra)
    backend.start()
    state = _Loop(backend, ctrl, timing, on_step)
    error = None
    try:
        state.run(end, progress)
    except SumoError as e:
        error = str(e)
        log.error("%s under %s (seed %d): %s", scenario.name, ctrl.name, seed, e)
    except Stop as e:
        error = f"{e} at t={state.begin + state.simulated:g}"
        log.warning("%s under %s (seed %d): %s", scenario.name, ctrl.name, seed, error)
    except Exception as e:  # a SUMO call failing outside step(), or a controller bug: keep the results
        error = f"{type(e).__name__} at t={state.begin + state.simulated:g}: {e}"
        log.exception("%s under %s (seed %d) failed", scenario.name, ctrl.name, seed)
    finally:
        backend.close()
    trips = read_tripinfo(tripinfo)
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
        safety_violations=state.monitor.violations if state.monitor else 0,
        decisions=state.decisions,
        wall_s=time.perf_counter() - t_wall,
        refused_requests=sum(m.refused for m in state.machines),
        max_outs=sum(m.max_outs for m in state.machines),
        switches=sum(m.switches for m in state.machines),
        sim_s=state.simulated,
        intersections=len(state.network.intersections) if state.network else 0,
        violation_kinds=dict(state.monitor.counts) if state.monitor else {},
        complete=error is None and trips.complete,
        error=error,
        ev_trips=trips.ev_trips,
        ev_avg_trip_time_s=trips.ev_avg_trip_time_s,
        ev_avg_delay_s=trips.ev_avg_delay_s,
        others_avg_delay_s=trips.others_avg_delay_s,
        ped_trips=trips.ped_trips,
        ped_avg_delay_s=trips.ped_avg_delay_s,
        gridlocks=list(state.gridlock.events) if state.gridlock else [],
    )
    invalid = sum(m.invalid for m in state.machines)
    if invalid:
        log.warning("%s asked %d times for a phase a signal does not have (refused)", ctrl.name, invalid)
    if state.monitor and state.monitor.kept:
        for v in state.monitor.kept[:5]:
            log.error("safety violation at t=%g on %s: %s (%s)", v.time, v.tls, v.kind, v.detail)
    if tmp is not None:
        tmp.cleanup()
    return rec


class _Loop:
    """The per-step machinery of one run (kept apart so errors can still report its counters)."""

    def __init__(self, backend: SumoBackend, controller: Controller, timing: Timing,
                 on_step: Callable[[SumoBackend], None] | None = None) -> None:
        self.backend = backend
        self.on_step = on_step
        self.controller = controller
        self.timing = timing
        self.machines: list[SignalMachine] = []
        self.monitor: SafetyMonitor | None = None
        self.network: Network | None = None
        self.decisions = 0
        self.begin = backend.time
        self.simulated = 0.0
        self._queue_sum = 0.0
        self._queue_steps = 0
        self.gridlock: GridlockWatch | None = None

    @property
    def mean_queue(self) -> float:
        """Mean halted vehicles per controlled incoming lane (its whole approach zone), over the run."""
        return self._queue_sum / self._queue_steps if self._queue_steps else float("nan")

    def _setup(self) -> None:
        b, timing = self.backend, self.timing
        network, programs = b.network()
        native = isinstance(self.controller, NativeController)
        if native and self.controller.program == "actuated":
            for x in network.intersections:
                b.install_actuated(x.id, timing.min_green, timing.max_green, "citybrain-actuated", timing.walk)
                programs[x.id] = b.program(x.id)
        rules = {t: _native_rules(p, b.crossings(t), timing) for t, p in programs.items()}
        now = b.time
        if timing.clearance == "ite":
            from sim.clearance import with_ite_clearances

            network = with_ite_clearances(b.ts, network)
        if not native:
            for x in network.intersections:
                yellow, all_red = timing.yellow_of(x), timing.all_red_of(x)
                greens = tuple(frozenset(p.green_links) for p in x.phases)
                cross = tuple((i, timing.ped_clearance(length)) for i, length in x.crossings)
                rules[x.id] = SafetyRules(greens, timing.min_green, yellow, all_red, cross, timing.walk,
                                          tuple(p.state for p in x.phases))
                m = SignalMachine(x.phases, replace(timing, yellow=yellow, all_red=all_red), now, all_red=all_red,
                                  crossings=x.crossings)
                self.machines.append(m)
                b.set_state(x.id, m.state)
        self._sent = [m.state for m in self.machines]
        self.controller.reset(network, timing)
        self.network = network
        self.monitor = SafetyMonitor(rules)
        b.watch(network.lanes, list(programs))
        self._in_lanes = sorted({ln for x in network.intersections for ln in x.in_lanes})
        self.gridlock = GridlockWatch([x.id for x in network.intersections],
                                      [x.in_lanes for x in network.intersections])

    def run(self, end: float | None, progress: Progress | None) -> None:
        b = self.backend
        self._setup()
        begin = b.time
        stop = min(x for x in (end, b.end) if x is not None) if (end is not None or b.end is not None) else None
        if stop is None:
            raise SumoError(f"{b.scenario.config}: sets no <end> time; give one with --end")
        total = stop - begin
        interval = self.controller.interval or self.timing.step
        next_decision = begin
        next_report = begin + 60.0
        next_watch = begin + EVERY_S
        drive = bool(self.machines)
        now = begin
        n_in = max(len(self._in_lanes), 1)
        while now < stop:
            if drive:
                if now >= next_decision - 1e-9:
                    status = _status(self.machines, now)
                    wishes = self.controller.decide(b.read(), status)
                    for m, w in zip(self.machines, wishes):
                        m.request(now, int(w))
                    self.decisions += len(self.machines)
                    next_decision += interval
                for i, (x, m) in enumerate(zip(self.network.intersections, self.machines)):
                    shown = m.tick(now)
                    if shown != self._sent[i]:
                        b.set_state(x.id, shown)
                        self._sent[i] = shown
            b.step()
            if self.on_step is not None:
                self.on_step(b)
            for tls, shown in b.shown_states().items():
                self.monitor.observe(now, tls, shown)
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
            if progress is not None and now >= next_report:
                progress(self.simulated, total)
                next_report += 60.0
