"""The services as real subprocesses over ZeroMQ: brain death and restart, fuzzing, CURVE."""

import json
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import zmq

from brain.controllers.mpc import MpcConfig
from wire.protocol import encode
from wire.transport import free_ports as _free_ports
from wire.transport import make_socket

pytestmark = [pytest.mark.slow, pytest.mark.sumo]

ROOT = Path(__file__).resolve().parents[1]
EXE = [sys.executable, "-m", "citybrain.cli"]


def _start(args, log: Path) -> subprocess.Popen:
    return subprocess.Popen(EXE + args, stdout=open(log, "w"), stderr=subprocess.STDOUT, cwd=ROOT)


def _stop(p: subprocess.Popen) -> int:
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
    try:
        return p.wait(20)
    except subprocess.TimeoutExpired:
        p.kill()
        return p.wait()


def _trace(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def _wait_for(cond, timeout: float, what: str) -> None:
    t0 = time.time()
    while not cond():
        if time.time() - t0 > timeout:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_brain_killed_and_restarted_signals_fall_back_then_recover(tmp_path):
    intake, dec, frames = _free_ports(3)
    brain_args = ["serve", "--scenario", "single", "--controller", "mpc", "--intake", f"tcp://127.0.0.1:{intake}",
                  "--decisions", f"tcp://127.0.0.1:{dec}"]
    brain = _start(brain_args, tmp_path / "brain1.log")
    time.sleep(1.0)
    trace = tmp_path / "trace.jsonl"
    sim = _start(["sim", "--scenario", "single", "--end", "900", "--timeout", "1.0", "--frames",
                  f"tcp://127.0.0.1:{frames}", "--brain", f"tcp://127.0.0.1:{intake}", "--decisions",
                  f"tcp://127.0.0.1:{dec}", "--json", str(tmp_path / "rec.json"), "--trace", str(trace)],
                 tmp_path / "sim.log")
    try:
        _wait_for(lambda: len(_trace(trace)) >= 60, 60, "60 decision steps")
        brain.kill()  # no goodbye
        killed = time.time()
        brain.wait()
        _wait_for(lambda: sum(1 for r in _trace(trace) if r["wall"] > killed) >= 6, 60, "steps after the kill")
        brain = _start(brain_args, tmp_path / "brain2.log")
        restarted = time.time()
        _wait_for(lambda: sim.poll() is not None, 300, "the sim to finish")
    finally:
        _stop(sim)
        _stop(brain)
    rows = _trace(trace)
    after_kill = [r for r in rows if r["wall"] > killed]
    assert after_kill[0]["brain"] is False or after_kill[1]["brain"] is False  # within 2 steps
    assert all(r["fallback"] == 1 for r in after_kill[:6][1:])
    back = [r for r in rows if r["wall"] > restarted and r["brain"]]
    assert back, "decisions did not resume after the brain restarted"
    assert rows[-1]["brain"] and rows[-1]["fallback"] == 0
    rec = json.loads((tmp_path / "rec.json").read_text())
    assert rec["complete"] and rec["safety_violations"] == 0 and rec["sim_s"] == pytest.approx(900.0)
    assert rec["service"]["brain_missing_steps"] >= 5


def test_ten_thousand_fuzzed_messages_are_rejected_and_counted_by_a_live_brain(tmp_path):
    import random

    intake, dec, metrics = _free_ports(3)
    net_file = tmp_path / "network.json"
    subprocess.run(EXE + ["export-network", "--scenario", "single", "--out", str(net_file)], check=True, cwd=ROOT,
                   capture_output=True)
    brain = _start(["serve", "--network", str(net_file), "--controller", "max-pressure", "--intake",
                    f"tcp://127.0.0.1:{intake}", "--decisions", f"tcp://127.0.0.1:{dec}", "--metrics-port", str(metrics)],
                   tmp_path / "brain.log")
    ctx = zmq.Context.instance()
    push = make_socket(ctx, zmq.PUSH, f"tcp://127.0.0.1:{intake}", bind=False)
    pull = make_socket(ctx, zmq.PULL, f"tcp://127.0.0.1:{dec}", bind=True)
    rng = random.Random(7)
    good = encode("status", "s", 1, 0.0, {"step": 1, "phase": [0], "green": [1.0], "in_transition": [False]})
    try:
        def metric(name: str) -> float:
            text = urllib.request.urlopen(f"http://127.0.0.1:{metrics}/metrics", timeout=5).read().decode()
            return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name))

        _wait_for(lambda: _alive(metrics), 60, "the brain's metrics endpoint")
        for k in range(10_000):
            kind = k % 4
            if kind == 0:
                raw = bytes(rng.randrange(256) for _ in range(rng.randint(0, 64)))
            elif kind == 1:
                raw = good[:rng.randint(0, len(good) - 1)]  # truncated
            elif kind == 2:
                raw = good.replace(b"status", b"statuz")  # unknown type
            else:
                raw = encode("counts", "x", 1, 0.0, {"camera": "nope", "tls": "A0", "lanes": ["l"], "present": [1.0],
                                                     "queue": [0.0], "crossed": [0.0], "classes": [[1, 0, 0, 0]],
                                                     "interval": 2.0, "frames": 1})  # no cameras on this brain
            push.send(raw)
        _wait_for(lambda: metric("citybrain_messages_rejected_total") >= 10_000, 60, "10,000 rejections")
        assert metric("citybrain_messages_rejected_total") == 10_000
        # still serving: a valid status with detector readings gets a decision
        from brain.netfile import load_network

        nf = load_network(net_file)
        n = nf.network.n_lanes
        zeros = [0.0] * n
        push.send(encode("hello", "sim", 0, 0.0, {"role": "sim", "network": nf.digest, "scenario": "single",
                                                  "signals": 1, "interval": 10.0}))
        push.send(encode("status", "sim", 1, 10.0, {"step": 1, "phase": [0], "green": [10.0], "in_transition": [False],
                                                   "readings": {"vehicles": zeros, "halting": zeros,
                                                                "arrivals": zeros, "departures": zeros}}))
        assert pull.poll(10_000), "no decision after the fuzzing"
        from wire.protocol import decode

        d = decode(pull.recv())
        assert d.type == "decision" and d.body["step"] == 1 and len(d.body["wish"]) == 1
        assert brain.poll() is None
    finally:
        push.close(0)
        pull.close(0)
        code = _stop(brain)
    assert code == 0  # SIGTERM ends it cleanly


