"""The optimiser's kernels against the plain-Python reference in ``tests/naive.py``."""

from __future__ import annotations

import numpy as np
import pytest

from brain import _kernels as K
from tests import naive


def _case(rng: np.random.Generator):
    P = int(rng.integers(1, 5))
    nl = int(rng.integers(2, 7))
    H = int(rng.integers(8, 31))
    serve = rng.choice([0.0, 0.0, 0.6, 1.0], size=(P, nl))
    for j in range(nl):  # every lane has a phase of its own
        if serve[:, j].max() < 0.5:
            serve[rng.integers(P), j] = 1.0
    q0 = rng.integers(0, 12, nl).astype(float)
    arr = rng.uniform(0.0, 1.2, (H, nl)) * (rng.random((H, nl)) < 0.6)
    satdt = rng.uniform(0.6, 1.6, nl)
    w = rng.uniform(1.0, 2.0, nl)
    cur = int(rng.integers(P))
    kind = rng.integers(4)
    prev = cur
    if kind == 0:  # in transition
        prev = (cur + 1) % P
        age = -float(rng.uniform(0.5, 3.0))
    elif kind == 1:  # under minimum green
        age = float(rng.uniform(0.0, 4.9))
    elif kind == 2:  # near maximum green
        age = float(rng.uniform(110.0, 120.0))
    else:
        age = float(rng.uniform(5.0, 60.0))
    force = int(rng.integers(P)) if rng.random() < 0.15 else -1
    return dict(q0=q0, arr=arr, satdt=satdt, w=w, serve=serve, cur=cur, prev=prev, age=age, force=force,
                lost_s=3.0, dt=2.0, min_g=5.0, max_g=120.0, dec_s=2.0, depth=int(rng.integers(0, 4)),
                beam=int(rng.integers(0, 3)), leaf_beam=int(rng.integers(0, 3)),
                start_s=float(rng.choice([0.0, 2.0, 3.5])))


def _kernel(c):
    nl = len(c["q0"])
    out = np.zeros((3, K.MAX_SEG), dtype=np.int64)
    fws, iws = K.workspace(nl, c["serve"].shape[0], c["depth"], c["arr"].shape[0])
    first, cost, nseg, nodes = K.plan_one(
        c["q0"], c["arr"].reshape(-1), c["satdt"], c["w"], c["serve"].reshape(-1), c["serve"].shape[0], c["cur"],
        c["prev"], c["age"], c["force"], c["lost_s"], c.get("start_s", 0.0), c["dt"], c["min_g"], c["max_g"],
        c["dec_s"], c["depth"], c.get("beam", 0), c.get("leaf_beam", 0), c.get("hyst", 0.0), out[0], out[1],
        out[2], fws, iws)
    return first, cost, nseg, nodes, out


@pytest.mark.parametrize("seed", range(80))
def test_branch_and_bound_finds_the_exhaustive_optimum(seed):
    c = _case(np.random.default_rng(seed))
    ref = naive.plan(list(c["q0"]), c["arr"].tolist(), list(c["satdt"]), list(c["w"]), c["serve"].tolist(),
                     c["cur"], c["prev"], c["age"], c["force"], c["lost_s"], c["dt"], c["min_g"], c["max_g"],
                     c["dec_s"], c["depth"], c["beam"], c["start_s"], c["leaf_beam"])
    first, cost, nseg, nodes, _ = _kernel(c)
    best = min(ref.values())
    assert cost == pytest.approx(best, rel=1e-7, abs=1e-9)
    runner_up = min((v for f, v in ref.items() if f != first), default=np.inf)
    if runner_up > best * (1 + 1e-6) + 1e-9:  # a unique best first action: the same one
        assert ref[first] == pytest.approx(best, rel=1e-7, abs=1e-9)
    assert 1 <= nseg <= K.MAX_SEG


def test_pruning_expands_fewer_nodes_than_the_full_tree():
    rng = np.random.default_rng(7)
    expanded, full = 0, 0
    for _ in range(30):
        c = _case(rng)
        c.update(depth=3, age=30.0, force=-1, beam=0, leaf_beam=0)
        _, _, _, nodes, _ = _kernel(c)
        P = c["serve"].shape[0]
        expanded += nodes
        full += P * sum((P - 1) ** k for k in range(4))
    assert expanded < 0.8 * full


