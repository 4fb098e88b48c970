"""Latency and load of the brain service over real ZeroMQ sockets between processes.

- **Latency** (lockstep, the single intersection's four cameras): each step this process, acting
  as workers and sim, sends every camera's counts for time ``T``, then the status for ``T``, and
  times from the first count sent to the decision received (the sim applies a decision as it
  arrives). The brain runs in its own process with the optimiser.
- **Load**: a generator process sends counts for ``cameras`` cameras (one per controlled lane of
  the 10x10 grid, cycling) at ``rate`` messages per second each for ``seconds`` seconds to a
  free-running brain; this process sends a status every second and times its decision under
  load. Lost = sent - received (received = accepted + rejected, from the brain's metrics);
  the brain's peak resident memory comes from ``/proc``.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import zmq

from wire.protocol import decode, encode
from wire.transport import free_ports, make_socket

__all__ = ["bench_loop", "markdown_report"]


def _ports(n: int) -> list[int]:
    return free_ports(n)


def _metrics(port: int) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("citybrain_") and " " in line:
            k, v = line.rsplit(" ", 1)
            out[k] = float(v)
    return out


def _wait_http(port: int, timeout: float = 120.0) -> None:
    t0 = time.time()
    while True:
        try:
            _metrics(port)
            return
        except OSError:
            if time.time() - t0 > timeout:
                raise RuntimeError("the brain did not come up") from None
            time.sleep(0.1)


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def _serve(args: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "citybrain.cli", "serve", *args], stdout=open(log, "w"),
                            stderr=subprocess.STDOUT)


def _stop(p: subprocess.Popen) -> None:
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()


def _camera_config(scenario: str, per_lane: bool, at_least: int = 0) -> dict:
    """The scenario's approach cameras, or (``per_lane``) one camera per controlled lane, repeated
    (under new ids) until there are ``at_least``."""
    from sim.backend import SumoBackend
    from sim.camera import place_cameras
    from wire.cameras import Camera
    from sim.scenario import load_scenario

    with SumoBackend(load_scenario(scenario)) as b:
        net, _ = b.network()
        cams = place_cameras(b.ts, [x.id for x in net.intersections])
    if per_lane:
        one = [(c, ln) for c in cams for ln in c.lanes]
        cams = [Camera(f"{c.id}/{ln.lane}/{k // len(one)}", c.tls, c.position, c.yaw, c.pitch, c.focal, c.size, (ln,),
                       c.approach) for k, (c, ln) in enumerate(one * max(1, -(-at_least // len(one))))]
    return {"interval": 2.0, "cameras": [c.to_dict() for c in cams]}


def _export(scenario: str, work: Path) -> tuple[Path, str, int]:
    """The scenario's network description for the brain: the file, its digest, its signals."""
    from brain.netfile import write_network
    from brain.timing import Timing
    from sim.review import controlled_network
    from sim.scenario import load_scenario

    path = work / f"network-{scenario}.json"
    net = controlled_network(load_scenario(scenario), Timing())
    return path, write_network(path, net, Timing(), scenario), len(net.intersections)


def _hello(digest: str, signals: int, interval: float) -> bytes:
    return encode("hello", "bench", 0, 0.0, {"role": "sim", "network": digest, "scenario": "bench", "signals": signals,
                                             "interval": interval})


def _counts(cam: dict, seq: int, t: float, present: float = 2.0) -> bytes:
    lanes = [ln["lane"] for ln in cam["lanes"]]
    n = len(lanes)
    return encode("counts", "bench", seq, t, {"camera": cam["id"], "tls": cam["tls"], "lanes": lanes,
                                              "present": [present] * n, "queue": [min(1.0, present)] * n, "crossed": [1.0] * n,
                                              "classes": [[present, 0, 0, 0]] * n, "interval": 2.0, "frames": 8})


