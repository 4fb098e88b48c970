"""Batched throughput of the shipped detector on a GPU, on frames rendered beforehand.

Standalone on purpose: it needs numpy, torch and ultralytics only (no SUMO, no numba), so it runs
on a machine that has a GPU but not the project's simulator. Render the frames where SUMO is (any
``.npz`` with a ``frames`` array ``(n, h, w, 3)`` of BGR ``uint8``), then::

    python -m benchmarks.gpu_vision FRAMES.npz --weights vision/weights/citybrain-vehicles.pt --out DIR

For each imgsz and batch size it times the camera worker's own detector call
(``vision.detector.Detector``: ``predict`` with its conf, iou, classes and class-agnostic NMS,
then the boxes copied to the host as :class:`~vision.detector.Detections`), cycling through the frames in batches: one repeat is one
pass over all frames, frames/s is the median over the repeats after a warm-up. Beside it, the
model's forward pass alone on the already letterboxed batch on the device (no host
pre-processing, no NMS), to show how much of the call the GPU itself takes. Writes
``gpu_vision.json`` and ``gpu_vision.md`` to DIR.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

__all__ = ["measure", "markdown_table", "main"]

SIZES = (320, 416, 640)
BATCHES = (1, 8, 32)
HALF = ((416, 32),)
"""(imgsz, batch) pairs also measured in half precision."""


def _timed(fn: Callable[[], None], sync: Callable[[], None], repeats: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        fn()
    sync()
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        sync()
        out.append(time.perf_counter() - t)
    return out


def _case(weights: str | Path, frames: Sequence[np.ndarray], imgsz: int, batch: int, device: str, half: bool,
          repeats: int, warmup: int, sync: Callable[[], None]) -> dict:
    """One (imgsz, batch, precision) row: the worker's detector call and the forward pass alone."""
    import torch

    from vision.detector import Detector

    batches = [list(frames[k:k + batch]) for k in range(0, len(frames) - batch + 1, batch)]
    if not batches:
        raise ValueError(f"batch {batch} needs at least {batch} frames, got {len(frames)}")
    n = batch * len(batches)
    det = Detector(weights, imgsz=imgsz, device=device, half=half)

    def call() -> None:
        for b in batches:
            det(b)

    wall = _timed(call, sync, repeats, warmup)
    pred = det.model.predictor
    with torch.inference_mode():
        x = pred.preprocess(batches[0])
        shape = tuple(x.shape)

        def forward() -> None:
            for _ in batches:
                pred.inference(x)

        fwd = _timed(forward, sync, repeats, warmup)
    return {
        "imgsz": imgsz, "batch": batch, "precision": "fp16" if pred.model.fp16 else "fp32", "input_shape": list(shape),
        "frames_per_repeat": n, "repeats": repeats,
        "fps": n / statistics.median(wall), "fps_min": n / max(wall), "fps_max": n / min(wall),
        "forward_fps": n / statistics.median(fwd),
        "ms_per_batch": 1e3 * statistics.median(wall) / len(batches),
        "forward_ms_per_batch": 1e3 * statistics.median(fwd) / len(batches),
    }


