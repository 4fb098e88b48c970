"""Sensing zones in real SUMO: an approach's zone is the traffic queueing for *its* signal."""

from __future__ import annotations

import subprocess

import pytest

from scenarios.generate import _tool
from sim.backend import SumoBackend
from sim.scenario import load_scenario

pytestmark = pytest.mark.sumo

# W --> M --> C --> E, signal at C; at M (unsignalised, priority) a side street S joins from the
# south and yields. 150 m + 40 m upstream of C, so the whole of W-M and S-M is within 200 m.
_NODES = """<nodes>
  <node id="W" x="-190" y="0"/> <node id="M" x="-150" y="0" type="priority"/>
  <node id="S" x="-150" y="-120"/> <node id="C" x="0" y="0" type="traffic_light"/>
  <node id="E" x="150" y="0"/> <node id="N" x="0" y="150"/>
</nodes>"""
_EDGES = """<edges>
  <edge id="WM" from="W" to="M" priority="3" numLanes="1" speed="13.9"/>
  <edge id="SM" from="S" to="M" priority="1" numLanes="1" speed="13.9"/>
  <edge id="MC" from="M" to="C" priority="3" numLanes="1" speed="13.9"/>
  <edge id="NC" from="N" to="C" priority="2" numLanes="1" speed="13.9"/>
  <edge id="CE" from="C" to="E" priority="3" numLanes="1" speed="13.9"/>
</edges>"""
_ROUTES = """<routes>
  <route id="main" edges="WM MC CE"/> <route id="side" edges="SM MC CE"/> <route id="cross" edges="NC CE"/>
  <flow id="m" route="main" begin="0" end="300" vehsPerHour="300"/>
  <flow id="s" route="side" begin="0" end="300" vehsPerHour="300"/>
  <flow id="c" route="cross" begin="0" end="300" vehsPerHour="300"/>
</routes>"""


@pytest.fixture(scope="module")
def merge_scenario(tmp_path_factory):
    d = tmp_path_factory.mktemp("merge")
    (d / "n.nod.xml").write_text(_NODES)
    (d / "n.edg.xml").write_text(_EDGES)
    (d / "n.rou.xml").write_text(_ROUTES)
    subprocess.run([_tool("netconvert"), "-n", str(d / "n.nod.xml"), "-e", str(d / "n.edg.xml"),
                    "-o", str(d / "n.net.xml"), "--no-turnarounds", "true", "--tls.default-type", "static"],
                   check=True, capture_output=True)
    (d / "n.sumocfg").write_text('<configuration><input><net-file value="n.net.xml"/>'
                                 '<route-files value="n.rou.xml"/></input>'
                                 '<time><begin value="0"/><end value="300"/></time></configuration>')
    return load_scenario(d / "n.sumocfg")


def test_a_side_street_waiting_for_a_gap_is_not_in_the_signals_queue(merge_scenario):
    with SumoBackend(merge_scenario, seed=1) as b:
        b.network()
        zone = b._zone_of["MC_0"]
        assert "WM_0" in zone  # the main road upstream of the priority junction is the approach
        assert "SM_0" not in zone  # the yielding side street is not


def test_moving_vehicles_are_located_by_their_distance_to_the_stop_line(merge_scenario):
    """``Readings.approach`` lists each moving vehicle of an approach's zone, upstream lanes
    included, at its distance to the signal's stop line; standing vehicles and outgoing lanes
    have none."""
    with SumoBackend(merge_scenario, seed=1) as b:
        net, _ = b.network()
        b.watch(net.lanes, [x.id for x in net.intersections])
        lane = b.ts.lane
        mc, wm = lane.getLength("MC_0"), lane.getLength("WM_0")
        i, out = net.lanes.index("MC_0"), net.lanes.index("CE_0")
        upstream = checked = 0
        for step in range(240):
            b.step()
            if step % 10:
                continue
            r = b.read()
            rows = r.approach[r.approach_ptr[i]:r.approach_ptr[i + 1]]
            want = [mc - b.ts.vehicle.getLanePosition(v) for v in lane.getLastStepVehicleIDs("MC_0")
                    if b.ts.vehicle.getSpeed(v) >= 0.1]
            want += [mc + wm - b.ts.vehicle.getLanePosition(v) for v in lane.getLastStepVehicleIDs("WM_0")
                     if b.ts.vehicle.getSpeed(v) >= 0.1]
            assert sorted(rows[:, 0]) == pytest.approx(sorted(want))
            assert (rows[:, 1] == 1.0).all()
            assert r.approach_ptr[out + 1] == r.approach_ptr[out]
            upstream += int((rows[:, 0] > mc).sum())
            checked += len(rows)
    assert upstream > 0 and checked > 20
