"""The gridlock watch on hand-made counts (the SUMO case is in ``test_loop_sumo.py``)."""

import numpy as np

from sim.gridlock import GridlockWatch


def _watch():
    return GridlockWatch(["a", "b"], [[0, 1], [2]], after_s=300.0)


def test_flags_a_signal_whose_waiting_vehicles_never_cross():
    w = _watch()
    veh, dep = np.array([2, 0, 1]), np.array([10, 4, 7])
    for t in range(0, 300, 10):
        assert w.observe(float(t), veh, dep + np.array([0, 0, t // 10])) == []  # b discharges, a does not
    assert w.observe(300.0, veh, dep + np.array([0, 0, 30])) == [{"tls": "a", "since_s": 0.0, "seen_s": 300.0}]
    assert w.observe(310.0, veh, dep + np.array([0, 0, 31])) == []  # flagged once
    assert [e["tls"] for e in w.events] == ["a"]


def test_an_empty_signal_or_one_that_discharges_is_not_flagged():
    w = _watch()
    empty, dep = np.array([0, 0, 0]), np.array([5, 5, 5])
    for t in range(0, 1000, 10):
        assert w.observe(float(t), empty, dep) == []
    moving = np.array([3, 3, 3])
    for t in range(1000, 2000, 10):
        assert w.observe(float(t), moving, dep + t // 200) == []  # one departure every 200 s somewhere
    assert w.events == []


def test_a_signal_that_moves_again_is_flagged_anew_when_it_stops_again():
    w = GridlockWatch(["a"], [[0]], after_s=100.0)
    veh = np.array([4])
    assert w.observe(0.0, veh, np.array([1])) == []
    assert len(w.observe(100.0, veh, np.array([1]))) == 1
    assert w.observe(110.0, veh, np.array([2])) == []      # a vehicle crossed: no longer stuck
    assert w.observe(200.0, veh, np.array([2])) == []
    assert w.observe(210.0, veh, np.array([2])) == [{"tls": "a", "since_s": 110.0, "seen_s": 210.0}]


def test_the_bench_table_names_gridlocked_runs():
    from benchmarks.quality import aggregate, markdown_table

    runs = [{"scenario": "s", "controller": "mpc", "seed": k, "avg_delay_s": d, "safety_violations": 0,
             "decisions": 1, "gridlocks": g} for k, d, g in
            [(1, 20.0, []), (2, 600.0, [{"tls": "J7", "since_s": 26740.0, "seen_s": 27040.0}])]]
    text = markdown_table(aggregate(runs))
    rows = [ln for ln in text.splitlines() if "gridlock" in ln]
    assert rows == ["|  | ↳ gridlock | seed 2: J7 from 26,740 s |" + " |" * 11]
