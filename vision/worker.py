"""The camera worker: frames of several cameras in, per-lane counts per interval out.

Each step takes one frame from every camera the worker owns, detects vehicles in all of them
in one batched inference call, tracks each camera's detections (ByteTrack) and counts them per
lane (:class:`~vision.counter.LaneCounter`). Every ``interval`` seconds of camera time it emits
one :class:`~vision.counter.LaneCounts` per camera to its sink.

The camera config (JSON) is what ``Camera.to_dict`` writes, one entry per camera, plus its
``source`` (video file, image folder or stream URL)::

    {"interval": 2.0, "fps": 4, "weights": "vision/weights/citybrain-vehicles.pt", "class_map": "own",
     "cameras": [{"id": "A0/north", "tls": "A0", "position": [...], ..., "lanes": [...],
                  "source": "footage/north.mp4"}]}
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wire.cameras import CLASSES, Camera
from vision.counter import LaneCounter, LaneCounts
from vision.detector import COCO_MAP, IMGSZ, OWN_MAP, WEIGHTS, Detections, Detector, Tracker

__all__ = ["WorkerConfig", "CameraWorker", "ConfigError", "parse_class_map", "make_worker"]

log = logging.getLogger(__name__)


class ConfigError(ValueError):
    """A worker config is malformed."""


def parse_class_map(spec: str | dict | None) -> dict[int, int] | None:
    """``own``, ``coco``, ``"2:0,3:1"`` or a mapping -> detector class -> project class (one of
    ``sim.camera.CLASSES``'s indices; any other raises :class:`ConfigError`)."""
    if spec is None or spec == "auto":
        return None
    if spec == "own":
        return dict(OWN_MAP)
    if spec == "coco":
        return dict(COCO_MAP)
    try:
        pairs = spec.items() if isinstance(spec, dict) else (p.split(":") for p in str(spec).split(","))
        out = {int(a): int(b) for a, b in pairs}
    except (ValueError, TypeError):
        raise ConfigError(f"class map {spec!r}: use own, coco, or pairs like 2:0,3:1,5:2,7:3") from None
    wrong = sorted({b for b in out.values() if not 0 <= b < len(CLASSES)})
    if wrong:
        raise ConfigError(f"class map {spec!r}: project classes are 0-{len(CLASSES) - 1} "
                          f"({', '.join(CLASSES)}), not {', '.join(map(str, wrong))}")
    return out


_KEYS = {"interval", "fps", "weights", "class_map", "imgsz", "conf", "device", "cameras", "halt_speed"}


@dataclass(frozen=True)
class WorkerConfig:
    """What one worker runs: its cameras (and their sources), the detector, the counting interval."""

    cameras: tuple[Camera, ...]
    sources: tuple[str, ...] = ()
    interval: float = 2.0
    fps: float = 4.0
    weights: str = str(WEIGHTS)
    class_map: dict[int, int] | None = None
    imgsz: int = IMGSZ
    conf: float = 0.3
    device: str = "cpu"
    halt_speed: float = 1.0

    @classmethod
    def from_dict(cls, d: dict, base: Path | None = None) -> WorkerConfig:
        if not isinstance(d, dict):
            raise ConfigError("worker config must be a JSON object")
        unknown = set(d) - _KEYS
        if unknown:
            raise ConfigError(f"unknown worker config keys: {', '.join(sorted(unknown))} (known: {', '.join(sorted(_KEYS))})")
        cams_in = d.get("cameras")
        if not isinstance(cams_in, list) or not cams_in:
            raise ConfigError("worker config needs a non-empty 'cameras' list")
        cams, sources = [], []
        for c in cams_in:
            try:
                cams.append(Camera.from_dict(c))
            except ValueError as e:
                raise ConfigError(str(e)) from None
            src = str(c.get("source", ""))
            if src and base is not None and "://" not in src and not Path(src).is_absolute():
                src = str((base / src).resolve())
            sources.append(src)
        try:
            return cls(tuple(cams), tuple(sources), float(d.get("interval", 2.0)), float(d.get("fps", 4.0)),
                       str(d.get("weights", WEIGHTS)), parse_class_map(d.get("class_map")), int(d.get("imgsz", IMGSZ)),
                       float(d.get("conf", 0.3)), str(d.get("device", "cpu")), float(d.get("halt_speed", 1.0)))
        except (TypeError, ValueError) as e:
            raise ConfigError(f"worker config: {e}") from None

    @classmethod
    def load(cls, path: str | Path) -> WorkerConfig:
        p = Path(path)
        try:
            d = json.loads(p.read_text())
        except FileNotFoundError:
            raise ConfigError(f"worker config not found: {p}") from None
        except json.JSONDecodeError as e:
            raise ConfigError(f"{p}: not valid JSON ({e})") from None
        return cls.from_dict(d, p.parent)


class CameraWorker:
    """Detect, track and count for a set of cameras; emits counts every ``interval`` seconds.

    Args:
        cameras: the calibrated cameras with their lanes.
        detector: a :class:`Detector` (or any callable frames -> list of Detections).
        interval: counting interval (s of camera time); fps: the cameras' frame rate.
    """

    def __init__(self, cameras: Sequence[Camera], detector: Callable[[list[np.ndarray]], list[Detections]], *,
                 interval: float = 2.0, fps: float = 4.0, halt_speed: float = 1.0) -> None:
        if interval <= 0 or fps <= 0:
            raise ValueError("interval and fps must be positive")
        self.cameras = list(cameras)
        self.detector = detector
        self.interval = interval
        self.fps = fps
        self.halt_speed = halt_speed
        self.reset()

    def reset(self) -> None:
        """Forget every track, count and interval (a new run)."""
        self.trackers = [Tracker(self.fps) for _ in self.cameras]
        self.counters = [LaneCounter(c, halt_speed=self.halt_speed) for c in self.cameras]
        self._next: float | None = None
        self._last: float | None = None
        self.frames = 0

    def warm_up(self) -> None:
        """Run the detector once on blank frames of every camera's size, so that the first real
        frames are not held up by the model's first inference (several seconds on a CPU)."""
        self.detector([np.zeros((c.size[1], c.size[0], 3), dtype=np.uint8) for c in self.cameras])

    def process(self, t: float, frames: Sequence[np.ndarray | None]) -> list[LaneCounts]:
        """Count one frame per camera (``None``: that camera gave none); returns the counts of an
        interval that ended (empty list otherwise). A time before the previous frame's starts a
        new run (:meth:`reset`)."""
        if self._last is not None and t < self._last - 1e-9:
            self.reset()
        self._last = t
        live = [k for k, f in enumerate(frames) if f is not None]
        dets = self.detector([frames[k] for k in live]) if live else []
        for k, d in zip(live, dets):
            ids = self.trackers[k].update(d)
            self.counters[k].update(t, d.boxes, d.cls, ids)
        self.frames += 1
        if self._next is None:  # intervals end on multiples of the interval (the brain's decision times)
            self._next = (math.floor(t / self.interval + 1e-9) + 1) * self.interval
        if t + 1e-9 < self._next:
            return []
        self._next += self.interval * max(1, int((t - self._next) // self.interval) + 1)
        return [c.flush(t) for c in self.counters]

    def run(self, sources: Sequence, sink: Callable[[list[LaneCounts]], None], *, max_frames: int | None = None) -> int:
        """Read all sources in step (they end together with the shortest); returns frames read."""
        its = [iter(s) for s in sources]
        n = 0
        while max_frames is None or n < max_frames:
            got = [next(it, None) for it in its]
            if all(g is None for g in got):
                break
            t = max(g[0] for g in got if g is not None)
            out = self.process(t, [g[1] if g is not None else None for g in got])
            if out:
                sink(out)
            n += 1
        return n


def make_worker(cfg: WorkerConfig) -> CameraWorker:
    """The worker a config describes, with its detector loaded."""
    det = Detector(cfg.weights, class_map=cfg.class_map, imgsz=cfg.imgsz, conf=cfg.conf, device=cfg.device)
    return CameraWorker(cfg.cameras, det, interval=cfg.interval, fps=cfg.fps, halt_speed=cfg.halt_speed)
