"""The synthetic camera feed: SUMO stepped at the cameras' frame rate, every camera rendered each step.

:class:`CameraFeed` owns the per-camera scenes and ground-truth state; :meth:`CameraFeed.shoot`
renders the current step for all cameras and returns the frames with their truth. The caller
steps SUMO (directly or through :class:`~sim.backend.SumoBackend`), so the same feed serves the
benchmark, the dataset and the ``citybrain sim`` process.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

import numpy as np

from sim.camera import Fleet, GroundTruth, VehicleFeed, ground_truth, vary_fleet
from wire.cameras import Camera
from sim.render import Label, RoadMap, Scene, Style

__all__ = ["CameraFeed", "Shot"]


@dataclass
class Shot:
    """One step of every camera: frames (BGR), their labels and per-lane ground truth."""

    time: float
    frames: list[np.ndarray]
    labels: list[list[Label]]
    truth: list[GroundTruth]
    fleet: Fleet


class CameraFeed:
    """Renders ``cams`` from a running SUMO.

    Args:
        ts: libsumo or traci, started.
        cams: the cameras.
        seed: variation of light and noise (one style per camera, drifting slowly).
        vary: turn some vehicles into motorcycles, buses and trucks (as in training).
    """

    def __init__(self, ts: ModuleType, cams: list[Camera], *, seed: int = 0, vary: bool = True) -> None:
        self.ts = ts
        self.cams = cams
        self.rng = np.random.default_rng(seed)
        roads = RoadMap.from_sumo(ts)
        self.scenes = [Scene.from_map(roads, c, seed=seed + k) for k, c in enumerate(cams)]
        self.styles = [Style.random(self.rng) for _ in cams]
        self.vehicles = VehicleFeed(ts)
        self.vary = vary
        self._last: list[dict[str, str]] = [{} for _ in cams]

    def observe(self) -> Fleet:
        """Read this step's vehicles (call once per SUMO step, rendering or not)."""
        if self.vary:
            vary_fleet(self.ts, self.rng)
        return self.vehicles.read()

    def truth(self, fleet: Fleet) -> list[GroundTruth]:
        """Per-camera ground truth of this step (crossings since the previous call)."""
        return [ground_truth(c, fleet, self._last[k]) for k, c in enumerate(self.cams)]

    def shoot(self, fleet: Fleet, time: float) -> Shot:
        """Render every camera for this step and take the ground truth."""
        frames, labels = [], []
        for k, scene in enumerate(self.scenes):
            img, lab = scene.frame(fleet, self.styles[k], self.rng)
            frames.append(img)
            labels.append(lab)
        return Shot(time, frames, labels, self.truth(fleet), fleet)