def _alive(port: int) -> bool:
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1)
        return True
    except OSError:
        return False


def test_only_enrolled_workers_can_deliver_counts(tmp_path):
    from wire.transport import make_keys

    keys = tmp_path / "keys"
    make_keys(keys, ["enrolled"])
    rogue = tmp_path / "rogue"
    make_keys(rogue, ["intruder"])  # a different key pair, never enrolled with this brain
    (rogue / "brain.key").write_bytes((keys / "brain.key").read_bytes())  # it even knows the server key
    cams = tmp_path / "cams.json"
    subprocess.run(EXE + ["cameras", "--scenario", "single", "--out", str(cams)], check=True, cwd=ROOT,
                   capture_output=True)
    cfg = json.loads(cams.read_text())
    cam = cfg["cameras"][0]
    intake, dec, metrics = _free_ports(3)
    brain = _start(["serve", "--scenario", "single", "--cameras", str(cams), "--keys", str(keys), "--intake",
                    f"tcp://127.0.0.1:{intake}", "--decisions", f"tcp://127.0.0.1:{dec}", "--metrics-port",
                    str(metrics)], tmp_path / "brain.log")
    from wire.transport import Curve

    ctx = zmq.Context.instance()
    body = {"camera": cam["id"], "tls": cam["tls"], "lanes": [ln["lane"] for ln in cam["lanes"]],
            "present": [1.0] * len(cam["lanes"]), "queue": [0.0] * len(cam["lanes"]),
            "crossed": [0.0] * len(cam["lanes"]), "classes": [[1, 0, 0, 0]] * len(cam["lanes"]),
            "interval": 2.0, "frames": 8}
    try:
        _wait_for(lambda: _alive(metrics), 60, "the brain's metrics endpoint")

        def counts_received() -> float:
            text = urllib.request.urlopen(f"http://127.0.0.1:{metrics}/metrics", timeout=5).read().decode()
            return sum(float(x.split()[-1]) for x in text.splitlines()
                       if x.startswith('citybrain_messages_total{type="counts"}'))

        bad = make_socket(ctx, zmq.PUSH, f"tcp://127.0.0.1:{intake}", bind=False, curve=Curve(rogue, "intruder"))
        plain = make_socket(ctx, zmq.PUSH, f"tcp://127.0.0.1:{intake}", bind=False)
        for k in range(20):
            try:
                bad.send(encode("counts", "intruder", k, 2.0 * k, body), zmq.NOBLOCK)
                plain.send(encode("counts", "plain", k, 2.0 * k, body), zmq.NOBLOCK)
            except zmq.Again:
                pass
        time.sleep(2.0)
        assert counts_received() == 0
        good = make_socket(ctx, zmq.PUSH, f"tcp://127.0.0.1:{intake}", bind=False, curve=Curve(keys, "enrolled"))
        good.send(encode("counts", "enrolled", 1, 2.0, body))
        _wait_for(lambda: counts_received() == 1, 20, "the enrolled worker's counts")
        for s in (bad, plain, good):
            s.close(0)
    finally:
        _stop(brain)


