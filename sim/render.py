"""Drawing synthetic camera frames from SUMO: roads, lane markings and shaded 3-D vehicles.

A :class:`Scene` holds a camera's static ground geometry (road surfaces, junctions, lane
markings, stop lines) read once from SUMO; :meth:`Scene.frame` draws one frame of a
:class:`~sim.camera.Fleet` with per-frame variation (light, sun direction, noise, blur) and
returns it with its labels: each visible vehicle's box, class and how much of it is seen
(vehicles occlude each other; labels keep those at least ``min_visible`` seen).

Geometry and truth are in :mod:`sim.camera`; this module only draws.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

import cv2
import numpy as np

from sim.camera import Fleet
from wire.cameras import Camera

__all__ = ["Scene", "Label", "Style", "RoadMap"]

NEAR = 0.5
"""Near clipping plane (m in front of the lens)."""

_CAR_COLOURS = np.array([(235, 235, 235), (190, 192, 195), (30, 30, 32), (110, 112, 118), (40, 40, 170),
                         (150, 80, 30), (40, 90, 40), (170, 200, 215), (20, 60, 120), (200, 200, 60)],
                        dtype=np.float64)  # BGR
_BUS_COLOURS = np.array([(40, 200, 240), (230, 230, 230), (40, 40, 190), (150, 110, 40)], dtype=np.float64)
_CAB_COLOURS = np.array([(240, 240, 240), (30, 120, 230), (50, 50, 180), (140, 90, 30)], dtype=np.float64)
_GLASS = np.array((70, 55, 45), dtype=np.float64)
_TYRE = np.array((25, 25, 25), dtype=np.float64)


@dataclass(frozen=True)
class Label:
    """One labelled vehicle in a frame: class, pixel box ``(x1, y1, x2, y2)``, seen share, fleet row."""

    cls: int
    box: tuple[float, float, float, float]
    visible: float
    row: int


@dataclass(frozen=True)
class Style:
    """Per-frame variation. ``light`` scales brightness, ``tint`` is a BGR colour cast,
    ``sun`` the unit direction towards the sun, ``noise`` the pixel noise sigma, ``blur`` the
    Gaussian blur sigma (0: none)."""

    light: float = 1.0
    tint: tuple[float, float, float] = (1.0, 1.0, 1.0)
    sun: tuple[float, float, float] = (0.3, 0.4, 0.87)
    noise: float = 3.0
    blur: float = 0.0

    @classmethod
    def random(cls, rng: np.random.Generator) -> Style:
        az, el = rng.uniform(0, 2 * np.pi), rng.uniform(0.35, 1.3)
        return cls(light=float(rng.uniform(0.45, 1.25)), tint=tuple(float(v) for v in rng.uniform(0.88, 1.12, 3)),
                   sun=(float(np.cos(el) * np.cos(az)), float(np.cos(el) * np.sin(az)), float(np.sin(el))),
                   noise=float(rng.uniform(1.0, 9.0)), blur=float(rng.choice([0.0, 0.0, 0.6, 1.0, 1.5])))


def _clip_near(c: np.ndarray) -> np.ndarray:
    """Clip a polygon in camera coordinates ``(k, 3)`` to ``z >= NEAR`` (Sutherland-Hodgman)."""
    out = []
    k = len(c)
    for i in range(k):
        a, b = c[i], c[(i + 1) % k]
        ina, inb = a[2] >= NEAR, b[2] >= NEAR
        if ina:
            out.append(a)
        if ina != inb:
            t = (NEAR - a[2]) / (b[2] - a[2])
            out.append(a + t * (b - a))
    return np.array(out) if out else np.zeros((0, 3))


class Scene:
    """Static ground geometry around one camera, drawn once into a background image."""

    def __init__(self, cam: Camera, polys: list[tuple[np.ndarray, tuple[int, int, int]]],
                 seed: int = 0) -> None:
        self.cam = cam
        self.polys = polys
        w, h = cam.size
        rng = np.random.default_rng(seed)
        img = np.empty((h, w, 3), dtype=np.float64)
        img[:] = (60, 120, 80)  # grass
        img += rng.normal(0, 10, (h, w, 1))
        # sky above the horizon
        horizon = self._horizon_row()
        if horizon > 0:
            grad = np.linspace(1.0, 0.75, min(horizon, h))[:, None, None]
            img[:min(horizon, h)] = np.array((225, 200, 170)) * grad
        for pts, colour in polys:
            self._fill_ground(img, pts, colour)
        self.background = np.clip(img, 0, 255).astype(np.float32)
        # unit Gaussian noise, drawn once (twice the frame's height): each frame takes a random window
        self._noise = rng.standard_normal((2 * h, w, 3)).astype(np.float32)

    # -- building from SUMO -------------------------------------------------------------
    @classmethod
    def from_map(cls, roads: RoadMap, cam: Camera, radius: float = 180.0, seed: int = 0) -> Scene:
        """Roads, junctions and markings of ``roads`` within ``radius`` of the camera."""
        c = np.array(cam.position[:2])
        near = [k for k, pts in enumerate(roads.polys) if np.min(np.hypot(*(pts - c).T)) < radius]
        return cls(cam, [(roads.polys[k], roads.colours[k]) for k in near], seed)

    @classmethod
    def from_sumo(cls, ts: ModuleType, cam: Camera, radius: float = 180.0, seed: int = 0) -> Scene:
        return cls.from_map(RoadMap.from_sumo(ts), cam, radius, seed)

    # -- drawing ------------------------------------------------------------------------
    def _horizon_row(self) -> int:
        cam = self.cam
        return int(cam.size[1] / 2 - cam.focal * np.tan(cam.pitch))

    def _fill_ground(self, img: np.ndarray, pts: np.ndarray, colour) -> None:
        p3 = np.hstack([pts, np.zeros((len(pts), 1))])
        self._fill(img, p3, colour)

    def _fill(self, img: np.ndarray, p3: np.ndarray, colour) -> None:
        c = _clip_near(self.cam.to_camera(p3))
        if len(c) < 3:
            return
        w, h = self.cam.size
        uv = np.stack([w / 2 + self.cam.focal * c[:, 0] / c[:, 2], h / 2 + self.cam.focal * c[:, 1] / c[:, 2]], 1)
        uv = np.clip(uv, -4 * w, 4 * w)
        cv2.fillPoly(img, [np.round(uv * 4).astype(np.int32)], colour, lineType=cv2.LINE_AA, shift=2)

    def frame(self, fleet: Fleet, style: Style, rng: np.random.Generator, *, min_visible: float = 0.4,
              min_px: float = 10.0, max_depth: float = 160.0) -> tuple[np.ndarray, list[Label]]:
        """Draw the fleet; returns the BGR ``uint8`` image and the labels of visible vehicles."""
        cam = self.cam
        w, h = cam.size
        img = self.background.copy()
        sun = np.asarray(style.sun)
        rows = _in_view(cam, fleet, max_depth)
        # shadows first (on the ground, away from the sun)
        shade = np.zeros((h, w), dtype=np.float32)
        for k in rows:
            foot = _footprint(fleet, k, 0.3)
            off = -sun[:2] / max(sun[2], 0.3) * fleet.height[k] * 0.35
            c = _clip_near(cam.to_camera(np.hstack([foot + off, np.zeros((4, 1))])))
            if len(c) >= 3:
                uv = np.stack([w / 2 + cam.focal * c[:, 0] / c[:, 2], h / 2 + cam.focal * c[:, 1] / c[:, 2]], 1)
                cv2.fillPoly(shade, [np.round(uv).astype(np.int32)], 1.0)
        img *= (1.0 - 0.45 * cv2.GaussianBlur(shade, (0, 0), 1.5))[:, :, None]
        # vehicles, far to near
        ids = np.zeros((h, w), dtype=np.int32)
        hulls = {}
        for k in rows:
            parts = _parts(fleet, k, rng_colour(fleet.ids[k]))
            if min(float(cam.to_camera(c)[:, 2].min()) for c, _ in parts) < NEAR:
                continue  # under or behind the lens
            allpts = []
            for corners, colour in parts:
                uv, z = cam.project(corners)
                allpts.append(uv)
                _draw_box(img, corners, uv, colour, np.asarray(cam.position), sun)
            hull = cv2.convexHull(np.round(np.vstack(allpts)).astype(np.int32))
            cv2.fillConvexPoly(ids, hull, int(k) + 1)
            hulls[k] = hull
        # light, colour cast, blur, noise
        img *= style.light * np.asarray(style.tint, dtype=np.float32)
        if style.blur > 0:
            img = cv2.GaussianBlur(img, (0, 0), style.blur)
        if style.noise > 0:
            k = int(rng.integers(0, h))
            img += self._noise[k:k + h] * np.float32(style.noise)
        out = np.clip(img, 0, 255, out=img).astype(np.uint8)
        # labels: the visible share of each vehicle's silhouette
        counts = np.bincount(ids.ravel(), minlength=len(fleet) + 1)
        labels = []
        for k, hull in hulls.items():
            x, y, bw, bh = cv2.boundingRect(hull)
            x1, y1, x2, y2 = max(x, 0), max(y, 0), min(x + bw, w), min(y + bh, h)
            if x2 - x1 < min_px or y2 - y1 < min_px:
                continue
            full = np.zeros((y2 - y1, x2 - x1), dtype=np.uint8)
            cv2.fillConvexPoly(full, hull - np.array([x1, y1], dtype=np.int32), 1)
            area = int(full.sum())
            seen = counts[k + 1] / area if area else 0.0
            if seen >= min_visible:
                # the box of the seen part (an occluded vehicle's box covers what shows)
                ys, xs = np.nonzero(ids[y1:y2, x1:x2] == k + 1)
                box = (float(x1 + xs.min()), float(y1 + ys.min()), float(x1 + xs.max() + 1), float(y1 + ys.max() + 1))
                labels.append(Label(int(fleet.cls[k]), box, float(seen), int(k)))
        return out, labels


@dataclass
class RoadMap:
    """Every ground polygon of a network (road surfaces first, then markings), read once."""

    polys: list[np.ndarray]
    colours: list[tuple[int, int, int]]

    @classmethod
    def from_sumo(cls, ts: ModuleType) -> RoadMap:
        polys: list[np.ndarray] = []
        colours: list[tuple[int, int, int]] = []
        for j in ts.junction.getIDList():
            shape = np.array(ts.junction.getShape(j), dtype=np.float64)
            if len(shape) >= 3:
                polys.append(shape)
                colours.append((88, 88, 92))
        marks: list[tuple[np.ndarray, tuple[int, int, int]]] = []
        by_edge: dict[str, list[str]] = {}
        signalled = {link[0][0] for t in ts.trafficlight.getIDList()
                     for link in ts.trafficlight.getControlledLinks(t) if link}
        for ln in ts.lane.getIDList():
            if ln.startswith(":"):
                continue
            shape = np.array(ts.lane.getShape(ln), dtype=np.float64)
            width = ts.lane.getWidth(ln)
            for k in range(len(shape) - 1):
                polys.append(_quad(shape[k], shape[k + 1], width / 2 + 0.02, -(width / 2 + 0.02)))
                colours.append((95, 95, 100))
            by_edge.setdefault(ts.lane.getEdgeID(ln), []).append(ln)
        for lanes in by_edge.values():
            lanes.sort(key=lambda x: int(x.rsplit("_", 1)[1]))
            for i, ln in enumerate(lanes):
                shape = np.array(ts.lane.getShape(ln), dtype=np.float64)
                w = ts.lane.getWidth(ln)
                if i == 0:  # outer edge line (right of the rightmost lane)
                    marks += _line(shape, w / 2 - 0.1, dash=None)
                if i > 0:  # dashed between lanes of one edge
                    marks += _line(shape, w / 2, dash=(3.0, 6.0))
                if i == len(lanes) - 1:  # centre line (solid)
                    marks += _line(shape, -w / 2 + 0.1, dash=None)
                if ln in signalled and len(shape) >= 2:  # stop line across the lane's end
                    a, b = shape[-2], shape[-1]
                    t = (b - a) / max(float(np.hypot(*(b - a))), 1e-9)
                    end = b - t * 0.2
                    marks.append((_quad(end - t * 0.5, end, w / 2, -w / 2), (235, 235, 235)))
        for p, col in marks:
            polys.append(p)
            colours.append(col)
        return cls(polys, colours)


def rng_colour(vid: str) -> int:
    """A stable pseudo-random number per vehicle id (its colour)."""
    h = 2166136261
    for ch in vid.encode():
        h = ((h ^ ch) * 16777619) & 0xFFFFFFFF
    return h


def _quad(a: np.ndarray, b: np.ndarray, right: float, left: float) -> np.ndarray:
    t = (b - a) / max(float(np.hypot(*(b - a))), 1e-9)
    n = np.array([t[1], -t[0]])  # right of travel
    return np.array([a + n * right, b + n * right, b + n * left, a + n * left])


def _line(shape: np.ndarray, off: float, dash: tuple[float, float] | None, width: float = 0.15) -> list:
    """Quads of a marking ``off`` metres right of a lane's centre line (dashed or solid)."""
    out = []
    for k in range(len(shape) - 1):
        a, b = shape[k], shape[k + 1]
        seg = float(np.hypot(*(b - a)))
        if seg < 1e-6:
            continue
        t = (b - a) / seg
        n = np.array([t[1], -t[0]])
        if dash is None:
            pieces = [(0.0, seg)]
        else:
            on, gap = dash
            pieces = [(s, min(s + on, seg)) for s in np.arange(0.0, seg, on + gap)]
        for s0, s1 in pieces:
            p, q = a + t * s0 + n * off, a + t * s1 + n * off
            out.append((_quad(p, q, width / 2, -width / 2), (225, 225, 225)))
    return out


