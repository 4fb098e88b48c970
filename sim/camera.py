"""Virtual pole cameras on SUMO intersections: geometry, placement and ground truth.

The camera geometry (:class:`wire.cameras.Camera`) is shared by every process;
:func:`place_cameras` puts one on every signalised approach (on the mast arm past the stop line, looking upstream
at the arriving traffic) or one high camera per intersection. Each camera carries the lanes it
watches: their ground polygons near the stop line (the counting zones) and their stop lines,
in world coordinates, so the worker can project them into the image once.

:class:`VehicleFeed` reads every vehicle SUMO reports (through subscriptions, once per step)
into a :class:`Fleet` of arrays; :func:`ground_truth` tells per camera lane which vehicles are
in its zone, which of them halt, and which crossed its stop line since the last call.
Drawing lives in :mod:`sim.render`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import ModuleType

import numpy as np
import traci.constants as tc

from wire.cameras import CLASSES, Camera, CameraLane

__all__ = ["Fleet", "VehicleFeed", "ground_truth", "place_cameras", "vary_fleet", "GroundTruth", "HALT_SPEED"]

_VCLASS = {"bus": 2, "coach": 2, "trolleybus": 2, "truck": 3, "trailer": 3, "delivery": 3,
           "motorcycle": 1, "moped": 1, "emergency": 0, "authority": 0}
HALT_SPEED = 0.1
"""SUMO's halting threshold (m/s): a vehicle slower than this is queued."""


def _lane_tail(shape: np.ndarray, zone_m: float) -> np.ndarray:
    """The last ``zone_m`` metres of a lane's centre line (polyline ending at the stop line)."""
    pts = [shape[-1]]
    left = zone_m
    for k in range(len(shape) - 1, 0, -1):
        a, b = shape[k - 1], shape[k]
        seg = float(np.hypot(*(b - a)))
        if seg >= left:
            pts.append(b + (a - b) * (left / max(seg, 1e-9)))
            break
        pts.append(a)
        left -= seg
    return np.array(pts[::-1])


def _offset(line: np.ndarray, d: float) -> np.ndarray:
    """Polyline shifted sideways by ``d`` metres (positive: to the right of travel)."""
    out = []
    for k in range(len(line)):
        a = line[max(k - 1, 0)]
        b = line[min(k + 1, len(line) - 1)]
        t = (b - a) / max(float(np.hypot(*(b - a))), 1e-9)
        out.append(line[k] + d * np.array([t[1], -t[0]]))
    return np.array(out)


