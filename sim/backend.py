"""The SUMO bridge: start a scenario, read its signals and lanes, step, set signal states.

libsumo (in-process, fast) by default; ``gui=True`` runs sumo-gui through TraCI. Both expose the
same API, so everything above this module is unaware of which one runs. Lane readings come
from subscriptions, fetched once per step.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import numpy as np
import traci.constants as tc

from wire.errors import SimulatorError
from brain.model import Intersection, Network, Readings, is_green, pack_approach
from brain.timing import Timing
from sim.camera import VEHICLE_VARS
from sim.clearance import is_crossing_lane
from sim.program import ProgramPhase, green_phases, merge_walk_phases
from sim.rules import Applied, apply_rules
from sim.scenario import Scenario
from sim.stopline import StopLines, stopline_detectors
from sim.sumocfg import sumo_binary, write_run_config

__all__ = ["SumoBackend", "SumoError", "sumo_command"]

log = logging.getLogger(__name__)

_LANE_VARS = (tc.LAST_STEP_VEHICLE_NUMBER, tc.LAST_STEP_VEHICLE_HALTING_NUMBER, tc.LAST_STEP_VEHICLE_ID_LIST)


HALT_SPEED = 0.1
"""SUMO's halting speed (m/s): a vehicle slower than this is in the queue, not approaching it."""
DETECT_M = 200.0
"""How far upstream of the stop line (and downstream of the junction) lanes are sensed (m)."""

_YIELDING = frozenset("msw")
"""SUMO link states that yield at an unsignalised junction: minor link (a side street, or a turn
across oncoming traffic), stop sign, all-way stop. Right-before-left (``=``) and zipper (``Z``)
links, where no road has the right of way, stay in the zone."""


class SumoError(SimulatorError):
    """SUMO failed to start or died during a run."""


def sumo_command(scenario: Scenario, run_dir: Path, *, seed: int, gui: bool = False, tripinfo: Path | None = None,
                 end: float | None = None, step_length: float | None = None, additional: Sequence[Path] = (),
                 extra: Sequence[str] = ()) -> list[str]:
    """The SUMO command line for a measured run (RESCO settings: no teleports, unfinished trips).

    The configuration it loads is written into ``run_dir`` (:func:`sim.sumocfg.write_run_config`):
    the scenario's own options, its outputs sent into ``run_dir``, TraCI options left out."""
    cfg = write_run_config(scenario.option_map, run_dir, gui=gui, extra_additional=additional)
    cmd = [sumo_binary(gui), "-c", str(cfg), "--seed", str(seed), "--random", "false", "--time-to-teleport", "-1",
           "--no-step-log", "true", "--no-warnings", "true", "--duration-log.disable", "true"]
    if end is not None:
        cmd += ["--end", f"{end:.17g}"]
    if step_length is not None:
        cmd += ["--step-length", f"{step_length:.17g}"]
    if tripinfo is not None:
        cmd += ["--tripinfo-output", str(tripinfo), "--tripinfo-output.write-unfinished", "true",
                "--tripinfo-output.write-undeparted", "true"]
    return cmd + list(extra)


