"""The ``mpc`` controller on hand-made intersections, the network compilation and the estimator."""

from __future__ import annotations

import numpy as np
import pytest

from brain.controllers import make
from brain.controllers.mpc import Mpc, MpcConfig
from brain.estimate import LaneEstimator
from brain.graph import PERMISSIVE_SHARE, build_graph, compile_network
from brain.model import GreenPhase, Intersection, Network, Readings, SignalStatus
from brain.timing import Timing
from sim.signal import SignalMachine
from tests.test_controllers import NET, readings, status


def _mpc(net=NET, timing=None, **cfg):
    c = Mpc(MpcConfig(**cfg))
    c.reset(net, timing or Timing())
    return c


def test_registered_under_its_cli_name():
    assert isinstance(make("mpc"), Mpc)


def test_serves_a_lone_waiting_vehicle():
    c = _mpc()
    veh = [0, 0, 1, 0, 0, 0, 0, 0]  # one vehicle halted east, nothing else anywhere
    assert int(c.decide(readings(veh), status(0, 20.0))[0]) == 1


def test_keeps_green_while_its_queue_discharges_and_nobody_waits_elsewhere():
    c = _mpc()
    assert int(c.decide(readings([6, 4, 0, 0, 0, 0, 0, 0]), status(0, 8.0))[0]) == 0


def test_switches_to_the_larger_queue_once_its_own_is_gone():
    c = _mpc()
    assert int(c.decide(readings([0, 1, 8, 7, 0, 0, 0, 0]), status(0, 20.0))[0]) == 1


def test_never_ends_a_green_before_minimum():
    c = _mpc()
    assert int(c.decide(readings([0, 0, 9, 9, 0, 0, 0, 0]), status(0, 2.0))[0]) == 0


def test_no_approach_waits_beyond_max_green():
    """A saturated main street and one car on the side street: the side gets green in time."""
    timing = Timing(max_green=60.0)
    c = _mpc(timing=timing)
    m = SignalMachine(NET.intersections[0].phases, timing, now=0.0)
    halt = np.array([40.0, 40.0, 1.0, 0.0, 0, 0, 0, 0])
    served_side = None
    t = 0.0
    while t < 200.0:
        st = SignalStatus(np.array([m.phase]), np.array([m.green_time(t)]), np.array([m.in_transition]))
        m.request(t, int(c.decide(Readings(t, halt + 2.0, halt, np.zeros(8), np.zeros(8)), st)[0]))
        state = m.tick(t)
        if state == "rrGG":
            served_side = t
            break
        t += c.interval
    assert served_side is not None
    assert served_side <= timing.max_green + 3.0 + c.interval  # waited at most max green plus the yellow
    assert m.max_outs == 0  # the optimiser switched by itself: the actuator's max-out was not needed


def test_config_rejects_unknown_and_bad_values():
    with pytest.raises(ValueError, match="unknown mpc key"):
        MpcConfig.from_mapping({"horizon": 60, "speed": 3})
    with pytest.raises(ValueError):
        MpcConfig(dt=0)
    assert MpcConfig.from_mapping({"depth": 3}).depth == 3


# two intersections in a row: A's eastbound exit (lane 2) is B's west approach
A = Intersection("A", (GreenPhase(0, "Gr"), GreenPhase(1, "rg")), ((0, 2), (1, 3)), (0, 1), (2, 3), 3.0, 0.0)
B = Intersection("B", (GreenPhase(0, "Gr"), GreenPhase(1, "rG")), ((2, 4), (5, 6)), (2, 5), (4, 6), 3.0, 1.0)
ROW = Network((A, B), tuple(f"l{i}" for i in range(7)), np.full(7, 150.0), np.full(7, 10.0), ((2, 2, 150.0),))


def test_graph_links_neighbours_with_travel_time():
    g = build_graph(ROW)
    assert list(g.edges) == [(0, 1)]
    e = g.edges[0, 1]
    assert e["lanes"] == [(2, 2, 150.0)]
    assert e["travel_s"] == pytest.approx(15.0)


