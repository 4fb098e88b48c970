"""Service pieces without processes: config files, camera sensing, JSON logs, the pacer."""

import json
import logging
import time

import pytest

from brain.sensing import CameraSensing
from brain.service import ServeConfig
from wire.transport import JsonFormatter


def test_service_config_from_toml_with_overrides_and_unknown_keys(tmp_path):
    p = tmp_path / "brain.toml"
    p.write_text('network = "net.json"\ncontroller = "greedy"\nwait_s = 1.5\nmetrics_port = 9200\n')
    cfg = ServeConfig.load(p, controller="mpc", cameras=None)
    assert (cfg.network, cfg.controller, cfg.wait_s, cfg.metrics_port) == ("net.json", "mpc", 1.5, 9200)
    p.write_text('network = "x"\nwiat_s = 3\n')
    with pytest.raises(ValueError, match="unknown service config key.*wiat_s"):
        ServeConfig.load(p)
    p.write_text('network = "x"\nyellow = 4.0\n')  # the rules travel in the network file, not here
    with pytest.raises(ValueError, match="unknown service config key.*yellow"):
        ServeConfig.load(p)
    p.write_text("network = [")
    with pytest.raises(ValueError, match="not valid TOML"):
        ServeConfig.load(p)


def test_the_example_brain_toml_is_a_valid_service_config():
    from pathlib import Path

    cfg = ServeConfig.load(Path(__file__).parents[1] / "deploy" / "brain.toml")
    assert cfg.network and cfg.keys and cfg.metrics_port == 9108 and cfg.intake.endswith(":5556")


def test_serve_takes_its_rules_from_the_network_file_and_refuses_them_as_options(tmp_path):
    from brain.netfile import write_network
    from brain.timing import Timing
    from citybrain.cli import build_parser
    from citybrain.cli_service import brain_network, serve_config

    path = tmp_path / "net.json"
    write_network(path, _net(), Timing(min_green=12.0, yellow=4.0))
    args = build_parser().parse_args(["serve", "--network", str(path), "--step", "4"])
    nf = brain_network(args, serve_config(args))
    assert (nf.timing.min_green, nf.timing.yellow, nf.timing.step) == (12.0, 4.0, 4.0)
    args = build_parser().parse_args(["serve", "--network", str(path), "--min-green", "20"])
    with pytest.raises(ValueError, match="--min-green: the rules come from the network file"):
        brain_network(args, serve_config(args))
    args = build_parser().parse_args(["serve"])
    with pytest.raises(ValueError, match="serve needs --network FILE"):
        brain_network(args, serve_config(args))


def test_a_camera_that_saw_no_frame_is_stale_and_its_last_counts_stay():
    s = CameraSensing(["a"], {"n": ("J", ["a"])}, {"J": 0}, stale_after=4.0)
    assert s.update("n", 2.0, ["a"], present=[3], queue=[2], crossed=[1], frames=8)
    assert s.update("n", 4.0, ["a"], present=[0], queue=[0], crossed=[0], frames=0)  # on time, but blind
    assert s.stale(4.0) == ["n"] and s.stale_intersections(4.0, 1).tolist() == [True]
    assert s.readings(4.0).halting.tolist() == [2.0]  # not an empty road
    assert s.update("n", 6.0, ["a"], present=[4], queue=[3], crossed=[1], frames=8)
    assert s.stale(6.0) == [] and s.readings(6.0).halting.tolist() == [3.0]


