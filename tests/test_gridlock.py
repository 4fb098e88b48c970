"""The gridlock watch on hand-made lane contents (the SUMO case is in ``test_loop_sumo.py``)."""

from sim.gridlock import GridlockWatch


def test_flags_a_signal_whose_waiting_vehicles_never_cross():
    w = GridlockWatch(["a", "b"], [[0, 1], [2]], after_s=300.0)
    for t in range(0, 300, 10):
        b_lane = (f"b{t}",)  # b's vehicle changes every check: b discharges, a does not
        assert w.observe(float(t), [("a1", "a2"), ("a3",), b_lane]) == []
    assert w.observe(300.0, [("a1", "a2"), ("a3",), ("b300",)]) == [{"tls": "a", "since_s": 0.0, "seen_s": 300.0}]
    assert w.observe(310.0, [("a1", "a2"), ("a3",), ("b310",)]) == []  # flagged once
    assert [e["tls"] for e in w.events] == ["a"]


def test_a_lane_change_within_the_approach_is_no_departure():
    """A per-lane counter sees a vehicle leave lane 0; the signal still let nobody across."""
    w = GridlockWatch(["a"], [[0, 1]], after_s=300.0)
    assert w.observe(0.0, [("v1", "v2"), ("v3",)]) == []
    for t in range(10, 300, 10):
        lanes = [("v1", "v2"), ("v3",)] if t % 20 else [("v2",), ("v3", "v1")]
        assert w.observe(float(t), lanes) == []
    assert w.observe(300.0, [("v2",), ("v3", "v1")]) == [{"tls": "a", "since_s": 0.0, "seen_s": 300.0}]


def test_an_empty_signal_or_one_that_discharges_is_not_flagged():
    w = GridlockWatch(["a"], [[0]], after_s=300.0)
    for t in range(0, 1000, 10):
        assert w.observe(float(t), [()]) == []
    for t in range(1000, 2000, 10):
        queue = tuple(f"v{k}" for k in range(t // 200, t // 200 + 5))  # one vehicle across every 200 s
        assert w.observe(float(t), [queue]) == []
    assert w.events == []


def test_a_signal_that_moves_again_is_flagged_anew_when_it_stops_again():
    w = GridlockWatch(["a"], [[0]], after_s=100.0)
    assert w.observe(0.0, [("v1", "v2")]) == []
    assert len(w.observe(100.0, [("v1", "v2")])) == 1
    assert w.observe(110.0, [("v2", "v3")]) == []  # v1 crossed: no longer stuck
    assert w.observe(200.0, [("v2", "v3")]) == []
    assert w.observe(210.0, [("v2", "v3")]) == [{"tls": "a", "since_s": 110.0, "seen_s": 210.0}]


def test_the_bench_table_names_gridlocked_runs():
    from benchmarks.quality import aggregate, markdown_table

    runs = [{"scenario": "s", "controller": "mpc", "seed": k, "avg_delay_s": d, "safety_violations": 0,
             "decisions": 1, "gridlocks": g} for k, d, g in
            [(1, 20.0, []), (2, 600.0, [{"tls": "J7", "since_s": 26370.0, "seen_s": 26670.0}])]]
    text = markdown_table(aggregate(runs))
    rows = [ln for ln in text.splitlines() if "gridlock" in ln]
    assert rows == ["|  | ↳ gridlock | seed 2: J7 from 26,370 s |" + " |" * 11]