def test_compiled_arrays_index_slots_phases_and_routes():
    c = compile_network(ROW, yellow=3.0, all_red=None)
    assert c.slot_ptr.tolist() == [0, 2, 4]
    assert c.slot_lane.tolist() == [0, 1, 2, 5]
    # A: phase 0 serves slot 0 fully, phase 1 serves slot 1 permissively
    assert c.serve[0:4].tolist() == [1.0, 0.0, 0.0, PERMISSIVE_SHARE]
    assert c.lost_s.tolist() == [3.0, 4.0]  # B keeps its own 1 s all-red
    # slot 0 (A's lane 0) leaves on lane 2, which is B's slot 2, 15 s later
    assert c.route_ptr.tolist() == [0, 1, 1, 1, 1]
    assert c.route_to.tolist() == [2]
    assert c.route_delay_s.tolist() == [15.0]


def test_coordination_predicts_the_upstream_platoon():
    c = _mpc(ROW, coordinate=True)
    r = Readings(0.0, np.zeros(7), np.zeros(7), np.zeros(7), np.zeros(7))
    st = SignalStatus(np.array([0, 0]), np.array([30.0, 30.0]), np.array([False, False]))
    c.decide(r, st)
    # ten vehicles queue at A's green approach; B's approach sees them coming about 15 s later
    halt = np.array([10.0, 0, 0, 0, 0, 0, 0])
    counts = np.array([10.0, 0, 0, 0, 0, 0, 0])
    r = Readings(20.0, halt, halt, counts, counts)
    st = SignalStatus(np.array([0, 0]), np.array([50.0, 50.0]), np.array([False, False]))
    c.decide(r, st)
    c.decide(Readings(22.0, halt, halt, counts, counts), st)
    H = c.H
    b_slot_col = 0  # B's slot for lane 2 is its first
    arr_b = c.arr[2 * H:].reshape(H, 2)[:, b_slot_col]
    lag = int(round(15.0 / c.config.dt))
    assert arr_b[lag - 1:lag + 4].sum() > 2.0  # the platoon arrives
    assert arr_b[: lag - 2].sum() < 0.5  # and not before its travel time


def test_estimator_rate_follows_counts():
    est = LaneEstimator(1, halflife_s=10.0)
    z = np.zeros(1)
    est.update(Readings(0.0, z, z, z, z))
    for k in range(1, 200):
        est.update(Readings(float(k), z, z, np.array([0.5 * k]), z))
    assert est.rate[0] == pytest.approx(0.5, rel=0.05)
    with pytest.raises(ValueError, match="back in time"):
        est.update(Readings(1.0, z, z, z, z))


def test_options_reach_the_optimiser_and_typos_are_refused():
    assert make("mpc", {"depth": "2", "coordinate": "yes", "max_wait": "none"}).config.depth == 2
    assert make("mpc", {"coordinate": "on"}).config.coordinate is True
    with pytest.raises(ValueError, match="expected int"):
        make("mpc", {"depth": "two"})
    with pytest.raises(ValueError, match="takes no options"):
        make("greedy", {"depth": "2"})


def test_a_stalled_signal_follows_its_own_program_for_a_while_and_says_so():
    """Queues stand on the green lanes and nobody crosses (a blocked junction): after ``stall_s``
    the signal steps on, then keeps its program's 30 s greens in program order for ``fallback_s``,
    and the record gets one intervention for it."""
    timing = Timing()
    c = _mpc(timing=timing, stall_s=20.0, fallback_s=100.0)
    m = SignalMachine(NET.intersections[0].phases, timing, now=0.0)
    halt = np.array([6.0, 6.0, 1.0, 0.0, 0, 0, 0, 0])  # one car east: the optimiser alone would go back at once
    greens, t = [], 0.0
    while t < 160.0:
        st = SignalStatus(np.array([m.phase]), np.array([m.green_time(t)]), np.array([m.in_transition]))
        m.request(t, int(c.decide(Readings(t, halt, halt, np.zeros(8), np.zeros(8)), st)[0]))
        state = m.tick(t)
        if not greens or greens[-1][1] != state:
            greens.append((t, state))
        t += c.interval
    act = c.interventions[0]
    # one per fallback: a stall that persists after it ended is a new intervention
    assert all(b["time_s"] >= a["time_s"] + 100.0 for a, b in zip(c.interventions, c.interventions[1:]))
    assert act["tls"] == "J" and act["kind"] == "program-fallback" and 20.0 <= act["time_s"] <= 24.0
    starts = [t0 for t0, s in greens if s in ("GGrr", "rrGG")]
    shown = [s for _, s in greens if s in ("GGrr", "rrGG")]
    assert shown[:3] == ["GGrr", "rrGG", "GGrr"]
    # the program's 30 s green for the east-west phase, not the optimiser's choice, while falling back
    assert 30.0 <= starts[2] - starts[1] - 3.0 <= 30.0 + c.interval + 3.0