def test_camera_sensing_conserves_vehicles_and_marks_bad_and_silent_cameras():
    s = CameraSensing(["a", "b", "c"], {"n": ("J", ["a", "b"]), "s": ("J", ["c"])}, {"J": 0}, stale_after=4.0,
                      zone_capacity={"a": 10})
    assert s.update("n", 2.0, ["a", "b"], present=[3, 1], queue=[2, 0], crossed=[0, 1])
    assert s.update("n", 4.0, ["a", "b"], present=[5, 0], queue=[4, 0], crossed=[2, 1])
    r = s.readings(4.0)
    assert r.halting.tolist() == [4.0, 0.0, 0.0]
    assert r.departures.tolist() == [2.0, 2.0, 0.0]
    # arrivals: entered = crossed + change in vehicles present (a: 2 + 5 - 3 = 4); the vehicles of a
    # camera's first report were there before it looked, so only its crossings count (b: 1, then 1 + 0 - 1)
    assert r.arrivals.tolist() == [4.0, 1.0, 0.0]
    assert s.stale(4.0) == ["s"]  # never heard
    assert not s.update("n", 6.0, ["a", "b"], present=[50, 0], queue=[0, 0], crossed=[0, 0])  # over capacity
    assert "n" in s.stale(6.0) and s.cams["n"].bad
    assert s.stale_intersections(6.0, 1).tolist() == [True]
    assert s.update("n", 8.0, ["a", "b"], present=[1, 0], queue=[0, 0], crossed=[0, 0])  # recovers
    assert "n" not in s.stale(8.0)
    assert not s.update("n", 7.0, ["a", "b"], present=[1, 0], queue=[0, 0], crossed=[0, 0])  # back in time
    with pytest.raises(ValueError, match="lanes the network lacks"):
        CameraSensing(["a"], {"x": ("J", ["zz"])}, {"J": 0})


def test_json_log_lines_carry_extra_fields():
    rec = logging.LogRecord("citybrain.brain", logging.WARNING, __file__, 1, "stale cameras: %s", (["c1"],), None)
    rec.sim_time = 12.0
    d = json.loads(JsonFormatter().format(rec))
    assert d["level"] == "warning" and d["msg"] == "stale cameras: ['c1']" and d["sim_time"] == 12.0


def test_pacer_holds_simulated_time_to_the_wall_clock():
    from sim.service import _Pacer

    class B:
        time = 0.0

    p, b = _Pacer(speed=20.0), B()
    t0 = time.perf_counter()
    for k in range(11):
        b.time = float(k)
        p(b)
    assert time.perf_counter() - t0 == pytest.approx(0.5, abs=0.15)  # 10 simulated s at 20x


def _net():
    """One intersection ``J`` with two phases and eight lanes."""
    import numpy as np

    from brain.model import GreenPhase, Intersection, Network

    x = Intersection("J", (GreenPhase(0, "GGrr", 30), GreenPhase(2, "rrGG", 30)),
                     ((0, 5), (1, 4), (2, 7), (3, 6)), (0, 1, 2, 3), (4, 5, 6, 7), 3.0, 0.0)
    return Network((x,), tuple(f"l{i}" for i in range(8)), np.full(8, 100.0), np.full(8, 13.9))


def _brain(controller: str):
    """A brain on loopback for :func:`_net`; returns it, the socket its decisions arrive on and
    the context."""
    import zmq

    from brain.netfile import NetworkFile, digest
    from brain.service import Brain, ServeConfig
    from brain.timing import Timing
    from wire.protocol import encode
    from wire.transport import free_ports

    net = _net()
    p_in, p_out = free_ports(2)
    ctx = zmq.Context()
    got = ctx.socket(zmq.PULL)
    got.bind(f"tcp://127.0.0.1:{p_out}")
    brain = Brain(ServeConfig(controller=controller, intake=f"tcp://127.0.0.1:{p_in}",
                              decisions=f"tcp://127.0.0.1:{p_out}"), NetworkFile(net, Timing(), digest(net, Timing())),
                  ctx=ctx)
    brain.handle(encode("hello", "sim", 0, 0.0, {"role": "sim", "network": brain.digest, "scenario": "J", "signals": 1,
                                                 "interval": brain.controller.interval or brain.timing.step}))
    return brain, got, ctx


HEAVY_NS = [9.0, 9.0, 0, 0, 0, 0, 0, 0]  # max-pressure alone keeps phase 0
READINGS = {"vehicles": HEAVY_NS, "halting": HEAVY_NS, "arrivals": [0.0] * 8, "departures": [0.0] * 8}


