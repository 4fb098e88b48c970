"""Benchmark suites: the file, its halves and seeds, `bench --suite`, and the judgement of mpc."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.suite import SuiteError, judgement, read_suite

ROOT = Path(__file__).resolve().parent.parent
SUITE = ROOT / "benchmarks" / "suites" / "generalisation.toml"


def _write(tmp_path, body: str) -> Path:
    f = tmp_path / "s.toml"
    f.write_text(body)
    return f


HEAD = 'root = "{root}"\ncontrollers = ["fixed", "mpc"]\ntuning_seeds = [1, 2]\nchecking_seeds = [3]\n'


def test_the_committed_suite_has_two_disjoint_halves_covering_every_family():
    s = read_suite(SUITE)
    tuning, checking = s.select("tuning"), s.select("checking")
    assert len(tuning) + len(checking) == len(s.entries) >= 28
    assert set(s.tuning_seeds) == {1, 2, 3} and set(s.checking_seeds) == {4, 5, 6}
    assert s.seeds("tuning") == [1, 2, 3] and s.seeds("all") == s.seeds("checking") == [4, 5, 6]
    for family in ("/scenarios/stress/", "/resco/", "/corpus/", "/scenarios/grid", "/stress/rand-"):
        assert any(family in str(e.path) for e in tuning), family
        assert any(family in str(e.path) for e in checking), family
    assert {"fixed", "actuated", "max-pressure", "greedy", "webster", "mpc"} == set(s.controllers)


@pytest.mark.parametrize("body, needle", [
    ("", "controllers must be"),
    ("tuning_seeds = [1]\nchecking_seeds = [1]\ncontrollers = ['mpc']\n[[scenario]]\npath = 'x'\nhalf = 'tuning'\n",
     "share [1]"),
    ("colour = 1\n", "unknown key(s) colour"),
    (HEAD + "[[scenario]]\npath = 'single'\nhalf = 'both'\n", "half must be tuning or checking"),
    (HEAD + "[[scenario]]\npath = 'nowhere'\nhalf = 'tuning'\n", "nowhere does not exist"),
    (HEAD + "[[scenario]]\npath = 'single'\nhalf = 'tuning'\n[[scenario]]\npath = 'single'\nhalf = 'checking'\n",
     "listed twice"),
    ("name = [", "not valid TOML"),
])
def test_a_bad_suite_file_is_one_line_naming_it(tmp_path, body, needle):
    f = _write(tmp_path, body.replace("{root}", str(ROOT / "scenarios")))
    with pytest.raises(SuiteError) as e:
        read_suite(f)
    assert str(f) in str(e.value) and needle in str(e.value)


def _row(scen, ctrl, delay, jams=0):
    return {"scenario": scen, "controller": ctrl, "avg_delay_s": delay,
            "runs": [{"seed": k, "gridlocks": [{"tls": "a", "since_s": 0.0}] if k < jams else []} for k in range(3)]}


def test_the_judgement_counts_wins_margins_the_program_and_gridlocks():
    rows = [_row("a", "fixed", 30.0), _row("a", "max-pressure", 20.0), _row("a", "mpc", 19.0),
            _row("b", "fixed", 30.0), _row("b", "max-pressure", 20.0), _row("b", "mpc", 20.5),
            _row("c", "fixed", 30.0, jams=1), _row("c", "mpc", 33.0, jams=2),
            _row("d", "fixed", 30.0), _row("d", "mpc", 25.0, jams=1)]
    text = judgement(rows)
    assert "| a | 19.00 | max-pressure | 20.00 | 0.950 | 0.633 | 0 | 0 |" in text
    assert "| c | 33.00 | fixed | 30.00 | 1.100 | 1.100 | 2 | 1 |" in text
    assert "lowest of all on 2 of 4 scenarios (50%)" in text
    assert "within 5% of the best other on 3 of 4" in text
    assert "not worse than the scenario's own program (`fixed`) on 3 of 4" in text
    assert "without a gridlocked run on 2 of the 3 scenarios whose own program has none" in text


@pytest.mark.sumo
def test_bench_runs_a_suite_half_with_its_seeds_and_writes_the_judgement(tmp_path):
    f = _write(tmp_path, HEAD.replace("{root}", str(ROOT / "scenarios"))
               + "[[scenario]]\npath = 'single'\nhalf = 'tuning'\n[[scenario]]\npath = 'grid4x4'\nhalf = 'checking'\n")
    js, md = tmp_path / "r.json", tmp_path / "r.md"
    p = subprocess.run([sys.executable, "-m", "citybrain.cli", "bench", "--suite", str(f), "--half", "tuning",
                        "--end", "300", "--json", str(js), "--markdown", str(md), "--jobs", "2"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    rows = json.loads(js.read_text())
    assert {(r["scenario"], r["controller"]) for r in rows} == {("single", "fixed"), ("single", "mpc")}
    assert all(r["seeds"] == [1, 2] for r in rows)
    text = md.read_text()
    assert text.startswith("# Suite s (tuning), seeds 1, 2")
    assert "## How mpc stands" in text and "| single |" in text and "Halves: `single` tuning." in text
    assert "How mpc stands" in p.stdout
    p = subprocess.run([sys.executable, "-m", "citybrain.cli", "bench", "--half", "tuning", "--scenario", "single"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "--half goes with --suite" in p.stderr


def test_the_stress_set_is_there_and_is_what_it_says():
    import re

    from scenarios.stress import INCIDENT_LANE, INCIDENT_S, STRESS, stress_dir
    from sim.scenario import load_scenario

    for spec in STRESS:
        sc = load_scenario(stress_dir() / spec.name)
        assert sc.end == 3600.0, spec.name
        net = sc.net.read_text()
        if spec.kind == "rand":
            assert 'type="traffic_light"' in net and "cluster_" in net, spec.name
            greens = [len([p for p in re.findall(r'state="([^"]+)"', body) if "y" not in p.lower()])
                      for body in re.findall(r"<tlLogic .*?</tlLogic>", net, re.S)]
            assert max(greens) >= 5 and min(greens) >= 2, (spec.name, greens)
        if spec.kind == "incident":
            assert f'<lane id="{INCIDENT_LANE}"' in net
            add = next(a for a in sc.additional if a.name.endswith(".add.xml")).read_text()
            assert f'begin="{INCIDENT_S[0]:g}" end="{INCIDENT_S[1]:g}"' in add and INCIDENT_LANE in add
        if spec.kind == "scaled":
            base = load_scenario(spec.base)
            n = len(re.findall(r"<vehicle ", sc.routes[0].read_text()))
            n0 = len(re.findall(r"<vehicle ", base.routes[0].read_text()))
            assert n / n0 == pytest.approx(spec.factor, rel=0.08), spec.name