def lane_zone(shape: np.ndarray, width: float, zone_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Counting-zone polygon and stop line of a lane (world metres)."""
    tail = _lane_tail(np.asarray(shape, dtype=np.float64), zone_m)
    right, left = _offset(tail, width / 2), _offset(tail, -width / 2)
    return np.vstack([right, left[::-1]]), np.array([right[-1], left[-1]])


def place_cameras(ts: ModuleType, tls_ids, *, mode: str = "approach", size: tuple[int, int] = (512, 320),
                  height: float = 10.0, back_m: float = 20.0, fov_deg: float = 50.0, pitch_deg: float = 22.0,
                  zone_m: float = 45.0) -> list[Camera]:
    """Cameras for the signals ``tls_ids`` of a running SUMO.

    ``mode='approach'``: one camera per incoming edge, ``back_m`` past the stop line at
    ``height``, looking upstream along the approach. ``mode='intersection'``: one camera per
    signal, high above a corner, looking at the junction centre, counting every approach.
    """
    if mode not in ("approach", "intersection"):
        raise ValueError(f"camera mode must be 'approach' or 'intersection', got {mode!r}")
    focal = size[0] / 2 / math.tan(math.radians(fov_deg) / 2)
    cams = []
    for t in tls_ids:
        ins: dict[str, list[str]] = {}
        for link in ts.trafficlight.getControlledLinks(t):
            if link and not link[0][0].startswith(":"):
                ln = link[0][0]
                lanes = ins.setdefault(ts.lane.getEdgeID(ln), [])
                if ln not in lanes:
                    lanes.append(ln)
        approaches = []
        for edge, lanes in sorted(ins.items()):
            lanes.sort(key=lambda x: int(x.rsplit("_", 1)[1]))
            cl = []
            for ln in lanes:
                shape = np.array(ts.lane.getShape(ln), dtype=np.float64)
                zone, stop = lane_zone(shape, ts.lane.getWidth(ln), min(zone_m, ts.lane.getLength(ln)))
                cl.append(CameraLane(ln, zone, stop, min(zone_m, ts.lane.getLength(ln)), ts.lane.getLength(ln)))
            approaches.append((edge, cl))
        if mode == "approach":
            for edge, cl in approaches:
                stop = np.mean([c.stop_line.mean(axis=0) for c in cl], axis=0)
                tail = _lane_tail(np.array(ts.lane.getShape(cl[0].lane)), 10.0)
                u = tail[-1] - tail[0]
                u = u / max(float(np.hypot(*u)), 1e-9)
                pos = stop + u * back_m
                yaw = math.atan2(-u[1], -u[0])
                cams.append(Camera(f"{t}/{edge}", t, (float(pos[0]), float(pos[1]), height), yaw,
                                   math.radians(pitch_deg), focal, size, tuple(cl), edge))
        else:
            centre = np.array(ts.junction.getPosition(t)) if t in ts.junction.getIDList() else \
                np.mean([c.stop_line.mean(axis=0) for _, cl in approaches for c in cl], axis=0)
            pos = centre + np.array([-35.0, -35.0])
            yaw = math.atan2(centre[1] - pos[1], centre[0] - pos[0])
            h = max(height, 25.0)
            pitch = math.atan2(h, float(np.hypot(*(centre - pos))))
            cams.append(Camera(t, t, (float(pos[0]), float(pos[1]), h), yaw, pitch, focal, size,
                               tuple(c for _, cl in approaches for c in cl)))
    return cams


@dataclass
class Fleet:
    """Every vehicle in the simulation at one step (arrays of length ``n``).

    Attributes:
        ids: vehicle ids; xy: front-bumper centre ``(n, 2)``; heading: radians counter-clockwise
        from +x; speed (m/s); lane: lane id; lane_pos: distance along the lane (m);
        length, width, height (m); cls: index into :data:`CLASSES`.
    """

    ids: list[str]
    xy: np.ndarray
    heading: np.ndarray
    speed: np.ndarray
    lane: list[str]
    lane_pos: np.ndarray
    length: np.ndarray
    width: np.ndarray
    height: np.ndarray
    cls: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)


VEHICLE_VARS = (tc.VAR_POSITION, tc.VAR_ANGLE, tc.VAR_SPEED, tc.VAR_LANE_ID, tc.VAR_LANEPOSITION, tc.VAR_TYPE)
"""What every vehicle is subscribed to, here and by the backend (one list: a second subscription
of a vehicle replaces the first's variables)."""


class VehicleFeed:
    """Reads every vehicle through per-vehicle subscriptions, fetched once per step."""

    def __init__(self, ts: ModuleType) -> None:
        self.ts = ts
        self._types: dict[str, tuple[float, float, float, int]] = {}

    def _type(self, t: str) -> tuple[float, float, float, int]:
        if t not in self._types:
            vt = self.ts.vehicletype
            self._types[t] = (vt.getLength(t), vt.getWidth(t), vt.getHeight(t),
                              _VCLASS.get(vt.getVehicleClass(t), 0))
        return self._types[t]

    def read(self) -> Fleet:
        """Subscribe new vehicles, then return the fleet as of the last step."""
        for v in self.ts.simulation.getDepartedIDList():
            self.ts.vehicle.subscribe(v, VEHICLE_VARS)
        res = self.ts.vehicle.getAllSubscriptionResults()
        ids = [v for v, r in res.items() if r]
        n = len(ids)
        xy = np.zeros((n, 2))
        ang = np.zeros(n)
        spd = np.zeros(n)
        pos = np.zeros(n)
        dims = np.zeros((n, 3))
        cls = np.zeros(n, dtype=np.int64)
        lanes = []
        for k, v in enumerate(ids):
            r = res[v]
            xy[k] = r[tc.VAR_POSITION]
            ang[k] = r[tc.VAR_ANGLE]
            spd[k] = r[tc.VAR_SPEED]
            pos[k] = r[tc.VAR_LANEPOSITION]
            lanes.append(r[tc.VAR_LANE_ID])
            L, W, H, c = self._type(r[tc.VAR_TYPE])
            dims[k] = (L, W, H)
            cls[k] = c
        heading = np.radians(90.0 - ang)  # SUMO: degrees clockwise from north
        return Fleet(ids, xy, heading, spd, lanes, pos, dims[:, 0], dims[:, 1], dims[:, 2], cls)


def vary_fleet(ts: ModuleType, rng: np.random.Generator, shares: tuple[float, float, float] = (0.08, 0.08, 0.10)) -> None:
    """Turn some newly departed vehicles into motorcycles, buses and trucks (training variety).

    Call once per step before :meth:`VehicleFeed.read`. ``shares``: (motorcycle, bus, truck).
    """
    vt = ts.vehicletype
    if "cb_bus" not in vt.getIDList():
        for name, vclass, L, W, H, shape in (("cb_moto", "motorcycle", 2.2, 0.9, 1.5, "motorcycle"),
                                            ("cb_bus", "bus", 12.0, 2.5, 3.2, "bus"),
                                            ("cb_truck", "truck", 8.0, 2.4, 3.4, "truck")):
            vt.copy("DEFAULT_VEHTYPE", name)
            vt.setVehicleClass(name, vclass)
            vt.setLength(name, L)
            vt.setWidth(name, W)
            vt.setHeight(name, H)
            vt.setShapeClass(name, shape)
            vt.setMinGap(name, 2.5)
    for v in ts.simulation.getDepartedIDList():
        r = rng.random()
        if r < shares[0]:
            ts.vehicle.setType(v, "cb_moto")
        elif r < shares[0] + shares[1]:
            ts.vehicle.setType(v, "cb_bus")
        elif r < sum(shares):
            ts.vehicle.setType(v, "cb_truck")


@dataclass
class GroundTruth:
    """What a camera's lanes hold at one step (per lane in ``Camera.lanes`` order).

    Attributes:
        present: vehicles in each counting zone; queue: of them, halting;
        crossed: stop-line crossings since the previous call; classes: per lane, vehicles of
        each class present ``(n_lanes, len(CLASSES))``.
    """

    present: np.ndarray
    queue: np.ndarray
    crossed: np.ndarray
    classes: np.ndarray


def ground_truth(cam: Camera, fleet: Fleet, last_lane: dict[str, str]) -> GroundTruth:
    """Per lane of ``cam``: vehicles present and halting in the zone, and stop-line crossings.

    ``last_lane`` maps vehicle id to the camera lane it was on at the previous call (kept by the
    caller per camera, updated here); a vehicle that was on a camera lane and now is not has
    crossed that lane's stop line.
    """
    index = {ln.lane: k for k, ln in enumerate(cam.lanes)}
    n = len(cam.lanes)
    present = np.zeros(n)
    queue = np.zeros(n)
    crossed = np.zeros(n)
    classes = np.zeros((n, len(CLASSES)))
    now: dict[str, str] = {}
    for k, v in enumerate(fleet.ids):
        j = index.get(fleet.lane[k])
        if j is None:
            continue
        now[v] = fleet.lane[k]
        ln = cam.lanes[j]
        if fleet.lane_pos[k] >= ln.length - ln.zone_m:
            present[j] += 1
            classes[j, fleet.cls[k]] += 1
            if fleet.speed[k] < HALT_SPEED:
                queue[j] += 1
    for v, lane in last_lane.items():
        if v not in now:
            crossed[index[lane]] += 1
    last_lane.clear()
    last_lane.update(now)
    return GroundTruth(present, queue, crossed, classes)