def test_brain_takes_emergency_movements_from_the_status_and_refuses_unknown_lanes():
    from wire.protocol import decode, encode

    brain, got, ctx = _brain("max-pressure+priority")
    try:
        def status(step, emergency):
            body = {"step": step, "phase": [0], "green": [20.0], "in_transition": [False], "readings": READINGS,
                    "emergency": emergency}
            brain.handle(encode("status", "sim", step, 2.0 * step, body))
            brain._maybe_decide()

        status(1, [[9, 1, 50.0]])  # lane 9: not in this network
        assert brain.rejected == {"range": 1} and brain.decisions == 0
        status(2, [[2, 7, 100.0]])  # from the east, 100 m out: its phase, despite the queues elsewhere
        assert brain.decisions == 1
        assert got.poll(2000)
        assert decode(got.recv()).body["wish"] == [1]
    finally:
        brain.close()
        got.close(0)
        ctx.term()


def test_cameras_located_vehicles_reach_the_readings_and_must_match_the_lanes():
    s = CameraSensing(["a", "b", "c"], {"n": ("J", ["a", "b"])}, {"J": 0})
    assert s.readings(0.0).approach is None  # no camera has located anything yet
    assert s.update("n", 2.0, ["a", "b"], present=[3, 0], queue=[1, 0], crossed=[0, 0], approach=[[30.0, 12.5], []])
    r = s.readings(2.0)
    assert r.approach_ptr.tolist() == [0, 2, 2, 2] and r.approach.tolist() == [[30.0, 1.0], [12.5, 1.0]]
    assert not s.update("n", 4.0, ["a", "b"], present=[3, 0], queue=[1, 0], crossed=[0, 0], approach=[[1.0]])
    assert "located vehicles for 1 lanes" in s.cams["n"].bad


def test_brain_hands_the_sims_located_vehicles_to_the_controller():
    from wire.protocol import encode

    brain, got, ctx = _brain("mpc")
    seen = []
    decide = brain.controller.decide
    brain.controller.decide = lambda r, st: seen.append(r) or decide(r, st)
    try:
        located = {**READINGS, "approach_n": [2, 0, 0, 0, 0, 0, 0, 0], "approach_m": [40.0, 90.0],
                   "approach_w": [1.0, 0.5]}
        body = {"step": 1, "phase": [0], "green": [20.0], "in_transition": [False], "readings": located}
        brain.handle(encode("status", "sim", 1, 2.0, body))
        brain._maybe_decide()
        assert brain.decisions == 1 and brain.rejected == {}
        r = seen[0]
        assert r.approach_ptr.tolist() == [0] + [2] * 8
        assert r.approach.tolist() == [[40.0, 1.0], [90.0, 0.5]]
    finally:
        brain.close()
        got.close(0)
        ctx.term()


def test_brain_refuses_a_status_showing_a_phase_the_signal_lacks():
    from wire.protocol import decode, encode

    brain, got, ctx = _brain("mpc")
    try:
        for step, phase in ((1, 2), (2, 1)):  # J has phases 0 and 1
            body = {"step": step, "phase": [phase], "green": [20.0], "in_transition": [False], "readings": READINGS}
            brain.handle(encode("status", "sim", step, 2.0 * step, body))
            brain._maybe_decide()
        assert brain.rejected == {"range": 1} and brain.decisions == 1
        assert got.poll(2000)
        assert decode(got.recv()).body["step"] == 2
    finally:
        brain.close()
        got.close(0)
        ctx.term()


def test_sim_runs_the_plan_where_a_decision_wishes_a_phase_the_signal_lacks():
    import numpy as np
    import zmq

    from wire.transport import free_ports
    from brain.model import Readings, SignalStatus
    from wire.protocol import encode
    from brain.timing import Timing
    from sim.service import RemoteBrain, SimConfig

    net = _net()
    ctx = zmq.Context()
    p_in, p_dec = free_ports(2)
    remote = RemoteBrain(SimConfig(brain=f"tcp://127.0.0.1:{p_in}", decisions=f"tcp://127.0.0.1:{p_dec}",
                                   timeout_s=2.0), ctx)
    push = ctx.socket(zmq.PUSH)
    push.connect(f"tcp://127.0.0.1:{p_dec}")
    try:
        remote.reset(net, Timing(step=2.0))
        push.send(encode("decision", "brain", 1, 2.0, {"step": 1, "wish": [7], "fallback": [False],
                                                       "controller": "x"}))
        r = Readings(2.0, *(np.zeros(8) for _ in range(4)))
        wish = remote.decide(r, SignalStatus(np.array([0]), np.array([20.0]), np.array([False])))
        assert wish.tolist() == remote.fallback.decide(r, SignalStatus(np.array([0]), np.array([20.0]),
                                                                       np.array([False]))).tolist()
        assert remote.stats["rejected_decisions"] == 1 and remote.stats["fallback_decisions"] == 1
        assert remote.events and remote.events[0]["fallback"] is True
    finally:
        push.close(0)
        remote.close()
        ctx.term()


