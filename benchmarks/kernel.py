"""Speed of the optimiser: decision time per control step on synthetic city grids.

A synthetic network of ``n`` intersections is a grid (as square as ``n`` allows) of four-leg
intersections, each with two incoming lanes per approach (left; through and right) and the
usual four phases (north-south through, north-south left, east-west through, east-west left),
neighbours linked by 200 m roads. Readings come from one of two sources:

- ``traffic`` (default): every incoming lane is a point queue fed by Poisson arrivals (0.12 veh/s
  per lane, about 430 veh/h: a busy city at peak) and discharged at 0.8 veh/s while its phase is
  green; switches cost a 2 s step of transition. The decisions drive it, so the optimiser sees
  the states a real city would present (queues on red approaches, cleared greens). 30 untimed
  steps warm it up.
- ``random`` (stress): queues 0-8 and moving vehicles 0-6 on every lane, redrawn each step, so
  every phase always has demand and the search prunes least.

Each size is timed over whole ``Mpc.decide`` calls (packing, estimation, every sweep of the
kernels), after one warm-up call that triggers the JIT compilation, which is timed apart.

Example:
    >>> recs = bench_kernel([1, 16], steps=20)          # doctest: +SKIP
    >>> recs[0]["median_ms"]                            # doctest: +SKIP
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import numpy as np

from brain.model import GreenPhase, Intersection, Network, Readings, SignalStatus
from brain.timing import Timing

__all__ = ["KernelRecord", "bench_kernel", "synthetic_grid", "markdown_table", "SIZES"]

SIZES = (1, 16, 100, 1000, 10000)

# approach order N, E, S, W; per approach lanes (left, through+right)
# link per (approach, lane, movement); movements: left / through / right
_PHASES = (  # (through NS, left NS, through EW, left EW) as which (approach, lane) gets green
    {(0, 1), (2, 1)},
    {(0, 0), (2, 0)},
    {(1, 1), (3, 1)},
    {(1, 0), (3, 0)},
)


def synthetic_grid(n: int, link_m: float = 200.0, speed: float = 13.9) -> Network:
    """A grid of ``n`` four-phase intersections (see the module docstring)."""
    cols = max(1, int(math.ceil(math.sqrt(n))))
    lanes: list[str] = []
    index: dict[str, int] = {}

    def lane(name: str) -> int:
        if name not in index:
            index[name] = len(lanes)
            lanes.append(name)
        return index[name]

    pos = {k: (k // cols, k % cols) for k in range(n)}
    at = {v: k for k, v in pos.items()}
    step = {0: (-1, 0), 1: (0, 1), 2: (1, 0), 3: (0, -1)}  # neighbour in each direction
    inters = []
    feeds = []
    for k in range(n):
        r, c = pos[k]
        links: list[tuple[int, int]] = []
        chars: list[tuple[int, int]] = []
        for a in range(4):  # approach a: traffic coming from direction a
            for ln in range(2):
                src = lane(f"in{k}_{a}_{ln}")
                if ln == 0:
                    moves = [(a + 1) % 4]  # left turn: leaves towards the next direction clockwise
                else:
                    moves = [(a + 2) % 4, (a + 3) % 4]  # through, right
                for d in moves:
                    links.append((src, lane(f"out{k}_{d}")))
                    chars.append((a, ln))
        phases = tuple(
            GreenPhase(2 * p, "".join("G" if ch in _PHASES[p] else "r" for ch in chars), 30.0) for p in range(4)
        )
        ins = tuple(sorted({a for a, _ in links}))
        outs = tuple(sorted({b for _, b in links}))
        inters.append(Intersection(f"t{k}", phases, tuple(links), ins, outs, 3.0, 0.0))
        for d in range(4):  # out lane towards d feeds the neighbour's approach coming from the opposite side
            dr, dc = step[d]
            nb = at.get((r + dr, c + dc))
            if nb is None:
                continue
            back = (d + 2) % 4
            for ln in range(2):
                feeds.append((lane(f"out{k}_{d}"), lane(f"in{nb}_{back}_{ln}"), link_m))
    nl = len(lanes)
    return Network(tuple(inters), tuple(lanes), np.full(nl, link_m), np.full(nl, speed), tuple(feeds))


@dataclass
class KernelRecord:
    intersections: int
    slots: int
    median_ms: float
    p99_ms: float
    mean_ms: float
    per_intersection_us: float
    compile_s: float
    steps: int
    threads: int
    sweeps: int
    depth: int
    beam: int
    leaf_beam: int
    mean_nodes: float
    options: dict
    readings: str


def bench_kernel(sizes: tuple[int, ...] = SIZES, *, steps: int = 50, threads: int = 1, seed: int = 0,
                 config: dict | None = None, progress=None, readings: str = "traffic") -> list[dict]:
    """Time ``Mpc.decide`` per size; returns one record (dict) per size."""
    import numba

    from brain.controllers.mpc import Mpc, MpcConfig

    if readings not in ("traffic", "random"):
        raise ValueError(f"readings must be 'traffic' or 'random', got {readings!r}")
    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    timing = Timing()
    rng = np.random.default_rng(seed)
    out = []
    compile_s = None
    for n in sizes:
        if progress is not None:
            progress(n)
        net = synthetic_grid(n)
        ctrl = Mpc(MpcConfig.from_mapping(config or {}))
        t0 = time.perf_counter()
        ctrl.reset(net, timing)
        city = _City(net, ctrl, rng) if readings == "traffic" else None
        phase = np.zeros(n, dtype=np.int64)
        green = rng.uniform(0.0, 40.0, n)
        trans = np.zeros(n, dtype=bool)
        arrivals = np.zeros(net.n_lanes)
        departures = np.zeros(net.n_lanes)
        now = 0.0
        times = []
        nodes = []
        warm = 30 if city is not None else 0
        for k in range(warm + steps + 1):
            if city is not None:
                r = city.readings(now, phase, trans)
            else:
                halting = rng.integers(0, 9, net.n_lanes).astype(np.float64)
                vehicles = halting + rng.integers(0, 7, net.n_lanes)
                arrivals += rng.poisson(0.6, net.n_lanes)
                departures += rng.poisson(0.6, net.n_lanes)
                r = Readings(now, vehicles, halting, arrivals.copy(), departures.copy())
            status = SignalStatus(phase.copy(), green.copy(), trans.copy())
            t = time.perf_counter()
            wish = ctrl.decide(r, status)
            el = time.perf_counter() - t
            if k == 0 and compile_s is None:
                compile_s = time.perf_counter() - t0
            if k > warm:
                times.append(el)
                nodes.append(float(ctrl.nodes.mean()))
            switched = (wish != phase) & (green >= timing.min_green) & ~trans
            trans = switched  # one 2 s step of transition, then the new green
            phase = np.where(switched, wish, phase)
            green = np.where(switched, 0.0, np.where(trans, 0.0, green + ctrl.interval))
            now += ctrl.interval
        ms = np.array(times) * 1e3
        rec = KernelRecord(
            intersections=n, slots=ctrl.net.n_slots, median_ms=float(np.median(ms)),
            p99_ms=float(np.percentile(ms, 99)), mean_ms=float(ms.mean()),
            per_intersection_us=float(np.median(ms)) * 1e3 / n, compile_s=float(compile_s or 0.0),
            steps=steps, threads=numba.get_num_threads(), sweeps=ctrl.config.sweeps,
            depth=ctrl.config.depth, beam=ctrl.config.beam,
            leaf_beam=ctrl.config.leaf_beam, options=dict(config or {}),
            mean_nodes=float(np.mean(nodes)), readings=readings,
        )
        out.append(asdict(rec))
    return out


class _City:
    """Point queues on every incoming lane, discharged while green (see the module docstring)."""

    def __init__(self, net: Network, ctrl, rng: np.random.Generator, demand: float = 0.12,
                 sat: float = 0.8) -> None:
        c = ctrl.net
        self.rng = rng
        self.lanes = c.slot_lane
        self.n_lanes = net.n_lanes
        n = c.n_intersections
        P = 4
        self.serve = c.serve.reshape(n, P, -1)  # every synthetic intersection: 4 phases x 8 slots
        self.q = np.zeros(len(self.lanes))
        self.arr = np.zeros(net.n_lanes)
        self.dep = np.zeros(net.n_lanes)
        self.demand = demand
        self.sat = sat
        self.dt = ctrl.interval
        self.zone_s = c.zone_s

    def readings(self, now: float, phase: np.ndarray, trans: np.ndarray) -> Readings:
        a = self.rng.poisson(self.demand * self.dt, self.q.shape).astype(np.float64)
        share = np.take_along_axis(self.serve, phase[:, None, None], axis=1)[:, 0, :].reshape(-1)
        share = share * np.repeat(~trans, self.serve.shape[2])
        gone = np.minimum(self.q + a, share * self.sat * self.dt)
        self.q += a - gone
        self.arr[self.lanes] += a
        self.dep[self.lanes] += gone
        moving = self.rng.poisson(self.demand * self.zone_s).astype(np.float64)
        halting = np.zeros(self.n_lanes)
        vehicles = np.zeros(self.n_lanes)
        halting[self.lanes] = np.floor(self.q)
        vehicles[self.lanes] = np.floor(self.q) + moving
        return Readings(now, vehicles, halting, self.arr.copy(), self.dep.copy())


def markdown_table(records: list[dict], title: str) -> str:
    opts = sorted({", ".join(f"{k}={v}" for k, v in sorted(r.get("options", {}).items())) for r in records} - {""})
    lines = [f"# {title}", ""] + ([f"Optimiser options: {'; '.join(opts)}", ""] if opts else []) + [
             "| intersections | lanes | median (ms) | p99 (ms) | mean (ms) | per intersection (µs) | "
             "search nodes / intersection | compile (s) | threads | sweeps | depth | beam | leaf beam | "
             "readings |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in records:
        lines.append(
            f"| {r['intersections']:,} | {r['slots']:,} | {r['median_ms']:.3f} | {r['p99_ms']:.3f} | "
            f"{r['mean_ms']:.3f} | {r['per_intersection_us']:.2f} | {r['mean_nodes']:.1f} | "
            f"{r['compile_s']:.1f} | {r['threads']} | {r['sweeps']} | {r['depth']} | {r.get('beam', 0)} | "
            f"{r.get('leaf_beam', 0)} | {r['readings']} |"
        )
    return "\n".join(lines) + "\n"
