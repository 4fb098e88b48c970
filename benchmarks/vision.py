"""Accuracy and speed of the camera pipeline against SUMO's ground truth.

- **Detection**: mAP50 of the weights on frames rendered from a scenario the detector was not
  trained on (default: the own ``single`` intersection, another seed).
- **Counting** (closed loop through the real worker: batched detection, ByteTrack, lane zones):
  SUMO runs at the cameras' frame rate, every approach camera is rendered each step, and the
  worker's per-lane queue (standing vehicles in each counting zone) is compared with SUMO's
  halting vehicles in the same zone once per second (MAE, vehicles per lane); its stop-line
  crossings per approach over 5-minute windows with the vehicles SUMO saw leave each lane
  (absolute error summed over approaches and windows, in % of the true flow).
- **Speed**: frames per second through the whole detector call (pre-processing, inference,
  non-maximum suppression) with the process pinned to one CPU core, for PyTorch and ONNX
  Runtime at imgsz 320, the operating size (``vision.detector.IMGSZ``) and 640; batched
  throughput on a GPU when one is present.

Detection and counting run at the detector's operating size; mAP50 is also given at 320.
"""

from __future__ import annotations

import json
import math
import multiprocessing as mp
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

__all__ = ["bench_vision", "counting_accuracy", "fps_per_core", "markdown_report"]


