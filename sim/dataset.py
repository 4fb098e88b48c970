"""Training data for the project's detector: frames rendered from SUMO runs with YOLO labels.

Each scenario runs in SUMO with some vehicles turned into motorcycles, buses and trucks; every
few seconds each signalised approach is filmed by a camera whose height, pitch, distance,
field of view and heading are drawn at random around the defaults, under a random light.
Frames go to ``images/{train,val}``, labels (``class cx cy w h``, normalised) to
``labels/{train,val}``, and ``data.yaml`` names the classes for ultralytics.

Example:
    >>> make_dataset(["arterial"], Path("data/vehicles"), frames=200)   # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from sim.backend import SumoBackend
from sim.camera import VehicleFeed, place_cameras, vary_fleet
from wire.cameras import CLASSES, Camera
from sim.render import RoadMap, Scene, Style
from sim.scenario import load_scenario

__all__ = ["make_dataset", "jitter_camera", "write_yolo_labels"]


def jitter_camera(cam: Camera, rng: np.random.Generator) -> Camera:
    """The camera moved within what pole cameras look like: height 8-14 m, pitch 17-28 degrees,
    10-26 m past the stop line, field of view 42-60 degrees, heading within 4 degrees."""
    back = rng.uniform(10.0, 26.0) - 20.0  # defaults place it 20 m past the stop line
    u = np.array([-math.cos(cam.yaw), -math.sin(cam.yaw)])  # travel direction
    pos = np.array(cam.position[:2]) + u * back + np.array([u[1], -u[0]]) * rng.uniform(-2.0, 2.0)
    fov = math.radians(rng.uniform(42.0, 60.0))
    return replace(cam, position=(float(pos[0]), float(pos[1]), float(rng.uniform(8.0, 14.0))),
                   yaw=cam.yaw + math.radians(rng.uniform(-4.0, 4.0)), pitch=math.radians(rng.uniform(17.0, 28.0)),
                   focal=cam.size[0] / 2 / math.tan(fov / 2))


def write_yolo_labels(path: Path, labels, size: tuple[int, int]) -> int:
    """Write labels as YOLO text (``class cx cy w h``, normalised); returns how many."""
    w, h = size
    lines = []
    for lb in labels:
        x1, y1, x2, y2 = lb.box
        lines.append(f"{lb.cls} {(x1 + x2) / 2 / w:.6f} {(y1 + y2) / 2 / h:.6f} {(x2 - x1) / w:.6f} {(y2 - y1) / h:.6f}")
    path.write_text("\n".join(lines) + ("\n" if lines else ""))
    return len(lines)


def make_dataset(scenarios: Sequence[str], out: Path, *, frames: int = 1500, val_share: float = 0.15,
                 seed: int = 0, warmup: float = 600.0, every: float = 4.0,
                 shares: tuple[float, float, float] = (0.15, 0.15, 0.15),
                 progress: Callable[[int, int], None] | None = None) -> dict:
    """Render about ``frames`` labelled frames from ``scenarios`` into ``out`` (see module doc).

    ``shares``: the motorcycles, buses and trucks among departing vehicles (more than on real
    roads, so the rarer classes are learnt as well as cars). Returns the summary written to
    ``out/dataset.json``.
    """
    out = Path(out)
    for split in ("train", "val"):
        (out / "images" / split).mkdir(parents=True, exist_ok=True)
        (out / "labels" / split).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    per = math.ceil(frames / max(len(scenarios), 1))
    done = 0
    boxes = np.zeros(len(CLASSES), dtype=np.int64)
    for si, name in enumerate(scenarios):
        sc = load_scenario(name)
        with SumoBackend(sc, seed=seed + si + 1) as b:
            ts = b.ts
            net, _ = b.network()
            roads = RoadMap.from_sumo(ts)
            cams = place_cameras(ts, [x.id for x in net.intersections])
            feed = VehicleFeed(ts)
            made = 0
            end = sc.end or 3600.0
            t = 0.0
            next_shot = warmup
            while made < per and t < end:
                ts.simulationStep()
                vary_fleet(ts, rng, shares)
                fleet = feed.read()
                t = float(ts.simulation.getTime())
                if t < next_shot:
                    continue
                next_shot = t + every * rng.uniform(0.5, 1.5)
                for cam in rng.permutation(len(cams))[: max(1, len(cams) // 4 + 1)]:
                    if made >= per:
                        break
                    c = jitter_camera(cams[cam], rng)
                    scene = Scene.from_map(roads, c, seed=int(rng.integers(1 << 30)))
                    img, labels = scene.frame(fleet, Style.random(rng), rng)
                    if not labels and rng.random() < 0.9:
                        continue  # keep a few empty frames, not many
                    split = "val" if rng.random() < val_share else "train"
                    stem = f"{name}_{made:05d}"
                    cv2.imwrite(str(out / "images" / split / f"{stem}.jpg"), img,
                                [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(70, 96))])
                    write_yolo_labels(out / "labels" / split / f"{stem}.txt", labels, c.size)
                    for lb in labels:
                        boxes[lb.cls] += 1
                    made += 1
                    done += 1
                    if progress is not None:
                        progress(done, per * len(scenarios))
    (out / "data.yaml").write_text(
        f"path: {out.resolve()}\ntrain: images/train\nval: images/val\nnames:\n"
        + "".join(f"  {k}: {n}\n" for k, n in enumerate(CLASSES)))
    summary = {"scenarios": list(scenarios), "frames": done, "seed": seed, "class_shares": list(shares),
               "boxes": {n: int(boxes[k]) for k, n in enumerate(CLASSES)}}
    (out / "dataset.json").write_text(json.dumps(summary, indent=2))
    return summary