def _in_view(cam: Camera, fleet: Fleet, max_depth: float) -> list[int]:
    """Fleet rows in front of the camera, far to near."""
    if len(fleet) == 0:
        return []
    front = np.hstack([fleet.xy, np.zeros((len(fleet), 1))])
    _, z = cam.project(front)
    uv, _ = cam.project(front)
    w, h = cam.size
    ok = (z > 3.0) & (z < max_depth) & (uv[:, 0] > -0.5 * w) & (uv[:, 0] < 1.5 * w) & (uv[:, 1] > -h)
    rows = np.flatnonzero(ok)
    return [int(k) for k in rows[np.argsort(-z[rows])]]


def _footprint(fleet: Fleet, k: int, grow: float = 0.0) -> np.ndarray:
    f = fleet.xy[k]
    u = np.array([np.cos(fleet.heading[k]), np.sin(fleet.heading[k])])
    n = np.array([u[1], -u[0]])
    L, W = fleet.length[k] + grow, fleet.width[k] / 2 + grow / 2
    r = f - u * L
    return np.array([r + n * W, f + n * W, f - n * W, r - n * W])


def _box(fleet: Fleet, k: int, a0: float, a1: float, b: float, z0: float, z1: float) -> np.ndarray:
    """Corners ``(8, 3)`` of a box along the vehicle from ``a0`` to ``a1`` metres from the rear
    bumper, half-width ``b``, heights ``z0..z1``."""
    f = fleet.xy[k]
    u = np.array([np.cos(fleet.heading[k]), np.sin(fleet.heading[k])])
    n = np.array([u[1], -u[0]])
    rear = f - u * fleet.length[k]
    pts = []
    for z in (z0, z1):
        for a, s in ((a0, 1), (a1, 1), (a1, -1), (a0, -1)):
            p = rear + u * a + n * b * s
            pts.append((p[0], p[1], z))
    return np.array(pts)


