"""What a run leaves for the engineer's report: per-approach series, signal timelines, trajectories.

:class:`Recorder` rides on the run loop (``on_step``) and keeps, per signalised approach (the
incoming edge of a signal): halted vehicles in its 200 m zone (sampled), the share of time it
showed green, vehicles that crossed its stop line (on any of its lanes: a lane change is no
crossing, :meth:`sim.backend.SumoBackend.edge_departures`), and SUMO's edge data (time loss per vehicle,
every ``period`` seconds, from an ``<edgeData>`` output it adds to the run). Per signal it keeps
the timeline of what was shown (each green phase, yellow, red), and along a corridor (a chain of
signalised edges) the vehicles' positions for a time-space diagram. :meth:`Recorder.save`
writes one JSON file.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import traci.constants as tc

from brain.model import GREEN_CHARS, YELLOW_CHARS

__all__ = ["Recorder", "read_edgedata"]


def read_edgedata(path: Path) -> list[dict]:
    """Intervals of SUMO edge data: ``[{begin, end, edges: {edge: {left, timeLoss, ...}}}]``."""
    if not Path(path).exists():
        return []
    out = []
    try:
        for _event, el in ET.iterparse(path):  # interval by interval: a run cut short keeps the complete ones
            if el.tag != "interval":
                continue
            edges = {}
            for e in el.iter("edge"):
                edges[e.get("id")] = {k: float(v) for k, v in e.attrib.items() if k != "id" and _isnum(v)}
            out.append({"begin": float(el.get("begin")), "end": float(el.get("end")), "edges": edges})
            el.clear()
    except ET.ParseError:
        pass
    return out


def _isnum(v: str) -> bool:
    try:
        float(v)
        return True
    except ValueError:
        return False


class Recorder:
    """Collects a run's report data (see the module docstring).

    Args:
        out: folder for the edge-data output and the saved JSON.
        period: edge-data interval (s); sample_s: queue sampling interval (s).
        corridor: record trajectories along the longest chain of signalised edges.
    """

    def __init__(self, out: Path, *, period: float = 300.0, sample_s: float = 5.0, corridor: bool = True) -> None:
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.period = period
        self.sample_s = sample_s
        self.want_corridor = corridor
        self.edgedata = self.out / "edgedata.xml"
        self._ready = False
        self._next_sample = -1.0
        self.samples_t: list[float] = []

    def additional_files(self) -> list[Path]:
        """The additional file that adds the edge-data output to a run (next to the scenario's own)."""
        add = self.out / "citybrain-edgedata.add.xml"
        add.write_text(f'<additional><edgeData id="citybrain" file="{self.edgedata.resolve()}" period="{self.period:g}" '
                       'excludeEmpty="true"/></additional>\n')
        return [add.resolve()]

    @property
    def ready(self) -> bool:
        """True once the run gave it a first step (a run refused before that records nothing)."""
        return self._ready

    def _setup(self, b) -> None:
        ts = b.ts
        self.lanes = list(b.lanes)
        index = {ln: i for i, ln in enumerate(self.lanes)}
        self.tls = list(b.shown_states())
        self.approaches = []  # (tls, edge, lane indices, link indices)
        self.greens: dict[str, list[frozenset]] = {}
        for t in self.tls:
            links = ts.trafficlight.getControlledLinks(t)
            by_edge: dict[str, tuple[set, set, dict]] = {}
            for k, link in enumerate(links):
                if not link or link[0][0].startswith(":"):
                    continue
                ln = link[0][0]
                e = ts.lane.getEdgeID(ln)
                lanes, lk, per_lane = by_edge.setdefault(e, (set(), set(), {}))
                if ln in index:
                    lanes.add(index[ln])
                lk.add(k)
                per_lane.setdefault(ln, set()).add(k)
            for e, (lanes, lk, per_lane) in sorted(by_edge.items()):
                n_all = ts.edge.getLaneNumber(e)
                storage = sum(ts.lane.getLength(f"{e}_{k}") for k in range(n_all))
                self.approaches.append({"tls": t, "edge": e, "lanes": sorted(lanes), "links": sorted(lk),
                                        "lane_links": [sorted(v) for _, v in sorted(per_lane.items())],
                                        "n_lanes": len(lanes), "free_lanes": max(n_all - len(lanes), 0),
                                        "storage_m": storage,
                                        "speed": max(ts.lane.getMaxSpeed(self.lanes[i]) for i in lanes) if lanes else 13.9})
            current = ts.trafficlight.getProgram(t)
            logic = next((lg for lg in ts.trafficlight.getAllProgramLogics(t) if lg.programID == current), None)
            phases = logic.phases if logic else []
            self.greens[t] = [frozenset(i for i, c in enumerate(p.state) if c in GREEN_CHARS) for p in phases
                              if any(c in GREEN_CHARS for c in p.state) and not any(c in YELLOW_CHARS for c in p.state)]
        na = len(self.approaches)
        self.queue: list[list[float]] = []
        self.green_steps = np.zeros(na)
        self.lane_green_steps = [np.zeros(len(a["lane_links"])) for a in self.approaches]
        self.steps = 0
        self._left0: dict[str, int] | None = None
        self._left: dict[str, int] = {}
        self.timeline: dict[str, list[list]] = {t: [] for t in self.tls}
        self.corridor = self._find_corridor(ts) if self.want_corridor else []
        self.traj: list[tuple[float, str, float]] = []
        self._corr_pos = {}
        if self.corridor:
            off = 0.0
            for e in self.corridor:
                self._corr_pos[e] = off
                off += ts.lane.getLength(f"{e}_0")
                ts.edge.subscribe(e, (tc.LAST_STEP_VEHICLE_ID_LIST,))
        self._ready = True

    def _find_corridor(self, ts) -> list[str]:
        """The longest chain of edges that passes at least three signals (empty when none)."""
        signal_edges = {a["edge"] for a in self.approaches}
        best: list[str] = []
        for start in sorted(signal_edges):
            chain, e, seen = [start], start, {start}
            while True:
                nxt = None
                for ln in range(ts.edge.getLaneNumber(e)):
                    for link in ts.lane.getLinks(f"{e}_{ln}"):
                        cand = ts.lane.getEdgeID(link[0])
                        # straight on: the candidate continues in the same direction
                        if cand not in seen and not cand.startswith(":") and _straight(ts, e, cand):
                            nxt = cand
                if nxt is None:
                    break
                chain.append(nxt)
                seen.add(nxt)
                e = nxt
            if sum(1 for x in chain if x in signal_edges) >= 3 and len(chain) > len(best):
                best = chain
        return best

    def __call__(self, b) -> None:
        if not self._ready:
            self._setup(b)
        now = b.time
        shown = b.shown_states()
        self.steps += 1
        for k, a in enumerate(self.approaches):
            st = shown.get(a["tls"], "")
            if any(i < len(st) and st[i] in GREEN_CHARS for i in a["links"]):
                self.green_steps[k] += 1
                for j, lk in enumerate(a["lane_links"]):
                    if any(i < len(st) and st[i] in GREEN_CHARS for i in lk):
                        self.lane_green_steps[k][j] += 1
        for t in self.tls:
            st = shown.get(t, "")
            if any(c in YELLOW_CHARS for c in st):
                kind = "yellow"
            else:
                g = frozenset(i for i, c in enumerate(st) if c in GREEN_CHARS)
                kind = next((f"phase {k}" for k, ph in enumerate(self.greens[t]) if g and g == ph), "red" if not g else "green")
            tl = self.timeline[t]
            if tl and tl[-1][2] == kind:
                tl[-1][1] = now
            else:
                tl.append([now, now, kind])
        self._left = b.edge_departures()
        if self._left0 is None:
            self._left0 = dict(self._left)
        if now >= self._next_sample:
            self._next_sample = now + self.sample_s
            r = b.read()
            self.samples_t.append(now)
            self.queue.append([float(r.halting[a["lanes"]].sum()) for a in self.approaches])
            if self.corridor:
                res = b.ts.edge.getAllSubscriptionResults()
                for e, base in self._corr_pos.items():
                    for v in res.get(e, {}).get(tc.LAST_STEP_VEHICLE_ID_LIST, ()):
                        self.traj.append((now, v, base + b.ts.vehicle.getLanePosition(v)))

    def save(self, name: str = "report-data.json", record: dict | None = None) -> Path:
        """Write everything recorded (and the run's record) to ``out/name``."""
        if not self._ready:
            raise RuntimeError("nothing recorded (the run did not start)")
        left0 = self._left0 or {}
        data = {
            "record": record or {},
            "period": self.period, "sample_s": self.sample_s, "steps": self.steps,
            "approaches": [dict(a, green_share=float(self.green_steps[k] / max(self.steps, 1)),
                                lane_green_share=(self.lane_green_steps[k] / max(self.steps, 1)).tolist(),
                                crossed=float(self._left.get(a["edge"], 0) - left0.get(a["edge"], 0)))
                           for k, a in enumerate(self.approaches)],
            "samples_t": self.samples_t, "queue": self.queue,
            "timeline": self.timeline, "corridor": self.corridor,
            "trajectories": [list(x) for x in self.traj[:200_000]],
            "edgedata": read_edgedata(self.edgedata),
        }
        path = self.out / name
        path.write_text(json.dumps(data))
        return path


def _straight(ts, a: str, b: str) -> bool:
    sa = ts.lane.getShape(f"{a}_0")
    sb = ts.lane.getShape(f"{b}_0")
    da = np.subtract(sa[-1], sa[-2])
    db = np.subtract(sb[1], sb[0])
    na, nb = np.hypot(*da), np.hypot(*db)
    return bool(na > 0 and nb > 0 and np.dot(da, db) / (na * nb) > 0.95)