def measure(weights: str | Path, frames: np.ndarray, *, device: str = "0", sizes: Sequence[int] = SIZES,
            batches: Sequence[int] = BATCHES, half: Sequence[tuple[int, int]] = HALF, repeats: int = 7,
            warmup: int = 3, progress: Callable[[str], None] | None = None) -> dict:
    """Throughput of ``weights`` on ``frames`` ``(n, h, w, 3)`` for every size x batch, plus ``half``."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be (n, h, w, 3) uint8, got {frames.shape} {frames.dtype}")
    if max([*batches, *(b for _, b in half)], default=1) > len(frames):
        raise ValueError(f"{len(frames)} frames cannot fill the largest batch")
    import torch
    import ultralytics

    say = progress or (lambda s: None)
    cuda = device != "cpu"
    if cuda and not torch.cuda.is_available():
        raise RuntimeError("no CUDA device visible to torch; pass --device cpu for a dry run")
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    cases = [(s, b, False) for s in sizes for b in batches] + [(s, b, True) for s, b in half]
    rows = []
    for imgsz, batch, fp16 in cases:
        say(f"{'fp16' if fp16 else 'fp32'} imgsz {imgsz} batch {batch}")
        rows.append(_case(weights, frames, imgsz, batch, device, fp16, repeats, warmup, sync))
        say(f"  {rows[-1]['fps']:.0f} frames/s (forward alone {rows[-1]['forward_fps']:.0f})")
    return {
        "date": _dt.date.today().isoformat(),
        "device": torch.cuda.get_device_name(0) if cuda else platform.processor() or "cpu",
        "torch": torch.__version__, "cuda": torch.version.cuda, "ultralytics": ultralytics.__version__,
        "python": platform.python_version(), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "weights": Path(weights).name, "frames": int(len(frames)), "frame_shape": list(frames.shape[1:]),
        "warmup": warmup, "rows": rows,
    }


def markdown_table(r: dict) -> str:
    """The record as a Markdown table, one row per (imgsz, batch, precision)."""
    lines = ["| imgsz | batch | precision | frames/s (detector call) | slowest-fastest pass | ms per batch | "
             "frames/s (forward pass alone) |", "|---|---|---|---|---|---|---|"]
    for x in r["rows"]:
        lines.append(f"| {x['imgsz']} | {x['batch']} | {x['precision']} | {x['fps']:.0f} | "
                     f"{x['fps_min']:.0f}-{x['fps_max']:.0f} | {x['ms_per_batch']:.1f} | {x['forward_fps']:.0f} |")
    return "\n".join(lines) + "\n"


def _markdown(r: dict) -> str:
    return (f"# Detector throughput on {r['device']}\n\n"
            f"`{r['weights']}`, {r['frames']} frames of {r['frame_shape'][1]}x{r['frame_shape'][0]}, torch {r['torch']} "
            f"(CUDA {r['cuda']}), ultralytics {r['ultralytics']}, {r['date']}; median of {r['rows'][0]['repeats']} "
            f"passes over the frames after {r['warmup']} warm-up passes.\n\n" + markdown_table(r))


def main(argv: Sequence[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.gpu_vision", description=__doc__.split("\n\n")[0])
    ap.add_argument("frames", type=Path, help=".npz with a 'frames' array (n, h, w, 3) BGR uint8")
    ap.add_argument("--weights", type=Path, default=None, help="default: the shipped detector")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--device", default="0", help="'0' (first GPU) or 'cpu' for a dry run")
    ap.add_argument("--sizes", default=",".join(map(str, SIZES)))
    ap.add_argument("--batches", default=",".join(map(str, BATCHES)))
    ap.add_argument("--half", default=",".join(f"{s}x{b}" for s, b in HALF), help="imgszxbatch,... ('' for none)")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--max-frames", type=int, default=0, help="use only the first N frames (0: all)")
    a = ap.parse_args(argv)
    from vision.detector import WEIGHTS

    frames = np.load(a.frames)["frames"]
    if a.max_frames:
        frames = frames[:a.max_frames]
    half = [tuple(int(v) for v in p.split("x")) for p in a.half.split(",") if p]
    r = measure(a.weights or WEIGHTS, frames, device=a.device, sizes=[int(s) for s in a.sizes.split(",")],
                batches=[int(b) for b in a.batches.split(",")], half=half, repeats=a.repeats, warmup=a.warmup,
                progress=lambda s: print(s, flush=True))
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "gpu_vision.json").write_text(json.dumps(r, indent=2) + "\n")
    (a.out / "gpu_vision.md").write_text(_markdown(r))
    print(_markdown(r))
    return r


if __name__ == "__main__":
    main()
