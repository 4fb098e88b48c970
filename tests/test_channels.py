"""Deployment as it is meant: a brain without a simulator, one description of the network shared
by sim and brain, CURVE on every channel, and the errors a misconfigured channel gives."""

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.hosts import BRAIN_HOST, NOT_INSTALLED, citybrain_without

pytestmark = [pytest.mark.slow, pytest.mark.sumo]

ROOT = Path(__file__).resolve().parents[1]
EXE = [sys.executable, "-m", "citybrain.cli"]
OUTSIDE = [("resco", n) for n in ("cologne1", "cologne3", "ingolstadt1", "ingolstadt7", "grid4x4")] + \
    [("corpus", n) for n in ("bologna-acosta", "sumorl-2way", "sumorl-2x2", "sumorl-3x3", "sumorl-4x4", "sumorl-big",
                             "sumorl-double", "sumorl-single")]


@pytest.mark.parametrize("where,name", OUTSIDE, ids=[n for _, n in OUTSIDE])
def test_the_exported_network_is_the_one_the_sim_drives(where, name, tmp_path, request):
    """One reader: the description ``export-network`` writes is, to the digest, what the sim's
    controller is handed at the start of a run of the same scenario."""
    from brain.controllers.plan import FixedPlan
    from brain.netfile import digest, load_network, write_network
    from brain.timing import Timing
    from sim.loop import run_scenario
    from sim.review import controlled_network
    from sim.scenario import load_scenario

    sc = load_scenario(request.getfixturevalue(where) / name)
    timing = Timing(step=2.0)
    write_network(tmp_path / "n.json", controlled_network(sc, timing), timing, sc.name)
    exported = load_network(tmp_path / "n.json", step=2.0)
    handed = {}

    class Capture(FixedPlan):
        def reset(self, network, timing):
            handed["digest"] = digest(network, timing)
            handed["signals"] = len(network.intersections)
            super().reset(network, timing)

    run_scenario(sc, Capture(), timing=timing, end=sc.begin + 4.0)
    assert handed["signals"] == len(exported.network.intersections) > 0
    assert handed["digest"] == exported.digest


def _run_sim(args, log: Path, **kw) -> subprocess.Popen:
    return subprocess.Popen(EXE + args, stdout=subprocess.PIPE, stderr=open(log, "w"), cwd=ROOT, text=True, **kw)


