"""Pedestrian crossings: the actuator times walk and clearance, the monitor judges them, the
generator makes a scenario with crosswalks, and every controller runs it without a breach."""

import json
import math

import numpy as np
import pytest

from brain.controllers.webster import Webster
from brain.model import GreenPhase, Intersection, Network
from brain.timing import Crosswalks, Timing
from sim.program import ProgramPhase, green_phases, merge_walk_phases
from sim.safety import Conflicts, SafetyMonitor, SafetyRules
from sim.signal import SignalMachine

# two vehicle phases; link 4 is a 12 m crosswalk beside phase 0's movements (10 s clearance at 1.2 m/s)
PHASES = (GreenPhase(0, "GGrrG"), GreenPhase(1, "rrGGr"))
CROSS = ((4, 12.0),)
TIMING = Timing(yellow=3.0, all_red=1.0, min_green=5.0, walk=7.0, ped_speed=1.2)
RULES = SafetyRules(min_green=5.0, min_yellow=3.0, all_red=1.0, walk=7.0, ped_speed=1.2)
# what SUMO's matrices would say: phase 0's links cross phase 1's, and the crosswalk crosses phase 1's
CONF = Conflicts.of_pairs(5, foes=[(0, 2), (0, 3), (1, 2), (1, 3), (4, 2), (4, 3)], crossings={4: 12.0})


def monitor(rules=RULES, conf=CONF):
    return SafetyMonitor({"J": rules}, {"J": conf})


def drive(machine, requests, until):
    """Tick every 0.5 s, asking for ``requests[t]`` at time t; the (time, state) changes."""
    shown, last = [], None
    t = 0.0
    while t <= until:
        if t in requests:
            machine.request(t, requests[t])
        s = machine.tick(t)
        if s != last:
            shown.append((t, s))
            last = s
        t += 0.5
    return shown


def test_walk_then_clearance_before_any_conflicting_green():
    m = SignalMachine(PHASES, TIMING, now=0.0, all_red=1.0, crossings=CROSS)
    assert not m.request(5.0, 1)  # vehicle minimum served, the walk (7 s) not yet
    shown = drive(m, {5.0: 1, 7.0: 1}, 30.0)
    # don't walk at once with the vehicles still green, for 10 - 3 - 1 = 6 s; then yellow, all-red
    assert shown == [(0.0, "GGrrG"), (7.0, "GGrrr"), (13.0, "yyrrr"), (16.0, "rrrrr"), (17.0, "rrGGr")]
    assert m.refused == 2  # both asks at 5 s
    mon = monitor()
    for t, s in shown:
        mon.observe(t, "J", s)
    assert mon.violations == 0, mon.kept


def test_clearance_covered_by_yellow_and_all_red_adds_no_hold():
    short = ((4, 4.0),)  # 3.3 s clearance: yellow + all-red cover it
    m = SignalMachine(PHASES, TIMING, now=0.0, all_red=1.0, crossings=short)
    shown = drive(m, {7.0: 1}, 20.0)
    assert shown[:2] == [(0.0, "GGrrG"), (7.0, "yyrrr")]  # the crossing never shows yellow


def test_max_green_also_times_the_pedestrian_clearance():
    m = SignalMachine(PHASES, Timing(yellow=3.0, all_red=1.0, max_green=20.0), now=0.0, all_red=1.0, crossings=CROSS)
    shown = drive(m, {}, 40.0)
    assert shown[1] == (20.0, "GGrrr") and shown[2] == (26.0, "yyrrr")
    assert m.max_outs == 1


@pytest.mark.parametrize("states,kind,count", [
    # the actuator without pedestrian rules: walk ended with the vehicles' minimum (5 s) ...
    ([(0, "rrrrr"), (1, "GGrrG"), (6, "yyrry"), (9, "rrrrr"), (10, "rrGGr")], "walk-below-minimum", 1),
    # ... and the crossing's yellow + all-red (4 s) as its clearance, before links 2 and 3 go green
    ([(0, "GGrrG"), (7, "yyrry"), (10, "rrrrr"), (11, "rrGGr")], "ped-clearance-below-minimum", 2),
    ([(0, "GGrrG"), (7, "GGrrr"), (13, "yyrrr"), (16, "rrrrr"), (16.5, "rrGGr")], "ped-clearance-below-minimum", 2),
])
def test_monitor_flags_pedestrian_breaches(states, kind, count):
    mon = monitor()
    for t, s in states:
        mon.observe(float(t), "J", s)
    assert mon.counts[kind] == count, mon.kept
    assert mon.counts["no-yellow-before-red"] == 0  # a crosswalk's walk may end straight into don't walk


