"""Controllers' choices on hand-made readings, and the Webster formulas against hand computation."""

import numpy as np
import pytest

from brain.controllers import make, names, register
from brain.controllers.base import Controller
from brain.controllers.webster import critical_lanes, webster_cycle, webster_greens
from brain.model import GreenPhase, Intersection, Network, Readings, SignalStatus
from brain.timing import Timing

# One intersection, lanes: 0 north-in, 1 south-in, 2 east-in, 3 west-in, 4..7 the outgoing ones.
# Links: 0: 0->5, 1: 1->4, 2: 2->7, 3: 3->6
X = Intersection("J", (GreenPhase(0, "GGrr", 30), GreenPhase(2, "rrGG", 30)),
                 ((0, 5), (1, 4), (2, 7), (3, 6)), (0, 1, 2, 3), (4, 5, 6, 7), 3.0, 0.0)
NET = Network((X,), tuple(f"l{i}" for i in range(8)), np.full(8, 100.0), np.full(8, 13.9))


def readings(veh, halt=None, t=0.0):
    veh = np.asarray(veh, dtype=float)
    halt = veh if halt is None else np.asarray(halt, dtype=float)
    return Readings(t, veh, halt, np.zeros(8), np.zeros(8))


def status(phase=0, green=20.0):
    return SignalStatus(np.array([phase]), np.array([green]), np.array([False]))


def decide(name, r, s=None):
    c = make(name)
    c.reset(NET, Timing())
    return int(c.decide(r, s or status())[0])


def test_registry_names_and_duplicates():
    assert set(names()) >= {"fixed", "webster", "actuated", "max-pressure", "greedy"}
    with pytest.raises(KeyError, match="unknown controller 'nope'"):
        make("nope")

    class Dup(Controller):
        name = "greedy"

        def decide(self, readings, status):
            return status.phase

    with pytest.raises(ValueError, match="already registered"):
        register(Dup)


@pytest.mark.parametrize("veh,expected", [
    ([1, 1, 6, 6, 0, 0, 0, 0], 1),      # east-west queues larger
    ([6, 6, 1, 1, 0, 0, 0, 0], 0),
    ([6, 6, 5, 5, 0, 0, 0, 0], 0),
])
def test_greedy_serves_longest_queue(veh, expected):
    assert decide("greedy", readings(veh)) == expected


def test_max_pressure_weighs_downstream_queues():
    # east-west holds more vehicles, but its exits are full: north-south has the larger pressure
    veh = [4, 4, 6, 6, 0, 0, 6, 6]
    assert decide("greedy", readings(veh)) == 1
    assert decide("max-pressure", readings(veh)) == 0


def test_ties_keep_the_current_phase():
    assert decide("max-pressure", readings([2, 2, 2, 2, 0, 0, 0, 0]), status(phase=1)) == 1
    assert decide("greedy", readings([0] * 8), status(phase=1)) == 1


def test_webster_cycle_hand_computed():
    # flows 500 and 300 veh/h, saturation 1600 veh/h, lost time 16 s: Y = 0.5, C0 = 29 / 0.5
    assert webster_cycle(np.array([500 / 1600, 300 / 1600]), 16.0) == pytest.approx(58.0)


def test_webster_greens_split_by_flow_ratio():
    g = webster_greens(np.array([0.3, 0.1]), cycle=60.0, lost_time=8.0, min_green=5.0)
    assert g == pytest.approx([39.0, 13.0])
    assert webster_greens(np.array([0.5, 0.0]), 60.0, 8.0, 5.0)[1] == 5.0


def test_webster_switches_when_planned_green_is_served():
    c = make("webster")
    c.reset(NET, Timing())
    plan = c.plan(0)
    assert c.decide(readings([0] * 8), status(0, plan[0] - 1))[0] == 0
    assert c.decide(readings([0] * 8), status(0, plan[0]))[0] == 1


def test_critical_lanes_do_not_count_a_lane_twice():
    # lane 0 carries through (link 0) and left (link 1): permissive in phase 0, protected in phase 1
    x = Intersection("K", (GreenPhase(0, "Ggrr", 30), GreenPhase(1, "rGrr", 6), GreenPhase(2, "rrGG", 30)),
                     ((0, 4), (0, 5), (1, 6), (1, 7)), (0, 1), (4, 5, 6, 7), 3.0, 0.0)
    lanes = critical_lanes(x)
    assert [list(v) for v in lanes] == [[0], [], [1]]


@pytest.mark.sumo
def test_plan_fallback_reproduces_the_scenarios_own_program():
    """``plan`` (the service's fallback) drives the actuator through the scenario's own timings."""
    from sim.loop import run_scenario
    from sim.scenario import load_scenario

    sc = load_scenario("single")
    own = run_scenario(sc, "fixed", end=900)
    plan = run_scenario(sc, "plan", end=900)
    assert plan.safety_violations == 0 and plan.switches > 20
    assert plan.avg_delay_s == pytest.approx(own.avg_delay_s, rel=0.02)


