"""Scenarios from outside the project, read as SUMO means them: SUMO's ``Y`` is a yellow, the
city's own programs' findings are the programs' (by rule, signal and phase pair, under a named
profile), and every controller of a comparison runs under the same rules."""

import json
import subprocess
import sys

import pytest

from sim.loop import run_scenario
from sim.scenario import load_scenario

pytestmark = pytest.mark.sumo


def cli(*args):
    return subprocess.run([sys.executable, "-m", "citybrain.cli", *args], capture_output=True, text=True, timeout=300)


def test_sumorl_3x3_major_yellow_is_yellow_and_its_2s_is_below_the_profile(corpus, tmp_path):
    out = tmp_path / "f.json"
    p = cli("check-timing", "--scenario", str(corpus / "sumorl-3x3"), "--json", str(out))
    assert p.returncode == 4
    monitor = [f for f in json.loads(out.read_text()) if f["have"] is None]  # what the monitor finds
    assert monitor and {f["rule"] for f in monitor} == {"yellow-below-minimum"}
    assert all(f["detail"].endswith("yellow 2s < 3s") for f in monitor)
    assert {f["tls"] for f in monitor} == {str(k) for k in range(9)}


def test_fixed_time_under_the_default_rules_shows_3s_yellows_and_only_the_as_written_finding(corpus):
    rec = run_scenario(load_scenario(corpus / "sumorl-3x3"), "fixed", end=600.0)
    assert rec.safety_violations == 0 and rec.vehicles > 100
    assert {(f["rule"], f["source"]) for f in rec.program_findings} == {("yellow-below-minimum", "program as written")}
    mpc = run_scenario(load_scenario(corpus / "sumorl-3x3"), "mpc", end=600.0)
    assert mpc.provenance["timing"] == rec.provenance["timing"]  # one set of rules for both
    assert mpc.safety_violations == 0


def test_bolognas_permissive_turns_are_the_programs_finding_under_mutcd_only(corpus, tmp_path):
    out = tmp_path / "f.json"
    assert cli("check-timing", "--scenario", str(corpus / "bologna-acosta"), "--json", str(out)).returncode == 4
    mutcd = {(f["tls"], tuple(f["phases"])) for f in json.loads(out.read_text())
             if f["rule"] == "no-yellow-before-permissive"}
    assert mutcd == {("221", (3, 4)), ("221", (8, 9)), ("235", (9, 10)), ("235", (13, 0))}
    cli("check-timing", "--scenario", str(corpus / "bologna-acosta"), "--profile", "eu", "--json", str(out))
    assert not [f for f in json.loads(out.read_text()) if f["rule"] == "no-yellow-before-permissive"]


def test_bolognas_programs_are_read_into_choosable_greens_with_their_own_transitions(corpus):
    from sim.backend import SumoBackend

    with SumoBackend(load_scenario(corpus / "bologna-acosta")) as b:
        net, programs = b.network()
        x = net.intersections[net.index("210")]
        assert [(p.program_index, p.duration) for p in x.phases] == [(0, 34), (4, 27), (12, 10)]
        steps = b.applied["210"].transitions[(0, 1)]  # the city's own: 5 s and 3 s yellows, 2 s all-red
        assert [d for _, d in steps] == [5, 3, 2]
        assert x.change(0, 1) == 10


def test_a_run_of_the_citys_programs_keeps_its_findings_apart_from_ours(corpus):
    fixed = run_scenario(load_scenario(corpus / "bologna-acosta"), "fixed", end=900.0)
    assert fixed.safety_violations == 0  # SUMO ran the city's programs: nothing of ours to count
    shown = [f for f in fixed.program_findings if f["source"] == "run"]
    assert shown and {f["rule"] for f in shown} == {"no-yellow-before-permissive"}
    assert all(f["tls"] in ("221", "235") and f["count"] > 0 for f in shown)
    mpc = run_scenario(load_scenario(corpus / "bologna-acosta"), "mpc", end=900.0)
    assert mpc.safety_violations == 0 and not [f for f in mpc.program_findings if f["source"] == "run"]
