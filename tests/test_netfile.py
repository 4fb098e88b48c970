"""The network description the brain loads: round trip, digest, refusals; the sim's hello."""

import json

import numpy as np
import pytest

from brain.model import GreenPhase, Intersection, Network
from brain.netfile import digest, from_dict, load_network, to_dict, write_network
from brain.timing import Timing
from wire.errors import InputError


def _net(change=((0.0, 4.0), (5.0, 0.0))) -> Network:
    x = Intersection("J", (GreenPhase(0, "GgrS"[:3] + "r", 31.5), GreenPhase(2, "rrGG", 20.0)),
                     ((0, 4), (1, 5), (2, 6), (-1, -1)), (0, 1, 2), (4, 5, 6), 3.5, 1.0,
                     crossings=((3, 12.25),), change_s=change)
    return Network((x,), tuple(f"l{i}" for i in range(7)), np.array([100.0, 90.5, 80, 70, 60, 50, 40]),
                   np.full(7, 13.89), feeds=((4, 2, 250.0),))


def test_a_network_and_its_rules_survive_the_file_exactly(tmp_path):
    net, timing = _net(), Timing(yellow=4.0, min_green=7.0, clearance="fixed", profile="eu")
    d = write_network(tmp_path / "n.json", net, timing, "test")
    back = load_network(tmp_path / "n.json", step=3.0)
    assert back.digest == d == digest(net, timing) and back.scenario == "test"
    assert back.timing == Timing(step=3.0, yellow=4.0, min_green=7.0, profile="eu")
    x, y = net.intersections[0], back.network.intersections[0]
    assert (y.phases, y.links, y.crossings, y.change_s, y.yellow_s, y.all_red_s) == \
        (x.phases, x.links, x.crossings, x.change_s, x.yellow_s, x.all_red_s)
    assert back.network.lanes == net.lanes and back.network.feeds == net.feeds
    assert np.array_equal(back.network.lane_length, net.lane_length)


@pytest.mark.parametrize("change", [
    lambda n, t: (n, Timing(yellow=4.5)),                                              # another rule
    lambda n, t: (Network(n.intersections, n.lanes, n.lane_length + 0.5, n.lane_speed, n.feeds), t),  # a length
    lambda n, t: (_net(change=((0.0, 4.0), (6.0, 0.0))), t),                           # a transition
])
def test_the_digest_tells_any_difference_in_network_or_rules(change):
    net, timing = _net(), Timing()
    other = change(net, timing)
    assert digest(*other) != digest(net, timing)


def test_a_changed_or_foreign_file_is_refused_naming_it(tmp_path):
    path = tmp_path / "n.json"
    write_network(path, _net(), Timing())
    d = json.loads(path.read_text())
    d["network"]["lane_length"][0] = 1.0
    path.write_text(json.dumps(d))
    with pytest.raises(InputError, match=f"network file {path}: its digest .* the file was changed"):
        load_network(path)
    path.write_text(json.dumps(dict(to_dict(_net(), Timing()), version=9)))
    with pytest.raises(InputError, match="version 9; this citybrain reads version 1"):
        load_network(path)
    path.write_text("{}")
    with pytest.raises(InputError, match="not a citybrain-network file"):
        load_network(path)
    with pytest.raises(InputError, match="network file not found"):
        load_network(tmp_path / "missing.json")
    bad = to_dict(_net(), Timing())
    bad["rules"]["yelow"] = 3.0
    with pytest.raises(ValueError, match="unknown rule"):
        from_dict(bad)


def _brain():
    import zmq

    from brain.netfile import NetworkFile
    from brain.service import Brain, ServeConfig
    from wire.transport import free_ports

    net = Network((Intersection("J", (GreenPhase(0, "Gr"), GreenPhase(1, "rG")), ((0, 2), (1, 3)), (0, 1), (2, 3),
                                3.0, 0.0),), ("a", "b", "c", "d"), np.full(4, 100.0), np.full(4, 13.9))
    p_in, p_out = free_ports(2)
    ctx = zmq.Context()
    got = ctx.socket(zmq.PULL)
    got.bind(f"tcp://127.0.0.1:{p_out}")
    brain = Brain(ServeConfig(controller="max-pressure", intake=f"tcp://127.0.0.1:{p_in}",
                              decisions=f"tcp://127.0.0.1:{p_out}", network="net.json"),
                  NetworkFile(net, Timing(), digest(net, Timing())), ctx=ctx)
    return brain, got, ctx


