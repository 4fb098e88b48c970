"""The detector adapter: the only module that imports ultralytics.

:func:`offline` points ultralytics at a project-local settings folder (with a font, so nothing is
fetched) and forbids downloads and installs; every entry point here calls it before importing
ultralytics. :class:`Detector` runs a YOLO model (PyTorch ``.pt`` or exported ``.onnx``) on a
batch of frames and returns :class:`Detections` in the project's classes, through a class map
(so COCO-trained weights work: car 2, motorcycle 3, bus 5, truck 7). :func:`train` trains the
project's detector from a model YAML (no pretrained weights) fully offline.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["Detections", "Detector", "Tracker", "offline", "train", "evaluate", "export_onnx", "COCO_MAP", "OWN_MAP", "WEIGHTS", "MODEL_YAML", "IMGSZ"]

ROOT = Path(__file__).resolve().parent
WEIGHTS = ROOT / "weights" / "citybrain-vehicles.pt"
# Inference size (longest side) the pipeline runs the shipped detector at. It was trained at 320
# on 512x320 frames; picked on its validation split, not on the held-out scenario: mAP50 0.904 at
# 320, 0.931 at 416, 0.900 at 512 (small, distant vehicles are resolved better at 416).
IMGSZ = 416
"""The detector the project trains and ships (classes: car, motorcycle, bus, truck)."""
MODEL_YAML = ROOT / "models" / "yolo11n-vehicles.yaml"
OWN_MAP = {0: 0, 1: 1, 2: 2, 3: 3}
COCO_MAP = {2: 0, 3: 1, 5: 2, 7: 3}
"""COCO class ids of vehicles -> the project's classes (car, motorcycle, bus, truck)."""


def offline(config_dir: Path | None = None) -> Path:
    """Set ultralytics up to run without a network; returns its settings folder.

    ``YOLO_OFFLINE=1``, ``YOLO_AUTOINSTALL=0`` and ``YOLO_CONFIG_DIR`` (default: ``.yolo`` beside
    the packages, or ``$CITYBRAIN_YOLO_DIR``) holding ``Ultralytics/Arial.ttf`` copied from
    matplotlib's DejaVu Sans, which training would otherwise download.
    """
    cfg = Path(config_dir or os.environ.get("CITYBRAIN_YOLO_DIR") or ROOT.parent / ".yolo")
    font = cfg / "Ultralytics" / "Arial.ttf"
    if not font.exists():
        import matplotlib

        src = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
        font.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, font)
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ["YOLO_AUTOINSTALL"] = "0"
    os.environ["YOLO_CONFIG_DIR"] = str(cfg)
    os.environ.setdefault("YOLO_VERBOSE", "False")
    return cfg


@dataclass(frozen=True)
class Detections:
    """Detections in one frame.

    Attributes:
        boxes: ``(n, 4)`` pixel boxes ``x1, y1, x2, y2``; scores: ``(n,)``; cls: ``(n,)`` project
        class indices (car 0, motorcycle 1, bus 2, truck 3).
    """

    boxes: np.ndarray
    scores: np.ndarray
    cls: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.scores)
        if self.boxes.shape != (n, 4) or self.cls.shape != (n,):
            raise ValueError(f"Detections: boxes {self.boxes.shape}, scores {self.scores.shape}, cls {self.cls.shape}")

    def __len__(self) -> int:
        return len(self.scores)

    def __getitem__(self, sel) -> Detections:
        return Detections(self.boxes[sel], self.scores[sel], self.cls[sel])

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4)), np.zeros(0), np.zeros(0, dtype=np.int64))


