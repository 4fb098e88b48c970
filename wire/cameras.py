"""Camera geometry every process shares: what a camera is, where it looks, which lanes it counts.

A :class:`Camera` is a pinhole camera at a height above the ground, looking along a heading and
pitched down; it projects world points (metres, ``z`` up) to pixels and pixels back to the
ground. Each camera carries the lanes it watches (:class:`CameraLane`): their ground polygons
near the stop line (the counting zones) and their stop lines, in world coordinates, so the
worker projects them into the image once. A camera config file is the JSON list of
:meth:`Camera.to_dict` records; the worker, the brain and the simulator read the same file.
Placing cameras on a SUMO network is :mod:`sim.camera`'s job; nothing here needs SUMO.

Example:
    >>> cam = Camera("c", "t", (0.0, 0.0, 10.0), yaw=0.0, pitch=0.4, focal=500.0, size=(640, 384))
    >>> uv, z = cam.project(np.array([[0.0, 30.0, 0.0]]))
    >>> bool(z[0] > 0)
    True
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = ["CLASSES", "Camera", "CameraLane"]

CLASSES = ("car", "motorcycle", "bus", "truck")
"""The vehicle classes cameras see and the project's detector predicts (in this order)."""


@dataclass(frozen=True)
class CameraLane:
    """One lane a camera watches.

    Attributes:
        lane: the SUMO lane id.
        zone: ground polygon of the counting zone, ``(k, 2)`` world metres (stop line to
            ``zone_m`` upstream).
        stop_line: ``(2, 2)``: the stop line's two ends (world metres).
        zone_m: length of the zone along the lane (m).
        length: the lane's length (m).
    """

    lane: str
    zone: np.ndarray
    stop_line: np.ndarray
    zone_m: float
    length: float


@dataclass(frozen=True)
class Camera:
    """A calibrated pinhole camera.

    Attributes:
        id: camera id (``<tls>/<approach edge>`` for approach cameras).
        tls: the intersection it belongs to.
        position: ``(x, y, z)`` of the lens (m).
        yaw: heading of the view on the ground, radians counter-clockwise from +x.
        pitch: downward tilt (rad).
        focal: focal length (px).
        size: image ``(width, height)`` (px).
        lanes: the lanes it counts on.
        approach: the incoming edge it looks at ('' for an intersection camera).
    """

    id: str
    tls: str
    position: tuple[float, float, float]
    yaw: float
    pitch: float
    focal: float
    size: tuple[int, int]
    lanes: tuple[CameraLane, ...] = ()
    approach: str = ""
    _axes: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.focal <= 0 or min(self.size) <= 0:
            raise ValueError(f"camera {self.id!r}: focal length and image size must be positive")
        cy, sy = math.cos(self.yaw), math.sin(self.yaw)
        cp, sp = math.cos(self.pitch), math.sin(self.pitch)
        fwd = np.array([cy * cp, sy * cp, -sp])
        right = np.array([sy, -cy, 0.0])
        down = np.cross(fwd, right)  # image y grows downwards
        object.__setattr__(self, "_axes", np.stack([right, down, fwd]))

    def to_camera(self, pts: np.ndarray) -> np.ndarray:
        """World points ``(n, 3)`` in camera coordinates (x right, y down, z forward)."""
        return (np.asarray(pts, dtype=np.float64) - np.asarray(self.position)) @ self._axes.T

    def project(self, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pixels ``(n, 2)`` and depth ``(n,)`` of world points; depth <= 0 is behind the camera."""
        c = self.to_camera(pts)
        z = c[:, 2]
        zs = np.where(z > 1e-6, z, 1e-6)
        w, h = self.size
        uv = np.stack([w / 2 + self.focal * c[:, 0] / zs, h / 2 + self.focal * c[:, 1] / zs], axis=1)
        return uv, z

    def ground(self, uv: np.ndarray) -> np.ndarray:
        """Where the rays through pixels ``(n, 2)`` meet the ground (``z = 0``); NaN above the horizon."""
        uv = np.asarray(uv, dtype=np.float64).reshape(-1, 2)
        w, h = self.size
        rays = np.stack([(uv[:, 0] - w / 2) / self.focal, (uv[:, 1] - h / 2) / self.focal, np.ones(len(uv))], axis=1)
        d = rays @ self._axes  # world directions
        z0 = self.position[2]
        with np.errstate(divide="ignore", invalid="ignore"):
            s = np.where(d[:, 2] < -1e-9, -z0 / d[:, 2], np.nan)
        return np.asarray(self.position[:2]) + d[:, :2] * s[:, None]

    def to_dict(self) -> dict:
        """JSON-ready description (the worker's camera config)."""
        return {
            "id": self.id, "tls": self.tls, "approach": self.approach, "position": list(self.position),
            "yaw": self.yaw, "pitch": self.pitch, "focal": self.focal, "size": list(self.size),
            "lanes": [{"lane": ln.lane, "zone": ln.zone.tolist(), "stop_line": ln.stop_line.tolist(),
                       "zone_m": ln.zone_m, "length": ln.length} for ln in self.lanes],
        }

    @classmethod
    def from_dict(cls, d: dict) -> Camera:
        try:
            lanes = tuple(CameraLane(str(x["lane"]), np.asarray(x["zone"], dtype=np.float64),
                                     np.asarray(x["stop_line"], dtype=np.float64), float(x["zone_m"]),
                                     float(x["length"])) for x in d.get("lanes", ()))
            return cls(str(d["id"]), str(d["tls"]), tuple(float(v) for v in d["position"]), float(d["yaw"]),
                       float(d["pitch"]), float(d["focal"]), (int(d["size"][0]), int(d["size"][1])), lanes,
                       str(d.get("approach", "")))
        except (KeyError, TypeError, ValueError, IndexError) as e:
            raise ValueError(f"camera config {d.get('id', '?') if isinstance(d, dict) else d!r}: {e}") from None
