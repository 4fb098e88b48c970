"""``mpc``: the rolling-horizon optimiser (model-predictive control over phase sequences).

Every ``interval`` seconds, for every intersection at once, the kernels in :mod:`brain._kernels`
search the phase sequences of the next ``horizon`` seconds (branch-and-bound, store-and-forward
queues, minimum/maximum green and lost time respected) and the first action of the cheapest plan
becomes the wish. With ``coordinate=True`` neighbours exchange plans: every intersection's plan
is turned into the discharges it will send downstream (turning shares estimated online from
the lane counts), which become the downstream intersections' predicted arrivals at the next
decision (and, with ``sweeps > 1``, in further sweeps of the same decision). It is off by
default: on the RESCO networks it measured worse (``benchmarks/results/README.md``).

This class only packs and unpacks arrays; the actuator still enforces every rule.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
from numba import get_num_threads

from brain import _kernels as K
from brain.controllers.base import Controller
from brain.controllers.registry import register
from brain.estimate import LaneEstimator
from brain.graph import CompiledNetwork, compile_network
from brain.joint import join_signals
from brain.model import Network, Readings, SignalStatus
from brain.timing import Timing

__all__ = ["Mpc", "MpcConfig"]

NO_SPILLBACK = 1e9
"""Capacity (vehicles) given to a lane that never limits its feeders' discharge (finite: the kernels
assume no infinities)."""


_NO_ROWS = np.zeros((0, 2))
_NO_PTR = np.zeros(1, dtype=np.int64)
"""Stand-ins for ``Readings.approach`` when the sensors do not locate vehicles (the kernel
ignores them then)."""

SAT_PRIOR_S = 60.0
"""Lane-seconds of discharge the prior saturation flow counts as (how soon measurements outweigh it)."""
SAT_TRUST_S = 120.0
"""Seconds of qualified discharge a lane needs before it speaks for its signal's saturation flow."""
SAT_RANGE = (0.35, 1.0)
"""Bounds of a learned saturation flow (veh/s per lane; 1,260-3,600 veh/h)."""
SAT_MEMORY_S = 900.0
"""Half-life (s) of the measured discharge behind a learned saturation flow."""