def test_program_with_crossings_merges_the_clearance_phase():
    # netconvert's program for a 4-arm junction with four crosswalks (links 16-19)
    states = ["gGGgrrrrgGGgrrrrrGrG", "gGGgrrrrgGGgrrrrrrrr", "yyygrrrryyygrrrrrrrr", "rrrGrrrrrrrGrrrrrrrr",
              "rrryrrrrrrryrrrrrrrr", "rrrrgGGgrrrrgGGgGrGr", "rrrrgGGgrrrrgGGgrrrr", "rrrryyygrrrryyygrrrr",
              "rrrrrrrGrrrrrrrGrrrr", "rrrrrrryrrrrrrryrrrr"]
    durations = [28, 5, 3, 6, 3, 28, 5, 3, 6, 3]
    prog = [ProgramPhase(s, d, d) for s, d in zip(states, durations)]
    merged = merge_walk_phases(green_phases(prog), {16, 17, 18, 19})
    assert [g.program_index for g in merged] == [0, 3, 5, 8]
    assert merged[0].state == states[0] and merged[0].duration == 33
    assert merged[2].state == states[5] and merged[2].duration == 33


@pytest.fixture(scope="module")
def crosswalk_runs():
    from sim.loop import run_scenario
    from sim.scenario import load_scenario

    sc = load_scenario("crosswalk")
    names = ("fixed", "plan", "webster", "actuated", "max-pressure", "greedy", "mpc", "mpc+priority")
    return {c: run_scenario(sc, c, seed=1, end=1200.0) for c in names}


def test_every_controller_serves_pedestrians_without_a_breach(crosswalk_runs):
    for name, r in crosswalk_runs.items():
        assert r.safety_violations == 0, (name, r.violation_kinds)
        assert r.ped_trips > 100 and math.isfinite(r.ped_avg_delay_s), name
        assert r.vehicles > 300 and r.avg_delay_s < 60, name
    assert crosswalk_runs["mpc"].switches > 10


def test_crosswalk_network_and_its_timing_findings(tmp_path):
    from citybrain.cli import main
    from sim.backend import SumoBackend
    from sim.scenario import load_scenario

    with SumoBackend(load_scenario("crosswalk")) as b:
        net, _ = b.network()
        (x,) = net.intersections
        assert [i for i, _ in x.crossings] == [16, 17, 18, 19]
        assert all(12.0 <= length <= 20.0 for _, length in x.crossings)
        assert all(x.links[i] == (-1, -1) for i, _ in x.crossings)  # no vehicle lanes for walkers
        assert x.n_phases == 4
    out = tmp_path / "found.json"
    # the 11 s pedestrian phase + yellow before the protected left turns across the crosswalk leave
    # 14 s: enough at 1.2 m/s, not at 0.9 (each protected left crosses one crosswalk, SUMO's
    # matrices say: one finding per walk)
    assert main(["check-timing", "--scenario", "crosswalk", "--ped-speed", "0.9", "--json", str(out)]) == 4
    found = [f for f in json.loads(out.read_text()) if f["rule"] == "ped-clearance-below-minimum"]
    assert len(found) == 2 and {f["phases"][1] for f in found} == {3, 8}
    main(["check-timing", "--scenario", "crosswalk", "--json", str(out)])
    assert not any("ped" in f["rule"] or "walk" in f["rule"] for f in json.loads(out.read_text()))
    assert main(["check-timing", "--scenario", "crosswalk", "--ped-speed", "0"]) == 2  # one line, no traceback


def test_holds_come_where_a_conflicting_green_would_come_too_soon():
    cross = Crosswalks([p.state for p in PHASES], CROSS, TIMING)
    assert cross.conflicts == {4: frozenset({2, 3})}
    # asked at 7 s, the walk ends; phase 1's links conflict: 10 - 3 - 1 = 6 s hold; back to phase 0: none
    starts, cycle = cross.cycle([7.0, 5.0], lost=4.0)
    assert starts == pytest.approx([0.0, 17.0]) and cycle == pytest.approx(26.0)