def test_killed_worker_puts_its_intersection_on_fallback_and_a_new_one_recovers(tmp_path):
    """Vision sensing with the real detector: the worker dies mid-run, then a new one starts."""
    from vision.detector import WEIGHTS

    assert WEIGHTS.exists()
    cams = tmp_path / "cams.json"
    subprocess.run(EXE + ["cameras", "--scenario", "single", "--out", str(cams)], check=True, cwd=ROOT,
                   capture_output=True)
    # two frames a second (the sim steps with them): half the detector's work of the default 4,
    # so that on two cores the worker keeps up with the lockstep even beside other load
    cfg = json.loads(cams.read_text())
    cams.write_text(json.dumps(dict(cfg, fps=2.0)))
    intake, dec, frames = _free_ports(3)
    brain = _start(["serve", "--scenario", "single", "--controller", "mpc", "--cameras", str(cams), "--intake",
                    f"tcp://127.0.0.1:{intake}", "--decisions", f"tcp://127.0.0.1:{dec}"], tmp_path / "brain.log")
    worker_args = ["worker", "--config", str(cams), "--frames", f"tcp://127.0.0.1:{frames}", "--connect",
                   f"tcp://127.0.0.1:{intake}"]
    worker = _start(worker_args, tmp_path / "worker1.log")
    _wait_for(lambda: "detector ready" in (tmp_path / "worker1.log").read_text(), 120, "the worker's detector")
    trace = tmp_path / "trace.jsonl"
    sim = _start(["sim", "--scenario", "single", "--sensing", "vision", "--cameras", str(cams), "--end", "180",
                  "--fps", "2", "--frames", f"tcp://127.0.0.1:{frames}", "--brain", f"tcp://127.0.0.1:{intake}", "--decisions",
                  f"tcp://127.0.0.1:{dec}", "--json", str(tmp_path / "rec.json"), "--trace", str(trace)],
                 tmp_path / "sim.log")
    try:
        # the optimiser drives once the worker's counts keep up with the sim's steps (on two cores
        # the detector needs about the sim's step time per step; the lockstep wait is its slack)
        _wait_for(lambda: _trace(trace) and _trace(trace)[-1]["fallback"] == 0, 150, "live cameras")
        worker.kill()
        killed = time.time()
        worker.wait()
        _wait_for(lambda: sum(1 for r in _trace(trace) if r["wall"] > killed) >= 4, 120, "steps after the kill")
        worker = _start(worker_args, tmp_path / "worker2.log")
        restarted = time.time()
        _wait_for(lambda: sim.poll() is not None, 300, "the sim to finish")
    finally:
        _stop(sim)
        _stop(worker)
        _stop(brain)
    rows = _trace(trace)
    after = [r for r in rows if r["wall"] > killed]
    assert after[0]["fallback"] == 1 or after[1]["fallback"] == 1  # within 2 decision steps
    assert all(r["brain"] for r in rows)  # the brain kept deciding; only the camera was gone
    assert any(r["fallback"] == 0 for r in rows if r["wall"] > restarted + 5.0), "no recovery with a new worker"
    rec = json.loads((tmp_path / "rec.json").read_text())
    assert rec["complete"] and rec["safety_violations"] == 0


def test_load_generator_counts_every_message_the_brain_receives(tmp_path):
    from benchmarks.loop import load_run

    r = load_run(cameras=100, rate=20.0, seconds=3.0, work=tmp_path)
    assert r["messages_sent"] >= 5000
    assert r["messages_lost"] == 0 and r["messages_rejected"] == 0
    assert r["messages_accepted"] == r["messages_sent"]
    assert 0 < r["peak_rss_mb"] < 2000


def test_emergency_vehicles_reach_a_remote_brain_and_get_priority(tmp_path):
    """The transponder feed travels with the sim's status, so pre-emption works through the service."""
    from citybrain.services import run_services
    from scenarios.emergency import add_emergency

    cfg = add_emergency("arterial", tmp_path, every_s=100.0)
    recs = {c: run_services(str(cfg), c, "truth", end=400.0, out_dir=tmp_path / c) for c in ("mpc", "mpc+priority")}
    for r in recs.values():
        assert r["exit_codes"] == {"brain": 0, "sim": 0} and r["safety_violations"] == 0
        assert r["ev_trips"] == 4 and r["service"]["brain_missing_steps"] == 0
    # without the feed both runs were the same to the digit (30.2 s of emergency delay each)
    assert recs["mpc+priority"]["ev_avg_delay_s"] < 0.5 * recs["mpc"]["ev_avg_delay_s"]