def _parts(fleet: Fleet, k: int, colour_key: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The boxes a vehicle is drawn from, each with its colour (car, motorcycle, bus, truck)."""
    L, W, H = fleet.length[k], fleet.width[k], max(fleet.height[k], 1.0)
    c = int(fleet.cls[k])
    B = W / 2
    if c == 1:  # motorcycle and rider
        body = _CAR_COLOURS[colour_key % len(_CAR_COLOURS)]
        return [(_box(fleet, k, 0.1, L - 0.1, 0.12, 0.0, 0.6), _TYRE),
                (_box(fleet, k, 0.2, L - 0.2, 0.25, 0.45, 0.95), body),
                (_box(fleet, k, 0.35 * L, 0.7 * L, 0.28, 0.95, H), _GLASS * 1.3)]
    if c == 2:  # bus: tall body, a band of windows
        body = _BUS_COLOURS[colour_key % len(_BUS_COLOURS)]
        return [(_box(fleet, k, 0.8, L - 1.0, B - 0.15, 0.0, 0.5), _TYRE),
                (_box(fleet, k, 0.0, L, B, 0.3, H), body),
                (_box(fleet, k, 0.3, L - 0.05, B + 0.03, 0.55 * H, 0.85 * H), _GLASS)]
    if c == 3:  # truck: cab at the front, cargo box behind
        cab = _CAB_COLOURS[colour_key % len(_CAB_COLOURS)]
        cargo = np.array((200, 200, 200)) * (0.7 + 0.3 * ((colour_key >> 8) % 2))
        return [(_box(fleet, k, 0.6, L - 0.6, B - 0.15, 0.0, 0.55), _TYRE),
                (_box(fleet, k, 0.0, L - 2.5, B, 0.45, H), cargo),
                (_box(fleet, k, L - 2.3, L, B - 0.05, 0.45, 0.8 * H), cab),
                (_box(fleet, k, L - 0.3, L + 0.01, B - 0.2, 0.5 * H, 0.75 * H), _GLASS)]
    body = _CAR_COLOURS[colour_key % len(_CAR_COLOURS)]
    return [(_box(fleet, k, 0.5, L - 0.5, B - 0.1, 0.0, 0.4), _TYRE),
            (_box(fleet, k, 0.0, L, B, 0.28, 0.55 * H), body),
            (_box(fleet, k, 0.22 * L, 0.72 * L, B - 0.12, 0.55 * H, H), _GLASS),
            (_box(fleet, k, 0.3 * L, 0.65 * L, B - 0.16, H - 0.02, H + 0.01), body)]


_FACES = ((0, 1, 2, 3), (4, 5, 6, 7), (0, 1, 5, 4), (1, 2, 6, 5), (2, 3, 7, 6), (3, 0, 4, 7))


def _draw_box(img: np.ndarray, corners: np.ndarray, uv: np.ndarray, colour: np.ndarray, eye: np.ndarray,
              sun: np.ndarray) -> None:
    """The faces of one box that face the camera, shaded by the sun (Lambert plus ambient)."""
    centre = corners.mean(axis=0)
    for f in _FACES:
        p = corners[list(f)]
        fc = p.mean(axis=0)
        nrm = fc - centre
        nrm /= max(float(np.linalg.norm(nrm)), 1e-9)
        if np.dot(nrm, eye - fc) <= 0:
            continue
        lit = 0.5 + 0.6 * max(float(np.dot(nrm, sun)), 0.0)
        col = tuple(float(v) for v in np.clip(colour * lit, 0, 255))
        cv2.fillConvexPoly(img, np.round(uv[list(f)] * 4).astype(np.int32), col, lineType=cv2.LINE_AA, shift=2)
