"""The camera commands of ``citybrain``: cameras, vision (dataset, train, render), worker, bench-vision.

    citybrain cameras --scenario S --out cams.json            camera config for a scenario's signals
    citybrain vision dataset --scenario S... --out DIR        labelled frames rendered from SUMO
    citybrain vision train --data DIR/data.yaml               train the detector offline, ship the weights
    citybrain vision render --scenario S --out DIR            per-camera videos + worker config + truth
    citybrain worker --config cams.json [--out counts.jsonl]  count vehicles per lane from the sources
    citybrain bench-vision [--json F] [--markdown F]          accuracy and speed against SUMO's truth
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from citybrain.cli_common import PORTS_HELP

__all__ = ["add_commands"]


def _progress(label: str):
    last = [-1]

    def show(done: float, total: float) -> None:
        pct = int(100 * done / max(total, 1e-9))
        if pct != last[0]:
            last[0] = pct
            print(f"\r{label}: {pct}% ({done:.0f}/{total:.0f})", end="" if done < total else "\n", file=sys.stderr,
                  flush=True)

    return show


def cmd_cameras(args: argparse.Namespace) -> int:
    from sim.backend import SumoBackend
    from sim.camera import place_cameras
    from sim.scenario import load_scenario

    from brain.timing import Timing
    from sim.review import controlled_network

    sc = load_scenario(args.scenario)
    driven = controlled_network(sc, Timing())  # the signals a brain drives (as `export-network` writes them)
    with SumoBackend(sc) as b:
        cams = place_cameras(b.ts, [x.id for x in driven.intersections], mode=args.mode)
    cfg = {"interval": args.interval, "fps": args.fps, "class_map": args.class_map,
           "cameras": [dict(c.to_dict(), source="") for c in cams]}
    Path(args.out).write_text(json.dumps(cfg, indent=1) + "\n")
    print(f"{len(cams)} cameras ({sum(len(c.lanes) for c in cams)} lanes) written to {args.out}; "
          "fill in each camera's 'source' (video file, image folder or rtsp:// URL)")
    out = Path(args.out)
    for k in range(args.split if args.split > 1 else 0):  # one config per worker, cameras dealt in turn
        part = out.with_name(f"{out.stem}-{k}{out.suffix}")
        part.write_text(json.dumps(dict(cfg, cameras=cfg["cameras"][k::args.split]), indent=1) + "\n")
        print(f"worker {k}: {len(cfg['cameras'][k::args.split])} cameras in {part}")
    return 0


def cmd_dataset(args: argparse.Namespace) -> int:
    from sim.dataset import make_dataset

    try:
        shares = tuple(float(x) for x in args.shares.split(","))
    except ValueError:
        shares = ()
    if len(shares) != 3 or any(not 0 <= x <= 1 for x in shares) or sum(shares) > 1:
        raise ValueError(f"--shares takes three fractions (motorcycle,bus,truck) summing to at most 1, got {args.shares!r}")
    s = make_dataset(args.scenario or ["arterial", "grid4x4", "grid10x10"], Path(args.out), frames=args.frames,
                     seed=args.seed, shares=shares, progress=_progress("rendering frames"))
    print(json.dumps(s))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from vision.detector import WEIGHTS, train

    data = Path(args.data)
    if not data.exists():
        raise ValueError(f"dataset not found: {data} (make one with `citybrain vision dataset`)")
    card = train(data, epochs=args.epochs, imgsz=args.imgsz, batch=args.batch, device=args.device,
                 out=Path(args.out or WEIGHTS), init=Path(args.init) if args.init else None,
                 init_note=args.init_note or "", finetune=args.finetune)
    print(json.dumps(card, indent=1))
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    from sim.video import render_videos

    cfg = render_videos(args.scenario, Path(args.out), seconds=args.seconds, fps=args.fps, seed=args.seed,
                        warmup=args.warmup, mode=args.mode, progress=_progress("rendering"))
    print(f"videos, ground truth and worker config in {args.out} (config: {cfg})")
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from vision.worker import WorkerConfig, make_worker

    cfg = WorkerConfig.load(args.config)
    if args.weights:
        from dataclasses import replace

        cfg = replace(cfg, weights=args.weights)
    if args.frames or args.connect:
        from wire.transport import setup_logging

        setup_logging(args.log_json, args.verbose, "worker")
    sender, curve = None, None
    if args.connect:
        import zmq

        from wire.transport import Curve
        from vision.service import CountSender

        curve = Curve(args.keys, args.name) if args.keys else None
        sender = CountSender(zmq.Context.instance(), args.connect, cfg, args.name, curve)
    elif args.keys and not args.frames:
        raise ValueError("--keys without --connect or --frames: no channel to authenticate")
    worker = make_worker(cfg)
    if args.frames:
        if sender is None:
            raise ValueError("--frames needs --connect (where to send the counts)")
        from vision.service import serve_frames

        worker.warm_up()  # before the first frame: lockstep waits only ``--wait`` seconds for counts
        print(f"camera worker {args.name!r}: {len(cfg.cameras)} cameras, detector ready; frames from {args.frames}",
              file=sys.stderr, flush=True)
        try:
            stats = serve_frames(cfg, worker, args.frames, sender, curve=curve)
        finally:
            sender.close()
        print(json.dumps(dict(stats, sent=sender.sent, dropped=sender.dropped)), file=sys.stderr)
        return 0
    from vision.sources import open_source

    missing = [c.id for c, s in zip(cfg.cameras, cfg.sources) if not s]
    if missing:
        raise ValueError(f"cameras without a source in {args.config}: {', '.join(missing)}")
    sources = [open_source(s, fps=cfg.fps, retries=args.reconnects) for s in cfg.sources]
    out = open(args.out, "w") if args.out else sys.stdout
    try:
        def sink(counts) -> None:
            if sender is not None:
                sender.counts(counts)
                sender.heartbeat(counts[0].time)
            for cam, c in zip(cfg.cameras, counts):
                out.write(json.dumps(dict(c.to_dict(), camera=cam.id, tls=cam.tls)) + "\n")
            out.flush()

        n = worker.run(sources, sink, max_frames=args.max_frames)
    finally:
        if out is not sys.stdout:
            out.close()
        if sender is not None:
            sender.close()
    print(f"worker: {n} frames per camera from {len(sources)} cameras", file=sys.stderr)
    lost = [c.id for c, src in zip(cfg.cameras, sources) if getattr(src, "lost", False)]
    if lost:  # a supervisor restarts a worker that exits non-zero
        print(f"citybrain: worker {args.name!r} lost {len(lost)} of its {len(sources)} camera streams "
              f"({', '.join(lost[:5])}) after every reconnect", file=sys.stderr)
        return 1
    return 0


def cmd_bench_vision(args: argparse.Namespace) -> int:
    from benchmarks.vision import bench_vision, markdown_report, write
    from vision.detector import WEIGHTS

    weights = Path(args.weights or WEIGHTS)
    if not weights.exists():
        raise ValueError(f"detector weights not found: {weights} (train them with `citybrain vision train`)")
    r = bench_vision(weights, scenario=args.scenario, seed=args.seed, duration=args.duration,
                     progress=lambda s: print(f"bench-vision: {s}", file=sys.stderr, flush=True))
    for p in (args.json, args.markdown):
        if p:
            Path(p).parent.mkdir(parents=True, exist_ok=True)
    write(r, args.json and Path(args.json), args.markdown and Path(args.markdown))
    print(markdown_report(r), end="")
    return 0


def add_commands(sub) -> None:
    """Register the camera commands on the ``citybrain`` sub-parser."""
    p = sub.add_parser("cameras", help="write a camera config for a scenario's signals (one camera per approach)")
    p.add_argument("--scenario", default="single")
    p.add_argument("--mode", choices=["approach", "intersection"], default="approach")
    p.add_argument("--class-map", default="own", help="own (the shipped detector) or coco (COCO-trained weights)")
    p.add_argument("--out", required=True, help="the JSON config to write (every camera: the brain's and the sim's)")
    p.add_argument("--fps", type=float, default=4.0, help="frames per second the cameras deliver (default 4; the "
                                                          "sim's --fps when it renders them)")
    p.add_argument("--interval", type=float, default=3.0,
                   help="seconds per count message: the brain's decision cadence (default 3, mpc's)")
    p.add_argument("--split", type=int, default=1, help="also write N worker configs OUT-0 ... OUT-(N-1), the "
                                                        "cameras dealt among them in turn")
    p.set_defaults(func=cmd_cameras)

    v = sub.add_parser("vision", help="the detector: render a dataset, train, render videos").add_subparsers(
        dest="vision_command", required=True)
    p = v.add_parser("dataset", help="render labelled frames (YOLO format) from SUMO scenarios")
    p.add_argument("--scenario", action="append", default=None, help="scenario (repeatable; default arterial, "
                   "grid4x4, grid10x10; single is kept for testing)")
    p.add_argument("--out", default="data/vehicles")
    p.add_argument("--frames", type=int, default=1800)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--shares", default="0.15,0.15,0.15",
                   help="motorcycles,buses,trucks among departing vehicles (default 0.15 each: the rarer classes "
                        "are shown often enough to be learnt)")
    p.set_defaults(func=cmd_dataset)
    p = v.add_parser("train", help="train the detector from scratch, offline; writes the weights and model card")
    p.add_argument("--data", default="data/vehicles/data.yaml")
    p.add_argument("--epochs", type=int, default=35)
    p.add_argument("--imgsz", type=int, default=320)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--device", default="cpu", help="cpu, or a GPU index such as 0")
    p.add_argument("--out", help="weights file (default: the shipped vision/weights/citybrain-vehicles.pt)")
    p.add_argument("--init", help="continue from weights this project trained (default: random weights)")
    p.add_argument("--init-note", help="how those weights were made, for the model card")
    p.add_argument("--finetune", action="store_true",
                   help="with --init: a short final pass at a fifth of the learning rate, no warm-up, no mosaic")
    p.set_defaults(func=cmd_train)
    p = v.add_parser("render", help="render each camera of a scenario to a video file, with ground truth "
                                    "and a worker config pointing at the videos")
    p.add_argument("--scenario", default="single")
    p.add_argument("--out", required=True)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--warmup", type=float, default=300.0)
    p.add_argument("--fps", type=float, default=4.0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--mode", choices=["approach", "intersection"], default="approach")
    p.set_defaults(func=cmd_render)

    p = sub.add_parser("worker", help="count vehicles per lane from camera sources (video, folder, RTSP)")
    p.add_argument("--config", required=True, help="worker config JSON (see `citybrain cameras`)")
    p.add_argument("--weights", help="detector weights (.pt or .onnx; default from the config)")
    p.add_argument("--out", help="write counts as JSON lines here (default: stdout)")
    p.add_argument("--max-frames", type=int, help="stop after this many frames per camera")
    p.add_argument("--reconnects", type=int, default=5,
                   help="times a stream that stops is reopened (waits 0.5, 1, 2 ... s) before it counts as lost; "
                        "a worker that lost a stream exits 1 when the others end (default 5)")
    p.add_argument("--frames", help="take frames from the sim's PUB endpoint instead of the config's sources")
    p.add_argument("--connect", help="send counts to the brain's intake (e.g. tcp://127.0.0.1:5556)")
    p.add_argument("--keys", help="CURVE keys folder holding this worker's key pair (NAME.key_secret), brain.key "
                                  "and sim.key (see `citybrain keys`)")
    p.add_argument("--name", default="worker", help="this worker's name (message sender and CURVE key name)")
    p.add_argument("--log-json", action="store_true", help="structured logs: one JSON object per line")
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = PORTS_HELP
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("bench-vision", help="camera pipeline accuracy and speed against SUMO's ground truth")
    p.add_argument("--weights", help="detector weights (default: the shipped ones)")
    p.add_argument("--scenario", default="single", help="held-out scenario (default single)")
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--duration", type=float, default=600.0, help="scored seconds (5-minute windows; default 600)")
    p.add_argument("--json")
    p.add_argument("--markdown")
    p.set_defaults(func=cmd_bench_vision)