def test_a_brain_host_without_simulator_or_detector_drives_a_closed_loop(tmp_path):
    from wire.transport import free_ports

    net = tmp_path / "network.json"
    subprocess.run(EXE + ["export-network", "--scenario", "arterial", "--out", str(net)], check=True, cwd=ROOT,
                   capture_output=True)
    intake, dec, frames = free_ports(3)
    brain = subprocess.Popen(citybrain_without(BRAIN_HOST) + ["serve", "--network", str(net), "--controller", "mpc",
                              "--intake", f"tcp://127.0.0.1:{intake}", "--decisions", f"tcp://127.0.0.1:{dec}"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=ROOT, text=True)
    sim = _run_sim(["sim", "--scenario", "arterial", "--network", str(net), "--end", "600", "--interval", "3",
                    "--brain", f"tcp://127.0.0.1:{intake}", "--decisions", f"tcp://127.0.0.1:{dec}", "--frames",
                    f"tcp://127.0.0.1:{frames}", "--timeout", "30"], tmp_path / "sim.log")
    try:
        out, _ = sim.communicate(timeout=300)
    finally:
        brain.terminate()
        brain_out, _ = brain.communicate(timeout=30)
    rec = json.loads(out)
    assert sim.returncode == 0, (tmp_path / "sim.log").read_text()[-2000:]
    assert brain.returncode == 0 and NOT_INSTALLED not in brain_out, brain_out[-2000:]
    assert rec["complete"] and rec["safety_violations"] == 0 and rec["brain_controller"] == "mpc"
    s = rec["service"]
    assert s["decided"] == s["steps"] > 100 and s["brain_missing_steps"] == 0 and s["hellos"] == 1


def test_every_channel_runs_with_curve_keys_and_secret_keys_are_private(tmp_path):
    from citybrain.services import run_services

    rec = run_services("single", "max-pressure", "truth", end=300.0, out_dir=tmp_path, curve=True)
    assert rec["exit_codes"] == {"brain": 0, "sim": 0}, rec
    assert rec["complete"] and rec["safety_violations"] == 0
    assert rec["service"]["decided"] == rec["service"]["steps"] > 20
    for secret in (tmp_path / "keys").glob("*.key_secret"):
        assert stat.S_IMODE(os.stat(secret).st_mode) == 0o600, secret
    assert {p.name for p in (tmp_path / "keys" / "clients").iterdir()} >= {"brain.key", "sim.key", "worker-0.key"}


@pytest.mark.parametrize("keys_on", ["brain", "sim"])
def test_keys_on_one_side_only_is_an_error_that_says_so(keys_on, tmp_path):
    from wire.transport import free_ports, make_keys

    keys = tmp_path / "keys"
    make_keys(keys, [])
    net = tmp_path / "network.json"
    subprocess.run(EXE + ["export-network", "--scenario", "single", "--out", str(net)], check=True, cwd=ROOT,
                   capture_output=True)
    intake, dec, frames = free_ports(3)
    with_keys = lambda who: ["--keys", str(keys)] if who == keys_on else []  # noqa: E731
    brain = subprocess.Popen(EXE + ["serve", "--network", str(net), "--controller", "greedy", "--intake",
                                    f"tcp://127.0.0.1:{intake}", "--decisions", f"tcp://127.0.0.1:{dec}"]
                             + with_keys("brain"), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=ROOT,
                             text=True)
    sim = _run_sim(["sim", "--scenario", "single", "--network", str(net), "--end", "300", "--timeout", "2",
                    "--brain", f"tcp://127.0.0.1:{intake}", "--decisions", f"tcp://127.0.0.1:{dec}", "--frames",
                    f"tcp://127.0.0.1:{frames}"] + with_keys("sim"), tmp_path / "sim.log")
    try:
        sim.communicate(timeout=120)
    finally:
        brain.terminate()
        brain_out, _ = brain.communicate(timeout=30)
    err = (tmp_path / "sim.log").read_text()
    assert sim.returncode == 2, err[-2000:]
    line = [x for x in err.splitlines() if x.startswith("citybrain: ") and "channel" in x]
    assert line and "--keys" in line[0], err[-2000:]
    # it says that a side lacks the keys (which side, where ZeroMQ tells: a mechanism mismatch)
    assert any(w in line[0] for w in ("has no --keys", "this side has none", "without CURVE keys")), line[0]


def test_export_network_never_writes_into_the_scenario_folder(tmp_path):
    import shutil

    folder = tmp_path / "single"
    shutil.copytree(ROOT / "scenarios" / "single", folder)
    before = sorted(p.name for p in folder.iterdir())
    r = subprocess.run(EXE + ["export-network", "--scenario", str(folder), "--out", str(folder / "net.json")],
                       capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 2 and "inside the scenario's folder" in r.stderr
    assert sorted(p.name for p in folder.iterdir()) == before
    r = subprocess.run(EXE + ["export-network", "--scenario", str(folder), "--out", str(tmp_path / "net.json")],
                       capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 0 and "1 signal and 20 lanes of single" in r.stdout and (tmp_path / "net.json").exists()


def test_a_brain_serving_another_network_refuses_the_sim(tmp_path):
    from wire.transport import free_ports

    net = tmp_path / "single.json"
    subprocess.run(EXE + ["export-network", "--scenario", "single", "--out", str(net)], check=True, cwd=ROOT,
                   capture_output=True)
    intake, dec, frames = free_ports(3)
    brain = subprocess.Popen(EXE + ["serve", "--network", str(net), "--controller", "greedy", "--intake",
                                    f"tcp://127.0.0.1:{intake}", "--decisions", f"tcp://127.0.0.1:{dec}"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=ROOT, text=True)
    sim = _run_sim(["sim", "--scenario", "single", "--yellow", "5", "--end", "200", "--timeout", "2",
                    "--brain", f"tcp://127.0.0.1:{intake}", "--decisions", f"tcp://127.0.0.1:{dec}", "--frames",
                    f"tcp://127.0.0.1:{frames}"], tmp_path / "sim.log")
    try:
        brain_out, _ = brain.communicate(timeout=120)
    finally:
        sim.terminate()
        sim.communicate(timeout=60)
    assert brain.returncode == 2, brain_out[-2000:]
    assert "citybrain: the sim 'sim' drives another network" in brain_out
    # and the sim given the description of another network refuses before it runs
    wrong = subprocess.run(EXE + ["sim", "--scenario", "arterial", "--network", str(net), "--end", "100",
                                  "--timeout", "1"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert wrong.returncode == 2 and "not the one its --network file describes" in wrong.stderr


def test_a_worker_that_lost_every_camera_exits_nonzero(tmp_path):
    from wire.transport import free_ports

    cams = tmp_path / "cams.json"
    subprocess.run(EXE + ["cameras", "--scenario", "single", "--out", str(cams)], check=True, cwd=ROOT,
                   capture_output=True)
    (port,) = free_ports(1)  # nothing listens there: the streams are gone
    cfg = json.loads(cams.read_text())
    for c in cfg["cameras"]:
        c["source"] = f"http://127.0.0.1:{port}/{c['id'].replace('/', '-')}.mjpg"
    cams.write_text(json.dumps(cfg))
    r = subprocess.run(EXE + ["worker", "--config", str(cams), "--reconnects", "1", "--out", str(tmp_path / "c.jsonl")],
                       capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 1, r.stderr[-2000:]
    assert f"lost {len(cfg['cameras'])} of its {len(cfg['cameras'])} camera streams" in r.stderr