def _ev(links, t=0.0):
    z = np.zeros(8)
    return Readings(t, z, z, z, z, tuple(links))


def test_priority_preempts_for_an_approaching_emergency_vehicle_then_lets_go():
    c = make("max-pressure+priority")
    assert c.name == "max-pressure+priority"
    c.reset(NET, Timing())
    heavy_ns = readings([9, 9, 0, 0, 0, 0, 0, 0])  # max-pressure alone wants phase 0 (north-south)
    assert int(make_and_decide("max-pressure", heavy_ns)) == 0
    ev = Readings(0.0, heavy_ns.vehicles, heavy_ns.halting, heavy_ns.arrivals, heavy_ns.departures,
                  ((2, 7, 150.0),))  # an emergency vehicle from the east, 150 m out
    assert int(c.decide(ev, status())[0]) == 1  # its movement's phase, despite the queues elsewhere
    far = Readings(0.0, heavy_ns.vehicles, heavy_ns.halting, heavy_ns.arrivals, heavy_ns.departures,
                   ((2, 7, 900.0),))
    assert int(c.decide(far, status())[0]) == 0  # 43 s out with no queue ahead: normal control
    assert int(c.decide(heavy_ns, status())[0]) == 0  # passed: normal control again
    assert c.preemptions == 1


def test_priority_starts_early_enough_for_the_queue_ahead_to_clear():
    c = make("max-pressure+priority")
    c.reset(NET, Timing())
    ns = [9, 9, 0, 0, 0, 0, 0, 0]  # max-pressure alone keeps north-south
    ev = ((2, 7, 600.0),)  # from the east, 600 m out: about 29 s at 1.5x the limit
    empty = Readings(0.0, np.array(ns, float), np.array(ns, float), np.zeros(8), np.zeros(8), ev)
    assert int(c.decide(empty, status())[0]) == 0  # nothing ahead of it: not yet
    queued = [9, 9, 6, 0, 0, 0, 0, 0]  # six vehicles standing on its lane need about 12 s more
    r = Readings(0.0, np.array(queued, float), np.array(queued, float), np.zeros(8), np.zeros(8), ev)
    assert int(c.decide(r, status())[0]) == 1


def test_plan_keeps_its_cycle_and_falls_back_into_step():
    c = make("plan")
    c.reset(NET, Timing())  # two 30 s greens, 3 s yellow: a 66 s cycle from the first decision
    assert [int(c.scheduled(t)[0]) for t in (0, 29, 31, 40, 62, 64, 70)] == [0, 0, 1, 1, 1, 0, 0]
    # pushed off its cycle (held in phase 1 by a pre-emption): back to what the cycle says now
    assert int(c.decide(readings([0] * 8, t=70.0), status(phase=1, green=20.0))[0]) == 0
    assert int(c.decide(readings([0] * 8, t=100.0), status(phase=0, green=5.0))[0]) == 1


def test_priority_nearest_vehicle_wins_and_native_controllers_are_refused(capsys):
    c = make("greedy+priority")
    c.reset(NET, Timing())
    r = Readings(0.0, np.zeros(8), np.zeros(8), np.zeros(8), np.zeros(8), ((2, 7, 300.0), (0, 5, 80.0)))
    assert int(c.decide(r, status(phase=1))[0]) == 0
    from citybrain.cli import main

    assert main(["run", "--controller", "fixed+priority", "--end", "10"]) == 2
    assert "use plan+priority" in capsys.readouterr().err


def make_and_decide(name, r):
    c = make(name)
    c.reset(NET, Timing())
    return c.decide(r, status())[0]


@pytest.mark.sumo
def test_plan_keeps_within_a_maximum_green_shorter_than_the_programs():
    """``single``'s program holds its throughs 33 s; under a 20 s maximum green the plan asks for
    the next phase by itself instead of fighting the actuator's max-out."""
    from sim.loop import run_scenario
    from sim.scenario import load_scenario

    r = run_scenario(load_scenario("single"), "plan", timing=Timing(max_green=20.0), end=600.0)
    assert (r.refused_requests, r.max_outs, r.safety_violations) == (0, 0, 0) and r.switches > 30


@pytest.mark.sumo
def test_emergency_vehicles_reach_the_brain_and_priority_speeds_them_up(tmp_path):
    from scenarios.emergency import add_emergency
    from sim.loop import run_scenario
    from sim.scenario import load_scenario

    cfg = add_emergency("arterial", tmp_path, every_s=120.0)
    text = (cfg.parent / "arterial-ev.rou.xml").read_text()
    assert 'vClass="emergency"' in text and text.count("<vehicle ") >= 10
    sc = load_scenario(cfg)
    base = run_scenario(sc, "mpc", end=1500)
    prio = run_scenario(sc, "mpc+priority", end=1500)
    assert base.ev_trips == prio.ev_trips >= 8
    assert prio.ev_avg_delay_s < 0.7 * base.ev_avg_delay_s
    assert prio.safety_violations == 0
