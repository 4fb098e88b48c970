"""Camera counts -> the per-lane readings the controllers take, and which cameras are stale.

Each camera reports, per interval and per lane it watches: vehicles present in its counting
zone, of them standing (the queue), and stop-line crossings. :class:`CameraSensing` keeps the
latest report of every camera and turns them into :class:`~brain.model.Readings` over the
network's lanes: vehicles and halting from the zones, cumulative departures from the
crossings, cumulative arrivals from conservation within the zone (vehicles that entered =
crossings + the change in vehicles present), and where the moving vehicles are (metres to the
stop line, from the cameras that locate them).

A camera is *stale* when its last report is older than ``stale_after`` seconds of simulation
(or wall) time, it reported implausible counts, or its last report saw no frame (a dead or
blocked camera counts nothing: that is not an empty road); every intersection one of whose approaches a
stale camera watches is put on the fallback plan until the camera reports well again.

Example:
    >>> s = CameraSensing(["a_0", "b_0"], {"cam": ("A", ("a_0",))}, {"A": 0}, stale_after=5.0)
    >>> s.update("cam", 2.0, ["a_0"], present=[3.0], queue=[2.0], crossed=[1.0])
    True
    >>> r = s.readings(2.0)
    >>> r.halting.tolist(), r.departures.tolist(), s.stale_intersections(2.0, 1).tolist()
    ([2.0, 0.0], [1.0, 0.0], [False])
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from brain.model import Readings, pack_approach

__all__ = ["CameraSensing", "CameraState"]


@dataclass
class CameraState:
    """The latest report of one camera."""

    tls: str
    lanes: tuple[int, ...]
    time: float = -math.inf
    present: np.ndarray | None = None
    queue: np.ndarray | None = None
    bad: str = ""


class CameraSensing:
    """Readings for the network's lanes from camera reports.

    Args:
        lanes: the network's lane ids (readings follow this order).
        cameras: camera id -> (intersection id, lane ids it watches).
        tls_index: intersection id -> position in the network.
        stale_after: seconds without a report after which a camera is stale.
        zone_capacity: the most vehicles a lane's zone can plausibly hold (per lane id;
            default 20); a report above it marks the camera bad until a plausible one.
    """

    def __init__(self, lanes: Sequence[str], cameras: Mapping[str, tuple[str, Sequence[str]]],
                 tls_index: Mapping[str, int], *, stale_after: float = 5.0,
                 zone_capacity: Mapping[str, float] | None = None) -> None:
        self.index = {ln: k for k, ln in enumerate(lanes)}
        self.tls_index = dict(tls_index)
        self.stale_after = stale_after
        self.cams: dict[str, CameraState] = {}
        for cid, (tls, cl) in cameras.items():
            missing = [ln for ln in cl if ln not in self.index]
            if missing:
                raise ValueError(f"camera {cid!r} watches lanes the network lacks: {', '.join(missing)}")
            if tls not in self.tls_index:
                raise ValueError(f"camera {cid!r} belongs to {tls!r}, which is not a controlled intersection")
            self.cams[cid] = CameraState(tls, tuple(self.index[ln] for ln in cl))
        n = len(lanes)
        self.cap = np.full(n, 20.0)
        for ln, c in (zone_capacity or {}).items():
            if ln in self.index:
                self.cap[self.index[ln]] = c
        self.vehicles = np.zeros(n)
        self.halting = np.zeros(n)
        self.arrivals = np.zeros(n)
        self.departures = np.zeros(n)
        self.approach: list[tuple[float, ...]] = [()] * n
        self.located = False  # some camera has located its moving vehicles

    def update(self, camera: str, time: float, lanes: Sequence[str], *, present: Sequence[float],
               queue: Sequence[float], crossed: Sequence[float], frames: int | None = None,
               approach: Sequence[Sequence[float]] | None = None) -> bool:
        """Take one report; returns False (and marks the camera bad) when it is implausible.

        ``approach``: per lane, the metres to the stop line of each moving vehicle (optional).

        A report of ``frames == 0`` (the camera gave no frame in the interval) is on time but
        blind: the readings keep the camera's last counts and the camera is stale until it sees
        again.
        """
        st = self.cams.get(camera)
        if st is None:
            raise KeyError(f"unknown camera {camera!r}")
        if frames == 0:
            if time >= st.time:
                st.time, st.bad = time, "saw no frame in its interval"
            return True
        idx = []
        for ln in lanes:
            k = self.index.get(ln)
            if k is None or k not in st.lanes:
                st.bad = f"reported lane {ln!r} it does not watch"
                return False
            idx.append(k)
        p, q, c = (np.asarray(v, dtype=np.float64) for v in (present, queue, crossed))
        ix = np.array(idx, dtype=np.int64)
        if (p > self.cap[ix]).any() or (c > 2.0 * self.cap[ix]).any():
            st.bad = "more vehicles than the zone can hold"
            return False
        if time < st.time:
            st.bad = f"report for t={time:g} after one for t={st.time:g}"
            return False
        old = self.vehicles[ix].copy() if st.present is not None else p
        self.vehicles[ix] = p
        self.halting[ix] = np.minimum(q, p)
        self.departures[ix] += c
        self.arrivals[ix] += np.maximum(c + p - old, 0.0)
        if approach is not None:
            if len(approach) != len(ix):
                st.bad = f"located vehicles for {len(approach)} lanes, counts for {len(ix)}"
                return False
            for k, d in zip(ix, approach):
                self.approach[k] = tuple(float(x) for x in d)
            self.located = True
        st.time, st.present, st.queue, st.bad = time, p, q, ""
        return True

    def stale(self, now: float) -> list[str]:
        """Cameras stale at ``now`` (too old, never heard, or bad)."""
        return [cid for cid, st in self.cams.items() if st.bad or now - st.time > self.stale_after]

    def stale_intersections(self, now: float, n: int) -> np.ndarray:
        """Per intersection (``n``): True when a camera of it is stale."""
        out = np.zeros(n, dtype=bool)
        for cid in self.stale(now):
            out[self.tls_index[self.cams[cid].tls]] = True
        return out

    def readings(self, now: float) -> Readings:
        located = {}
        if self.located:
            app, ptr = pack_approach([[(d, 1.0) for d in lane] for lane in self.approach])
            located = {"approach": app, "approach_ptr": ptr}
        return Readings(now, self.vehicles.copy(), self.halting.copy(), self.arrivals.copy(), self.departures.copy(),
                        **located)