def test_leaf_beam_branches_on_fewer_phases_at_the_last_depth_only():
    rng = np.random.default_rng(5)
    checked, leaves, fulls = 0, 0, 0
    for _ in range(60):
        c = _case(rng)
        nl = len(c["q0"])
        arr = rng.uniform(0.0, 1.2, (60, nl)) * (rng.random((60, nl)) < 0.6)  # a horizon the tree fits in
        c.update(depth=3, age=30.0, force=-1, beam=0, hyst=0.0, arr=arr)
        P = c["serve"].shape[0]
        if P < 4:
            continue
        full = _kernel({**c, "leaf_beam": 0})[3]
        leaf = _kernel({**c, "leaf_beam": 2})[3]
        assert leaf <= P + P * (P - 1) + P * (P - 1) ** 2 + 2 * P * (P - 1) ** 2
        checked, leaves, fulls = checked + 1, leaves + leaf, fulls + full
        ref = naive.plan(list(c["q0"]), c["arr"].tolist(), list(c["satdt"]), list(c["w"]), c["serve"].tolist(),
                         c["cur"], c["prev"], c["age"], -1, c["lost_s"], c["dt"], c["min_g"], c["max_g"],
                         c["dec_s"], 3, 0, c["start_s"], 2)
        assert _kernel({**c, "leaf_beam": 2})[1] == pytest.approx(min(ref.values()), rel=1e-7, abs=1e-9)
    assert checked >= 5 and leaves < 0.9 * fulls


def test_plan_respects_minimum_green_and_lost_time():
    rng = np.random.default_rng(3)
    for _ in range(50):
        c = _case(rng)
        first, _, nseg, _, out = _kernel(c)
        if c["age"] < c["min_g"] and c["age"] >= 0:
            assert first == c["cur"] or c["force"] == c["cur"]
        min_steps = int(np.ceil((c["lost_s"] + c["min_g"]) / c["dt"] - 1e-9))
        H = c["arr"].shape[0]
        for k in range(1, nseg):  # every later switch holds its new phase for its minimum green
            if out[0, k] != out[0, k - 1] and out[1, k] + out[2, k] < H:
                assert out[2, k] >= min_steps


def test_arrivals_spread_moving_vehicles_over_the_zone_then_follow_the_rate():
    slot_ptr = np.array([0, 1])
    out = np.zeros(10)
    K.predict_arrivals(slot_ptr, np.array([0]), np.array([4.0]), np.array([0.25]), np.array([8.0]),
                       np.array([10.0]), np.zeros(1, dtype=np.int64), np.zeros((0, 2)), False, np.zeros(10),
                       np.array([-1.0]), False, 2.0, 10, out)
    assert out[:4] == pytest.approx([1.0] * 4)  # 4 vehicles over an 8 s zone, 2 s steps
    assert out[4:] == pytest.approx([0.5] * 6)  # then 0.25 veh/s


def test_located_vehicles_arrive_at_their_own_distance():
    # lane 1 of two is the slot's; at 10 m/s, 15 m is in step 0, 35 m and 39 m in step 1, 75 m in
    # step 3; one at 95 m is beyond the 80 m (8 s) zone, where the rate takes over
    slot_ptr = np.array([0, 1])
    app = np.array([[5.0, 1.0], [15.0, 1.0], [35.0, 1.0], [39.0, 0.5], [75.0, 1.0], [95.0, 1.0]])
    app_ptr = np.array([0, 1, 6])  # lane 0 has the vehicle at 5 m, not this slot's
    out = np.zeros(10)
    K.predict_arrivals(slot_ptr, np.array([1]), np.array([4.5]), np.array([0.25]), np.array([8.0]),
                       np.array([10.0]), app_ptr, app, True, np.zeros(10), np.array([-1.0]), False, 2.0, 10, out)
    assert out[:4] == pytest.approx([1.0, 1.5, 0.0, 1.0])
    assert out[4:] == pytest.approx([0.5] * 6)
    # moving vehicles without a row (inside the junction, past the stop line) arrive nowhere
    K.predict_arrivals(slot_ptr, np.array([0]), np.array([4.0]), np.array([0.25]), np.array([8.0]),
                       np.array([10.0]), np.array([0, 0, 0]), app[:0], True, np.zeros(10), np.array([-1.0]), False,
                       2.0, 10, out)
    assert out[:4] == pytest.approx([0.0] * 4)


