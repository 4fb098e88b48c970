"""``citybrain run --sensing``: brain, camera workers and sim started as separate processes on
loopback, the network exported for the brain first, and the sim's record read back."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from brain.timing import Timing
from wire.transport import free_ports

__all__ = ["run_services"]


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
                 step_length: float | None = None, stop=None, curve: bool = False) -> dict:
    """Start brain, workers and sim as subprocesses on loopback, run to the end, stop them.

    ``scenario``: a :class:`sim.scenario.Scenario` (or what names one). The run means what the
    same in-process run means: the network is exported under ``timing``'s rules
    (``OUT/network.json``) and both the brain and the sim take their rules from that file, decisions
    come at the controller's own cadence (``mpc`` every 3 s) or every ``timing.step`` seconds, and
    SUMO steps at the scenario's own step length (vision sensing: one step per camera frame,
    ``1 / fps``) unless ``step_length`` says otherwise; the record says which. The sim's progress
    lines are passed on to stderr. ``stop()`` true (a signal to this process): the sim is asked to
    end at its next step and its record, what it measured until then, is still read. Returns the
    sim's record (with the brain's and workers' exit codes). ``curve``: every channel with CURVE
    keys made for this run (``OUT/keys``)."""
    from brain.service import remote_controller
    from brain.netfile import write_network
    from sim.backend import SumoBackend
    from sim.camera import place_cameras
    from sim.review import controlled_network
    from sim.scenario import Scenario, load_scenario

    ctrl = remote_controller(controller, mpc)  # refused before any process starts
    sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    timing = timing or Timing()
    interval = ctrl.interval or timing.step
    out = Path(out_dir or tempfile.mkdtemp(prefix="citybrain-services-"))
    out.mkdir(parents=True, exist_ok=True)
    p_frames, p_intake, p_dec = free_ports(3)
    exe = [sys.executable, "-m", "citybrain.cli"] + (["-v"] if verbose else [])
    driven = controlled_network(sc, timing)  # what the brain drives: the cameras watch these signals
    cam_file = None
    if sensing == "vision":
        with SumoBackend(sc) as b:
            cams = place_cameras(b.ts, [x.id for x in driven.intersections])
        # the worker counts at the decision cadence, so each decision has counts of its own time
        cfg = {"interval": interval, "fps": fps, "class_map": "own", "cameras": [c.to_dict() for c in cams]}
        if weights:
            cfg["weights"] = weights
        cam_file = out / "cameras.json"
        cam_file.write_text(json.dumps(cfg))
    keys: list[str] = []
    if curve:
        from wire.transport import make_keys

        make_keys(out / "keys", [f"worker-{k}" for k in range(max(1, workers))])
        keys = ["--keys", str(out / "keys")]
    net_file = out / "network.json"
    write_network(net_file, driven, timing, sc.name)
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
        brain_cmd = exe + ["serve", "--network", str(net_file), "--controller", controller, "--intake",
                           f"tcp://127.0.0.1:{p_intake}", "--decisions", f"tcp://127.0.0.1:{p_dec}",
                           "--wait", str(wait_s), "--step", str(timing.step)] + keys
        for k, v in (mpc or {}).items():
            brain_cmd += ["--mpc", f"{k}={v}"]
        if cam_file:
            brain_cmd += ["--cameras", str(cam_file)]
        start("brain", brain_cmd)
        if cam_file:
            for k, part in enumerate(_split_cameras(json.loads(cam_file.read_text()), workers, out)):
                start(f"worker-{k}", exe + ["worker", "--config", str(part), "--frames", f"tcp://127.0.0.1:{p_frames}",
                                            "--connect", f"tcp://127.0.0.1:{p_intake}", "--name", f"worker-{k}"] + keys)
        sim_cmd = exe + ["sim", *sc.spec(), "--seed", str(seed), "--sensing", sensing, "--fps", str(fps),
                         "--frames", f"tcp://127.0.0.1:{p_frames}", "--brain", f"tcp://127.0.0.1:{p_intake}",
                         "--decisions", f"tcp://127.0.0.1:{p_dec}", "--json", str(out / "record.json"),
                         "--timeout", str(timeout_s), "--interval", f"{interval:g}", "--progress",
                         "--network", str(net_file)] + keys
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
