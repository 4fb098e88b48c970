"""Every form of scenario SUMO accepts runs as SUMO runs it, and nothing is written into its folder."""

import gzip
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sim.loop import run_scenario
from sim.scenario import ScenarioError, library_dir, load_scenario, unique_names

pytestmark = pytest.mark.sumo

SINGLE = library_dir() / "single"
TOOLS = Path(__import__("sumo").SUMO_HOME) / "tools"


def _copy_single(dest: Path, gz: bool = False) -> tuple[str, str]:
    dest.mkdir(parents=True, exist_ok=True)
    net, rou = "single.net.xml", "single.rou.xml"
    if gz:
        for name in (net, rou):
            with open(SINGLE / name, "rb") as f, gzip.open(dest / (name + ".gz"), "wb") as g:
                g.write(f.read())
        return net + ".gz", rou + ".gz"
    shutil.copy(SINGLE / net, dest / net)
    shutil.copy(SINGLE / rou, dest / rou)
    return net, rou


def _snapshot(folder: Path) -> dict:
    return {p.relative_to(folder): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


def cli(*args, timeout=300, **kw):
    return subprocess.run([sys.executable, "-m", "citybrain.cli", *args], capture_output=True, text=True, timeout=timeout,
                          **kw)


def test_any_config_name_synonyms_gzip_and_hms_times(tmp_path):
    """A RiLSA-style ``run.sumo.cfg``: root ``<c>``, SUMO's short option names, gzipped files, an
    ``H:M:S`` end; the scenario is named after its folder (``run`` says nothing)."""
    net, rou = _copy_single(tmp_path / "junction-7", gz=True)
    cfg = tmp_path / "junction-7" / "run.sumo.cfg"
    cfg.write_text(f'<c><net value="{net}"/><r value="{rou}"/><b value="0"/><e value="0:05:00"/></c>')
    s = load_scenario(tmp_path / "junction-7")
    assert s.config == cfg.resolve() and s.name == "junction-7"
    assert (s.begin, s.end) == (0.0, 300.0) and s.net.name == "single.net.xml.gz"
    rec = run_scenario(s, "max-pressure")
    assert rec.sim_s == 300 and rec.vehicles > 50 and rec.safety_violations == 0 and rec.complete


def test_a_folder_with_a_network_and_routes_but_no_config(tmp_path):
    _copy_single(tmp_path / "plain")
    s = load_scenario(tmp_path / "plain")
    assert s.config is None and s.name == "plain" and s.end is None
    rec = run_scenario(s, "fixed", end=240.0)
    assert rec.sim_s == 240 and rec.vehicles > 30
    p = cli("run", "--net", str(tmp_path / "plain" / "single.net.xml"), "--routes",
            str(tmp_path / "plain" / "single.rou.xml"), "--controller", "greedy", "--end", "120")
    assert p.returncode == 0, p.stderr
    assert "scenario            single" in p.stdout


def test_traci_and_gui_options_are_ignored_with_a_note_and_outputs_go_to_the_run(tmp_path):
    """``<remote-port>`` made the run wait for a TraCI client forever; a scenario's own outputs
    (its summary, its detectors' files) went into its folder."""
    folder = tmp_path / "scen"
    net, rou = _copy_single(folder)
    (folder / "det.add.xml").write_text('<additional><e1Detector id="d" lane="top0A0.260.00_1" pos="10" '
                                        'period="60" file="e1.xml"/></additional>')
    (folder / "s.sumocfg").write_text(
        f'<configuration><input><net-file value="{net}"/><route-files value="{rou}"/>'
        '<additional-files value="det.add.xml"/></input><time><begin value="0"/><end value="200"/></time>'
        '<traci_server><remote-port value="8813"/></traci_server><gui_only><start value="true"/></gui_only>'
        '<output><summary-output value="summary.xml"/></output></configuration>')
    before = _snapshot(folder)
    keep = tmp_path / "run"
    p = cli("run", "--scenario", str(folder), "--controller", "mpc", "--keep-trips", str(keep), timeout=120)
    assert p.returncode == 0, p.stderr
    assert "<remote-port> is for TraCI clients; ignored" in p.stderr
    assert "summary-output" in p.stderr and "det.add.xml: e1.xml" in p.stderr
    assert _snapshot(folder) == before  # nothing written into the scenario's folder
    assert (keep / "scenario-outputs" / "summary.xml").stat().st_size > 0
    assert "<interval" in (keep / "scenario-outputs" / "e1.xml").read_text()


def test_a_read_only_scenario_folder_runs(tmp_path):
    folder = tmp_path / "ro"
    _copy_single(folder)
    (folder / "ro.sumocfg").write_text('<configuration><input><net-file value="single.net.xml"/><route-files '
                                       'value="single.rou.xml"/></input><time><end value="120"/></time><output>'
                                       '<tripinfo-output value="trips.xml"/></output></configuration>')
    before = _snapshot(folder)
    for p in [folder, *folder.iterdir()]:
        p.chmod(0o555 if p.is_dir() else 0o444)
    try:
        rec = run_scenario(load_scenario(folder), "webster")
    finally:
        folder.chmod(0o755)
    assert rec.complete and rec.sim_s == 120
    assert _snapshot(folder) == before


def test_no_end_runs_until_every_vehicle_has_arrived(tmp_path, caplog):
    folder = tmp_path / "open"
    net, _ = _copy_single(folder)
    (folder / "few.rou.xml").write_text('<routes><vehicle id="a" depart="0"><route edges="top0A0.260.00 '
                                        'A0bottom0"/></vehicle><vehicle id="b" depart="30"><route '
                                        'edges="left0A0.260.00 A0right0"/></vehicle></routes>')
    (folder / "open.sumocfg").write_text(f'<configuration><input><net-file value="{net}"/><route-files '
                                         'value="few.rou.xml"/></input></configuration>')
    s = load_scenario(folder / "open.sumocfg")
    assert s.end is None
    rec = run_scenario(s, "max-pressure")
    assert rec.throughput == 2 == rec.vehicles and rec.provenance["end_reason"] == "all arrived"
    assert 30 < rec.sim_s < 200 and not rec.warnings
    assert "running until every vehicle due has arrived" in caplog.text


def test_no_end_is_capped_at_the_ceiling_with_a_warning(tmp_path, monkeypatch):
    import sim.loop

    monkeypatch.setattr(sim.loop, "CEILING_S", 90.0)
    folder = tmp_path / "open"
    _copy_single(folder)
    s = load_scenario(folder)  # no configuration: no end
    rec = run_scenario(s, "greedy")
    assert rec.sim_s == 90 and rec.provenance["end_reason"] == "ceiling"
    assert any("vehicles were still under way at the ceiling" in w for w in rec.warnings)


def test_gui_without_a_display_is_one_clear_line():
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    p = cli("run", "--gui", "--end", "60", env=env, timeout=60)
    assert p.returncode == 2
    assert p.stderr.strip() == "citybrain: --gui needs a display (DISPLAY is not set); run without --gui, or " \
                               "under xvfb-run"


def test_two_configs_of_one_name_are_told_apart(tmp_path):
    for district in ("acosta", "pasubio"):
        net, rou = _copy_single(tmp_path / "bologna" / district)
        (tmp_path / "bologna" / district / "run.sumocfg").write_text(
            f'<configuration><input><net-file value="{net}"/><route-files value="{rou}"/></input>'
            '<time><end value="60"/></time></configuration>')
    for other in ("x", "y"):
        net, rou = _copy_single(tmp_path / other / "cross")
        (tmp_path / other / "cross" / "cross.sumocfg").write_text(
            f'<configuration><input><net-file value="{net}"/><route-files value="{rou}"/></input>'
            '<time><end value="60"/></time></configuration>')
    scens = [load_scenario(tmp_path / "bologna" / d) for d in ("acosta", "pasubio")]
    scens += [load_scenario(tmp_path / o / "cross") for o in ("x", "y")]
    assert [s.name for s in unique_names(scens)] == ["acosta", "pasubio", "x/cross", "y/cross"]
    with pytest.raises(ScenarioError, match="given twice"):
        unique_names([scens[0], scens[0]])
    p = cli("bench", "--scenario", str(tmp_path / "x" / "cross"), "--scenario", str(tmp_path / "y" / "cross"),
            "--controller", "fixed", "--jobs", "2")
    assert p.returncode == 0, p.stderr
    assert "| x/cross | fixed |" in p.stdout and "| y/cross | fixed |" in p.stdout


@pytest.mark.slow
@pytest.mark.parametrize("level", ["cross", "grid6", "corridor", "square", "fkk_in"])
def test_sumos_game_levels_run(level):
    """SUMO's bundled game levels: 0.1-0.2 s steps, programs in additional files, a gzipped
    network (fkk_in), a tripinfo output of their own (square)."""
    s = load_scenario(TOOLS / "game" / f"{level}.sumocfg")
    assert s.step_length in (0.1, 0.2)
    rec = run_scenario(s, "mpc")
    assert rec.complete and rec.safety_violations == 0, rec.violation_kinds
    assert rec.sim_s == pytest.approx(s.end - s.begin) and rec.vehicles > 50 and rec.throughput > 40
    assert rec.provenance["step_length_s"] == pytest.approx(s.step_length)
    if level == "fkk_in":  # its gneJ21's own greens conflict by SUMO's matrices: left to its program
        assert rec.intersections == 1 and any("gneJ21" in w for w in rec.warnings)
        assert {f["rule"] for f in rec.program_findings} >= {"conflicting-greens"}
    else:
        assert rec.intersections >= 1


@pytest.mark.parametrize("example", [1, 2, 3, 4])
def test_rilsa_configs_are_read_and_the_missing_demand_is_named(example):
    folder = TOOLS / "sumolib" / "scenario" / "scenarios" / "RealWorld" / f"RiLSA_example{example}"
    with pytest.raises(ScenarioError) as e:
        load_scenario(folder)
    msg = str(e.value)
    assert msg == f"{folder / 'flows.rou.xml'}: route-file named in run.sumo.cfg does not exist"


def test_options_that_would_stop_or_move_a_run_are_left_out(tmp_path):
    """``<save-configuration>`` makes SUMO write a file and exit without running; a prefix moves
    every output: both are left out with a note; a run folder inside the scenario is refused."""
    folder = tmp_path / "scen"
    net, rou = _copy_single(folder)
    (folder / "s.sumocfg").write_text(
        f'<configuration><input><net-file value="{net}"/><route-files value="{rou}"/></input>'
        '<time><end value="120"/></time><configuration><save-configuration value="again.sumocfg"/></configuration>'
        '<output><output-prefix value="out/"/><summary-output value="sum.xml"/></output></configuration>')
    before = _snapshot(folder)
    p = cli("run", "--scenario", str(folder), "--controller", "greedy", timeout=120)
    assert p.returncode == 0, p.stderr
    assert "<output-prefix> ignored" in p.stderr
    assert "sim_s               120" in p.stdout
    assert _snapshot(folder) == before
    p = cli("run", "--scenario", str(folder), "--keep-trips", str(folder / "mine"), timeout=60)
    assert p.returncode == 2 and "inside the scenario's folder" in p.stderr


def test_two_generic_configurations_in_one_folder_keep_apart(tmp_path):
    net, rou = _copy_single(tmp_path / "d" / "x")
    for name in ("run", "sim"):
        (tmp_path / "d" / "x" / f"{name}.sumocfg").write_text(
            f'<configuration><input><net-file value="{net}"/><route-files value="{rou}"/></input></configuration>')
    scens = [load_scenario(tmp_path / "d" / "x" / f"{n}.sumocfg") for n in ("run", "sim")]
    names = [s.name for s in unique_names(scens)]
    assert names == ["x/run.sumocfg", "x/sim.sumocfg"]