def test_a_switch_to_a_phase_without_conflicts_carries_the_clearance_over():
    # phase 1 keeps link 1 (green beside the walk) alone: no hold there, but the switch after it
    # to the conflicting phase 2 waits until the crossing's 10 s are up
    phases = (GreenPhase(0, "GGrrG"), GreenPhase(1, "rGrrr"), GreenPhase(2, "rrGGr"))
    t = Timing(yellow=3.0, all_red=1.0, min_green=1.0, walk=7.0, ped_speed=1.2)
    m = SignalMachine(phases, t, now=0.0, all_red=1.0, crossings=CROSS)
    shown = drive(m, {7.0: 1, 12.0: 2}, 30.0)
    # asked at 12 s, phase 1 holds 1 s more (12 + 1 + 3 + 1 = 17 = the walk's end at 7 s + 10 s)
    assert shown == [(0.0, "GGrrG"), (7.0, "yGrrr"), (10.0, "rGrrr"), (13.0, "ryrrr"), (16.0, "rrrrr"),
                     (17.0, "rrGGr")]
    mon = monitor(SafetyRules(min_green=1.0, min_yellow=3.0, all_red=1.0, walk=7.0))
    for when, state in shown:
        mon.observe(when, "J", state)
    assert mon.violations == 0, mon.kept


def test_maximum_green_waits_for_the_walk():
    t = Timing(yellow=3.0, all_red=1.0, min_green=5.0, max_green=6.0, walk=7.0)
    m = SignalMachine(PHASES, t, now=0.0, all_red=1.0, crossings=CROSS)
    shown = drive(m, {}, 10.0)
    assert shown[1][0] == 7.0 and m.max_outs == 1


def test_webster_asks_early_by_the_hold_and_never_before_the_walk():
    x = Intersection("J", PHASES, ((0, 4), (1, 5), (2, 6), (3, 7), (-1, -1)), (0, 1, 2, 3), (4, 5, 6, 7), 3.0, 1.0,
                     crossings=CROSS)
    t = Timing(yellow=3.0, all_red=1.0, min_green=5.0)
    assert t.phase_min_greens(x) == pytest.approx([7.0, 5.0])  # when a switch may be asked
    assert t.ped_min_greens(x) == pytest.approx([7.0 + 10.0 - 4.0, 5.0])  # the green pedestrians need
    w = Webster()
    w.reset(Network((x,), tuple(f"l{i}" for i in range(8)), np.full(8, 100.0), np.full(8, 13.9)), t)
    assert w.plan(0)[0] >= 7.0 and w.plan(0)[1] >= 5.0  # asks; the greens behind them are >= 13 s and 5 s
    assert w._asks(0, np.array([13.0, 5.0])) == pytest.approx([7.0, 5.0])  # 7 s + the 6 s hold = 13 s of green


def test_plan_runs_the_crosswalk_program_without_refusals():
    from sim.loop import run_scenario
    from sim.scenario import load_scenario

    r = run_scenario(load_scenario("crosswalk"), "plan", end=900.0)
    assert r.safety_violations == 0 and r.refused_requests == 0 and r.switches > 30


def test_a_link_that_yields_beside_the_walk_waits_for_the_clearance_to_gain_priority():
    """Link 1 is permissive (``g``) beside crosswalk 4's walk and protected (``G``) in phase 1: the
    walkers still crossing would not get the way, so the actuator holds it and the monitor would
    flag it."""
    phases = (GreenPhase(0, "GgrrG"), GreenPhase(1, "rGrrr"))
    cross = Crosswalks([p.state for p in phases], CROSS, TIMING)
    assert cross.conflicts == {4: frozenset()} and cross.protected == {4: frozenset({1})}
    shown = drive(SignalMachine(phases, TIMING, 0.0, crossings=CROSS), {10.0: 1}, 30.0)
    gains = next(t for t, s in shown if s[1] == "G")
    assert gains >= 10.0 + 10.0  # the 12 m crossing's 10 s clearance from the walk's end at 10 s
    # SUMO's matrices: link 1 crosses the crosswalk and gives way to it
    mon = monitor(conf=Conflicts.of_pairs(5, foes=[(1, 4)], yields=[(1, 4)], crossings={4: 12.0}))
    for t, s in shown:
        mon.observe(t, "J", s)
    assert mon.violations == 0, mon.kept
    mon = monitor(conf=Conflicts.of_pairs(5, foes=[(1, 4)], yields=[(1, 4)], crossings={4: 12.0}))
    for t, s in [(0.0, "GgrrG"), (10.0, "Ggrrr"), (12.0, "yGrrr")]:  # priority 2 s after the walk ended
        mon.observe(t, "J", s)
    assert mon.counts["ped-clearance-below-minimum"] == 1
