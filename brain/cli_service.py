"""The service commands of ``citybrain``: serve, sim, keys, bench-loop, and ``run --sensing``.

    citybrain serve [--config brain.toml] [--scenario S] [--cameras cams.json]   the brain
    citybrain sim --scenario S [--sensing truth|vision --cameras cams.json]     SUMO + actuator + cameras
    citybrain worker --config cams.json --frames tcp://HOST:5555 --connect tcp://HOST:5556
    citybrain keys --out DIR [--client worker-1 ...]                            CURVE key pairs
    citybrain run --sensing vision|truth --scenario S --controller C            all of them on loopback
    citybrain bench-loop [--json F]                                             latency and load
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from brain.timing import RULES, Timing

__all__ = ["add_commands", "run_services", "serve_config"]


def _free_ports(n: int) -> list[int]:
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def _mpc_dict(pairs: list[str] | None) -> dict:
    out = {}
    for p in pairs or []:
        k, sep, v = p.partition("=")
        if not sep:
            raise ValueError(f"--mpc takes KEY=VALUE, got {p!r}")
        out[k] = v
    return out


def serve_config(args: argparse.Namespace):
    """The :class:`brain.service.ServeConfig` of ``citybrain serve``: the config file's values,
    overridden by the options given."""
    from brain.service import ServeConfig

    return ServeConfig.load(args.config, scenario=args.scenario, controller=args.controller, cameras=args.cameras,
                            intake=args.intake, decisions=args.decisions, metrics_port=args.metrics_port,
                            keys=args.keys, lockstep=False if args.free_running else None, wait_s=args.wait,
                            mpc=_mpc_dict(args.mpc) or None, step=args.step, net=args.net,
                            routes=tuple(args.routes) or None, additional=tuple(args.additional) or None,
                            **{k: getattr(args, k) for k in RULES})


def cmd_serve(args: argparse.Namespace) -> int:
    from brain.service import Brain
    from brain.transport import setup_logging

    setup_logging(args.log_json, args.verbose, "brain")
    brain = Brain(serve_config(args))
    brain.run()
    print(json.dumps({"decisions": brain.decisions, "rejected": brain.rejected}), file=sys.stderr)
    return 0


def cmd_sim(args: argparse.Namespace) -> int:
    from brain.transport import setup_logging
    from sim.service import SimConfig, run_sim

    setup_logging(args.log_json, args.verbose, "sim")
    from brain.cli_common import writable_file

    writable_file(args.json, "--json")
    writable_file(args.trace, "--trace")
    cfg = SimConfig(scenario=args.scenario or "single", seed=args.seed, sensing=args.sensing,
                    cameras=args.cameras or "", fps=args.fps, interval=args.interval, lockstep=not args.free_running,
                    timeout_s=args.timeout, frames=args.frames, brain=args.brain, decisions=args.decisions,
                    end=args.end, json=args.json or "", trace=args.trace or "", realtime=args.realtime,
                    step_length=args.step_length, net=args.net or "", routes=tuple(args.routes),
                    additional=tuple(args.additional), progress=args.progress,
                    **{k: getattr(args, k) for k in RULES})
    rec = run_sim(cfg)
    print(json.dumps(rec, default=str))
    for w in rec.get("warnings") or ():
        print(f"citybrain: warning: {w}", file=sys.stderr)
    err = rec.get("error") or ""
    for name, code in (("SIGINT", 130), ("SIGTERM", 143)):
        if err.startswith(f"stopped by {name}"):
            return code
    if err:
        return 1
    return 0 if rec.get("safety_violations", 0) == 0 else 3


def cmd_keys(args: argparse.Namespace) -> int:
    from brain.transport import make_keys

    files = make_keys(args.out, args.client or ["worker"])
    print(f"wrote {len(files)} key files to {args.out}: give each worker its <name>.key_secret and brain.key; "
          f"the brain reads {args.out}/brain.key_secret and the enrolled clients in {args.out}/clients")
    return 0


def _split_cameras(cfg: dict, n: int, out: Path) -> list[Path]:
    cams = cfg["cameras"]
    n = max(1, min(n, len(cams)))
    paths = []
    for k in range(n):
        part = dict(cfg, cameras=cams[k::n])
        p = out / f"cameras-{k}.json"
        p.write_text(json.dumps(part))
        paths.append(p)
    return paths


def run_services(scenario, controller: str, sensing: str, *, seed: int = 1, end: float | None = None,
                 workers: int = 1, out_dir: Path | None = None, mpc: dict | None = None, fps: float = 4.0,
                 weights: str | None = None, verbose: bool = False, timeout_s: float = 10.0,
                 wait_s: float = 5.0, keep: bool = False, timing: Timing | None = None,
                 step_length: float | None = None, stop=None) -> dict:
    """Start brain, workers and sim as subprocesses on loopback, run to the end, stop them.

    ``scenario``: a :class:`sim.scenario.Scenario` (or what names one). The run means what the
    same in-process run means: ``timing``'s rules go to the brain and the sim alike, decisions
    come at the controller's own cadence (``mpc`` every 3 s) or every ``timing.step`` seconds, and
    SUMO steps at the scenario's own step length (vision sensing: one step per camera frame,
    ``1 / fps``) unless ``step_length`` says otherwise; the record says which. The sim's progress
    lines are passed on to stderr. ``stop()`` true (a signal to this process): the sim is asked to
    end at its next step and its record, what it measured until then, is still read. Returns the
    sim's record (with the brain's and workers' exit codes)."""
    from brain.service import remote_controller
    from sim.backend import SumoBackend
    from sim.camera import place_cameras
    from sim.scenario import Scenario, load_scenario

    ctrl = remote_controller(controller, mpc)  # refused before any process starts
    sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    timing = timing or Timing()
    interval = ctrl.interval or timing.step
    out = Path(out_dir or tempfile.mkdtemp(prefix="citybrain-services-"))
    out.mkdir(parents=True, exist_ok=True)
    p_frames, p_intake, p_dec = _free_ports(3)
    exe = [sys.executable, "-m", "brain.cli"] + (["-v"] if verbose else [])
    cam_file = None
    if sensing == "vision":
        with SumoBackend(sc) as b:
            net, _ = b.network(timing)
            cams = place_cameras(b.ts, [x.id for x in net.intersections])
        cfg = {"interval": 2.0, "fps": fps, "class_map": "own", "cameras": [c.to_dict() for c in cams]}
        if weights:
            cfg["weights"] = weights
        cam_file = out / "cameras.json"
        cam_file.write_text(json.dumps(cfg))
    rules = []
    for k in RULES:
        if getattr(timing, k) is not None:
            rules += [f"--{k.replace('_', '-')}", str(getattr(timing, k))]
    procs: dict[str, subprocess.Popen] = {}
    logs = []
    relays: list[threading.Thread] = []

    def start(name: str, cmd: list[str], relay: bool = False) -> None:
        f = open(out / f"{name}.log", "w")
        logs.append(f)
        if not relay:
            procs[name] = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=dict(os.environ))
            return
        p = subprocess.Popen(cmd, stdout=f, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
        procs[name] = p

        def copy() -> None:  # the log keeps everything; progress lines also go to our stderr
            for line in p.stderr:
                f.write(line)
                f.flush()
                if " s simulated (" in line:
                    sys.stderr.write(line)
                    sys.stderr.flush()

        t = threading.Thread(target=copy, daemon=True)
        t.start()
        relays.append(t)

    try:
        brain_cmd = exe + ["serve", *sc.spec(), "--controller", controller, "--intake",
                           f"tcp://127.0.0.1:{p_intake}", "--decisions", f"tcp://127.0.0.1:{p_dec}",
                           "--wait", str(wait_s), "--step", str(timing.step)] + rules
        for k, v in (mpc or {}).items():
            brain_cmd += ["--mpc", f"{k}={v}"]
        if cam_file:
            brain_cmd += ["--cameras", str(cam_file)]
        start("brain", brain_cmd)
        if cam_file:
            for k, part in enumerate(_split_cameras(json.loads(cam_file.read_text()), workers, out)):
                start(f"worker-{k}", exe + ["worker", "--config", str(part), "--frames", f"tcp://127.0.0.1:{p_frames}",
                                            "--connect", f"tcp://127.0.0.1:{p_intake}"])
        sim_cmd = exe + ["sim", *sc.spec(), "--seed", str(seed), "--sensing", sensing, "--fps", str(fps),
                         "--frames", f"tcp://127.0.0.1:{p_frames}", "--brain", f"tcp://127.0.0.1:{p_intake}",
                         "--decisions", f"tcp://127.0.0.1:{p_dec}", "--json", str(out / "record.json"),
                         "--timeout", str(timeout_s), "--interval", f"{interval:g}", "--progress"] + rules
        if step_length is not None:
            sim_cmd += ["--step-length", f"{step_length:g}"]
        if cam_file:
            sim_cmd += ["--cameras", str(cam_file)]
        if end is not None:
            sim_cmd += ["--end", str(end)]
        time.sleep(3.0 if cam_file else 1.0)  # the brain reads the network, workers load the detector
        start("sim", sim_cmd, relay=True)
        told = False
        while procs["sim"].poll() is None:
            if stop is not None and stop() and not told:
                procs["sim"].send_signal(signal.SIGTERM)  # it ends at the next step and writes its record
                told = True
            time.sleep(0.1)
        for t in relays:
            t.join(5.0)
    finally:
        codes = {}
        for name, p in procs.items():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for name, p in procs.items():
            try:
                codes[name] = p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                codes[name] = p.wait()
        for f in logs:
            f.close()
    rec_path = out / "record.json"
    rec = json.loads(rec_path.read_text()) if rec_path.exists() else {"error": "the sim wrote no record", "complete": False}
    rec["exit_codes"] = codes
    rec["logs"] = str(out)
    if rec.get("scenario"):
        rec["scenario"] = sc.name  # the name this run knows it by (made unique in a benchmark, say)
    if rec.get("provenance"):
        rec["provenance"]["controller_options"] = dict(mpc or {})
    return rec


def add_commands(sub, timing_args, mpc_args) -> None:
    """Register the service commands on the ``citybrain`` sub-parser."""
    from brain.protocol import PORTS

    def common(p):
        p.add_argument("--log-json", action="store_true", help="structured logs: one JSON object per line")

    from brain.cli_common import scenario_args

    p = sub.add_parser("serve", help="the brain: counts and status in over ZeroMQ, decisions out")
    p.add_argument("--config", help="TOML service config (keys as ServeConfig; command-line options win)")
    scenario_args(p)
    p.add_argument("--controller")
    p.add_argument("--cameras", help="camera config JSON (vision sensing); none: the sim's detector readings")
    p.add_argument("--intake", help=f"endpoint to bind for counts and status (default tcp://*:{PORTS['intake']})")
    p.add_argument("--decisions", help=f"the sim's decision endpoint (default tcp://127.0.0.1:{PORTS['decisions']})")
    p.add_argument("--metrics-port", type=int, help="serve Prometheus metrics on this port (default: off)")
    p.add_argument("--keys", help="CURVE keys folder: only enrolled workers may send (see `citybrain keys`)")
    p.add_argument("--free-running", action="store_true", help="decide at once, do not wait for cameras")
    p.add_argument("--wait", type=float, help="lockstep: longest wait for a step's counts, wall seconds (default 2)")
    timing_args(p, step_length=False)
    p.set_defaults(**{k: None for k in RULES}, step=None)  # not given: the config file's, else ServeConfig's
    mpc_args(p)
    common(p)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("sim", help="SUMO with the actuator, safety monitor and cameras, driven by a brain over ZeroMQ")
    scenario_args(p, default="single")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--sensing", choices=["truth", "vision"], default="truth")
    p.add_argument("--cameras", help="camera config JSON (vision sensing)")
    p.add_argument("--fps", type=float, default=4.0, help="camera frames (and simulation steps) per second")
    p.add_argument("--interval", type=float, default=2.0,
                   help="seconds between decisions (default 2; give the brain controller's, mpc's is 3 s: "
                        "`run --sensing` passes it)")
    p.add_argument("--progress", action="store_true", help="print the simulated time every simulated minute")
    p.add_argument("--free-running", action="store_true", help="do not wait for each step's decision")
    p.add_argument("--realtime", type=float, default=0.0,
                   help="pace the simulation: simulated seconds per wall second (1: live; default 0: flat out)")
    p.add_argument("--timeout", type=float, default=5.0, help="wall seconds to wait for a decision (lockstep)")
    p.add_argument("--frames", default=f"tcp://*:{PORTS['frames']}", help="endpoint to publish frames on")
    p.add_argument("--brain", default=f"tcp://127.0.0.1:{PORTS['intake']}", help="the brain's intake")
    p.add_argument("--decisions", default=f"tcp://*:{PORTS['decisions']}", help="endpoint to bind for decisions")
    p.add_argument("--end", type=float)
    p.add_argument("--json", help="write the run's record here")
    p.add_argument("--trace", help="write one JSON line per decision step (time, wall time, brain, fallbacks)")
    timing_args(p, step=False)
    common(p)
    p.set_defaults(func=cmd_sim)

    p = sub.add_parser("keys", help="make CURVE key pairs: the brain's and one per enrolled worker")
    p.add_argument("--out", required=True)
    p.add_argument("--client", action="append", help="a worker name to enrol (repeatable; default: worker)")
    p.set_defaults(func=cmd_keys)
    add_bench_loop(sub)


def cmd_bench_loop(args: argparse.Namespace) -> int:
    from benchmarks.loop import bench_loop, markdown_report
    from brain.cli_common import writable_file

    writable_file(args.json, "--json")
    writable_file(args.markdown, "--markdown")
    r = bench_loop(steps=args.steps, cameras=args.cameras, rate=args.rate, seconds=args.seconds,
                   progress=lambda s: print(f"bench-loop: {s}", file=sys.stderr, flush=True))
    for path, text in ((args.json, json.dumps(r, indent=1) + "\n"), (args.markdown, markdown_report(r))):
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(text)
    print(markdown_report(r), end="")
    return 0


def add_bench_loop(sub) -> None:
    p = sub.add_parser("bench-loop", help="brain service latency (count -> decision) and a load run over ZeroMQ")
    p.add_argument("--steps", type=int, default=300, help="lockstep steps timed for latency (default 300)")
    p.add_argument("--cameras", type=int, default=1000, help="simulated cameras in the load run (default 1000)")
    p.add_argument("--rate", type=float, default=10.0, help="messages per second per camera (default 10)")
    p.add_argument("--seconds", type=float, default=60.0, help="length of the load run (default 60)")
    p.add_argument("--json")
    p.add_argument("--markdown")
    p.set_defaults(func=cmd_bench_loop)