def test_without_a_fallback_a_stall_only_steps_on():
    c = _mpc(stall_s=20.0, fallback_s=0.0)
    halt = np.array([6.0, 6.0, 1.0, 1.0, 0, 0, 0, 0])
    for t in np.arange(0.0, 40.0, 2.0):
        c.decide(Readings(float(t), halt, halt, np.zeros(8), np.zeros(8)), status(0, 10.0 + t))
    assert c.interventions == []


def test_the_link_between_two_nodes_of_one_clustered_signal_is_no_spillback_exit():
    """West approach (lane 0) -> a 19 m link inside the cluster (lane 1) -> east exit (lane 2), one
    signal over both nodes; a side street 3 -> 4. Two vehicles on the short inner link do not stop
    the west approach from discharging in the model, as a full exit would."""
    x = Intersection("C", (GreenPhase(0, "GGr", 30), GreenPhase(2, "rrG", 30)), ((0, 1), (1, 2), (3, 4)),
                     (0, 1, 3), (1, 2, 4), 3.0, 0.0)
    lengths = np.array([150.0, 19.0, 150.0, 150.0, 150.0])
    net = Network((x,), tuple(f"l{i}" for i in range(5)), lengths, np.full(5, 13.9))
    c = _mpc(net=net)
    veh = np.array([5.0, 2.0, 0.0, 1.0, 0.0])
    c.decide(Readings(0.0, veh, np.array([5.0, 0.0, 0.0, 1.0, 0.0]), np.zeros(5), np.zeros(5)), status(0, 10.0))
    west = int(np.flatnonzero(c.net.slot_lane == 0)[0])
    assert c._room_s[west] == pytest.approx(1.0)
    # the same lanes as two separate signals: the short link is a real exit, nearly full
    y = Intersection("W", (GreenPhase(0, "Gr", 30), GreenPhase(2, "rG", 30)), ((0, 1), (3, 4)), (0, 3), (1, 4), 3.0, 0.0)
    c2 = _mpc(net=Network((y,), net.lanes, lengths, net.lane_speed))
    c2.decide(Readings(0.0, veh, np.array([5.0, 0.0, 0.0, 1.0, 0.0]), np.zeros(5), np.zeros(5)), status(0, 10.0))
    assert c2._room_s[int(np.flatnonzero(c2.net.slot_lane == 0)[0])] < 0.5


def test_the_horizon_covers_twice_the_longest_switch():
    x = Intersection("B", (GreenPhase(0, "Gr", 30), GreenPhase(2, "rG", 30)), ((0, 2), (1, 3)), (0, 1), (2, 3),
                     100.0, 0.0)
    net = Network((x,), tuple(f"l{i}" for i in range(4)), np.full(4, 150.0), np.full(4, 13.9))
    c = _mpc(net=net)
    assert c.horizon_s == pytest.approx(2 * (100.0 + MpcConfig().startup + Timing().min_green)) and c.H * c.config.dt >= c.horizon_s
    assert _mpc().horizon_s == MpcConfig().horizon  # a 3 s yellow keeps the configured 60 s