class Detector:
    """A YOLO model behind one call: frames in, :class:`Detections` out.

    Args:
        weights: ``.pt`` or ``.onnx`` file (default: the shipped detector).
        class_map: detector class id -> project class (others are dropped); default: the
            project's own classes, or COCO's vehicles for weights with 80 classes.
        imgsz: inference size (longest side); conf: score threshold; device: ``cpu``, ``0``...
        agnostic: non-maximum suppression across classes (default), so one vehicle gives one box
            even when the model hesitates between, say, bus and truck: counts must not double.
        half: half-precision inference (on a GPU).
    """

    def __init__(self, weights: str | Path = WEIGHTS, *, class_map: dict[int, int] | None = None,
                 imgsz: int = IMGSZ, conf: float = 0.25, iou: float = 0.6, device: str = "cpu",
                 agnostic: bool = True, half: bool = False) -> None:
        weights = Path(weights)
        if not weights.exists():
            raise FileNotFoundError(f"detector weights not found: {weights} (train them with "
                                    "`citybrain vision train`, or pass --weights)")
        offline()
        from ultralytics import YOLO

        self.weights = weights
        self.model = YOLO(str(weights), task="detect")
        names = getattr(self.model, "names", None) or {}
        if class_map is None:
            class_map = COCO_MAP if len(names) == 80 else OWN_MAP
        self.class_map = dict(class_map)
        self.imgsz, self.conf, self.iou, self.device, self.agnostic = imgsz, conf, iou, device, agnostic
        self.half = half

    def __call__(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        """Detect in a batch of BGR frames (one inference call)."""
        if not frames:
            return []
        res = self.model.predict(list(frames), imgsz=self.imgsz, conf=self.conf, iou=self.iou, device=self.device,
                                 verbose=False, classes=sorted(self.class_map), agnostic_nms=self.agnostic,
                                 half=self.half)
        out = []
        lut = np.full(max(self.class_map) + 1, -1, dtype=np.int64)
        for k, v in self.class_map.items():
            lut[k] = v
        for r in res:
            b = r.boxes
            if b is None or len(b) == 0:
                out.append(Detections.empty())
                continue
            cls = b.cls.cpu().numpy().astype(np.int64)
            keep = (cls < len(lut)) & (lut[np.minimum(cls, len(lut) - 1)] >= 0)
            out.append(Detections(b.xyxy.cpu().numpy()[keep].astype(np.float64), b.conf.cpu().numpy()[keep].astype(np.float64),
                                  lut[cls[keep]]))
        return out


def train(data_yaml: Path, *, epochs: int = 40, imgsz: int = 320, batch: int = 32, device: str = "cpu",
          workers: int = 2, out: Path = WEIGHTS, model_yaml: Path = MODEL_YAML, run_dir: Path | None = None,
          seed: int = 0, init: Path | None = None, init_note: str = "", finetune: bool = False) -> dict:
    """Train the detector from ``model_yaml`` (random initial weights) on ``data_yaml``, offline.

    ``init``: continue from weights this project trained earlier (e.g. a checkpoint of a run cut
    short) instead of random ones; the model card says so. ``finetune``: a short final pass from
    ``init`` at a fifth of the learning rate, without warm-up or mosaic.

    Copies the best weights to ``out`` and writes ``MODEL_CARD.md`` and ``model.json`` beside
    them; returns the card's figures.
    """
    offline()
    os.environ["YOLO_VERBOSE"] = "True"  # training is long: show ultralytics' progress per epoch
    from ultralytics import YOLO

    data_yaml = Path(data_yaml).resolve()
    run_dir = Path(run_dir or ROOT.parent / "runs" / "train").resolve()
    t0 = time.time()
    model = YOLO(str(init) if init else str(model_yaml), task="detect")
    model.train(data=str(data_yaml), epochs=epochs, imgsz=imgsz, batch=batch, device=device, workers=workers,
                project=str(run_dir.parent), name=run_dir.name, exist_ok=True,
                pretrained=str(init) if init else False, amp=False,
                plots=False, seed=seed, deterministic=False, verbose=True, patience=max(10, epochs // 3),
                close_mosaic=epochs if finetune else max(2, epochs // 8),
                **({"lr0": 0.002, "warmup_epochs": 0} if finetune else {}))
    best = run_dir / "weights" / "best.pt"
    metrics = YOLO(str(best)).val(data=str(data_yaml), imgsz=imgsz, batch=batch, device=device, plots=False,
                                  verbose=False, project=str(run_dir.parent), name=run_dir.name + "-val", exist_ok=True)
    card = {
        "weights": Path(out).name, "architecture": Path(model_yaml).name,
        "initialisation": "random (no pretrained weights)" if not init else
        f"random, then continued from this project's own checkpoint {Path(init).name} ({init_note})",
        "data": json.loads((data_yaml.parent / "dataset.json").read_text()) if (data_yaml.parent / "dataset.json").exists() else {},
        "epochs": epochs, "imgsz": imgsz, "batch": batch, "device": device, "finetune": finetune,
        "map50": float(metrics.box.map50), "map50_95": float(metrics.box.map),
        "precision": float(metrics.box.mp), "recall": float(metrics.box.mr),
        "train_minutes": round((time.time() - t0) / 60, 1),
    }
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    _strip(best, out)
    card["size_mb"] = round(out.stat().st_size / 1e6, 2)
    (out.parent / "model.json").write_text(json.dumps(card, indent=2) + "\n")
    (out.parent / "MODEL_CARD.md").write_text(_card_md(card))
    return card


def _strip(src: Path, dst: Path) -> None:
    """Copy weights without the optimiser state (ultralytics' own strip)."""
    from ultralytics.utils.torch_utils import strip_optimizer

    tmp = dst.with_suffix(".tmp.pt")
    shutil.copyfile(src, tmp)
    strip_optimizer(str(tmp))
    tmp.replace(dst)


def _card_md(c: dict) -> str:
    d = c.get("data", {})
    return (
        "# citybrain vehicle detector\n\n"
        f"- Weights: `{c['weights']}` ({c['size_mb']} MB), architecture `{c['architecture']}` "
        f"(YOLO11n layout, 4 classes: car, motorcycle, bus, truck), {c['initialisation']}.\n"
        f"- Data: {d.get('frames', '?')} frames rendered from SUMO ({', '.join(d.get('scenarios', []))}) by "
        "`citybrain vision dataset` (random camera height, pitch, distance, field of view, light, noise, blur); "
        f"boxes: {d.get('boxes', {})}.\n"
        f"- Training: {c['epochs']} epochs at imgsz {c['imgsz']}, batch {c['batch']}, on {c['device']}, "
        f"{c['train_minutes']} minutes, offline (`citybrain vision train`).\n"
        f"- Held-out validation frames: mAP50 {c['map50']:.3f}, mAP50-95 {c['map50_95']:.3f}, "
        f"precision {c['precision']:.3f}, recall {c['recall']:.3f}.\n"
        "- Intended use: the synthetic cameras of `citybrain sim`/`bench-vision`. For real cameras use "
        "weights trained on real footage (e.g. COCO yolo11n with `--class-map coco`).\n"
    )


class _Boxes:
    """The Results-like view of :class:`Detections` that ultralytics' trackers read."""

    def __init__(self, d: Detections) -> None:
        self.xyxy = d.boxes.astype(np.float32)
        self.conf = d.scores.astype(np.float32)
        self.cls = d.cls.astype(np.float32)
        xy = (self.xyxy[:, :2] + self.xyxy[:, 2:]) / 2
        self.xywh = np.concatenate([xy, self.xyxy[:, 2:] - self.xyxy[:, :2]], axis=1)

    def __len__(self) -> int:
        return len(self.conf)

    def __getitem__(self, sel) -> _Boxes:
        out = object.__new__(_Boxes)
        out.xyxy, out.conf, out.cls, out.xywh = self.xyxy[sel], self.conf[sel], self.cls[sel], self.xywh[sel]
        return out


GROW = 0.5
"""Boxes handed to the tracker grow by this share of their size on each side (see Tracker.update)."""


class Tracker:
    """ultralytics' ByteTrack on one camera's detections: a track id per detection (-1: none yet).

    Args:
        fps: frames per second of the camera (the lost-track buffer is ``buffer_s`` seconds).
        match: IoU association threshold (ByteTrack's ``match_thresh``).
    """

    def __init__(self, fps: float = 4.0, *, buffer_s: float = 3.0, match: float = 0.9, high: float = 0.25,
                 low: float = 0.1, grow: float = GROW) -> None:
        self.grow = grow
        offline()
        from ultralytics.trackers.byte_tracker import BYTETracker
        from ultralytics.utils import IterableSimpleNamespace

        args = IterableSimpleNamespace(tracker_type="bytetrack", track_high_thresh=high, track_low_thresh=low,
                                       new_track_thresh=high, track_buffer=max(1, int(round(buffer_s * fps))),
                                       match_thresh=match, fuse_score=True)
        self._t = BYTETracker(args, frame_rate=int(round(fps))) if _takes_rate(BYTETracker) else BYTETracker(args)

    def update(self, det: Detections) -> np.ndarray:
        """Track ids ``(n,)`` for the frame's detections (-1 for one not yet confirmed).

        The tracker associates boxes grown by ``grow`` (each side by that share of the box), so a
        vehicle that moves far between frames (fast, near the camera) still overlaps its
        predicted box; the ids map back to the detections as they are.
        """
        ids = np.full(len(det), -1, dtype=np.int64)
        b = det.boxes
        if len(b) and self.grow > 0:
            wh = b[:, 2:] - b[:, :2]
            b = np.concatenate([b[:, :2] - self.grow * wh, b[:, 2:] + self.grow * wh], axis=1)
        out = self._t.update(_Boxes(Detections(b, det.scores, det.cls)))
        for row in out:
            k = int(row[-1])
            if 0 <= k < len(ids):
                ids[k] = int(row[4])
        return ids


def _takes_rate(cls) -> bool:
    import inspect

    return "frame_rate" in inspect.signature(cls.__init__).parameters


def evaluate(weights: str | Path, data_yaml: str | Path, *, imgsz: int = IMGSZ, device: str = "cpu",
             run_dir: Path | None = None) -> dict:
    """mAP of ``weights`` on the ``val`` split of a YOLO dataset."""
    offline()
    from ultralytics import YOLO

    run_dir = Path(run_dir or ROOT.parent / "runs" / "eval").resolve()
    m = YOLO(str(weights), task="detect").val(data=str(data_yaml), imgsz=imgsz, batch=16, device=device, plots=False,
                                               verbose=False, project=str(run_dir.parent), name=run_dir.name,
                                               exist_ok=True)
    return {"map50": float(m.box.map50), "map50_95": float(m.box.map), "precision": float(m.box.mp),
            "recall": float(m.box.mr)}


def export_onnx(weights: str | Path, imgsz: int, out_dir: Path) -> Path:
    """The weights exported to ONNX at ``imgsz`` (cached in ``out_dir``)."""
    offline()
    from ultralytics import YOLO

    weights = Path(weights)
    out_dir = Path(out_dir)
    dst = out_dir / f"{weights.stem}-{imgsz}.onnx"
    if dst.exists() and dst.stat().st_mtime >= weights.stat().st_mtime:
        return dst
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / weights.name
    shutil.copyfile(weights, tmp)
    made = Path(YOLO(str(tmp), task="detect").export(format="onnx", imgsz=imgsz, simplify=True, verbose=False))
    made.replace(dst)
    tmp.unlink(missing_ok=True)
    return dst
