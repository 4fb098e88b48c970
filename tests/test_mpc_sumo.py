"""The optimiser in closed loop with real SUMO, and its speed benchmark from the command line."""

import json

import pytest

from brain.controllers.mpc import Mpc, MpcConfig
from sim.loop import run_scenario
from sim.scenario import load_scenario
from tests.test_cli import cli

pytestmark = pytest.mark.sumo


def test_mpc_beats_every_classic_controller_on_the_single_intersection():
    single = load_scenario("single")
    mpc = run_scenario(single, "mpc", seed=1)
    assert mpc.safety_violations == 0, mpc.violation_kinds
    assert mpc.complete and mpc.throughput > 1400
    for name in ("fixed", "max-pressure", "greedy"):
        other = run_scenario(single, name, seed=1)
        assert mpc.avg_delay_s < other.avg_delay_s, name


def test_mpc_coordinates_a_corridor_safely():
    ctrl = Mpc(MpcConfig(coordinate=True, sweeps=2))
    rec = run_scenario(load_scenario("arterial"), ctrl, seed=2, end=900.0)
    assert rec.safety_violations == 0, rec.violation_kinds
    assert rec.complete and rec.intersections == 5
    assert len(ctrl.net.route_to) > 0  # neighbours are linked, so plans are exchanged
    assert ctrl.outflow.sum() > 0  # and the plans did send vehicles downstream
    assert rec.refused_requests == 0  # it never asks for an illegal switch


def test_resco_scenario_runs_safely_under_mpc(resco):
    rec = run_scenario(load_scenario(str(resco / "ingolstadt1")), "mpc", seed=1, end=61200.0 - 1800.0)
    assert rec.safety_violations == 0
    assert rec.complete


def test_bench_kernel_writes_one_record_per_size(tmp_path):
    out = tmp_path / "k.json"
    md = tmp_path / "k.md"
    r = cli("bench-kernel", "--sizes", "1,16", "--steps", "3", "--json", str(out), "--markdown", str(md),
            "--warm-cache")
    assert r.returncode == 0, r.stderr
    recs = json.loads(out.read_text())
    assert [x["intersections"] for x in recs] == [1, 16]
    for x in recs:
        assert x["median_ms"] > 0 and x["p99_ms"] >= x["median_ms"] and x["compile_s"] >= 0
    assert "| 16 |" in md.read_text()
    bad = cli("bench-kernel", "--sizes", "1,x")
    assert bad.returncode == 2 and "--sizes" in bad.stderr
    nodes = {}
    for beam in (0, 2):  # random readings: the same states whatever was decided
        r = cli("bench-kernel", "--sizes", "100", "--steps", "3", "--readings", "random", "--json", str(out),
                "--warm-cache", "--mpc", "depth=2", "--mpc", f"beam={beam}", "--mpc", "leaf_beam=0")
        assert r.returncode == 0, r.stderr
        rec = json.loads(out.read_text())[0]
        assert (rec["depth"], rec["beam"], rec["leaf_beam"]) == (2, beam, 0)
        assert rec["options"] == {"depth": "2", "beam": str(beam), "leaf_beam": "0"}
        nodes[beam] = rec["mean_nodes"]
    assert nodes[2] < 0.7 * nodes[0]  # full tree 4 + 12 + 36 nodes, beam 2: 4 + 8 + 16
    assert cli("bench-kernel", "--sizes", "1", "--mpc", "dpth=1").returncode == 2