def test_learning_runs_on_signals_with_different_numbers_of_phases():
    """Two signals, two and three phases: the learned saturation flow moves only on a protected
    lane that discharges a standing queue with room downstream."""
    a = Intersection("A", (GreenPhase(0, "Gr", 30), GreenPhase(2, "rG", 30)), ((0, 2), (1, 3)), (0, 1), (2, 3), 3.0, 0.0)
    b = Intersection("B", (GreenPhase(0, "Grr", 30), GreenPhase(2, "rGr", 30), GreenPhase(4, "rrg", 30)),
                     ((4, 7), (5, 8), (6, 9)), (4, 5, 6), (7, 8, 9), 3.0, 0.0)
    net = Network((a, b), tuple(f"l{i}" for i in range(10)), np.full(10, 200.0), np.full(10, 13.9))
    c = _mpc(net=net, learn_sat=True)
    halt = np.array([8.0, 0, 0, 0, 0, 0, 8.0, 0, 0, 0])
    dep = np.zeros(10)
    for k in range(80):
        t = 2.0 * k
        dep[0] += 2.0  # lane 0 (protected, served) discharges 1 veh/s; lane 6 is permissive
        dep[6] += 2.0
        st = SignalStatus(np.array([0, 2]), np.array([10.0 + t, 10.0 + t]), np.array([False, False]))
        c.decide(Readings(t, halt, halt, np.zeros(10), dep.copy()), st)
    s0 = int(np.flatnonzero(c.net.slot_lane == 0)[0])
    s6 = int(np.flatnonzero(c.net.slot_lane == 6)[0])
    assert c.sat[s0] > MpcConfig().sat_flow + 0.05
    assert c.sat[s6] == pytest.approx(MpcConfig().sat_flow)


def _learn(c, net, served_dep, halt, steps=40, age0=10.0):
    """Drive ``c`` with phase 0 green throughout; ``served_dep`` vehicles per second cross each lane."""
    n = len(net.lanes)
    dep = np.zeros(n)
    for k in range(steps):
        t = 2.0 * k
        dep += 2.0 * served_dep
        st = SignalStatus(np.zeros(len(net.intersections), dtype=np.int64),
                          np.full(len(net.intersections), age0 + t), np.zeros(len(net.intersections), dtype=bool))
        c.decide(Readings(t, halt, halt, np.zeros(n), dep.copy()), st)


def test_a_signal_learns_one_saturation_flow_and_leaves_a_held_back_lane_out():
    """Two protected lanes on the green: one discharges 0.5 veh/s, the other 0.1 (held back by
    something else). The signal's flow is its best-measured lane's, and every lane gets it."""
    x = Intersection("A", (GreenPhase(0, "GGr", 30), GreenPhase(2, "rrG", 30)), ((0, 3), (1, 4), (2, 5)),
                     (0, 1, 2), (3, 4, 5), 3.0, 0.0)
    net = Network((x,), tuple(f"l{i}" for i in range(6)), np.full(6, 200.0), np.full(6, 13.9))
    c = _mpc(net=net, learn_sat=True)
    _learn(c, net, np.array([0.5, 0.1, 0, 0, 0, 0]), np.array([8.0, 8.0, 0, 0, 0, 0]), steps=120)
    assert np.ptp(c.sat) == 0.0
    assert 0.5 <= c.sat[0] <= 0.58  # the prior (0.8, worth 60 lane-seconds) still weighs a little
    lane = _mpc(net=net, learn_sat=True, sat_scope="lane")
    _learn(lane, net, np.array([0.5, 0.1, 0, 0, 0, 0]), np.array([8.0, 8.0, 0, 0, 0, 0]), steps=120)
    s1 = int(np.flatnonzero(lane.net.slot_lane == 1)[0])
    assert lane.sat[s1] == pytest.approx(0.35)  # each lane its own, bounded below