def test_outflow_and_routing_conserve_vehicles():
    # one intersection, two slots, two phases; slot 0 feeds slot 1 of a second intersection
    slot_ptr = np.array([0, 2, 4])
    phase_ptr = np.array([0, 2, 4])
    serve_ptr = np.array([0, 4, 8])
    serve = np.array([1.0, 0.0, 0.0, 1.0] * 2)
    H = 12
    arr = np.zeros(4 * H)
    q = np.array([5.0, 3.0, 0.0, 0.0])
    satdt = np.full(4, 1.0)
    plan_ph = np.zeros((2, K.MAX_SEG), dtype=np.int64)
    plan_n = np.zeros((2, K.MAX_SEG), dtype=np.int64)
    plan_ph[0, :2] = [0, 1]
    plan_n[0, :2] = [6, 6]
    plan_ph[1, 0] = 0
    plan_n[1, 0] = H
    plan_len = np.array([2, 1])
    out = np.zeros(4 * H)
    K.plan_outflow(slot_ptr, phase_ptr, serve_ptr, serve, q, arr, satdt, np.array([0, 0]), np.array([0, 0]),
                   np.array([10.0, 10.0]), np.array([3.0, 3.0]), 2.0, 2.0, H, plan_ph, plan_n, plan_len, out)
    blk = out[:2 * H].reshape(H, 2)
    assert blk[:, 0].sum() == pytest.approx(5.0)  # slot 0 empties in its green
    assert blk[:5, 0] == pytest.approx([1, 1, 1, 1, 1])
    assert blk[:, 1].sum() == pytest.approx(3.0)  # slot 1 waits for the switch, then empties
    assert blk[:6, 1].sum() == 0.0
    inflow = np.zeros(4 * H)
    route_ptr = np.array([0, 1, 1, 1, 1])
    K.route_inflow(slot_ptr, out, route_ptr, np.array([0.5]), np.array([3]), np.array([2 * H]), np.array([2]),
                   np.array([1]), H, 0, inflow)
    got = inflow[2 * H:].reshape(H, 2)[:, 1]
    assert got.sum() == pytest.approx(2.5)
    assert got[3:8] == pytest.approx([0.5] * 5)


@pytest.mark.slow
def test_kernels_agree_with_the_reference_without_jit_too(tmp_path):
    import os
    import subprocess
    import sys

    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__,
                        "-k", "not without_jit"], env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert " passed" in r.stdout


def test_a_standing_queue_starts_after_the_start_up_lost_time_an_empty_lane_at_once():
    """A switch to phase 1 (slots 1 and 2), 3 s of yellow, 2 s of start-up: slot 1 holds 3 standing
    vehicles and discharges from the sixth second; slot 2 is empty, and the vehicles reaching it
    once the yellow is over cross at once."""
    slot_ptr, phase_ptr, serve_ptr = np.array([0, 3]), np.array([0, 2]), np.array([0])
    serve = np.array([1.0, 0.0, 0.0, 0.0, 1.0, 1.0])
    H = 10
    arr = np.zeros(3 * H)
    arr[3 * 3 + 2::3] = 0.5
    plan_ph = np.zeros((1, K.MAX_SEG), dtype=np.int64)
    plan_n = np.zeros((1, K.MAX_SEG), dtype=np.int64)
    plan_ph[0, 0], plan_n[0, 0] = 1, H
    out = np.zeros(3 * H)
    K.plan_outflow(slot_ptr, phase_ptr, serve_ptr, serve, np.array([0.0, 3.0, 0.0]), arr, np.full(3, 1.0),
                   np.array([0]), np.array([0]), np.array([20.0]), np.array([3.0]), 2.0, 1.0, H, plan_ph, plan_n,
                   np.array([1]), out)
    blk = out.reshape(H, 3)
    assert blk[:5, 1] == pytest.approx([0.0] * 5) and blk[5:8, 1] == pytest.approx([1.0] * 3)
    assert blk[3:, 2] == pytest.approx([0.5] * (H - 3))
    # the search charges it too: the same switch costs more with a start-up lost time
    c = dict(q0=np.array([0.0, 3.0, 0.0]), arr=arr.reshape(H, 3), satdt=np.full(3, 1.0), w=np.ones(3),
             serve=serve.reshape(2, 3), cur=0, prev=0, age=20.0, force=1, lost_s=3.0, dt=1.0, min_g=5.0,
             max_g=120.0, dec_s=2.0, depth=0)
    assert _kernel({**c, "start_s": 2.0})[1] > _kernel(c)[1] + 1.0


def test_hysteresis_holds_unless_a_switch_saves_more_than_its_share():
    """Against the exhaustive reference: where switching is cheapest, a hysteresis just above the
    saving keeps the hold (at the hold's own cost), one just below still switches."""
    rng = np.random.default_rng(11)
    checked = 0
    for _ in range(400):
        c = _case(rng)
        c["force"] = -1
        ref = naive.plan(list(c["q0"]), c["arr"].tolist(), list(c["satdt"]), list(c["w"]), c["serve"].tolist(),
                         c["cur"], c["prev"], c["age"], -1, c["lost_s"], c["dt"], c["min_g"], c["max_g"],
                         c["dec_s"], c["depth"], c["beam"], c["start_s"], c["leaf_beam"])
        best = min(ref.values())
        if c["cur"] not in ref or best <= 0 or ref[c["cur"]] < best * 1.02:
            continue
        saving = ref[c["cur"]] / best - 1.0
        first, cost, _, _, _ = _kernel({**c, "hyst": saving + 0.01})
        assert first == c["cur"] and cost == pytest.approx(ref[c["cur"]], rel=1e-7)
        first, cost, _, _, _ = _kernel({**c, "hyst": saving * 0.5})
        assert first != c["cur"] and cost == pytest.approx(best, rel=1e-7)
        checked += 1
    assert checked >= 20