def _status(step: int) -> bytes:
    from wire.protocol import encode

    z = [0.0] * 4
    return encode("status", "sim", step, 2.0 * step, {"step": step, "phase": [0], "green": [20.0],
                                                     "in_transition": [False],
                                                     "readings": {"vehicles": z, "halting": z, "arrivals": z,
                                                                  "departures": z}})


def _hello(net_digest: str, interval: float = 10.0) -> bytes:
    from wire.protocol import encode

    return encode("hello", "sim", 0, 0.0, {"role": "sim", "network": net_digest, "scenario": "x", "signals": 1,
                                           "interval": interval})


def _received(brain, kind: str) -> float:
    return brain.metrics.registry.get_sample_value("citybrain_messages_total", {"type": kind}) or 0.0


def test_the_brain_decides_only_for_a_sim_that_announced_its_network():
    brain, got, ctx = _brain()
    try:
        brain.handle(_status(1))
        brain._maybe_decide()
        assert brain.decisions == 0 and brain.rejected == {"hello": 1}
        assert _received(brain, "status") == 0  # a rejected message is counted once: as rejected
        brain.handle(_hello(brain.digest))
        brain.handle(_status(2))
        brain._maybe_decide()
        assert brain.decisions == 1 and got.poll(2000) and _received(brain, "status") == 1
        assert _received(brain, "hello") == 1
    finally:
        brain.close()
        got.close(0)
        ctx.term()


def test_a_sim_driving_another_network_is_refused_with_what_differs():
    from wire.errors import ChannelError

    brain, got, ctx = _brain()
    try:
        brain.handle(_hello("ab" * 32))
        brain.handle(_status(1))
        brain._maybe_decide()
        assert brain.decisions == 0 and brain._stop
        assert "drives another network" in brain.refused and "net.json" in brain.refused
        assert "export-network" in brain.refused
        with pytest.raises(ChannelError, match="drives another network"):
            brain.run(install_signals=False)  # it stops at once and says why
    finally:
        got.close(0)
        ctx.term()


def test_a_sim_asking_for_decisions_at_another_cadence_is_refused():
    brain, got, ctx = _brain()  # max-pressure: a decision every --step, 10 s
    try:
        brain.handle(_hello(brain.digest, interval=2.0))
        assert brain._stop and brain.sim is None
        assert "asks for a decision every 2 s" in brain.refused and "--interval 10" in brain.refused
    finally:
        brain.close()
        got.close(0)
        ctx.term()


def test_implausible_counts_are_counted_as_rejected_only():
    from wire.protocol import encode

    brain, got, ctx = _brain()
    try:
        brain.handle(encode("counts", "w", 1, 2.0, {"camera": "c", "tls": "J", "lanes": ["a"], "present": [1.0],
                                                    "queue": [0.0], "crossed": [0.0], "classes": [[1, 0, 0, 0]],
                                                    "interval": 2.0, "frames": 1}))  # no cameras on this brain
        assert brain.rejected == {"range": 1} and _received(brain, "counts") == 0
        assert brain.metrics.registry.get_sample_value("citybrain_messages_rejected_total", {"reason": "range"}) == 1
    finally:
        brain.close()
        got.close(0)
        ctx.term()


def test_the_sim_announces_its_network_and_refuses_a_description_of_another():
    import zmq

    from sim.service import RemoteBrain, SimConfig
    from wire.errors import ChannelError
    from wire.protocol import decode
    from wire.transport import free_ports

    net, timing = _net(), Timing(step=2.0)
    p_in, p_dec = free_ports(2)
    ctx = zmq.Context()
    intake = ctx.socket(zmq.PULL)
    intake.bind(f"tcp://127.0.0.1:{p_in}")
    remote = RemoteBrain(SimConfig(brain=f"tcp://127.0.0.1:{p_in}", decisions=f"tcp://127.0.0.1:{p_dec}"), ctx)
    try:
        remote.reset(net, timing)
        assert intake.poll(2000)
        m = decode(intake.recv())
        assert m.type == "hello" and m.body["network"] == digest(net, timing) and m.body["signals"] == 1
        assert m.body["interval"] == 3.0  # mpc's cadence, the default
    finally:
        remote.close()
    p_in, p_dec = free_ports(2)
    remote = RemoteBrain(SimConfig(brain=f"tcp://127.0.0.1:{p_in}", decisions=f"tcp://127.0.0.1:{p_dec}",
                                   network=digest(net, Timing(yellow=5.0))), ctx)
    try:
        with pytest.raises(ChannelError, match="not the one its --network file describes"):
            remote.reset(net, timing)
    finally:
        remote.close()
        intake.close(0)
        ctx.term()