def test_no_flow_is_learned_from_a_lane_feeding_a_link_inside_its_signal_nor_in_the_start_up():
    x = Intersection("C", (GreenPhase(0, "GGr", 30), GreenPhase(2, "rrG", 30)), ((0, 1), (1, 2), (3, 4)),
                     (0, 1, 3), (1, 2, 4), 3.0, 0.0)
    net = Network((x,), tuple(f"l{i}" for i in range(5)), np.array([150.0, 19.0, 150.0, 150.0, 150.0]),
                  np.full(5, 13.9))
    c = _mpc(net=net, learn_sat=True)
    # lane 0 crawls into the 19 m link (lane 1 waits on its own stop line); lane 1 is the one to learn from
    _learn(c, net, np.array([0.1, 0.0, 0, 0, 0]), np.array([8.0, 0.0, 0, 0, 0]))
    assert c.sat[0] == pytest.approx(MpcConfig().sat_flow)
    # the first seconds of a green (age below the start-up lost time, plus the interval) teach nothing
    a = Intersection("A", (GreenPhase(0, "Gr", 30), GreenPhase(2, "rG", 30)), ((0, 2), (1, 3)), (0, 1), (2, 3), 3.0, 0.0)
    net2 = Network((a,), tuple(f"l{i}" for i in range(4)), np.full(4, 200.0), np.full(4, 13.9))
    c2 = _mpc(net=net2, learn_sat=True)
    _learn(c2, net2, np.array([0.0, 0, 0, 0]), np.array([8.0, 0, 0, 0]), steps=2, age0=0.0)
    assert c2.sat[0] == pytest.approx(MpcConfig().sat_flow)


def test_a_left_turn_served_only_permissively_gets_its_protected_phase_in_time():
    """A busy through lane (phase 0) and a left turn that phase 0 lets go only permissively (``g``),
    with a protected phase of its own (phase 1): a queued left turn that finds no gap gets its
    protected phase within ``permissive_wait``, not only at ``max_wait``; one that moves does not."""
    x = Intersection("L", (GreenPhase(0, "Gg", 30), GreenPhase(2, "rG", 6)), ((0, 2), (1, 3)), (0, 1), (2, 3),
                     3.0, 0.0)
    net = Network((x,), tuple(f"l{i}" for i in range(4)), np.full(4, 200.0), np.full(4, 13.9))
    timing = Timing()

    def protected_at(left_moves=False, **cfg):
        c = _mpc(net=net, timing=timing, **cfg)
        m = SignalMachine(x.phases, timing, now=0.0)
        halt = np.array([150.0, 1.0, 0.0, 0.0])
        veh = halt + np.array([20.0, 0.0, 0.0, 0.0])  # and more on their way to the through lane
        t = 0.0
        while t < 200.0:
            st = SignalStatus(np.array([m.phase]), np.array([m.green_time(t)]), np.array([m.in_transition]))
            dep = np.array([0.5 * t, 0.2 * t if left_moves else 0.0, 0.0, 0.0])  # through discharges: no stall
            m.request(t, int(c.decide(Readings(t, veh, halt, dep, dep), st)[0]))
            if m.tick(t) == "rG":
                return t
            t += c.interval
        return None

    assert MpcConfig().permissive_wait == 60.0
    early = protected_at()
    assert early is not None and early <= 60.0 + 3.0 + 2.0
    late = protected_at(permissive_wait=timing.max_green)
    assert late is not None and late > 100.0
    moving = protected_at(left_moves=True)
    assert moving is None or moving > 100.0


def test_wait_cycle_lets_a_lane_wait_as_long_as_the_signals_own_program_cycle():
    """Four program greens of 100 s: with ``wait_cycle`` the longest wait is that program's cycle
    (greens and the timing rules' transitions), never below the maximum green; without, max green."""
    x = Intersection("W", tuple(GreenPhase(2 * k, "rrrr"[:k] + "G" + "rrrr"[k + 1:], 100) for k in range(4)),
                     ((0, 4), (1, 5), (2, 6), (3, 7)), (0, 1, 2, 3), (4, 5, 6, 7), 3.0, 1.0)
    net = Network((x,), tuple(f"l{i}" for i in range(8)), np.full(8, 300.0), np.full(8, 13.9))
    timing = Timing()
    assert _mpc(net=net, timing=timing, wait_cycle=False).max_wait.tolist() == [timing.max_green] * 4
    cyc = _mpc(net=net, timing=timing)
    assert cyc.config.wait_cycle
    assert cyc.max_wait.tolist() == pytest.approx([4 * 100.0 + 4 * 4.0] * 4)
    short = _mpc(timing=timing)  # NET's program cycle (2 x 30 s) is below max green
    assert short.max_wait.tolist() == [timing.max_green] * len(short.max_wait)
    assert short._permissive_wait.tolist() == [60.0] * len(short.max_wait)