@dataclass(frozen=True)
class MpcConfig:
    """Settings of the optimiser.

    Attributes:
        interval: seconds between decisions. Each decision's first action (hold, or switch) lasts
            at least this long in the plan (rounded up to whole planning steps: 3 s plans it for
            two steps, 4 s): re-planned every 2 s, a signal kept saying "one more step" and then
            switching late (``sumorl-4x4``), every 3 s it commits a little longer; keep it at or
            below the minimum green.
        dt: planning step (s).
        horizon: planning horizon (s); at least twice the longest switch of any signal (its
            lost time and start-up plus the minimum green), so that a switch's cost and the green it buys both
            fall within it.
        depth: segments searched by branch-and-bound after the first action (the rest of the
            horizon is completed greedily).
        beam: after the first action, how many of the next phases (those with the largest
            weighted queues) are branched on at each depth (0: all of them).
        leaf_beam: at the last searched depth, how many of the next phases are branched on (0: as
            ``beam`` says). The leaves are only completed greedily, and the third-largest queue
            rarely decides a plan there: two of three take 0.82 of the search time at four
            phases and changed 50 of 92,000 first actions on captured decisions.
        sweeps: planning sweeps per decision. The first uses the neighbours' plans of the
            previous decision as upstream arrivals; each further sweep re-plans with the plans
            just made.
        coordinate: exchange planned discharges between neighbours at all (False: every
            intersection plans from its own measured arrival rates only).
        sat_flow: saturation flow of one lane at full green (veh/s).
        rate_halflife: half-life of the arrival-rate smoothing (s).
        max_wait: longest a queued lane may wait for green before its phase is forced next
            (s; ``None``: the timing's maximum green).
        wait_gain: how much a waiting lane's delay weighs more as it nears ``max_wait``.
        wait_cycle: a signal's ``max_wait`` is at least its own program's cycle (its phases' program
            greens and the timing rules' transitions): a lane may wait as long as the city's plan
            makes it wait. A four-phase signal whose program runs a 424 s cycle otherwise gets 12-26 s
            through greens, a third of its time in yellow (``sumorl-big``).
        permissive_wait: a lane that has a protected phase but is otherwise served only
            permissively (a left turn yielding to oncoming traffic), and holds a queue that lets
            nobody across for this long of its permissive green, gets its protected phase next (s; never more than
            ``max_wait``). Left-turners waiting inside a junction for a gap otherwise stay there
            while the crossing street gets green, and lock a clustered junction (cologne3's
            ``GS_cluster``).
        startup: start-up lost time (s): after a switch's yellow and all-red, a lane holding a
            standing queue starts discharging only this much later (its first vehicle has to reach
            the stop line), while a lane without one passes its arrivals at once.
        hysteresis: a signal switches only when the plan that switches costs less than the best
            plan that holds by more than this share (0.05: 5%): a model that is slightly wrong
            does not then flip between two nearly equal plans at every decision.
        learn_sat: estimate the saturation flow online from the stop-line counts of lanes that
            discharge a standing queue with the right of way and room downstream, past a green's
            first interval (``sat_flow`` is the prior; see ``sat_scope``).
        sat_scope: what one learned saturation flow covers: ``signal`` (one flow for all lanes of a
            signal: that of its best-measured lane, once a lane has 120 s of qualified discharge) or
            ``lane`` (each lane its own).
        vehicle_space: metres one queued vehicle takes on the downstream lane (spillback: a
            lane whose exits are full discharges nothing).
        stall_s: a green whose lanes hold a queue but let no vehicle across the stop line for
            this long is stalled (a vehicle stuck inside the junction, or its exits full): the
            signal then steps to the next phase in program order, so every movement gets its turn
            to clear the junction.
        box: at a signal whose exit into another signal stores no vehicle (a link shorter than
            ``vehicle_space``: two nodes of one crossing left as two signals), a lane with a
            standing queue on a protected green shown for two intervals and more that let no
            vehicle across its stop line in the last two intervals is planned to discharge
            nothing while it stays so: a vehicle bound for the other signal waits for its green
            inside this junction, in the way, and holding the green moves nobody (False: such a
            lane is planned at its saturation flow until the stall rule acts).
        join: plan as one the signals joined by a link that stores no vehicle (shorter than
            ``vehicle_space``) whose programs run in step (:mod:`brain.joint`): their phases are
            every combination of the members' phases, a movement into the link counting as green
            only where the movement out of it is green too, so the plan sends a vehicle into the
            link when the other signal lets it out (False: decided apart, see ``box``).
        fallback_s: after a stall the signal follows its own program (its phases in order, each
            for the program's green time) for this long before the optimiser takes it back; every
            such intervention is listed in the run's record (0: only the step to the next phase).
    """

    interval: float = 3.0
    dt: float = 2.0
    horizon: float = 60.0
    depth: int = 3
    beam: int = 0
    leaf_beam: int = 2
    sweeps: int = 1
    coordinate: bool = False
    sat_flow: float = 0.8
    rate_halflife: float = 120.0
    max_wait: float | None = None
    wait_gain: float = 1.0
    wait_cycle: bool = True
    permissive_wait: float = 60.0
    startup: float = 0.0
    hysteresis: float = 0.0
    learn_sat: bool = False
    sat_scope: str = "signal"
    vehicle_space: float = 7.5
    stall_s: float = 20.0
    fallback_s: float = 120.0
    box: bool = True
    join: bool = True

    def __post_init__(self) -> None:
        for f in ("interval", "dt", "horizon", "sat_flow", "rate_halflife"):
            if getattr(self, f) <= 0:
                raise ValueError(f"MpcConfig.{f} must be > 0, got {getattr(self, f)}")
        if self.hysteresis < 0:
            raise ValueError(f"MpcConfig.hysteresis must be >= 0, got {self.hysteresis}")
        if self.startup < 0:
            raise ValueError(f"MpcConfig.startup must be >= 0, got {self.startup}")
        if self.permissive_wait <= 0:
            raise ValueError(f"MpcConfig.permissive_wait must be > 0, got {self.permissive_wait}")
        if self.fallback_s < 0 or self.stall_s <= 0:
            raise ValueError("MpcConfig.stall_s must be > 0 and fallback_s >= 0")
        if self.sat_scope not in ("signal", "lane"):
            raise ValueError(f"MpcConfig.sat_scope must be 'signal' or 'lane', got {self.sat_scope!r}")
        if self.depth < 0 or self.sweeps < 1 or self.beam < 0 or self.leaf_beam < 0:
            raise ValueError("MpcConfig.depth, beam and leaf_beam must be >= 0 and sweeps >= 1")
        if self.horizon < self.dt:
            raise ValueError("MpcConfig.horizon must cover at least one planning step")

    @classmethod
    def from_mapping(cls, values: dict) -> MpcConfig:
        """Build from a mapping; unknown keys raise, and strings (from a command line) are converted
        to each field's type."""
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(f"unknown mpc key(s): {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        return cls(**{k: _convert(k, v, known[k].default) for k, v in values.items()})


def _convert(key: str, value, default):
    if not isinstance(value, str):
        return value
    text = value.strip().lower()
    try:
        if isinstance(default, bool):
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if default is None:
            return None if text == "none" else float(text)
        return type(default)(text)
    except ValueError:
        raise ValueError(f"mpc option {key}={value!r}: expected {type(default).__name__ if default is not None else 'a number or none'}") from None


@register
class Mpc(Controller):
    """Rolling-horizon optimiser over every intersection (see the module docstring)."""

    name = "mpc"
    Config = MpcConfig

    def __init__(self, config: MpcConfig | None = None) -> None:
        self.config = config or MpcConfig()
        self.interval = self.config.interval

    # -- set-up -----------------------------------------------------------------------------
    def reset(self, network: Network, timing: Timing) -> None:
        cfg = self.config
        # the planner's own network: signals joined by a link that stores no vehicle planned as one
        self.joined = join_signals(network, cfg.vehicle_space if cfg.join else 0.0)
        super().reset(self.joined.network, timing)
        network = self.network
        ite = timing.clearance == "ite"
        self.net: CompiledNetwork = compile_network(network, None if ite else timing.yellow,
                                                    None if ite else timing.all_red)
        c = self.net
        n, ns = c.n_intersections, c.n_slots
        # a switch's cost (its lost time) and its benefit (the green after it) must both fit in the
        # horizon, or a signal with long clearances never sees a reason to switch
        longest = float(c.lost_s.max()) + cfg.startup if n else 0.0
        self.horizon_s = max(cfg.horizon, 2.0 * (longest + timing.min_green))
        self.H = max(int(round(self.horizon_s / cfg.dt)), 1)
        self.est = LaneEstimator(network.n_lanes, cfg.rate_halflife)
        self.sat = np.full(ns, cfg.sat_flow)
        self._sat_dep = np.zeros(ns)   # per slot: departures and seconds qualified (forgotten: SAT_MEMORY_S)
        self._sat_time = np.zeros(ns)
        self.wait = np.zeros(ns)
        # which slot feeds each out lane, for turning shares
        self._feeders = np.bincount(c.link_out, minlength=network.n_lanes).astype(np.float64)
        up = np.full(ns, np.inf)
        if len(c.route_to):
            np.minimum.at(up, c.route_to, c.route_delay_s)
        self.up_from = np.where(np.isfinite(up), up, -1.0)
        # main phase of each slot (the one serving it most), for forcing a long wait
        self._main_phase = np.zeros(ns, dtype=np.int64)
        protected = np.zeros((ns, int(np.diff(c.phase_ptr).max()) if n else 1), dtype=bool)
        permissive = np.zeros(ns, dtype=bool)
        share = np.zeros_like(protected, dtype=np.float64)
        for i in range(n):
            s0, s1 = c.slot_ptr[i], c.slot_ptr[i + 1]
            P = c.phase_ptr[i + 1] - c.phase_ptr[i]
            sv = c.serve[c.serve_ptr[i]:c.serve_ptr[i + 1]].reshape(P, s1 - s0)
            self._main_phase[s0:s1] = sv.argmax(axis=0)
            protected[s0:s1, :P] = (sv >= 1.0 - 1e-9).T
            share[s0:s1, :P] = sv.T
            permissive[s0:s1] = (sv >= 1.0 - 1e-9).any(axis=0) & ((sv > 0.0) & (sv < 1.0 - 1e-9)).any(axis=0)
        self._protected = protected  # (slot, phase): every link of the lane has the right of way
        self._permissive = permissive  # a protected phase, and permissive service in another
        self._share = share  # (slot, phase): the share of the lane's links the phase shows green
        self._stuck = np.zeros(ns)
        self._stall = np.zeros(n)
        self._fallback_until = np.full(n, -np.inf)
        # the program's green time of every phase (its own duration; at least the minimum green)
        self._program_green = [np.array([max(p.duration, timing.min_green) for p in x.phases])
                               for x in network.intersections]
        # per slot: the longest its queue may wait for green
        base = cfg.max_wait if cfg.max_wait is not None else timing.max_green
        longest_wait = np.full(n, base)
        if cfg.wait_cycle:
            cycle = np.array([g[list(o)].sum() + len(o) * lost
                              for g, o, lost in zip(self._program_green, self.joined.order, c.lost_s)])
            longest_wait = np.maximum(longest_wait, cycle)
        self.max_wait = longest_wait[c.slot_owner] if n else np.zeros(0)
        self._permissive_wait = np.minimum(cfg.permissive_wait, self.max_wait)
        self._served = np.zeros(ns, dtype=bool)
        self._served_before = self._served
        self._q_prev = np.zeros(ns)
        self._q_seen = np.zeros(ns)
        self._dep_seen = np.zeros(ns)
        self._cap = np.maximum(network.lane_length / cfg.vehicle_space, 1.0)
        # a lane that leaves a signal and enters it again (the short link between two nodes of one
        # clustered junction) is drained by the same signal as it fills: not an exit that spills back
        inner = np.zeros(network.n_lanes, dtype=bool)
        for x in network.intersections:
            inner[sorted(set(x.in_lanes) & set(x.out_lanes))] = True
        self._cap[inner] = NO_SPILLBACK
        # a lane feeding such a link discharges as the signal's other stop line lets it, which says
        # nothing of its own saturation flow: it is never learned from
        self._learnable = ~np.array([inner[c.link_out[c.link_ptr[s]:c.link_ptr[s + 1]]].any() for s in range(ns)],
                                    dtype=bool)
        # signals with an exit into another signal that stores no vehicle (MpcConfig.box)
        entry = np.zeros(network.n_lanes, dtype=np.int64) - 1
        for i, x in enumerate(network.intersections):
            entry[list(x.in_lanes)] = i
        self._boxed = np.array([any(entry[ln] not in (-1, i) and network.lane_length[ln] < cfg.vehicle_space
                                    for ln in x.out_lanes) for i, x in enumerate(network.intersections)], dtype=bool)
        self._link_share = np.zeros(len(c.link_out))
        self._slot_speed = np.asarray(network.lane_speed, dtype=np.float64)[c.slot_lane]
        self._room_s = np.ones(ns)
        # signal bookkeeping
        self._prev = np.zeros(n, dtype=np.int64)
        self._last_phase = np.zeros(n, dtype=np.int64)
        self._trans_start = np.full(n, np.nan)
        self._last_time: float | None = None
        # routes: where each receiving slot sits in the flat per-step arrays, and the lag in steps
        to_owner = c.slot_owner[c.route_to] if len(c.route_to) else np.zeros(0, dtype=np.int64)
        self._route_base = c.slot_ptr[to_owner] * self.H
        self._route_nl = c.slot_ptr[to_owner + 1] - c.slot_ptr[to_owner]
        self._route_col = c.route_to - c.slot_ptr[to_owner]
        self._route_lag = np.rint(c.route_delay_s / cfg.dt).astype(np.int64)
        self._plan_time: float | None = None
        # work arrays (flat per-step layout, see brain._kernels)
        self.arr = np.zeros(ns * self.H)
        self.inflow = np.zeros(ns * self.H)
        self.outflow = np.zeros(ns * self.H)
        self.choice = np.zeros(n, dtype=np.int64)
        self.cost = np.zeros(n)
        self.plan_ph = np.zeros((n, K.MAX_SEG), dtype=np.int64)
        self.plan_t0 = np.zeros((n, K.MAX_SEG), dtype=np.int64)
        self.plan_n = np.zeros((n, K.MAX_SEG), dtype=np.int64)
        self.plan_len = np.zeros(n, dtype=np.int64)
        self.nodes = np.zeros(n, dtype=np.int64)

    # -- one decision ------------------------------------------------------------------------
    def decide(self, readings: Readings, status: SignalStatus) -> np.ndarray:
        c, cfg, H = self.net, self.config, self.H
        status = self.joined.status(status)
        now = readings.time
        elapsed = 0.0 if self._last_time is None else now - self._last_time
        self._last_time = now
        self.est.update(readings)
        lanes = c.slot_lane
        q = self.est.queue[lanes]
        moving = self.est.moving[lanes]
        rate = self.est.rate[lanes]
        cur = status.phase.astype(np.int64)
        age = self._ages(now, status, cur)
        self._age = age
        w, force = self._waits(q, cur, status.in_transition, elapsed)
        blocked = self._blocked(q, cur, age) if cfg.box and self._boxed.any() else None
        self._stalls(now, q, cur, age, elapsed, force)
        K.turning_room(c.link_ptr, c.link_out, self.est.rate, self._feeders, self.est.queue + self.est.moving,
                       self._cap, self._link_share, self._room_s)
        if cfg.learn_sat:
            self._cur_phase = cur
            self._learn_sat(q, elapsed)
        satdt = self.sat * self._room_s * cfg.dt
        if blocked is not None:
            satdt = np.where(blocked, 0.0, satdt)
        coordinate = cfg.coordinate and len(c.route_to) > 0
        located = readings.approach is not None
        app, app_ptr = (readings.approach, readings.approach_ptr) if located else (_NO_ROWS, _NO_PTR)
        args = (c.slot_ptr, c.phase_ptr, c.serve_ptr, c.serve, q)
        route_share = self._route_shares() if coordinate else None
        for sweep in range(cfg.sweeps if coordinate else 1):  # without coordination a sweep changes nothing
            use = False
            if coordinate and (sweep > 0 or self._plan_time is not None):
                # sweep 0 uses the neighbours' plans of the previous decision, later sweeps this one's
                shift = 0 if sweep > 0 else int(round((now - self._plan_time) / cfg.dt))
                K.route_inflow(c.slot_ptr, self.outflow, c.route_ptr, route_share, self._route_lag,
                               self._route_base, self._route_nl, self._route_col, H, shift, self.inflow)
                use = True
            K.predict_arrivals(c.slot_ptr, c.slot_lane, moving, rate, c.zone_s, self._slot_speed, app_ptr, app,
                               located, self.inflow, self.up_from, use, cfg.dt, H, self.arr)
            K.plan_all(*args, self.arr, satdt, w, cur, self._prev, age, force, c.lost_s, cfg.startup, cfg.dt,
                       self.timing.min_green, self.timing.max_green, cfg.interval, cfg.depth, cfg.beam,
                       cfg.leaf_beam, cfg.hysteresis, H,
                       get_num_threads(), coordinate, self.choice, self.cost, self.plan_ph, self.plan_t0, self.plan_n, self.plan_len,
                       self.nodes)
            if coordinate:
                K.plan_outflow(*args, self.arr, satdt, cur, self._prev, age, c.lost_s, cfg.startup, cfg.dt, H, self.plan_ph,
                               self.plan_n, self.plan_len, self.outflow)
                self._plan_time = now
        return self.joined.expand(self.choice)

    def _ages(self, now: float, status: SignalStatus, cur: np.ndarray) -> np.ndarray:
        """Green age, or minus the lost time left while a transition runs."""
        tr = status.in_transition if status.in_transition.size else np.zeros(len(cur), dtype=bool)
        started = tr & np.isnan(self._trans_start)
        # a transition seen for the first time began at most one interval ago: assume half of it
        self._trans_start[started] = now - 0.5 * self.config.interval
        self._prev[started] = self._last_phase[started]
        self._trans_start[~tr] = np.nan
        self._prev[~tr] = cur[~tr]
        self._last_phase = cur.copy()
        age = status.green_time.astype(np.float64).copy()
        rem = self.net.lost_s - (now - self._trans_start)
        age[tr] = -np.maximum(rem[tr], 1e-3)
        return age

    def _waits(self, q: np.ndarray, cur: np.ndarray, in_tr: np.ndarray, elapsed: float) -> tuple[np.ndarray, np.ndarray]:
        """Delay weights per slot and the phase to force per intersection (-1: none)."""
        c = self.net
        owner = c.slot_owner
        served = (self._main_phase == cur[owner]) & ~(in_tr[owner] if in_tr.size else False)
        self._served_before, self._served = self._served, served
        waiting = (q >= 1.0) & ~served
        self.wait = np.where(waiting, self.wait + elapsed, 0.0)
        # a lane with a protected phase, queued and moving nobody while it is not shown (a left
        # turn finding no gap): its own clock, against permissive_wait
        moved = self.est.departures_last[c.slot_lane] > 0
        shown = self._share[np.arange(len(owner)), cur[owner]] > 0.0  # its permissive green is on
        held = waiting & self._permissive & ~moved
        self._stuck = np.where(held, self._stuck + elapsed * shown, 0.0)
        ratio = self.wait / self.max_wait
        w = 1.0 + self.config.wait_gain * ratio * ratio
        force = np.full(c.n_intersections, -1, dtype=np.int64)
        slack = c.lost_s[owner] + self.config.interval
        late = np.maximum(self.wait / np.maximum(self.max_wait - slack, 1e-9),
                          self._stuck / np.maximum(self._permissive_wait - slack, 1e-9))
        due = late >= 1.0
        if due.any():
            for s in np.flatnonzero(due):
                i = owner[s]
                s0, s1 = c.slot_ptr[i], c.slot_ptr[i + 1]
                longest = s0 + int(np.argmax(late[s0:s1]))  # the most overdue
                force[i] = self._main_phase[longest]
        return w, force

    def _blocked(self, q: np.ndarray, cur: np.ndarray, age: np.ndarray) -> np.ndarray:
        """Slots of a signal with an exit that stores no vehicle (``MpcConfig.box``) that hold a
        standing queue on a protected green shown since before the last two intervals and let no
        vehicle across the stop line in them."""
        c, cfg = self.net, self.config
        owner = c.slot_owner
        dep = self.est.departures_last[c.slot_lane]
        out = (self._boxed[owner] & self._served & self._served_before & (q >= 2.0) & (self._q_seen >= 2.0)
               & (dep + self._dep_seen == 0) & self._protected[np.arange(len(owner)), cur[owner]]
               & (age[owner] >= 2.0 * cfg.interval + cfg.startup + 2.0))
        self._q_seen, self._dep_seen = q, dep
        return out

    def _stalls(self, now: float, q: np.ndarray, cur: np.ndarray, age: np.ndarray, elapsed: float,
                force: np.ndarray) -> None:
        """Step stalled signals to their next phase, then let them follow their own program for
        ``MpcConfig.fallback_s`` (see there)."""
        c, cfg = self.net, self.config
        owner = c.slot_owner
        moved = np.bincount(owner, weights=self.est.departures_last[c.slot_lane], minlength=c.n_intersections)
        queued = np.bincount(owner, weights=q * self._served, minlength=c.n_intersections)
        stuck = (moved == 0) & (queued >= 2.0) & (age >= 0)
        self._stall = np.where(stuck, self._stall + elapsed, 0.0)
        due = self._stall >= cfg.stall_s
        nxt = self.joined.next_phase
        if due.any():
            for i in np.flatnonzero(due):
                force[i] = nxt(i, int(cur[i]))
                if cfg.fallback_s > 0 and self._fallback_until[i] < now:
                    self.interventions.append({
                        "tls": self.network.intersections[i].id, "time_s": float(now), "kind": "program-fallback",
                        "why": f"{queued[i]:.0f} vehicles held on its green lanes, none across for "
                               f"{self._stall[i]:.0f} s: its own program for {cfg.fallback_s:g} s"})
                    self._fallback_until[i] = now + cfg.fallback_s
            self._stall[due & (age >= self.timing.min_green)] = 0.0
        follow = (self._fallback_until > now) & ~due & (age >= 0)
        for i in np.flatnonzero(follow):
            force[i] = cur[i] if age[i] < self._program_green[i][cur[i]] else nxt(i, int(cur[i]))

    def _route_shares(self) -> np.ndarray:
        """Share of each slot's discharge taking each route: the link's turning share, split among
        the downstream lanes by their measured arrival rates."""
        c = self.net
        rw = self.est.rate[c.slot_lane[c.route_to]] + 1e-4
        per_link = np.bincount(c.route_link, weights=rw, minlength=len(c.link_out))
        return self._link_share[c.route_link] * rw / per_link[c.route_link]

    def _learn_sat(self, q: np.ndarray, elapsed: float) -> None:
        """Update saturation flows from lanes that discharged a standing queue all interval."""
        if elapsed <= 0:
            self._q_prev = q
            return
        # a lane whose exits are filling discharges less for want of room, not of capacity; one that
        # yields (to opposing traffic, to pedestrians) for want of gaps: neither is learned from
        slots = np.arange(len(self.sat))
        ok = (self._served & self._served_before & (self._q_prev >= 3.0) & (self._room_s >= 0.9)
              & self._protected[slots, self._cur_phase[self.net.slot_owner]])
        # and only once the start-up lost time has passed for the whole interval
        ok &= self._learnable & (self._age[self.net.slot_owner] - elapsed >= self.config.startup)
        if ok.any():
            keep = 0.5 ** (elapsed / SAT_MEMORY_S)
            self._sat_dep = self._sat_dep * keep + np.where(ok, self.est.departures_last[self.net.slot_lane], 0.0)
            self._sat_time = self._sat_time * keep + ok * elapsed
            prior = self.config.sat_flow
            if self.config.sat_scope == "lane":
                est = (self._sat_dep + prior * SAT_PRIOR_S) / (self._sat_time + SAT_PRIOR_S)
            else:
                # a lane held back by anything (a vehicle turning across, a lane change, a queue
                # beyond its exit) discharges less than the saturation flow, never more: the
                # signal's flow is that of its best-measured lane
                c = self.net
                lane = (self._sat_dep + prior * SAT_PRIOR_S) / (self._sat_time + SAT_PRIOR_S)
                trusted = np.where(self._sat_time >= SAT_TRUST_S, lane, -1.0)
                # slots are contiguous per signal (the sentinel keeps a signal without lanes in range)
                best = np.maximum.reduceat(np.append(trusted, -1.0), c.slot_ptr[:-1])
                est = np.where(best >= 0.0, best, prior)[c.slot_owner]
            self.sat = np.clip(est, SAT_RANGE[0], SAT_RANGE[1])
        self._q_prev = q