def test_timing_rules_reach_the_sims_actuator_over_the_services(tmp_path):
    """``run --sensing``'s --min-green and --yellow are the actuator's and the safety monitor's."""
    from citybrain.services import run_services
    from brain.timing import Timing
    from sim.scenario import load_scenario

    cfg = str(load_scenario("single").config)
    short = run_services(cfg, "greedy", "truth", end=300.0, out_dir=tmp_path / "default")
    long = run_services(cfg, "greedy", "truth", end=300.0, out_dir=tmp_path / "long",
                        timing=Timing(min_green=30.0, yellow=4.0))
    for r in (short, long):
        assert r["complete"] and r["safety_violations"] == 0 and r["exit_codes"] == {"brain": 0, "sim": 0}
    assert short["switches"] > 15  # greedy switches as soon as 5 s of green allow
    assert long["switches"] <= 300 // (30 + 4) + 1


def test_a_sim_stopped_by_sigterm_keeps_what_it_measured(tmp_path):
    intake, dec, frames = _free_ports(3)
    brain = _start(["serve", "--scenario", "single", "--controller", "greedy", "--step", "3", "--intake",
                    f"tcp://127.0.0.1:{intake}", "--decisions", f"tcp://127.0.0.1:{dec}"], tmp_path / "brain.log")
    time.sleep(1.0)
    trace = tmp_path / "trace.jsonl"
    sim = _start(["sim", "--scenario", "single", "--frames", f"tcp://127.0.0.1:{frames}", "--brain",
                  f"tcp://127.0.0.1:{intake}", "--decisions", f"tcp://127.0.0.1:{dec}", "--json",
                  str(tmp_path / "rec.json"), "--trace", str(trace), "--realtime", "300"], tmp_path / "sim.log")
    try:
        _wait_for(lambda: any(r["time"] >= 900 for r in _trace(trace)), 120, "15 simulated minutes")
        sim.send_signal(signal.SIGTERM)
        assert sim.wait(30) == 143  # stopped by SIGTERM, its record written
    finally:
        _stop(sim)
        _stop(brain)
    rec = json.loads((tmp_path / "rec.json").read_text())
    assert not rec["complete"] and rec["error"].startswith("stopped by SIGTERM at t=")
    assert 900 <= rec["sim_s"] < 3600
    assert rec["throughput"] > 100 and rec["avg_delay_s"] > 0 and rec["safety_violations"] == 0
    assert rec["count_to_decision_ms_p50"] is None  # truth sensing: no counts (and no NaN in the JSON)


@pytest.mark.parametrize("controller,step", [("mpc", 10.0), ("max-pressure", 10.0), ("greedy", 5.0)])
def test_a_service_run_agrees_with_the_same_run_in_process(tmp_path, controller, step, capfd):
    """The same controller, rules and ``--step`` give the same figures through the services:
    the decision cadence (mpc's own 2 s, the others' --step) and SUMO's step length (the
    scenario's own, 1 s) are the same, the record says which, and progress is printed as by
    ``run``."""
    from citybrain.services import run_services
    from brain.timing import Timing
    from sim.scenario import load_scenario

    sc = load_scenario("single")
    timing = Timing(step=step)
    # the in-process run in a process of its own: libsumo keeps some state from one simulation to
    # the next in a process (another test's scenario may have run in this one)
    js = tmp_path / "here.json"
    done = subprocess.run(EXE + ["run", "--scenario", "single", "--controller", controller, "--end", "300", "--step",
                                 str(step), "--json", str(js)], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    here = json.loads(js.read_text())
    there = run_services(sc, controller, "truth", end=300.0, out_dir=tmp_path / "svc", timing=timing)
    assert there["exit_codes"] == {"brain": 0, "sim": 0}
    assert there["decisions"] == here["decisions"] == 300 / (MpcConfig().interval if controller == "mpc" else step)
    assert there["avg_delay_s"] == pytest.approx(here["avg_delay_s"], rel=1e-9)
    assert there["switches"] == here["switches"]
    assert there["provenance"]["step_length_s"] == here["provenance"]["step_length_s"] == 1.0
    assert "single x " in capfd.readouterr().err and "300/300 s simulated" in (tmp_path / "svc" / "sim.log").read_text()
