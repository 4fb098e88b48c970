"""The layers the imports prove: the import-linter contracts in pyproject.toml hold, and break
when a stage imports downstream of itself."""

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("citybrain", "wire", "brain", "vision", "sim", "scenarios", "benchmarks")
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(where: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(LINT), "--config", str(where / "pyproject.toml"), "--no-cache"], cwd=where,
                          capture_output=True, text=True, env={"PYTHONPATH": str(where), "PATH": "/usr/bin:/bin"},
                          timeout=600)


def test_the_import_contracts_hold():
    r = _lint(ROOT)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "5 kept, 0 broken" in r.stdout


def test_a_decision_core_importing_the_simulator_breaks_the_contract(tmp_path):
    for p in PACKAGES:
        shutil.copytree(ROOT / p, tmp_path / p, ignore=shutil.ignore_patterns("*.pt", "*.onnx", "*.xml", "*.gz",
                                                                           "__pycache__", "*.md", "*.json"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    hcm = tmp_path / "brain" / "hcm.py"
    hcm.write_text(hcm.read_text() + "\nfrom sim.loop import run_scenario  # noqa\n")
    r = _lint(tmp_path)
    assert r.returncode == 1
    assert "the decision core needs no simulator" in r.stdout and "BROKEN" in r.stdout
    assert "brain.hcm -> sim.loop" in r.stdout
