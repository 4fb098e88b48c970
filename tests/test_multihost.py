"""Brain, sim and two camera workers on four hosts: network namespaces the test makes, joined by
veth pairs to a bridge in a fifth (private 10.203.7.0/24 addresses, nothing outside the test's own
namespaces touched), CURVE on every channel, the real detector on the rendered frames; the brain
runs without SUMO or the detector importable, the workers without SUMO. Mid-run one
worker's host is cut off, then restored: its intersection falls back within two decision steps
and recovers after."""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.hosts import BRAIN_HOST, CAMERA_HOST, NOT_INSTALLED, citybrain_without

pytestmark = [pytest.mark.slow, pytest.mark.sumo]

ROOT = Path(__file__).resolve().parents[1]
EXE = [sys.executable, "-m", "citybrain.cli"]
HOSTS = {"brain": "10.203.7.1", "sim": "10.203.7.2", "w0": "10.203.7.3", "w1": "10.203.7.4"}
_LACKS = {"brain": BRAIN_HOST, "w0": CAMERA_HOST, "w1": CAMERA_HOST}  # what each host does not install


def _can_make_namespaces() -> str:
    if os.geteuid() != 0:
        return "making network namespaces needs root"
    if shutil.which("ip") is None:
        return "iproute2's ip is not installed"
    return ""


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


class Hosts:
    """The namespaces and links; removed again whatever happens."""

    def __init__(self) -> None:
        tag = f"{os.getpid() % 100000}"
        self.hub = f"cbhub{tag}"
        self.ns = {h: f"cb{h}{tag}" for h in HOSTS}
        self.peer = {h: f"cbp{k}{tag}" for k, h in enumerate(HOSTS)}  # the hub's end of each host's link
        self.made: list[str] = []

    def __enter__(self) -> "Hosts":
        _ip("netns", "add", self.hub)
        self.made.append(self.hub)
        _ip("-n", self.hub, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.hub, "link", "set", "br0", "up")
        for h, addr in HOSTS.items():
            ns = self.ns[h]
            _ip("netns", "add", ns)
            self.made.append(ns)
            _ip("-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", self.peer[h], "netns", self.hub)
            _ip("-n", ns, "addr", "add", f"{addr}/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", self.hub, "link", "set", self.peer[h], "master", "br0")
            _ip("-n", self.hub, "link", "set", self.peer[h], "up")
        return self

    def __exit__(self, *exc) -> None:
        for ns in reversed(self.made):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)

    def cut(self, host: str, up: bool) -> None:
        _ip("-n", self.hub, "link", "set", self.peer[host], "up" if up else "down")

    def start(self, host: str, args: list[str], log: Path) -> subprocess.Popen:
        """``citybrain ARGS`` on ``host``, with what that host does not install failing to import."""
        exe = citybrain_without(_LACKS[host]) if host in _LACKS else EXE
        return subprocess.Popen(["ip", "netns", "exec", self.ns[host], *exe, *args], stdout=open(log, "w"),
                                stderr=subprocess.STDOUT, cwd=ROOT)


def _trace(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()] if path.exists() else []


def _wait_for(cond, timeout: float, what: str) -> None:
    t0 = time.time()
    while not cond():
        if time.time() - t0 > timeout:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _stop(p: subprocess.Popen) -> int:
    if p.poll() is None:
        p.terminate()
    try:
        return p.wait(30)
    except subprocess.TimeoutExpired:
        p.kill()
        return p.wait()


def test_brain_sim_and_two_workers_on_separate_hosts_with_curve(tmp_path):
    why = _can_make_namespaces()
    if why:
        pytest.skip(why)
    from wire.transport import make_keys

    keys = tmp_path / "keys"
    make_keys(keys, ["w0", "w1"])
    net = tmp_path / "network.json"
    subprocess.run(EXE + ["export-network", "--scenario", "single", "--out", str(net)], check=True, cwd=ROOT,
                   capture_output=True)
    cams = tmp_path / "cams.json"
    subprocess.run(EXE + ["cameras", "--scenario", "single", "--out", str(cams)], check=True, cwd=ROOT,
                   capture_output=True)
    cfg = json.loads(cams.read_text())
    for k in (0, 1):  # each worker its half of the intersection's approaches, two frames a second
        (tmp_path / f"cams-{k}.json").write_text(json.dumps(dict(cfg, fps=2.0, cameras=cfg["cameras"][k::2])))
    (tmp_path / "cams-all.json").write_text(json.dumps(dict(cfg, fps=2.0)))
    b, s = HOSTS["brain"], HOSTS["sim"]
    trace = tmp_path / "trace.jsonl"
    procs: dict[str, subprocess.Popen] = {}
    with Hosts() as hosts:
        try:
            procs["brain"] = hosts.start("brain", ["serve", "--network", str(net), "--controller", "mpc", "--cameras",
                                                   str(tmp_path / "cams-all.json"), "--keys", str(keys), "--intake",
                                                   "tcp://*:5556", "--decisions", f"tcp://{s}:5557"],
                                         tmp_path / "brain.log")
            for k in (0, 1):
                procs[f"w{k}"] = hosts.start(f"w{k}", ["worker", "--config", str(tmp_path / f"cams-{k}.json"), "--frames",
                                                       f"tcp://{s}:5555", "--connect", f"tcp://{b}:5556", "--keys",
                                                       str(keys), "--name", f"w{k}"], tmp_path / f"w{k}.log")
            for k in (0, 1):
                _wait_for(lambda: "detector ready" in (tmp_path / f"w{k}.log").read_text(), 180, f"worker {k}")
            procs["sim"] = hosts.start("sim", ["sim", "--scenario", "single", "--network", str(net), "--sensing",
                                               "vision", "--cameras", str(tmp_path / "cams-all.json"), "--fps", "2",
                                               "--end", "240", "--keys", str(keys), "--frames", "tcp://*:5555",
                                               "--decisions", "tcp://*:5557", "--brain", f"tcp://{b}:5556",
                                               "--json", str(tmp_path / "rec.json"), "--trace", str(trace)],
                                       tmp_path / "sim.log")
            sim = procs["sim"]
            _wait_for(lambda: sim.poll() is not None or (_trace(trace) and _trace(trace)[-1]["fallback"] == 0), 240,
                      "live cameras on both hosts")
            assert sim.poll() is None, (tmp_path / "sim.log").read_text()[-2000:]
            hosts.cut("w0", up=False)
            cut = time.time()
            _wait_for(lambda: sum(1 for r in _trace(trace) if r["wall"] > cut) >= 4, 120, "steps after the cut")
            hosts.cut("w0", up=True)
            restored = time.time()
            _wait_for(lambda: procs["sim"].poll() is not None, 400, "the sim to finish")
        finally:
            codes = {name: _stop(p) for name, p in procs.items()}
    logs = {p.stem: p.read_text()[-1500:] for p in tmp_path.glob("*.log")}
    assert codes["sim"] == 0, logs
    rows = _trace(trace)
    after = [r for r in rows if r["wall"] > cut]
    assert after[0]["fallback"] == 1 or after[1]["fallback"] == 1, rows[-20:]  # within two decision steps
    assert all(r["brain"] for r in rows), "the brain's own channel stayed up"
    assert any(r["fallback"] == 0 for r in rows if r["wall"] > restored + 3.0), ("no recovery", logs)
    rec = json.loads((tmp_path / "rec.json").read_text())
    assert rec["complete"] and rec["safety_violations"] == 0 and rec["service"]["brain_missing_steps"] == 0
    assert "channel_error" not in rec
    assert not any(NOT_INSTALLED in text for text in logs.values()), logs
