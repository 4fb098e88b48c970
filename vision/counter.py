"""Per-lane counts from tracked detections: vehicles present, queued, stop-line crossings, class mix.

A calibrated camera maps each detection's ground contact (the bottom centre of its box) to the
road plane, so everything here is decided in metres: which lane's counting zone a vehicle is
in, how fast its track moves (a queued vehicle stands still), and on which side of the stop
line it is. Crossings are decided per track id by side, with hysteresis (``HYSTERESIS_M`` either
side of the line), never by guessing a direction from the image. Track state is pruned once a
track has not been seen for ``forget_s`` seconds, so memory stays bounded.

Example:
    >>> from wire.cameras import Camera, CameraLane
    >>> lane = CameraLane("a_0", np.array([[0, -1.6], [45, -1.6], [45, 1.6], [0, 1.6]], float),
    ...                   np.array([[45, -1.6], [45, 1.6]], float), 45.0, 100.0)
    >>> cam = Camera("c", "t", (65.0, 0.0, 10.0), yaw=np.pi, pitch=0.4, focal=500.0, size=(512, 320),
    ...              lanes=(lane,))
    >>> counter = LaneCounter(cam)
    >>> counter.lane_of(np.array([[30.0, 0.0], [50.0, 0.0]])).tolist()
    [0, -1]
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from wire.cameras import CLASSES, Camera

__all__ = ["LaneCounter", "LaneCounts", "HYSTERESIS_M"]

HYSTERESIS_M = 0.75
"""A track changes side of a stop line only once it is this far past it (m)."""
STITCH_M = 6.0
STITCH_S = 1.5
"""A track that ends within ``STITCH_M`` before a stop line and one that begins within ``STITCH_M``
past it, in the same lane within ``STITCH_S`` seconds, are one vehicle that crossed (the tracker
lost it at the line)."""


@dataclass
class LaneCounts:
    """Counts of one camera's lanes (``Camera.lanes`` order) over one interval.

    Attributes:
        time: end of the interval (s); lanes: SUMO lane ids;
        present: vehicles in each zone (mean over the interval's frames); queue: of them,
        standing (mean); crossed: stop-line crossings in the interval; classes: crossings
        plus presence by class ``(n_lanes, len(CLASSES))`` (mean presence); frames: frames counted;
        approach: per lane, the metres to the stop line of each vehicle in the zone that is not
        standing, in the interval's last frame (where the approaching vehicles are now).
    """

    time: float
    lanes: tuple[str, ...]
    present: np.ndarray
    queue: np.ndarray
    crossed: np.ndarray
    classes: np.ndarray
    frames: int
    approach: tuple[tuple[float, ...], ...] = ()

    def to_dict(self) -> dict:
        return {"time": self.time, "lanes": list(self.lanes), "present": self.present.tolist(),
                "queue": self.queue.tolist(), "crossed": self.crossed.tolist(),
                "classes": self.classes.tolist(), "frames": self.frames,
                "approach": [list(x) for x in self.approach]}


@dataclass
class _Track:
    lane: int
    side: int  # -1 before the stop line, +1 past it, 0 not yet known
    hist_t: list[float] = field(default_factory=list)
    hist_p: list[np.ndarray] = field(default_factory=list)
    seen: float = 0.0


def _inside(poly: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Points ``(n, 2)`` inside polygon ``(k, 2)`` (even-odd rule)."""
    x, y = pts[:, 0], pts[:, 1]
    inside = np.zeros(len(pts), dtype=bool)
    k = len(poly)
    for i in range(k):
        x1, y1 = poly[i]
        x2, y2 = poly[(i + 1) % k]
        cond = (y1 > y) != (y2 > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            xc = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
        inside ^= cond & (x < xc)
    return inside


class LaneCounter:
    """Counts on one camera's lanes from tracked detections, frame by frame.

    Args:
        cam: the calibrated camera with its lanes.
        halt_speed: a track slower than this (m/s, over ``speed_window_s``) is queued.
        forget_s: drop a track's state after this long unseen.
    """

    def __init__(self, cam: Camera, *, halt_speed: float = 1.0, speed_window_s: float = 1.0,
                 forget_s: float = 5.0) -> None:
        if not cam.lanes:
            raise ValueError(f"camera {cam.id!r} has no lanes to count on")
        self.cam = cam
        self.halt_speed = halt_speed
        self.window = speed_window_s
        self.forget_s = forget_s
        n = len(cam.lanes)
        self._tracks: dict[int, _Track] = {}
        # stop lines: a point on each and the travel direction (unit), per lane
        self._stop_mid = np.array([ln.stop_line.mean(axis=0) for ln in cam.lanes])
        dirs = []
        for ln in cam.lanes:
            a, b = ln.stop_line
            d = np.array([(b - a)[1], -(b - a)[0]])  # the stop line runs right -> left of travel
            dirs.append(d / max(float(np.hypot(*d)), 1e-9))
        self._dir = np.array(dirs)
        self._reset_interval(n)
        self.last_present = np.zeros(n)
        self.last_queue = np.zeros(n)
        self.last_approach: tuple[tuple[float, ...], ...] = ((),) * n

    def _reset_interval(self, n: int) -> None:
        self._sum_present = np.zeros(n)
        self._sum_queue = np.zeros(n)
        self._crossed = np.zeros(n)
        self._classes = np.zeros((n, len(CLASSES)))
        self._frames = 0

    def lane_of(self, ground: np.ndarray) -> np.ndarray:
        """Lane index of each ground point ``(n, 2)`` (-1: in no counting zone)."""
        out = np.full(len(ground), -1, dtype=np.int64)
        ok = np.isfinite(ground).all(axis=1)
        for k, ln in enumerate(self.cam.lanes):
            hit = ok & (out < 0) & _inside(ln.zone, np.nan_to_num(ground))
            out[hit] = k
        return out

    def update(self, t: float, boxes: np.ndarray, cls: np.ndarray, track_ids: np.ndarray) -> None:
        """Count one frame: boxes ``(n, 4)`` in pixels, classes ``(n,)``, track ids ``(n,)`` (-1: none)."""
        n = len(self.cam.lanes)
        foot = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, boxes[:, 3]], axis=1) if len(boxes) else np.zeros((0, 2))
        ground = self.cam.ground(foot) if len(foot) else np.zeros((0, 2))
        lane = self.lane_of(ground)
        present = np.bincount(lane[lane >= 0], minlength=n).astype(np.float64)
        queue = np.zeros(n)
        approach: list[list[float]] = [[] for _ in range(n)]
        for k in range(len(boxes)):
            tid = int(track_ids[k])
            p = ground[k]
            if lane[k] >= 0:
                self._classes[lane[k], int(cls[k])] += 1.0
            if tid < 0 or not np.isfinite(p).all():
                continue
            tr = self._tracks.get(tid)
            if tr is None:
                tr = self._tracks[tid] = _Track(lane=int(lane[k]), side=0)
                if lane[k] < 0:
                    self._stitch(t, tr, p)
            tr.seen = t
            tr.hist_t.append(t)
            tr.hist_p.append(p)
            while len(tr.hist_t) > 2 and tr.hist_t[1] <= t - self.window:
                tr.hist_t.pop(0)
                tr.hist_p.pop(0)
            if lane[k] >= 0:
                tr.lane = int(lane[k])
                standing = False
                if len(tr.hist_t) >= 2 and tr.hist_t[-1] - tr.hist_t[0] >= 0.5 * self.window:
                    v = float(np.hypot(*(tr.hist_p[-1] - tr.hist_p[0]))) / (tr.hist_t[-1] - tr.hist_t[0])
                    if v < self.halt_speed:
                        queue[lane[k]] += 1
                        standing = True
                ahead = -float((p - self._stop_mid[tr.lane]) @ self._dir[tr.lane])
                if not standing and ahead > 0:
                    approach[tr.lane].append(ahead)
            if tr.lane >= 0:
                s = float((p - self._stop_mid[tr.lane]) @ self._dir[tr.lane])
                if s < -HYSTERESIS_M:
                    tr.side = -1
                elif s > HYSTERESIS_M:
                    if tr.side == -1:
                        self._crossed[tr.lane] += 1
                    tr.side = 1
        for tid in [k for k, tr in self._tracks.items() if tr.seen < t - self.forget_s]:
            del self._tracks[tid]
        self._sum_present += present
        self._sum_queue += queue
        self.last_present, self.last_queue = present, queue
        self.last_approach = tuple(tuple(sorted(x)) for x in approach)
        self._frames += 1

    def _stitch(self, t: float, new: _Track, p: np.ndarray) -> None:
        """A track born just past a stop line continues one lost just before it: count the crossing."""
        for j, ln in enumerate(self.cam.lanes):
            s = float((p - self._stop_mid[j]) @ self._dir[j])
            if not HYSTERESIS_M < s < STITCH_M:
                continue
            half = float(np.hypot(*(ln.stop_line[1] - ln.stop_line[0]))) / 2
            lateral = float((p - self._stop_mid[j]) @ np.array([self._dir[j][1], -self._dir[j][0]]))
            if abs(lateral) > half + 0.5:
                continue
            for old in self._tracks.values():
                if old is new or old.lane != j or old.side != -1 or not 0 < t - old.seen <= STITCH_S:
                    continue
                if float((old.hist_p[-1] - self._stop_mid[j]) @ self._dir[j]) > -STITCH_M:
                    self._crossed[j] += 1
                    old.side = 1
                    new.lane, new.side = j, 1
                    return

    def flush(self, t: float) -> LaneCounts:
        """The counts of the interval that ends now; starts the next one."""
        f = max(self._frames, 1)
        out = LaneCounts(t, tuple(ln.lane for ln in self.cam.lanes), self._sum_present / f, self._sum_queue / f,
                         self._crossed.copy(), self._classes / f, self._frames, self.last_approach)
        self._reset_interval(len(self.cam.lanes))
        return out

    def clear(self) -> None:
        """Drop the counts of the running interval (track state is kept)."""
        self._reset_interval(len(self.cam.lanes))

    @property
    def pending_crossed(self) -> np.ndarray:
        """Crossings counted since the last flush, per lane."""
        return self._crossed.copy()

    @property
    def n_tracks(self) -> int:
        return len(self._tracks)