def _two_signals(link_m: float) -> Network:
    """Signal A sends its west approach (lane 0) over link lane 1 into signal B (on to lane 2);
    side streets 3 -> 4 at A and 5 -> 6 at B."""
    a = Intersection("A", (GreenPhase(0, "Gr", 30), GreenPhase(2, "rG", 30)), ((0, 1), (3, 4)), (0, 3), (1, 4), 3.0, 0.0)
    b = Intersection("B", (GreenPhase(0, "Gr", 30), GreenPhase(2, "rG", 30)), ((1, 2), (5, 6)), (1, 5), (2, 6), 3.0, 0.0)
    lengths = np.array([150.0, link_m, 150.0, 150.0, 150.0, 150.0, 150.0])
    return Network((a, b), tuple(f"l{i}" for i in range(7)), lengths, np.full(7, 13.9))


@pytest.mark.parametrize("link_m, box, leaves", [(0.2, True, True), (0.2, False, False), (50.0, True, False)])
def test_a_queue_that_cannot_cross_into_a_link_that_stores_no_vehicle_gives_way(link_m, box, leaves):
    """A's west queue (5 vehicles, protected green) moves nobody: its exit, a 0.2 m link, leads
    straight into B, which holds it red, so the vehicle bound there stands in A's junction. With
    ``box`` A is planned to move nobody on that green within a few seconds and serves its side
    street (1 vehicle); with a 50 m link (a queue there would be an ordinary spillback the room
    model sees), or without ``box``, it holds the west green until the stall rule (20 s). (Decided
    apart: ``join`` off.)"""
    c = _mpc(net=_two_signals(link_m), box=box, join=False)
    halt = np.array([5.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0])
    wishes = []
    for t in np.arange(0.0, 12.0, 2.0):
        st = SignalStatus(np.array([0, 1]), np.array([10.0 + t, 10.0 + t]), np.zeros(2, dtype=bool))
        wishes.append(int(c.decide(Readings(float(t), halt, halt, np.zeros(7), np.zeros(7)), st)[0]))
    assert wishes[0] == 0
    assert (1 in wishes) == leaves
    assert c.interventions == []


def test_signals_joined_by_a_link_that_stores_no_vehicle_are_planned_as_one():
    """A and B joined by a 0.2 m link: one planned signal over every combination of their phases,
    the west movement into the link green in the model only where B lets it out; a wish for
    the combination (A west, B link) reaches both signals, and the pair's status maps back."""
    c = _mpc(net=_two_signals(0.2))
    assert [x.id for x in c.network.intersections] == ["A+B"]
    table = c.joined.phases[0]
    assert sorted(map(tuple, table.tolist())) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    states = {tuple(r): p.state for r, p in zip(table.tolist(), c.network.intersections[0].phases)}
    assert states[(0, 0)] == "GrGr" and states[(0, 1)] == "rrrG"  # into the link only with its exit green
    # the west queue waits, nobody else: serving west and the link out of it together is the plan
    halt = np.array([5.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    st = SignalStatus(np.array([1, 1]), np.array([20.0, 20.0]), np.zeros(2, dtype=bool))
    wish = c.decide(Readings(0.0, halt, halt, np.zeros(7), np.zeros(7)), st)
    assert wish.tolist() == [0, 0]
    assert c.joined.status(st).phase.tolist() == [int(np.flatnonzero((table == [1, 1]).all(axis=1))[0])]
    # apart, or with a link that stores vehicles, each signal is planned on its own
    assert len(_mpc(net=_two_signals(0.2), join=False).network.intersections) == 2
    assert len(_mpc(net=_two_signals(50.0)).network.intersections) == 2
