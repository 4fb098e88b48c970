"""Closed-loop runs in real SUMO: exact fixed-time reproduction, illegal wishes refused, SUMO dying."""

import pytest

from benchmarks.quality import plain_sumo_record
from brain.controllers import Controller
from tests.chaos import Chaos
from sim.loop import run_scenario
from sim.scenario import load_scenario

pytestmark = pytest.mark.sumo

END = 900.0  # a quarter hour of the single intersection: a second or so per run


@pytest.fixture(scope="module")
def single():
    return load_scenario("single")


def test_fixed_time_equals_plain_sumo(single, tmp_path):
    """Our loop, actuator-free fixed-time, measures exactly what the sumo binary alone gives."""
    ours = run_scenario(single, "fixed", seed=3)
    plain = plain_sumo_record(single, seed=3)
    assert ours.vehicles == plain["vehicles"] > 1000
    assert ours.avg_delay_s == pytest.approx(plain["avg_delay_s"], rel=1e-9)
    assert ours.safety_violations == 0 and ours.complete


def test_illegal_wishes_are_refused_and_monitor_stays_zero(single):
    rec = run_scenario(single, Chaos(), seed=1, end=END)
    assert rec.refused_requests > 500          # the actuator said no, often
    assert rec.switches > 50                   # and yes when it was legal
    assert rec.safety_violations == 0, rec.violation_kinds
    assert rec.decisions == END                # one wish per second, one intersection


@pytest.mark.parametrize("name", ["fixed", "webster", "actuated", "max-pressure", "greedy"])
def test_every_classic_controller_runs_safely(single, name):
    rec = run_scenario(single, name, seed=1, end=END)
    assert rec.safety_violations == 0, rec.violation_kinds
    assert rec.complete and rec.error is None
    assert rec.sim_s == END and rec.vehicles > 200 and rec.throughput > 150
    assert 0 < rec.avg_delay_s < 120
    assert rec.decisions == (0 if name in ("fixed", "actuated") else END / (1 if name == "webster" else 10))
    assert rec.gridlocks == []


def test_adaptive_control_beats_fixed_time_on_the_hour(single):
    fixed = run_scenario(single, "fixed", seed=1)
    mp = run_scenario(single, "max-pressure", seed=1)
    assert mp.avg_delay_s < 0.8 * fixed.avg_delay_s


class KillSumo(Controller):
    """Ends SUMO under the loop's feet at t=300, as a crash would."""

    name = "kill-sumo"

    def decide(self, readings, status):
        if readings.time >= 300:
            import libsumo

            libsumo.close()
        return status.phase


def test_sumo_dying_mid_run_keeps_partial_results(single, tmp_path):
    rec = run_scenario(single, KillSumo(), seed=1, out_dir=tmp_path)
    assert rec.error is not None and "SUMO died at t=300" in rec.error
    assert not rec.complete
    assert 250 <= rec.sim_s <= 310
    assert rec.vehicles > 50   # the trips SUMO wrote before dying are measured
    assert (tmp_path / "tripinfo.xml").exists()


def test_resco_fixed_time_reproduces_plain_sumo(resco):
    s = load_scenario(resco / "ingolstadt1")
    rec = run_scenario(s, "fixed", seed=1)
    assert rec.avg_delay_s == pytest.approx(plain_sumo_record(s, seed=1)["avg_delay_s"], rel=1e-9)
    # the published SUMO 1.28 range for seeds 1-3 is 28.2-30.5 s; the issue asks for 3%
    assert 28.2 * 0.97 <= rec.avg_delay_s <= 30.5 * 1.03


def test_traci_path_gives_the_libsumo_result(single):
    """--gui runs over TraCI: the same loop over TraCI (plain sumo binary) must agree exactly."""
    a = run_scenario(single, "max-pressure", seed=2, end=600.0)
    b = run_scenario(single, "max-pressure", seed=2, end=600.0, use_traci=True)
    assert (b.avg_delay_s, b.vehicles, b.switches) == (a.avg_delay_s, a.vehicles, a.switches)
    assert b.safety_violations == 0


def test_a_signal_nobody_crosses_is_reported_as_gridlocked(single):
    """From t = 300 s on, every vehicle on the signal's approach edges is held still: after the
    watch's 300 s the record names the signal and when it stopped; the run goes on to its end."""
    seen: dict = {}

    def hold_approaches(b):
        ts = b.ts
        if not seen:
            seen["tls"] = list(ts.trafficlight.getIDList())
            seen["edges"] = {ts.lane.getEdgeID(ln) for t in seen["tls"] for ln in ts.trafficlight.getControlledLanes(t)}
        if b.time < 300.0:
            return
        seen.setdefault("t0", b.time)
        for v in ts.vehicle.getIDList():
            if ts.vehicle.getRoadID(v) in seen["edges"]:
                ts.vehicle.setSpeed(v, 0.0)

    rec = run_scenario(single, "max-pressure", seed=1, end=800.0, on_step=hold_approaches)
    assert rec.complete and rec.sim_s == 800.0 and rec.safety_violations == 0
    [g] = rec.gridlocks
    assert [g["tls"]] == seen["tls"]
    assert seen["t0"] - 20.0 <= g["since_s"] <= seen["t0"] + 60.0  # the last vehicles across, just after t0
    assert g["seen_s"] == pytest.approx(g["since_s"] + 300.0, abs=10.0)  # flagged at the first check after 300 s