class SumoBackend:
    """One running SUMO instance.

    Args:
        scenario: a checked scenario.
        seed: SUMO's random seed.
        gui: run sumo-gui (always through TraCI).
        tripinfo: where SUMO writes its tripinfo (needed for measurement).
        run_dir: the run's folder (its configuration and the scenario's own outputs go there); a
            temporary one, removed on :meth:`close`, when ``None``.
        end: the run's end (s), passed to SUMO (``None``: the configuration's).
        step_length: SUMO's step (s; ``None``: the configuration's).
        additional: further additional files (the report's edge data, say).
        extra: further SUMO options.
        use_traci: talk to SUMO over TraCI (a separate process) instead of libsumo.
    """

    def __init__(self, scenario: Scenario, *, seed: int = 1, gui: bool = False,
                 tripinfo: Path | None = None, run_dir: Path | None = None, end: float | None = None,
                 step_length: float | None = None, additional: Sequence[Path] = (), extra: Sequence[str] = (),
                 detect_m: float = DETECT_M, use_traci: bool = False) -> None:
        self.scenario = scenario
        self.detect_m = detect_m
        self._tmp = None
        if run_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="citybrain-sumo-")
            run_dir = Path(self._tmp.name)
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._gui = gui
        det_file, self._det_of = stopline_detectors(scenario.net, self.run_dir)
        self._cmd = sumo_command(scenario, self.run_dir, seed=seed, gui=gui, tripinfo=tripinfo, end=end,
                                 step_length=step_length, additional=[*additional, det_file], extra=extra)
        self._traci = gui or use_traci
        self._step_length = step_length or scenario.step_length
        self.applied: dict[str, Applied] = {}
        """Per controlled signal, the transitions and clearances the applied rules give it."""
        self._ts: ModuleType | None = None
        self._now = float("nan")
        self._lanes: tuple[str, ...] = ()
        self._tls: tuple[str, ...] = ()
        self._counts = StopLines((), {}, {}, self._det_of)
        self._id_lanes: list[str] = []
        self._zone_of: dict[str, tuple[str, ...]] = {}  # controlled lane -> SUMO lanes sensed for it
        # incoming controlled lane -> {zone lane: metres from that lane's end to the stop line}
        self._zone_off: dict[str, dict[str, float]] = {}
        self._approach_of: list[list[tuple[int, float, float, float]]] = []
        self._lane_res: dict = {}
        self._sensed: list[str] = []
        self._weights = np.zeros((0, 0))
        self._veh = self._halt = np.zeros(0)  # per sensed lane, as of the last step
        self._halt_key: tuple[int, ...] | None = None
        self._halt_row = np.zeros(0)
        self._evs: set[str] = set()
        self._links: dict[str, list] = {}
        self._lane_index: dict[str, int] | None = None
        self.emergency_reach_m = 1000.0

    # -- life cycle ---------------------------------------------------------------------
    def start(self) -> None:
        if self._gui and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            raise SumoError("--gui needs a display (DISPLAY is not set); run without --gui, or under xvfb-run")
        if self._traci:
            import traci as ts

            start = lambda cmd: ts.start(cmd, numRetries=20)  # noqa: E731  (a GUI that dies is not waited for)
        else:
            import libsumo as ts

            start = ts.start
        try:
            start(self._cmd)
        except (ts.TraCIException, ts.FatalTraCIError, OSError) as e:  # SUMO reports config errors this way
            raise SumoError(f"{self.scenario.path}: SUMO could not start ({_first_line(e)})") from None
        self._ts = ts
        self._now = float(ts.simulation.getTime())
        self._step_length = float(ts.simulation.getDeltaT())

    def close(self) -> None:
        if self._ts is not None:
            try:
                self._ts.close()
            except (*self.errors, OSError) as e:  # closing a dead SUMO must not hide the original error
                log.warning("closing SUMO failed: %s", _first_line(e))
            self._ts = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> SumoBackend:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def ts(self) -> ModuleType:
        if self._ts is None:
            raise SumoError("SUMO is not running")
        return self._ts

    # -- reading the network ------------------------------------------------------------
    @property
    def time(self) -> float:
        """Simulation time after the last step (s)."""
        return self._now

    @property
    def step_length(self) -> float:
        """SUMO's step (s)."""
        return self._step_length

    @property
    def lanes(self) -> tuple[str, ...]:
        """The watched lanes, in the order of the readings."""
        return self._lanes

    @property
    def end(self) -> float | None:
        e = float(self.ts.simulation.getEndTime())
        return e if e >= 0 else None

    def program(self, tls: str) -> list[ProgramPhase]:
        """The phases of the program ``tls`` is running now."""
        current = self.ts.trafficlight.getProgram(tls)
        for logic in self.ts.trafficlight.getAllProgramLogics(tls):
            if logic.programID == current:
                flexible = logic.type != tc.TRAFFICLIGHT_TYPE_STATIC  # a static program ignores minDur
                return [ProgramPhase(p.state, float(p.duration),
                                     float(p.minDur if flexible and p.minDur > 0 else p.duration),
                                     float(p.maxDur) if flexible and p.maxDur > 0 else None)
                        for p in logic.phases]
        raise SumoError(f"traffic light {tls!r}: running program {current!r} not found")

    def crossings(self, tls: str) -> tuple[tuple[int, float], ...]:
        """The pedestrian crossings ``tls`` controls: ``(link index, crossing length m)``."""
        out = []
        for i, link in enumerate(self.ts.trafficlight.getControlledLinks(tls)):
            if link and is_crossing_lane(self.ts, link[0][1]):
                out.append((i, float(self.ts.lane.getLength(link[0][1]))))
        return tuple(out)

    def install_actuated(self, tls: str, min_green: float, max_green: float, program_id: str,
                         walk: float = 0.0) -> None:
        """Replace ``tls``'s program by SUMO's actuated control over the same phases.

        Each green may be extended up to twice its fixed-time split (the usual max-green
        setting), within ``[min_green, max_green]``; phases without a detector of their own run
        to that maximum. A green showing a crosswalk's walk lasts at least ``walk``; a green that
        follows a walk's end (the program's pedestrian clearance) keeps its programmed length.
        """
        tl = self.ts.trafficlight
        crossings = {i for i, _ in self.crossings(tls)}
        phases = []
        program = self.program(tls)
        for k, p in enumerate(program):
            if p.is_green:
                low = max(min_green, walk) if any(is_green(p.state[i]) for i in crossings) else min_green
                before = program[k - 1].state
                if any(is_green(before[i]) and not is_green(p.state[i]) for i in crossings):
                    low = max(low, p.duration)
                top = min(max(2.0 * p.duration, low), max(max_green, low))
                phases.append(tl.Phase(min(max(p.duration, low), top), p.state, low, top))
            else:
                phases.append(tl.Phase(p.duration, p.state, p.duration, p.duration))
        tl.setProgramLogic(tls, tl.Logic(program_id, tc.TRAFFICLIGHT_TYPE_ACTUATED, 0, phases))

    def install_program(self, tls: str, phases: Sequence[ProgramPhase]) -> None:
        """Run ``phases`` instead of ``tls``'s current program (same id, type and parameters), from
        the same point of its cycle: the phase that is showing, with the time it has left."""
        tl = self.ts.trafficlight
        current = tl.getProgram(tls)
        logic = next(lg for lg in tl.getAllProgramLogics(tls) if lg.programID == current)
        old = self.program(tls)
        k = tl.getPhase(tls)
        left = max(tl.getNextSwitch(tls) - self.ts.simulation.getTime(), 0.0)
        # the same phase in the new list: the k-th of the old phases that is still there
        index = _matching_index(old, list(phases), k)
        where = {i: _matching_index(old, list(phases), i) for i in range(len(old))}  # old index -> new
        came_from = {j: i for i, j in where.items()}
        new = []
        for j, p in enumerate(phases):
            src = logic.phases[came_from[j]] if j in came_from else None
            nxt = tuple(where.get(n, n) for n in src.next) if src is not None else ()  # phase jumps follow
            new.append(tl.Phase(p.duration, p.state, p.min_dur, p.max_dur if p.max_dur is not None else p.duration,
                                nxt, src.name if src is not None else ""))
        tl.setProgramLogic(tls, tl.Logic(current, logic.type, index, new, dict(logic.subParameter)))
        tl.setPhase(tls, index)
        tl.setPhaseDuration(tls, min(left + max(phases[index].duration - old[k].duration, 0.0), phases[index].duration))

    def network(self, timing: Timing | None = None) -> tuple[Network, dict[str, list[ProgramPhase]]]:
        """Build the controllers' model of every signal with at least two green phases, under the
        applied rules ``timing`` (:func:`sim.rules.apply_rules`; kept in :attr:`applied`).

        Returns the network and, for *every* traffic light, the program it runs now (as written).
        """
        timing = timing or Timing()
        tl = self.ts.trafficlight
        programs = {t: self.program(t) for t in tl.getIDList()}
        lane_ids: dict[str, int] = {}

        def idx(lane: str) -> int:
            return lane_ids.setdefault(lane, len(lane_ids))

        inters = []
        self.applied = {}
        for t, prog in programs.items():
            crossings = self.crossings(t)
            cross = frozenset(i for i, _ in crossings)
            greens = merge_walk_phases(green_phases(prog), set(cross))
            if len(greens) < 2:
                log.info("traffic light %s has %d green phase(s): left on its own program", t, len(greens))
                continue
            links = []
            controlled = tl.getControlledLinks(t)
            for i, link in enumerate(controlled):
                if link and i not in cross:
                    links.append((idx(link[0][0]), idx(link[0][1])))
                else:
                    links.append((-1, -1))
            ins = tuple(sorted({a for a, _ in links if a >= 0}))
            outs = tuple(sorted({b for _, b in links if b >= 0}))
            ite = self.ite(t) if timing.clearance == "ite" else None
            applied = apply_rules(greens, prog, cross, timing, ite)
            self.applied[t] = applied
            inters.append(Intersection(t, greens, tuple(links), ins, outs, applied.yellow, applied.all_red,
                                       crossings, applied.change))
        lanes = tuple(lane_ids)
        ins = {ln for x in inters for ln, _ in x.links if ln >= 0}
        outs = {ln for x in inters for _, ln in x.links if ln >= 0}
        zones, length = self._sense_zones(lanes, {lanes[i] for i in ins}, {lanes[i] for i in outs})
        self._zone_of = dict(zip(lanes, zones))
        speed = np.array([self.ts.lane.getMaxSpeed(x) for x in lanes], dtype=np.float64)
        feeds = self._feeds(lanes, ins, outs)
        return Network(tuple(inters), lanes, length, speed, feeds), programs

    def ite(self, tls: str) -> tuple[float, float]:
        """ITE yellow and all-red at ``tls`` (fastest approach, crossing width)."""
        from sim.clearance import crossing_width, ite_clearance

        speeds = [self.ts.lane.getMaxSpeed(lk[0][0]) for lk in self.ts.trafficlight.getControlledLinks(tls)
                  if lk and not lk[0][0].startswith(":")]
        return ite_clearance(max(speeds) if speeds else 13.9, crossing_width(self.ts, tls))

    def _feeds(self, lanes: tuple[str, ...], ins: set[int], outs: set[int],
               reach_m: float = 1500.0) -> tuple[tuple[int, int, float], ...]:
        """Which signal's incoming lanes each outgoing lane leads to, and how far (m).

        Follows lane connections downstream through unsignalised junctions until an incoming
        lane of a controlled signal (or ``reach_m`` metres).
        """
        lane_api = self.ts.lane
        index = {ln: i for i, ln in enumerate(lanes)}
        in_ids = {lanes[i] for i in ins}
        found = []
        for o in sorted(outs):
            start = lanes[o]
            frontier = [(start, lane_api.getLength(start))]
            seen = {start}
            while frontier:
                cur, dist = frontier.pop()
                if cur in in_ids:
                    found.append((o, index[cur], float(dist)))
                    continue
                if dist >= reach_m:
                    continue
                for link in lane_api.getLinks(cur):
                    nxt = link[0]
                    if nxt in seen or nxt.startswith(":"):
                        continue
                    seen.add(nxt)
                    frontier.append((nxt, dist + lane_api.getLength(nxt)))
        return tuple(found)

    def _sense_zones(self, lanes: tuple[str, ...], ins: set[str], outs: set[str]) -> tuple[list[tuple[str, ...]], np.ndarray]:
        """Per controlled lane, the SUMO lanes sensed for it and the zone's length.

        An incoming lane's zone extends upstream, an outgoing lane's downstream, through lane
        connections until ``detect_m`` metres or a lane that belongs to another signal. Upstream it
        follows only connections with the right of way: a vehicle waiting on a side street for a
        gap at an unsignalised junction is not in this signal's queue (counted in, it made the
        optimiser give green to a queue the signal cannot move: cologne3 20.39 -> 18.77 s).
        """
        lane_api = self.ts.lane
        succ: dict[str, list[str]] = {}
        pred: dict[str, list[str]] = {}
        for ln in lane_api.getIDList():
            if ln.startswith(":"):
                continue
            for link in lane_api.getLinks(ln):
                to, state = link[0], link[5]
                succ.setdefault(ln, []).append(to)
                if state not in _YIELDING:  # a side street waiting for a gap is not this signal's queue
                    pred.setdefault(to, []).append(ln)
        zones, extent = [], []
        self._zone_off = {}
        for ln in lanes:
            upstream = ln in ins
            graph, border = (pred, outs) if upstream else (succ, ins)
            own = lane_api.getLength(ln)
            zone, best = [ln], own
            offset = {ln: 0.0}
            if upstream:
                self._zone_off[ln] = offset
            frontier = [(ln, own)]
            while frontier:
                cur, dist = frontier.pop()
                if dist >= self.detect_m or (cur != ln and cur in border):
                    continue
                for nxt in graph.get(cur, ()):
                    if nxt in zone or nxt in lanes:
                        continue
                    d = dist + lane_api.getLength(nxt)
                    offset[nxt] = dist  # nxt ends where cur begins, ``dist`` from the stop line
                    zone.append(nxt)
                    best = max(best, d)
                    frontier.append((nxt, d))
            if upstream:  # vehicles waiting inside the junction still belong to their approach
                zone.extend(self._internal_lanes(ln))
            zones.append(tuple(zone))
            extent.append(min(best, max(self.detect_m, own)))
        return zones, np.array(extent, dtype=np.float64)

    def _internal_lanes(self, lane: str) -> list[str]:
        """The junction-internal lanes a vehicle leaving ``lane`` drives through."""
        found: list[str] = []
        todo = [link[4] for link in self.ts.lane.getLinks(lane) if link[4]]
        while todo:
            via = todo.pop()
            if via in found or not via.startswith(":"):
                continue
            found.append(via)
            todo.extend(link[4] or link[0] for link in self.ts.lane.getLinks(via))
        return found

    # -- per step -------------------------------------------------------------------------
    def watch(self, lanes: Sequence[str], tls: Sequence[str]) -> None:
        """Subscribe to the lanes' counts and the signals' shown states and program phases."""
        self._lanes = tuple(lanes)
        self._lane_index = None
        self._tls = tuple(tls)
        zones = [self._zone_of.get(ln, (ln,)) for ln in self._lanes]
        self._sensed = sorted({z for zone in zones for z in zone})
        col = {ln: j for j, ln in enumerate(self._sensed)}
        shared = np.zeros(len(self._sensed))
        for zone in zones:
            for z in zone:
                shared[col[z]] += 1
        # a sensed lane shared by k zones (upstream of a turn-pocket split) counts 1/k in each
        self._weights = np.zeros((len(zones), len(self._sensed)))
        for i, zone in enumerate(zones):
            for z in zone:
                self._weights[i, col[z]] = 1.0 / shared[col[z]]
        # stop-line counts: every lane of a watched lane's edge is watched (a lane change is no crossing)
        lane_api = self.ts.lane
        edge_of = {ln: lane_api.getEdgeID(ln) for ln in self._lanes}
        edge_lanes = {e: tuple(f"{e}_{k}" for k in range(self.ts.edge.getLaneNumber(e))) for e in set(edge_of.values())}
        self._counts = StopLines(self._lanes, edge_of, edge_lanes, self._det_of)
        self._id_lanes = sorted(set(self._sensed) | set(self._counts.id_lanes))
        sensed = set(self._sensed)
        for lane in self._id_lanes:
            lane_api.subscribe(lane, _LANE_VARS if lane in sensed else (tc.LAST_STEP_VEHICLE_ID_LIST,))
        for det in self._counts.detectors.values():
            self.ts.inductionloop.subscribe(det, (tc.LAST_STEP_VEHICLE_ID_LIST,))
        for t in self._tls:
            self.ts.trafficlight.subscribe(t, (tc.TL_RED_YELLOW_GREEN_STATE, tc.TL_CURRENT_PHASE))
        self._veh = self._halt = np.zeros(len(self._sensed))
        self._halt_key = None
        # per watched lane: (sensed column, metres from its end to the stop line, its length). A
        # vehicle upstream of a turn-pocket split is located whole in every zone it may enter (its
        # count there is 1/k): spread over the zones, the optimiser under-expected it (tuning half,
        # seeds 1-3: bologna-acosta 253.50 s against 242.22, crosswalk 19.73 against 18.64)
        self._approach_of = [[(col[z], off, lane_api.getLength(z)) for z, off in self._zone_off.get(ln, {}).items()
                              if z in col] for ln in self._lanes]

    def step(self) -> None:
        """Advance one simulation step and update the cumulative lane counters."""
        try:
            self.ts.simulationStep()
            self._now = float(self.ts.simulation.getTime())
        except self.errors as e:
            raise SumoError(f"SUMO died at t={self._now:g}: {_first_line(e)}") from None
        sim = self.ts.simulation
        for v in sim.getDepartedIDList():
            self.ts.vehicle.subscribe(v, VEHICLE_VARS)  # where it is, for ``Readings.approach``
            if self.ts.vehicle.getVehicleClass(v) == "emergency":
                self._evs.add(v)
        arrived = sim.getArrivedIDList()
        if self._evs:
            self._evs.difference_update(arrived)
        res = self._lane_res = self.ts.lane.getAllSubscriptionResults()
        self._veh = np.array([res[x][tc.LAST_STEP_VEHICLE_NUMBER] for x in self._sensed], dtype=np.float64)
        self._halt = np.array([res[x][tc.LAST_STEP_VEHICLE_HALTING_NUMBER] for x in self._sensed], dtype=np.float64)
        det_res = self.ts.inductionloop.getAllSubscriptionResults() if self._counts.detectors else {}
        self._counts.update({ln: res[ln][tc.LAST_STEP_VEHICLE_ID_LIST] for ln in self._counts.id_lanes},
                            {ln: det_res[d][tc.LAST_STEP_VEHICLE_ID_LIST] for ln, d in self._counts.detectors.items()},
                            set(arrived))

    def read(self) -> Readings:
        """Current lane readings (vehicles, queue, cumulative arrivals and departures, emergency vehicles)."""
        veh, halt = self._weights @ self._veh, self._weights @ self._halt
        approach, ptr = self._approach()
        return Readings(self.time, veh, halt, self._counts.arrivals.astype(np.float64),
                        self._counts.departures.astype(np.float64),
                        self._emergency(), approach, ptr)

    def _approach(self) -> tuple[np.ndarray, np.ndarray]:
        """Where each incoming lane's moving vehicles are: metres to the stop line and weight
        (see :attr:`brain.model.Readings.approach`). Vehicles inside the junction are past it."""
        res, vres = self._lane_res, self.ts.vehicle.getAllSubscriptionResults()
        where: dict[int, list[tuple[float, float]]] = {}  # per sensed column, (metres to its end, ...)
        per_lane = []
        for parts in self._approach_of:
            rows = []
            for col, off, length in parts:
                found = where.get(col)
                if found is None:
                    found = where[col] = []
                    r = res.get(self._sensed[col])
                    for v in (r[tc.LAST_STEP_VEHICLE_ID_LIST] if r else ()):
                        x = vres.get(v)
                        if x and x[tc.VAR_SPEED] >= HALT_SPEED:
                            found.append(length - x[tc.VAR_LANEPOSITION])
                rows.extend((off + d, 1.0) for d in found)
            per_lane.append(rows)
        return pack_approach(per_lane)

    def _emergency(self) -> tuple[tuple[int, int, float], ...]:
        """Upcoming signalised movements of every emergency vehicle within ``emergency_reach_m``."""
        if not self._evs:
            return ()
        if self._lane_index is None:
            self._lane_index = {ln: i for i, ln in enumerate(self._lanes)}
        index = self._lane_index
        out = []
        for v in sorted(self._evs):
            try:
                nxt = self.ts.vehicle.getNextTLS(v)
            except self.errors:  # it arrived between steps
                continue
            for tls, link, dist, _state in nxt:
                if dist > self.emergency_reach_m:
                    break
                links = self._links.get(tls)
                if links is None:
                    links = self._links[tls] = list(self.ts.trafficlight.getControlledLinks(tls))
                if link < len(links) and links[link]:
                    a, b = links[link][0][0], links[link][0][1]
                    if a in index and b in index:
                        out.append((index[a], index[b], float(dist)))
        return tuple(out)

    def lane_vehicles(self) -> list[tuple[str, ...]]:
        """The ids of the vehicles on each watched lane (the lane itself, not its zone), as of the
        last step."""
        return self._counts.lane_vehicles()

    def edge_departures(self) -> dict[str, int]:
        """Per edge of a watched lane: vehicles that have left it across its end since the start
        (every lane of the edge, controlled or not; lane changes and trips ending on it excluded)."""
        return dict(self._counts.edge_left)

    def pending_by_entry(self) -> dict[str, int]:
        """Vehicles due but not yet inserted (SUMO's insertion backlog), per the edge they enter on."""
        out: dict[str, int] = {}
        for v in self.ts.simulation.getPendingVehicles():
            try:
                route = self.ts.vehicle.getRoute(v)
            except self.errors:
                continue
            edge = route[0] if route else "?"
            out[edge] = out.get(edge, 0) + 1
        return out

    @property
    def errors(self) -> tuple[type[Exception], ...]:
        """What a call into SUMO raises when it fails (TraCI's two kinds, recoverable and fatal)."""
        ts = self._ts
        if ts is None:
            import libsumo

            ts = libsumo
        return ts.TraCIException, ts.FatalTraCIError

    def halting_on(self, lanes: Sequence[int]) -> float:
        """Halted vehicles in the sensing zones of ``lanes`` (indices into the network's lanes)."""
        key = tuple(lanes)
        if self._halt_key != key:
            self._halt_key, self._halt_row = key, self._weights[list(key)].sum(axis=0)
        return float(self._halt_row @ self._halt)

    def shown_states(self) -> dict[str, str]:
        """The state each watched signal showed during the last step."""
        res = self.ts.trafficlight.getAllSubscriptionResults()
        return {t: res[t][tc.TL_RED_YELLOW_GREEN_STATE] for t in self._tls}

    def shown_phases(self) -> dict[str, tuple[str, int]]:
        """The state and program phase index each watched signal showed during the last step."""
        res = self.ts.trafficlight.getAllSubscriptionResults()
        return {t: (res[t][tc.TL_RED_YELLOW_GREEN_STATE], int(res[t][tc.TL_CURRENT_PHASE])) for t in self._tls}

    def set_state(self, tls: str, state: str) -> None:
        self.ts.trafficlight.setRedYellowGreenState(tls, state)


def _matching_index(old: list[ProgramPhase], new: list[ProgramPhase], k: int) -> int:
    """Index in ``new`` of ``old[k]`` (phases may have been inserted, never removed)."""
    j = 0
    for i, p in enumerate(old):
        while j < len(new) and new[j].state != p.state:
            j += 1
        if i == k:
            return min(j, len(new) - 1)
        j += 1
    return 0


def _first_line(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0]