def counting_accuracy(weights: str | Path, *, scenario: str = "single", seed: int = 11, warmup: float = 300.0,
                      duration: float = 600.0, fps: float = 4.0, imgsz: int | None = None, conf: float = 0.3,
                      window: float = 300.0, settle: float = 10.0,
                      progress: Callable[[float, float], None] | None = None) -> dict:
    """Run the worker on synthetic cameras of ``scenario`` and score its counts (see module doc)."""
    from sim.backend import SumoBackend
    from sim.camera import place_cameras
    from sim.feed import CameraFeed
    from sim.scenario import load_scenario
    from vision.detector import Detector
    from vision.worker import CameraWorker

    from vision.detector import IMGSZ

    imgsz = imgsz or IMGSZ
    sc = load_scenario(scenario)
    step = 1.0 / fps
    with SumoBackend(sc, seed=seed, step_length=step) as b:
        ts = b.ts
        net, _ = b.network()
        cams = place_cameras(ts, [x.id for x in net.intersections])
        feed = CameraFeed(ts, cams, seed=seed)
        det = Detector(weights, imgsz=imgsz, conf=conf)
        worker = CameraWorker(cams, det, interval=2.0, fps=fps)
        t = float(ts.simulation.getTime())
        while t < warmup - 1e-9:
            ts.simulationStep()
            t = float(ts.simulation.getTime())
            feed.truth(feed.observe())
        start = t + settle
        n_win = max(1, int(duration // window))
        end = warmup + n_win * window + settle
        gt_flow = np.zeros((n_win, len(cams)))
        est_flow = np.zeros((n_win, len(cams)))
        q_err: list[float] = []
        q_true: list[float] = []
        q_est: list[float] = []
        frames = 0
        k = 0
        t_wall = time.perf_counter()
        while t < end - 1e-9:
            ts.simulationStep()
            t = float(ts.simulation.getTime())
            shot = feed.shoot(feed.observe(), t)
            out = worker.process(t, shot.frames)
            frames += len(shot.frames)
            k += 1
            if t <= start:
                for c in worker.counters:  # crossings before the scored period are not scored
                    c.clear()
                continue
            w = min(int((t - start - 1e-9) // window), n_win - 1)
            for ci, truth in enumerate(shot.truth):
                gt_flow[w, ci] += truth.crossed.sum()
            for ci, counts in enumerate(out):
                est_flow[w, ci] += counts.crossed.sum()
            if k % int(round(fps)) == 0:
                for ci, c in enumerate(worker.counters):
                    q_err.extend(np.abs(c.last_queue - shot.truth[ci].queue).tolist())
                    q_true.extend(shot.truth[ci].queue.tolist())
                    q_est.extend(c.last_queue.tolist())
            if progress is not None:
                progress(t - warmup, end - warmup)
        # the crossings counted since the last flush belong to the last window
        for ci, c in enumerate(worker.counters):
            est_flow[-1, ci] += c.pending_crossed.sum()
        wall = time.perf_counter() - t_wall
    err = np.abs(est_flow - gt_flow)
    return {
        "scenario": scenario, "seed": seed, "cameras": len(cams), "lanes": sum(len(c.lanes) for c in cams),
        "scored_s": n_win * window, "fps": fps, "imgsz": imgsz,
        "queue_mae": float(np.mean(q_err)) if q_err else math.nan,
        "queue_mean_true": float(np.mean(q_true)) if q_true else math.nan,
        "queue_mean_est": float(np.mean(q_est)) if q_est else math.nan,
        "flow_true": int(gt_flow.sum()), "flow_est": int(est_flow.sum()),
        "flow_error_pct": float(100.0 * err.sum() / max(gt_flow.sum(), 1.0)),
        "flow_windows": [{"window": w, "camera": cams[ci].id, "true": int(gt_flow[w, ci]), "est": int(est_flow[w, ci])}
                         for w in range(n_win) for ci in range(len(cams))],
        "frames": frames, "wall_s": wall,
    }


def _fps_child(weights: str, imgsz: int, frames_npz: str, n: int, conn) -> None:  # one pinned process
    try:
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
        import torch

        torch.set_num_threads(1)
        from vision.detector import Detector

        imgs = list(np.load(frames_npz)["frames"])
        det = Detector(weights, imgsz=imgsz)
        for f in imgs[:3]:
            det([f])
        t = time.perf_counter()
        for k in range(n):
            det([imgs[k % len(imgs)]])
        conn.send(n / (time.perf_counter() - t))
    except Exception as e:  # reported, not raised, across the process boundary
        conn.send(f"{type(e).__name__}: {e}")


def fps_per_core(weights: str | Path, imgsz: int, frames: list[np.ndarray], n: int = 60) -> float:
    """Frames per second of one detector call per frame, the process pinned to one core."""
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "frames.npz"
        np.savez(p, frames=np.stack(frames))
        ctx = mp.get_context("spawn")
        a, b = ctx.Pipe(duplex=False)
        env_before = os.environ.get("OMP_NUM_THREADS")
        os.environ["OMP_NUM_THREADS"] = "1"
        try:
            proc = ctx.Process(target=_fps_child, args=(str(weights), imgsz, str(p), n, b))
            proc.start()
            res = a.recv() if a.poll(900) else "timed out"
            proc.join(30)
        finally:
            if env_before is None:
                os.environ.pop("OMP_NUM_THREADS", None)
            else:
                os.environ["OMP_NUM_THREADS"] = env_before
    if isinstance(res, str):
        raise RuntimeError(f"fps measurement failed ({weights} at {imgsz}): {res}")
    return float(res)


def _gpu_throughput(weights: str | Path, frames: list[np.ndarray], imgsz: int, batch: int = 32) -> float | None:
    import torch

    if not torch.cuda.is_available():
        return None
    from vision.detector import Detector

    det = Detector(weights, imgsz=imgsz, device="0")
    b = [frames[k % len(frames)] for k in range(batch)]
    det(b)
    t = time.perf_counter()
    for _ in range(10):
        det(b)
    return 10 * batch / (time.perf_counter() - t)


def bench_vision(weights: str | Path, *, scenario: str = "single", seed: int = 11, duration: float = 600.0,
                 map_frames: int = 300, fps_frames: int = 60, work_dir: Path | None = None,
                 progress: Callable[[str], None] | None = None) -> dict:
    """All of the module's figures in one record (see the module docstring)."""
    from sim.backend import SumoBackend
    from sim.camera import place_cameras
    from sim.feed import CameraFeed
    from sim.scenario import load_scenario
    from sim.dataset import make_dataset
    from vision.detector import IMGSZ, evaluate, export_onnx

    say = progress or (lambda s: None)
    weights = Path(weights)
    work = Path(work_dir or tempfile.mkdtemp(prefix="citybrain-bench-vision-"))
    say(f"held-out frames from {scenario} (seed {seed})")
    ds = make_dataset([scenario], work / "heldout", frames=map_frames, val_share=1.0, seed=seed, warmup=300.0, every=3.0)
    det_metrics = evaluate(weights, work / "heldout" / "data.yaml", imgsz=IMGSZ, run_dir=work / "eval")
    det_320 = det_metrics if IMGSZ == 320 else evaluate(weights, work / "heldout" / "data.yaml", imgsz=320,
                                                        run_dir=work / "eval-320")
    say("counting accuracy (closed loop through the worker)")
    last = [-1]

    def counting_progress(done: float, total: float) -> None:
        pct = int(100 * done / max(total, 1e-9))
        if pct // 10 != last[0]:
            last[0] = pct // 10
            say(f"counting: {done:.0f}/{total:.0f} s simulated")

    acc = counting_accuracy(weights, scenario=scenario, seed=seed, duration=duration, progress=counting_progress)
    # frames for the speed runs
    with SumoBackend(load_scenario(scenario), seed=seed) as b:
        net, _ = b.network()
        feed = CameraFeed(b.ts, place_cameras(b.ts, [x.id for x in net.intersections]), seed=seed)
        for _ in range(400):
            b.ts.simulationStep()
            feed.observe()
        frames = []
        while len(frames) < 24:
            b.ts.simulationStep()
            frames += feed.shoot(feed.observe(), 0.0).frames
    speed = []
    for imgsz in sorted({320, IMGSZ, 640}):
        say(f"frames/s per core at {imgsz}")
        onnx = export_onnx(weights, imgsz, work / "onnx")
        speed.append({"backend": "pytorch", "imgsz": imgsz, "fps": fps_per_core(weights, imgsz, frames, fps_frames)})
        speed.append({"backend": "onnxruntime", "imgsz": imgsz, "fps": fps_per_core(onnx, imgsz, frames, fps_frames)})
    best320 = max((s for s in speed if s["imgsz"] == 320), key=lambda s: s["fps"])
    best_op = max((s for s in speed if s["imgsz"] == IMGSZ), key=lambda s: s["fps"])
    gpu = _gpu_throughput(weights, frames, IMGSZ)
    return {
        "weights": str(weights), "weights_mb": round(weights.stat().st_size / 1e6, 2),
        "imgsz": IMGSZ, "map50": det_metrics["map50"], "map50_95": det_metrics["map50_95"],
        "map50_at_320": det_320["map50"], "heldout_frames": ds["frames"],
        "queue_mae": acc["queue_mae"], "flow_error_pct": acc["flow_error_pct"],
        "fps_per_core": best320["fps"], "fps_backend": best320["backend"],
        "fps_per_core_operating": best_op["fps"], "fps_backend_operating": best_op["backend"], "speed": speed,
        "gpu_batch_fps": gpu, "counting": acc, "detection": det_metrics, "cpu_cores": os.cpu_count(),
    }


def markdown_report(r: dict, title: str = "Camera pipeline against SUMO ground truth") -> str:
    a = r["counting"]
    lines = [
        f"# {title}", "",
        f"Weights `{Path(r['weights']).name}` ({r['weights_mb']} MB). Held-out scenario `{a['scenario']}` "
        f"(seed {a['seed']}, never used in training), {a['cameras']} approach cameras, {a['lanes']} lanes, "
        f"{a['fps']:g} frames/s, imgsz {a['imgsz']}, {a['scored_s']:g} s scored.", "",
        "| measure | value | target |", "|---|---|---|",
        f"| detection mAP50 (held-out frames: {r['heldout_frames']}, imgsz {r['imgsz']}) | {r['map50']:.3f} | >= 0.90 |",
        f"| detection mAP50-95 (imgsz {r['imgsz']}) | {r['map50_95']:.3f} | |",
        f"| detection mAP50 at imgsz 320 | {r['map50_at_320']:.3f} | |",
        f"| per-lane queue MAE (vehicles) | {r['queue_mae']:.3f} | <= 0.5 |",
        f"| mean queue per lane, true / counted | {a['queue_mean_true']:.2f} / {a['queue_mean_est']:.2f} | |",
        f"| 5-minute approach flow error | {r['flow_error_pct']:.2f}% ({a['flow_est']} counted, {a['flow_true']} true) | <= 5% |",
        f"| frames/s per CPU core, imgsz 320, {r['fps_backend']} | {r['fps_per_core']:.1f} | >= 30 |",
        f"| frames/s per CPU core, imgsz {r['imgsz']} (operating), {r['fps_backend_operating']} | "
        f"{r['fps_per_core_operating']:.1f} | |", "",
        "| backend | imgsz | frames/s on one core |", "|---|---|---|",
    ]
    lines += [f"| {s['backend']} | {s['imgsz']} | {s['fps']:.1f} |" for s in r["speed"]]
    gpu = r.get("gpu_batch_fps")
    lines += ["", f"GPU, batch 32, imgsz {r['imgsz']}: {gpu:.0f} frames/s" if gpu else "GPU: none on this machine.", "",
              "Flow per approach and window (counted / true):", "",
              "| window | camera | counted | true |", "|---|---|---|---|"]
    lines += [f"| {w['window']} | {w['camera']} | {w['est']} | {w['true']} |" for w in a["flow_windows"]]
    return "\n".join(lines) + "\n"


KEPT_SECTION = "## GPU throughput: measured once"
"""A section of the report written by hand from a lent machine (``benchmarks.gpu_vision``): a re-run
on a machine without a GPU keeps it rather than dropping the figures."""


def write(r: dict, json_path: Path | None, md_path: Path | None) -> None:
    if json_path:
        Path(json_path).write_text(json.dumps(r, indent=2) + "\n")
    if md_path:
        md_path = Path(md_path)
        text = markdown_report(r)
        old = md_path.read_text() if md_path.exists() else ""
        if KEPT_SECTION in old and r.get("gpu_batch_fps") is None:
            text += "\n" + old[old.index(KEPT_SECTION):]
        md_path.write_text(text)