@pytest.mark.parametrize("name", ["fixed", "actuated"])
def test_controllers_sumo_runs_itself_are_refused_by_the_service(name, tmp_path):
    from brain.netfile import NetworkFile
    from brain.service import Brain, ServeConfig
    from brain.timing import Timing
    from citybrain.services import run_services

    with pytest.raises(ValueError, match="SUMO's own program.*use 'plan'"):
        Brain(ServeConfig(controller=name), NetworkFile(_net(), Timing(), ""))
    with pytest.raises(ValueError, match="SUMO's own program"):
        run_services("single", name, "truth", out_dir=tmp_path)
    assert not any(tmp_path.iterdir())  # nothing started


def test_brain_serves_a_second_run_when_the_sims_clock_starts_again():
    from wire.protocol import decode, encode

    brain, got, ctx = _brain("mpc")
    try:
        for step, t in ((1, 3596.0), (2, 3598.0), (1, 0.0), (2, 2.0)):  # a run's end, then a new run
            body = {"step": step, "phase": [0], "green": [20.0], "in_transition": [False], "readings": READINGS}
            brain.handle(encode("status", "sim", step, t, body))
            brain._maybe_decide()
            assert got.poll(2000)
            d = decode(got.recv())
            assert d.sim_time == t and d.body["fallback"] == [False]  # the controller did not fail
        assert brain.decisions == 4
    finally:
        brain.close()
        got.close(0)
        ctx.term()


def test_counts_every_2_s_serve_decisions_every_3_s_on_time(tmp_path):
    """Workers count on the multiples of their interval: a decision at t = 9 takes the count of
    t = 8 as on time; one at t = 12 wants the count of t = 12."""
    import numpy as np

    from wire.cameras import Camera, CameraLane
    from wire.protocol import decode, encode

    lane = CameraLane("l0", np.zeros((4, 2)), np.zeros((2, 2)), 45.0, 100.0)
    cam = Camera("J/n", "J", (0.0, 0.0, 10.0), 0.0, 0.4, 500.0, (640, 384), (lane,))
    cams = tmp_path / "cams.json"
    cams.write_text(json.dumps({"interval": 2.0, "cameras": [cam.to_dict()]}))
    brain, got, ctx = _brain("max-pressure")
    brain.cfg = type(brain.cfg)(**{**brain.cfg.__dict__, "cameras": str(cams), "wait_s": 0.0})
    brain._load_cameras(cams)

    def counts(t):
        brain.handle(encode("counts", "w", int(t), t, {"camera": "J/n", "tls": "J", "lanes": ["l0"], "present": [1.0],
                                                       "queue": [0.0], "crossed": [0.0], "classes": [[1, 0, 0, 0]],
                                                       "interval": 2.0, "frames": 4}))
        brain._heard["J/n"] = time.time()

    def decide(step, t):
        brain.handle(encode("status", "sim", step, t, {"step": step, "phase": [0], "green": [20.0],
                                                        "in_transition": [False]}))
        brain._maybe_decide()
        assert got.poll(2000)
        return decode(got.recv()).body["fallback"][0]

    try:
        counts(8.0)
        assert decide(1, 9.0) is False  # the count of t = 8 is the newest due at t = 9
        assert decide(2, 12.0) is True  # t = 12 is due and has not come
        counts(10.0)
        counts(12.0)
        assert decide(3, 12.0) is False
    finally:
        brain.close()
        got.close(0)
        ctx.term()
