"""The citybrain command line, run as a user would (a real subprocess, real SUMO)."""

import json
import subprocess
import sys

import pytest

from brain.controllers.mpc import MpcConfig

pytestmark = pytest.mark.sumo

REQUIRED = {"scenario", "controller", "avg_delay_s", "avg_trip_time_s", "avg_wait_s", "throughput",
            "vehicles", "safety_violations", "decisions", "wall_s"}


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "citybrain.cli", *args], capture_output=True, text=True,
                          timeout=300, cwd=cwd)


def test_bench_writes_json_and_markdown(tmp_path):
    js, md = tmp_path / "r.json", tmp_path / "r.md"
    p = cli("bench", "--scenario", "single", "--controller", "fixed", "--controller", "max-pressure",
            "--seed", "1", "--seed", "2", "--end", "600", "--json", str(js), "--markdown", str(md), "--jobs", "2")
    assert p.returncode == 0, p.stderr
    rows = json.loads(js.read_text())
    assert [(r["scenario"], r["controller"]) for r in rows] == [("single", "fixed"), ("single", "max-pressure")]
    for r in rows:
        assert REQUIRED <= set(r)
        assert r["seeds"] == [1, 2] and len(r["runs"]) == 2
        assert r["safety_violations"] == 0 and r["vehicles"] > 100
        assert r["avg_delay_s"] == pytest.approx(sum(x["avg_delay_s"] for x in r["runs"]) / 2)
    assert rows[0]["ratio_to_fixed"] == 1.0
    assert rows[1]["decisions"] == 2 * 60          # 600 s / 10 s, two seeds
    table = md.read_text()
    assert "| single | max-pressure |" in table and "| single | fixed |" in table
    assert "| single | fixed |" in p.stdout


def test_run_prints_and_writes_the_record(tmp_path):
    js = tmp_path / "one.json"
    p = cli("run", "--scenario", "single", "--controller", "greedy", "--end", "300", "--json", str(js))
    assert p.returncode == 0, p.stderr
    rec = json.loads(js.read_text())
    assert REQUIRED <= set(rec) and rec["controller"] == "greedy" and rec["sim_s"] == 300
    assert "avg_delay_s" in p.stdout


def test_plain_sumo_row_matches_fixed(tmp_path):
    js = tmp_path / "r.json"
    p = cli("bench", "--scenario", "single", "--controller", "fixed", "--plain-sumo", "--json", str(js))
    assert p.returncode == 0, p.stderr
    fixed, plain = json.loads(js.read_text())
    assert plain["controller"] == "plain-sumo"
    assert plain["avg_delay_s"] == pytest.approx(fixed["avg_delay_s"], rel=1e-9)


@pytest.mark.parametrize("args,needle", [
    (["run", "--scenario", "/no/such/place"], "/no/such/place: no such scenario"),
    (["run", "--controller", "nope"], "unknown controller 'nope'"),
    (["bench", "--scenario", "single", "--scenario", "/no/such.sumocfg"], "/no/such.sumocfg: no such scenario"),
    (["run", "--min-green", "50", "--max-green", "10"], "below min_green"),
])
def test_bad_input_is_one_clear_line(args, needle):
    p = cli(*args)
    assert p.returncode == 2
    err = p.stderr.strip()
    assert needle in err and len(err.splitlines()) == 1, err


def test_a_service_port_in_use_is_one_clear_line():
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        p = cli("serve", "--scenario", "single", "--controller", "greedy", "--intake", f"tcp://127.0.0.1:{port}")
    assert p.returncode == 2
    err = p.stderr.strip()
    assert "Address already in use" in err and len(err.splitlines()) == 1, err


def test_broken_route_file_named_before_anything_runs(tmp_path):
    (tmp_path / "x.sumocfg").write_text(
        '<configuration><input><net-file value="x.net.xml"/><route-files value="x.rou.xml"/></input></configuration>')
    (tmp_path / "x.net.xml").write_text("<net/>")
    (tmp_path / "x.rou.xml").write_text("<routes><vehicle")
    p = cli("bench", "--scenario", str(tmp_path))
    assert p.returncode == 2
    assert f"{tmp_path}/x.rou.xml: route-file is not valid XML" in p.stderr


def test_mpc_options_from_the_command_line(tmp_path):
    out = tmp_path / "r.json"
    r = cli("run", "--controller", "mpc", "--mpc", "depth=1", "--mpc", "horizon=40", "--end", "300",
            "--json", str(out))
    assert r.returncode == 0, r.stderr
    rec = json.loads(out.read_text())
    # one decision per mpc interval (its own cadence, 3 s) over 300 s
    assert rec["controller"] == "mpc" and rec["safety_violations"] == 0
    assert rec["decisions"] == 300 / MpcConfig().interval == 100
    bad = cli("bench", "--controller", "greedy", "--mpc", "depth=1", "--end", "60")
    assert bad.returncode == 2 and "not among the controllers" in bad.stderr
    typo = cli("run", "--controller", "mpc", "--mpc", "dept=1", "--end", "60")
    assert typo.returncode == 2 and "unknown mpc key(s): dept" in typo.stderr
