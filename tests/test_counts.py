"""Stop-line counts match SUMO's own: a vehicle that changes lanes on its approach has crossed no
stop line, and the report's volumes are SUMO's edgeData ``left`` per approach."""

import numpy as np
import pytest

from benchmarks.report import _approach_metrics
from sim.loop import run_scenario
from sim.record import Recorder
from sim.scenario import load_scenario

pytestmark = pytest.mark.sumo


@pytest.mark.parametrize("scenario", ["single", "arterial"])
def test_report_volumes_are_sumos_edge_counts(tmp_path, scenario):
    rec_dir = tmp_path / scenario
    recorder = Recorder(rec_dir, period=300.0)
    rec = run_scenario(load_scenario(scenario), "fixed", end=900.0, additional=recorder.additional_files(),
                       on_step=recorder)
    import json

    data = json.loads(recorder.save(record=rec.to_dict()).read_text())
    checked = 0
    for a, m in zip(data["approaches"], _approach_metrics(data)):
        left = sum(iv["edges"].get(a["edge"], {}).get("left", 0.0) for iv in data["edgedata"])
        if left < 20:
            continue
        checked += 1
        assert a["crossed"] == pytest.approx(left, rel=0.05), (a["edge"], a["crossed"], left)
        assert m["volume_vph"] == pytest.approx(a["crossed"] * 3600.0 / 900.0)
    assert checked >= 4


def test_lane_changes_on_the_approach_are_not_stop_line_crossings():
    """On ``single`` (two lanes and a turn pocket per approach) vehicles change lanes before the
    stop line: the per-lane departures of an approach add up to the vehicles that left its edge,
    and arrivals never fall short of departures."""
    from sim.backend import SumoBackend

    sc = load_scenario("single")
    with SumoBackend(sc) as b:
        net, _ = b.network()
        b.watch(net.lanes, [x.id for x in net.intersections])
        changes = 0
        for _ in range(900):
            before = {ln: set(ids) for ln, ids in zip(net.lanes, b.lane_vehicles())}
            b.step()
            after = {ln: set(ids) for ln, ids in zip(net.lanes, b.lane_vehicles())}
            for ln in net.lanes:  # a vehicle moving between two lanes of one edge
                edge = ln.rsplit("_", 1)[0]
                changes += sum(1 for other in net.lanes if other != ln and other.rsplit("_", 1)[0] == edge
                               for v in before[ln] & after[other])
        r = b.read()
        left = b.edge_departures()
    assert changes > 20
    x = net.intersections[0]
    per_edge: dict[str, float] = {}
    for i in x.in_lanes:
        per_edge.setdefault(net.lanes[i].rsplit("_", 1)[0], 0.0)
        per_edge[net.lanes[i].rsplit("_", 1)[0]] += r.departures[i]
    for edge, dep in per_edge.items():
        assert dep == left[edge] > 30, (edge, dep, left[edge])
    ins = np.array(x.in_lanes)
    assert r.arrivals[ins].sum() >= r.departures[ins].sum()


def test_stop_line_counter_tells_crossings_from_lane_changes():
    from sim.stopline import StopLines

    # approach edge "a" (lanes a_0, a_1, loops on both), a 0.2 m stub "b" (one lane, with a loop)
    c = StopLines(["a_0", "a_1", "b_0"], {"a_0": "a", "a_1": "a", "b_0": "b"},
                  {"a": ("a_0", "a_1"), "b": ("b_0",)}, {"a_0": "d0", "a_1": "d1", "b_0": "d2"})
    steps = [  # (lanes, loops, arrived)
        ({"a_0": ("v1", "v2"), "a_1": (), "b_0": ()}, {}, set()),
        ({"a_0": ("v2",), "a_1": ("v1",), "b_0": ()}, {}, set()),             # v1 changes lanes
        ({"a_0": (), "a_1": ("v1",), "b_0": ()}, {"a_0": ("v2",)}, set()),     # v2 reaches the stop line
        ({"a_0": (), "a_1": (), "b_0": ()}, {"a_1": ("v1",), "b_0": ("v3",)}, set()),  # v2 crossed; v3 passes b
        ({"a_0": (), "a_1": (), "b_0": ()}, {}, {"v9"}),                       # v1 crossed, v3 crossed b
    ]
    for lanes, loops, arrived in steps:
        c.update(lanes, {ln: loops.get(ln, ()) for ln in ("a_0", "a_1", "b_0")}, arrived)
    assert c.departures.tolist() == [1, 1, 1]  # v2 from a_0, v1 from a_1 (not at its lane change), v3 from b
    assert c.edge_left == {"a": 2, "b": 1}
    assert c.arrivals.tolist() == [2, 0, 1]  # v1's lane change is no arrival; v3, never seen on b_0, is one


def test_demand_held_back_at_an_entry_shows_in_the_report(tmp_path):
    """A queue reaching back to where vehicles enter hides demand from every count on the road:
    the report counts the vehicles still waiting to enter as demand (v/c above 1) and lists them."""
    import csv
    import shutil

    from benchmarks.report import build_report
    from sim.scenario import library_dir

    folder = tmp_path / "s"
    folder.mkdir()
    shutil.copy(library_dir() / "single" / "single.net.xml", folder / "net.net.xml")
    (folder / "d.rou.xml").write_text('<routes><route id="ns" edges="top0A0.260.00 A0bottom0"/>'
                                      '<flow id="f" route="ns" begin="0" end="300" number="1500"/></routes>')
    (folder / "s.sumocfg").write_text('<configuration><input><net-file value="net.net.xml"/><route-files '
                                      'value="d.rou.xml"/></input><time><end value="300"/></time></configuration>')
    recorder = Recorder(tmp_path / "rep" / "s_fixed_1")
    rec = run_scenario(load_scenario(folder), "fixed", additional=recorder.additional_files(), on_step=recorder)
    recorder.save(record=rec.to_dict())
    page = build_report(tmp_path / "rep")
    rows = {r["approach"]: r for r in csv.DictReader(open(tmp_path / "rep" / "hcm.csv"))}
    top = rows["top0A0.260.00"]
    assert float(top["held_back_veh"]) > 500 and float(top["v_c"]) > 1.0 and top["los"] == "F"
    entries = list(csv.DictReader(open(tmp_path / "rep" / "entries.csv")))
    assert [e["entry"] for e in entries] == ["top0A0.260.00"] and float(entries[0]["waiting_at_end"]) > 500
    assert "Demand that could not enter" in page.read_text()
