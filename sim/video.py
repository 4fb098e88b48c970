"""Synthetic camera footage: each camera of a scenario rendered to a video file, with ground truth.

``render_videos`` writes ``<out>/<k>.avi`` (Motion-JPEG) per camera, ``<out>/truth.jsonl`` (per
frame and camera: time, per-lane vehicles present, halting and stop-line crossings) and
``<out>/cameras.json``, a worker config whose sources are the videos.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import cv2

from sim.backend import SumoBackend
from sim.camera import place_cameras
from sim.feed import CameraFeed
from sim.scenario import load_scenario

__all__ = ["render_videos"]


def render_videos(scenario: str, out: Path, *, seconds: float = 60.0, fps: float = 4.0, seed: int = 1,
                  warmup: float = 300.0, mode: str = "approach",
                  progress: Callable[[float, float], None] | None = None) -> Path:
    """Render ``seconds`` of every camera after ``warmup``; returns the worker config's path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    step = 1.0 / fps
    with SumoBackend(load_scenario(scenario), seed=seed, step_length=step) as b:
        ts = b.ts
        net, _ = b.network()
        cams = place_cameras(ts, [x.id for x in net.intersections], mode=mode)
        feed = CameraFeed(ts, cams, seed=seed)
        t = float(ts.simulation.getTime())
        while t < warmup - 1e-9:
            ts.simulationStep()
            t = float(ts.simulation.getTime())
            feed.truth(feed.observe())
        writers = [cv2.VideoWriter(str(out / f"{k}.avi"), cv2.VideoWriter_fourcc(*"MJPG"), fps, c.size)
                   for k, c in enumerate(cams)]
        try:
            with open(out / "truth.jsonl", "w") as tf:
                end = t + seconds
                while t < end - 1e-9:
                    ts.simulationStep()
                    t = float(ts.simulation.getTime())
                    shot = feed.shoot(feed.observe(), t)
                    for k, (w, img) in enumerate(zip(writers, shot.frames)):
                        w.write(img)
                        g = shot.truth[k]
                        tf.write(json.dumps({"time": t - warmup, "camera": cams[k].id, "present": g.present.tolist(),
                                             "queue": g.queue.tolist(), "crossed": g.crossed.tolist(),
                                             "boxes": len(shot.labels[k])}) + "\n")
                    if progress is not None:
                        progress(seconds - (end - t), seconds)
        finally:
            for w in writers:
                w.release()
    cfg = {"interval": 2.0, "fps": fps, "class_map": "own",
           "cameras": [dict(c.to_dict(), source=f"{k}.avi") for k, c in enumerate(cams)]}
    path = out / "cameras.json"
    path.write_text(json.dumps(cfg, indent=1) + "\n")
    return path