def latency_run(steps: int = 300, work: Path | None = None) -> dict:
    """Count-sent to decision-received latency in lockstep (see the module docstring)."""
    work = Path(work or tempfile.mkdtemp(prefix="citybrain-bench-loop-"))
    cfg = _camera_config("single", per_lane=False)
    (work / "cams.json").write_text(json.dumps(cfg))
    intake, dec, metrics = _ports(3)
    net_file, digest, signals = _export("single", work)
    brain = _serve(["--network", str(net_file), "--controller", "mpc", "--cameras", str(work / "cams.json"),
                    "--intake", f"tcp://127.0.0.1:{intake}", "--decisions", f"tcp://127.0.0.1:{dec}",
                    "--metrics-port", str(metrics)], work / "brain-latency.log")
    ctx = zmq.Context.instance()
    push = make_socket(ctx, zmq.PUSH, f"tcp://127.0.0.1:{intake}", bind=False)
    pull = make_socket(ctx, zmq.PULL, f"tcp://127.0.0.1:{dec}", bind=True)
    lat = []
    try:
        _wait_http(metrics)
        push.send(_hello(digest, signals, 3.0))  # mpc decides every 3 s
        for k in range(steps + 20):
            t = 2.0 * (k + 1)
            t0 = time.perf_counter()
            for cam in cfg["cameras"]:
                push.send(_counts(cam, k, t, present=float(k % 5)))
            push.send(encode("status", "bench", k, t, {"step": k + 1, "phase": [k // 10 % 4], "green": [2.0 * (k % 10)],
                                                       "in_transition": [False]}))
            if not pull.poll(10_000):
                raise RuntimeError(f"no decision for step {k + 1}")
            d = decode(pull.recv())
            if d.body["step"] != k + 1:
                raise RuntimeError(f"decision for step {d.body['step']}, expected {k + 1}")
            if k >= 20:  # the first decisions compile the optimiser's kernels
                lat.append(1000.0 * (time.perf_counter() - t0))
    finally:
        push.close(0)
        pull.close(0)
        _stop(brain)
    a = np.array(lat)
    return {"steps": len(a), "cameras": len(cfg["cameras"]), "latency_p50_ms": float(np.percentile(a, 50)),
            "latency_p99_ms": float(np.percentile(a, 99)), "latency_max_ms": float(a.max())}


def _generate(endpoint: str, cams: list[dict], rate: float, seconds: float, conn) -> None:
    """Load generator (its own process): every camera sends ``rate`` counts messages per second."""
    ctx = zmq.Context()
    s = ctx.socket(zmq.PUSH)
    s.setsockopt(zmq.LINGER, 2000)
    s.setsockopt(zmq.SNDHWM, 100_000)
    s.connect(endpoint)
    time.sleep(0.5)
    per_tick = len(cams) * rate / 100.0  # 100 ticks per second
    sent = dropped = 0
    owed = 0.0
    t0 = time.perf_counter()
    tick = 0
    seq = 0
    k = 0
    sim_t = [0.0] * len(cams)
    while True:
        now = time.perf_counter() - t0
        if now >= seconds:
            break
        owed += per_tick
        while owed >= 1.0:
            owed -= 1.0
            i = k % len(cams)
            sim_t[i] += 1.0 / rate
            seq += 1
            try:
                s.send(_counts(cams[i], seq, sim_t[i]), zmq.NOBLOCK)
                sent += 1
            except zmq.Again:
                dropped += 1
            k += 1
        tick += 1
        wait = tick / 100.0 - (time.perf_counter() - t0)
        if wait > 0:
            time.sleep(wait)
    elapsed = time.perf_counter() - t0
    s.close()
    ctx.term()
    conn.send({"sent": sent, "dropped_at_sender": dropped, "seconds": elapsed})


def load_run(cameras: int = 1000, rate: float = 10.0, seconds: float = 60.0, work: Path | None = None) -> dict:
    """``cameras`` x ``rate`` counts messages per second into a free-running brain (module docstring)."""
    work = Path(work or tempfile.mkdtemp(prefix="citybrain-bench-loop-"))
    cfg = _camera_config("grid10x10", per_lane=True, at_least=cameras)
    cfg["cameras"] = cfg["cameras"][:cameras]
    use = cfg["cameras"]
    (work / "cams-load.json").write_text(json.dumps(cfg))
    intake, dec, metrics = _ports(3)
    net_file, digest, n_sig = _export("grid10x10", work)
    brain = _serve(["--network", str(net_file), "--controller", "max-pressure", "--cameras",
                    str(work / "cams-load.json"), "--free-running", "--intake", f"tcp://127.0.0.1:{intake}",
                    "--decisions", f"tcp://127.0.0.1:{dec}", "--metrics-port", str(metrics)], work / "brain-load.log")
    lat = []
    try:
        _wait_http(metrics)
        ctx = zmq.Context.instance()
        push = make_socket(ctx, zmq.PUSH, f"tcp://127.0.0.1:{intake}", bind=False)
        pull = make_socket(ctx, zmq.PULL, f"tcp://127.0.0.1:{dec}", bind=True)
        push.send(_hello(digest, n_sig, 10.0))  # max-pressure: every --step, 10 s
        a, b = mp.get_context("spawn").Pipe(duplex=False)
        gen = mp.get_context("spawn").Process(target=_generate,
                                              args=(f"tcp://127.0.0.1:{intake}", use, rate, seconds, b))
        gen.start()
        t_end = time.time() + seconds + 1.0
        step = 0
        peak = 0.0
        while time.time() < t_end:
            step += 1
            t0 = time.perf_counter()
            push.send(encode("status", "bench", step, 1e6 + step, {"step": step, "phase": [0] * n_sig,
                                                                  "green": [10.0] * n_sig,
                                                                  "in_transition": [False] * n_sig}))
            if pull.poll(5000):
                decode(pull.recv())
                lat.append(1000.0 * (time.perf_counter() - t0))
            peak = max(peak, _peak_rss_mb(brain.pid))
            time.sleep(max(0.0, 1.0 - (time.perf_counter() - t0)))
        gen_stats = a.recv()
        gen.join(30)
        m = _metrics(metrics)
        t_wait = time.time() + 30
        while time.time() < t_wait:  # let the brain drain its queue
            m = _metrics(metrics)
            got = m.get('citybrain_messages_total{type="counts"}', 0) + sum(
                v for k, v in m.items() if k.startswith("citybrain_messages_rejected_total"))
            if got >= gen_stats["sent"]:
                break
            time.sleep(0.5)
        peak = max(peak, _peak_rss_mb(brain.pid))
        push.close(0)
        pull.close(0)
    finally:
        _stop(brain)
    accepted = m.get('citybrain_messages_total{type="counts"}', 0)
    rejected = sum(v for k, v in m.items() if k.startswith("citybrain_messages_rejected_total"))
    sent = gen_stats["sent"] + gen_stats["dropped_at_sender"]
    la = np.array(lat) if lat else np.array([np.nan])
    return {"cameras": len(use), "rate_per_camera": rate, "seconds": gen_stats["seconds"], "messages_sent": sent,
            "messages_received": int(accepted + rejected), "messages_accepted": int(accepted),
            "messages_rejected": int(rejected), "messages_lost": int(sent - accepted - rejected),
            "achieved_rate": gen_stats["sent"] / gen_stats["seconds"], "peak_rss_mb": peak,
            "decision_under_load_p50_ms": float(np.nanpercentile(la, 50)),
            "decision_under_load_p99_ms": float(np.nanpercentile(la, 99))}


def bench_loop(*, steps: int = 300, cameras: int = 1000, rate: float = 10.0, seconds: float = 60.0,
               progress=None) -> dict:
    say = progress or (lambda s: None)
    work = Path(tempfile.mkdtemp(prefix="citybrain-bench-loop-"))
    say("latency (lockstep, single intersection, optimiser)")
    lat = latency_run(steps, work)
    say(f"load ({cameras} cameras x {rate:g} msg/s for {seconds:g} s)")
    load = load_run(cameras, rate, seconds, work)
    return {"latency_p50_ms": lat["latency_p50_ms"], "latency_p99_ms": lat["latency_p99_ms"],
            "messages_sent": load["messages_sent"], "messages_lost": load["messages_lost"],
            "peak_rss_mb": load["peak_rss_mb"], "latency": lat, "load": load, "cpu_cores": os.cpu_count()}


def markdown_report(r: dict, title: str = "Brain service: latency and load over ZeroMQ") -> str:
    lat, load = r["latency"], r["load"]
    return "\n".join([
        f"# {title}", "",
        "| measure | value | target |", "|---|---|---|",
        f"| count sent -> decision received, p50 ({lat['steps']} lockstep steps, {lat['cameras']} cameras, mpc) | "
        f"{lat['latency_p50_ms']:.2f} ms | |",
        f"| same, p99 | {lat['latency_p99_ms']:.2f} ms | < 50 ms |",
        f"| load: cameras x rate | {load['cameras']} x {load['rate_per_camera']:g}/s for {load['seconds']:.0f} s "
        f"(achieved {load['achieved_rate']:.0f} msg/s) | 10,000 msg/s |",
        f"| messages sent / received / lost | {load['messages_sent']} / {load['messages_received']} / "
        f"{load['messages_lost']} | 0 lost |",
        f"| brain peak memory (VmHWM) | {load['peak_rss_mb']:.0f} MB | bounded |",
        f"| status -> decision under load, p50 / p99 (100 signals, max-pressure) | "
        f"{load['decision_under_load_p50_ms']:.1f} / {load['decision_under_load_p99_ms']:.1f} ms | |",
        "", f"Machine: {r['cpu_cores']} cores; brain, load generator and driver are separate processes.", ""])
