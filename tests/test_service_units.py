"""Service pieces without processes: config files, camera sensing, JSON logs, the pacer."""

import json
import logging
import time

import pytest

from brain.sensing import CameraSensing
from brain.service import ServeConfig
from brain.transport import JsonFormatter


def test_service_config_from_toml_with_overrides_and_unknown_keys(tmp_path):
    p = tmp_path / "brain.toml"
    p.write_text('scenario = "arterial"\ncontroller = "greedy"\nwait_s = 1.5\nmetrics_port = 9200\n')
    cfg = ServeConfig.load(p, controller="mpc", cameras=None)
    assert (cfg.scenario, cfg.controller, cfg.wait_s, cfg.metrics_port) == ("arterial", "mpc", 1.5, 9200)
    p.write_text('scenario = "x"\nwiat_s = 3\n')
    with pytest.raises(ValueError, match="unknown service config key.*wiat_s"):
        ServeConfig.load(p)
    p.write_text("scenario = [")
    with pytest.raises(ValueError, match="not valid TOML"):
        ServeConfig.load(p)


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
