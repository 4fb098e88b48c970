"""A result that cannot be trusted says so (a warning on stderr and a field in the record, or a
nonzero exit); bad input fails before anything runs; a signal ends the run and keeps it."""

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sim.scenario import library_dir

pytestmark = pytest.mark.sumo

SINGLE = library_dir() / "single"
BIN = Path(__import__("sumo").SUMO_HOME) / "bin"


def cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "citybrain.cli", *args], capture_output=True, text=True, timeout=timeout)


def _scenario(folder: Path, routes: str, time_xml: str = '<begin value="0"/><end value="300"/>',
              net: Path | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(net or SINGLE / "single.net.xml", folder / "net.net.xml")
    (folder / "demand.rou.xml").write_text(routes)
    cfg = folder / "s.sumocfg"
    cfg.write_text('<configuration><input><net-file value="net.net.xml"/><route-files value="demand.rou.xml"/>'
                   f'</input><time>{time_xml}</time></configuration>')
    return cfg


ROUTE = '<route id="ns" edges="top0A0.260.00 A0bottom0"/>'


@pytest.mark.parametrize("end,needle", [
    ("50", "--end 50 is not after the scenario's begin 100 (s.sumocfg): nothing would run"),
    ("-5", "--end -5: must be a time of day in seconds, at least 0"),
])
def test_a_bad_end_is_exit_2(tmp_path, end, needle):
    cfg = _scenario(tmp_path, f'<routes>{ROUTE}<vehicle id="a" depart="150" route="ns"/></routes>',
                    '<begin value="100"/><end value="400"/>')
    p = cli("run", "--scenario", str(cfg), "--end", end)
    assert p.returncode == 2 and p.stderr.strip() == f"citybrain: {needle}"


def test_an_end_past_the_configs_is_run_to(tmp_path):
    js = tmp_path / "r.json"
    p = cli("run", "--scenario", "single", "--controller", "fixed", "--end", "3900", "--json", str(js))
    assert p.returncode == 0, p.stderr
    rec = json.loads(js.read_text())
    assert rec["sim_s"] == 3900 and rec["provenance"]["end_reason"] == "--end"


def test_most_demand_never_inserted_is_a_warning_and_a_field(tmp_path):
    cfg = _scenario(tmp_path, f'<routes>{ROUTE}<flow id="f" route="ns" begin="0" end="60" number="3000"/></routes>',
                    '<begin value="0"/><end value="120"/>')
    js = tmp_path / "r.json"
    p = cli("run", "--scenario", str(cfg), "--controller", "max-pressure", "--json", str(js))
    assert p.returncode == 0, p.stderr
    rec = json.loads(js.read_text())
    assert rec["vehicles"] == 3000 and rec["not_inserted"] > 2500
    assert any("vehicles due were never inserted" in w for w in rec["warnings"])
    assert "citybrain: warning: " in p.stderr and "never inserted" in p.stderr
    entry = rec["insertion"]["by_entry"]["top0A0.260.00"]
    assert entry["waiting_at_end"] > 2500 and entry["mean_insert_delay_s"] > 10


def test_no_controlled_signal_is_a_warning(tmp_path):
    net = tmp_path / "grid.net.xml"
    subprocess.run([str(BIN / "netgenerate"), "--grid", "--grid.number=2", "--grid.length=200", "-o", str(net),
                    "--no-turnarounds"], check=True, capture_output=True)
    cfg = _scenario(tmp_path / "s", '<routes><route id="r" edges="A0A1 A1B1"/><flow id="f" route="r" begin="0" '
                                    'end="100" number="20"/></routes>', net=net)
    js = tmp_path / "r.json"
    p = cli("run", "--scenario", str(cfg), "--controller", "mpc", "--json", str(js))
    assert p.returncode == 0, p.stderr
    rec = json.loads(js.read_text())
    assert rec["intersections"] == 0 and rec["throughput"] == 20
    assert rec["warnings"] == ["no signal with two or more green phases: nothing was controlled (the figures are "
                               "the scenario's own programs)"]


@pytest.mark.parametrize("routes,needle", [
    (f'<routes>{ROUTE}<vehicle id="a" depart="0" route="ns"/><vehicle id="b" depart="5" route="ns"/></routes>',
     "none of the 2 vehicles arrived"),
    (f'<routes>{ROUTE}<vehicle id="late" depart="500" route="ns"/></routes>',
     "no vehicle was due in the simulated window: an empty run"),
])
def test_nothing_arrived_or_nothing_due_is_a_warning(tmp_path, routes, needle):
    cfg = _scenario(tmp_path, routes, '<begin value="0"/><end value="20"/>')
    js = tmp_path / "r.json"
    p = cli("run", "--scenario", str(cfg), "--controller", "fixed", "--json", str(js))
    assert p.returncode == 0, p.stderr
    assert needle in json.loads(js.read_text())["warnings"] and needle in p.stderr


def test_an_unwritable_output_fails_before_the_run(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    t0 = time.perf_counter()
    p = cli("run", "--scenario", "single", "--json", str(blocker / "r.json"))
    assert p.returncode == 2 and p.stderr.startswith(f"citybrain: --json {blocker / 'r.json'}: cannot be written")
    assert time.perf_counter() - t0 < 30  # refused up front, not after an hour of simulation
    for opt in ("--json", "--markdown"):
        p = cli("bench", "--scenario", "single", opt, str(blocker / "x"))
        assert p.returncode == 2 and opt in p.stderr and len(p.stderr.strip().splitlines()) == 1


def _start_and_signal(args, sig, after_line="simulated"):
    p = subprocess.Popen([sys.executable, "-m", "citybrain.cli", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    for line in p.stderr:  # once it is under way
        if after_line in line:
            break
    p.send_signal(sig)
    out, err = p.communicate(timeout=120)
    return p.returncode, out, err


@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_ends_the_run_at_the_next_step_and_keeps_it(tmp_path, sig, code):
    js = tmp_path / "r.json"
    rc, _, err = _start_and_signal(["run", "--scenario", "single", "--controller", "mpc", "--json", str(js)], sig)
    assert rc == code, err
    rec = json.loads(js.read_text())
    name = signal.Signals(sig).name
    assert rec["error"].startswith(f"stopped by {name} at t=") and not rec["complete"]
    assert 60 <= rec["sim_s"] < 3600 and rec["vehicles"] > 20 and rec["avg_delay_s"] > 0
    assert f"stopped by {name}" in err and "keeps what was measured" in err


def test_a_signal_ends_a_benchmark_and_keeps_what_it_measured(tmp_path):
    js = tmp_path / "b.json"
    rc, _, err = _start_and_signal(["bench", "--scenario", "grid4x4", "--controller", "mpc", "--controller", "fixed",
                                    "--seed", "1", "--seed", "2", "--jobs", "2", "--json", str(js)], signal.SIGTERM,
                                   after_line="runs")
    assert rc == 143, err
    runs = [r for row in json.loads(js.read_text()) for r in row["runs"]]
    finished = [r for r in runs if r.get("error") is None]
    stopped = [r for r in runs if (r.get("error") or "").startswith("stopped by SIGTERM")]
    assert finished and all(r["sim_s"] == 3600 for r in finished)
    assert len(finished) + len(stopped) == len(runs) < 4  # no new run was started after the signal
    # a run under way kept its figures (one stopped before its first step has none, and says so)
    assert all(r["vehicles"] > 0 and 0 < r["sim_s"] < 3600 for r in stopped if r.get("sim_s"))


def test_exit_codes_are_in_the_help():
    for cmd in ((), ("run",), ("bench",)):
        p = cli(*cmd, "--help")
        text = " ".join(p.stdout.split())
        assert "3 safety violations by a citybrain controller" in text and "130/143 stopped by SIGINT/SIGTERM" in text
