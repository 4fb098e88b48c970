"""HCM formulas against hand-computed cases, and the HTML report opened in a headless browser."""

import csv
import re
import shutil
import subprocess

import numpy as np
import pytest

from brain.controllers.webster import webster_cycle
from brain.hcm import control_delay, incremental_delay, ite_all_red, ite_yellow, los, percentile_queue, uniform_delay


def test_uniform_delay_hand_case():
    # C = 90 s, g = 45 s, X = 0.8: 0.5 * 90 * 0.5^2 / (1 - 0.8 * 0.5) = 18.75 s
    assert uniform_delay(90.0, 45.0, 0.8) == pytest.approx(18.75)
    # oversaturated: X is capped at 1 in d1 -> 0.5 * 90 * 0.25 / 0.5 = 22.5 s
    assert uniform_delay(90.0, 45.0, 1.3) == pytest.approx(22.5)
    with pytest.raises(ValueError):
        uniform_delay(90.0, 95.0, 0.5)


def test_webster_cycle_hand_case():
    # flows 500 and 300 veh/h, saturation 1600, lost time 16 s: Y = 0.5, C0 = (1.5*16 + 5) / 0.5 = 58 s
    assert webster_cycle(np.array([500 / 1600, 300 / 1600]), lost_time=16.0) == pytest.approx(58.0)


def test_incremental_and_control_delay():
    # d2 = 900 T [(X-1) + sqrt((X-1)^2 + 8 k I X / (c T))], T = 0.25 h, k = 0.5, I = 1, X = 0.8, c = 800
    d2 = 900 * 0.25 * (-0.2 + np.sqrt(0.04 + 8 * 0.5 * 0.8 / (800 * 0.25)))
    assert incremental_delay(0.8, 800.0) == pytest.approx(d2)
    # a lane group: s = 1600, g/C = 45/90 -> c = 800 veh/h; v = 640 -> X = 0.8
    assert control_delay(90.0, 45.0, 640.0, 1600.0) == pytest.approx(18.75 + d2)


@pytest.mark.parametrize("delay,vc,letter", [(0.0, None, "A"), (10.0, None, "A"), (10.01, None, "B"),
                                             (20.0, 0.5, "B"), (35.0, None, "C"), (55.0, None, "D"),
                                             (80.0, None, "E"), (80.5, None, "F"), (12.0, 1.01, "F")])
def test_level_of_service_thresholds(delay, vc, letter):
    assert los(delay, vc) == letter


def test_ite_clearance_intervals():
    # 50 km/h, level: 1 + 13.89 / (2 * 3.05) = 3.28 s; 30 km/h clamps to 3 s; 130 km/h to 6 s
    assert ite_yellow(50.0) == pytest.approx(1 + (50 / 3.6) / 6.1)
    assert ite_yellow(30.0) == 3.0 and ite_yellow(130.0) == 6.0
    # downhill grade lengthens it
    assert ite_yellow(60.0, grade=-0.04) > ite_yellow(60.0)
    # (20 m + 6 m) at 50 km/h = 1.87 s
    assert ite_all_red(50.0, 20.0) == pytest.approx(26 / (50 / 3.6))
    assert percentile_queue(np.arange(101)) == pytest.approx(95.0)


def test_timeline_shows_the_first_minutes_of_a_run_that_starts_late():
    from benchmarks.report import WINDOW_S, timeline_bars

    start = 25200.0  # cologne3 begins at 7:00
    tl = {"a": [[start, start + 30, "phase 0"], [start + 31, start + 33, "yellow"],
                [start + 2000, start + 2030, "phase 1"]],
          "b": [[start + 5, start + 40, "phase 1"]]}
    bars = timeline_bars(tl, ["a", "b"])
    assert [(y, kind) for y, _, _, kind in bars] == [(0, "phase 0"), (0, "yellow"), (1, "phase 1")]
    assert all(start <= t0 and t0 + w <= start + WINDOW_S + 1 for _, t0, w, _ in bars)


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.sumo
@pytest.mark.slow
def test_report_from_recorded_runs_renders_with_all_images(tmp_path):
    from citybrain.cli import main

    out = tmp_path / "rep"
    assert main(["bench", "--scenario", "arterial", "--controller", "fixed", "--controller", "greedy",
                 "--seed", "1", "--seed", "2", "--end", "600", "--jobs", "2", "--report", str(out)]) == 0
    page = out / "report.html"
    text = page.read_text()
    assert "Time-space diagram, greedy" in text and "Phase timeline, greedy" in text
    rows = list(csv.DictReader(open(out / "hcm.csv")))
    fixed = [r for r in rows if r["controller"] == "fixed" and r["approach"] != "(intersection)"]
    assert len(fixed) == 20 and all(r["seeds"] == "2" for r in fixed)  # 5 signals x 4 approaches, 2 seeds
    for r in rows:
        assert r["los"] in "ABCDEF" and float(r["delay_s"]) >= 0 and float(r["queue_storage"]) >= 0
    inter = {r["controller"]: float(r["delay_s"]) for r in rows if r["tls"] == "C0" and r["approach"] == "(intersection)"}
    assert inter["greedy"] < inter["fixed"]  # the report sees what the benchmark table sees
    assert (out / "intervals.csv").read_text().count("\n") > 20
    exe = _chromium()
    if exe is None:
        pytest.fail("chromium is not installed (.ci/run installs Debian's chromium)")
    dom = subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                          "--disable-background-networking", "--disable-component-update", "--disable-sync",
                          f"--user-data-dir={tmp_path / 'chromium'}", "--virtual-time-budget=5000", "--dump-dom",
                          page.as_uri()], capture_output=True, text=True, timeout=120).stdout
    m = re.search(r'<body data-images="(\d+)" data-loaded="(\d+)"', dom)
    assert m, "the page did not finish loading in the browser"
    assert int(m.group(1)) >= 6 and m.group(1) == m.group(2)


@pytest.mark.sumo
def test_ite_clearances_drive_the_actuator_and_check_timing_reports_short_ones(tmp_path):
    from citybrain.cli import main
    from brain.timing import Timing
    from sim.backend import SumoBackend
    from sim.clearance import check_timing, with_ite_clearances
    from sim.loop import run_scenario
    from sim.scenario import load_scenario

    sc = load_scenario("arterial")
    with SumoBackend(sc) as b:
        net, _ = b.network()
        ite = with_ite_clearances(b.ts, net)
        found = check_timing(b.ts)
    for x in ite.intersections:  # 50 km/h approaches: 1 + 13.89 / 6.1 = 3.28 s yellow; junction + 6 m at 13.89 m/s
        assert x.yellow_s == pytest.approx(3.277, abs=0.01)
        assert 1.0 <= x.all_red_s <= 4.0
    rules = {f["rule"] for f in found}
    assert "ITE all-red after yellow" in rules and any(r.startswith("ITE yellow") for r in rules)
    assert all(f["have"] < (f["need"] if isinstance(f["need"], float) else 99) for f in found if f["rule"] != "yellow 3-6 s")
    rec = run_scenario(sc, "max-pressure", timing=Timing(clearance="ite"), end=600)
    base = run_scenario(sc, "max-pressure", end=600)
    assert rec.safety_violations == 0
    assert rec.avg_delay_s > base.avg_delay_s  # longer clearances cost time
    assert main(["check-timing", "--scenario", "arterial", "--json", str(tmp_path / "f.json")]) == 4
