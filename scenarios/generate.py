"""Generator of the project's own scenario library, from SUMO's netgenerate and randomTrips.

Every scenario is one hour with a shoulder-peak-shoulder demand: the insertion rate (vehicles
per hour entering the network) rises over the first half hour and falls over the second, in
six ten-minute steps of ``PROFILE`` times the scenario's peak rate. Trips start and end at the
network's fringe. Seeds are fixed, so the same SUMO version regenerates the same files.

Usage:
    citybrain scenarios generate [--only NAME] [--out DIR]
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SPECS", "ScenarioSpec", "generate", "PROFILE"]

PROFILE = (0.6, 0.8, 1.0, 1.0, 0.8, 0.6)
"""Relative demand in six ten-minute intervals: shoulder, peak, shoulder."""


@dataclass(frozen=True)
class ScenarioSpec:
    """How one scenario is generated.

    Attributes:
        name: folder and file stem.
        nx, ny: signalised junctions along x and y.
        spacing: distance between junctions (m).
        arms: length of the approach arms attached at the fringe (m).
        lanes: lanes per direction.
        peak_veh_h: vehicles per hour entering the network at the peak.
        seed: randomTrips' seed.
        about: one line for the README.
        peds_h: pedestrians per hour at the peak; above 0 the network gets sidewalks and
            signalised crossings, and the scenario a second route file of walks.
    """

    name: str
    nx: int
    ny: int
    spacing: float
    arms: float
    lanes: int
    peak_veh_h: float
    seed: int
    about: str
    peds_h: float = 0.0


SPECS = (
    ScenarioSpec("single", 1, 1, 300.0, 300.0, 2, 1900.0, 11,
                 "one 4-arm intersection, 2 lanes per direction with turn pockets (the demo's default)"),
    ScenarioSpec("arterial", 5, 1, 300.0, 250.0, 2, 2600.0, 12,
                 "a corridor of 5 signals 300 m apart with side streets"),
    ScenarioSpec("grid4x4", 4, 4, 250.0, 200.0, 1, 2200.0, 13,
                 "a 4x4 grid of signals, one lane per direction"),
    ScenarioSpec("grid10x10", 10, 10, 200.0, 150.0, 1, 4500.0, 14,
                 "a 10x10 grid of signals, for scale"),
    ScenarioSpec("crosswalk", 1, 1, 300.0, 300.0, 2, 1600.0, 15,
                 "one 4-arm intersection with sidewalks, four signalised crosswalks and pedestrians",
                 peds_h=600.0),
)

DURATION_S = 3600


def _tool(name: str) -> str:
    from sumo import SUMO_HOME

    return str(Path(SUMO_HOME) / "bin" / name)


def _run(cmd: list[str]) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f"{Path(cmd[0]).name} failed: {' | '.join(tail)}")


def _net(spec: ScenarioSpec, path: Path) -> None:
    _run([
        _tool("netgenerate"), "--grid",
        "--grid.x-number", str(spec.nx), "--grid.y-number", str(spec.ny),
        "--grid.x-length", str(spec.spacing), "--grid.y-length", str(spec.spacing),
        "--grid.attach-length", str(spec.arms),
        "--default.lanenumber", str(spec.lanes), "--default.speed", "13.89",
        "--turn-lanes", "1", "--turn-lanes.length", "40",
        "--no-turnarounds", "true",
        # signals at the grid's junctions only: the fringe ends (one arm) stay plain
        "--tls.guess", "true", "--tls.guess.threshold", "30",
        "--tls.default-type", "static", "--tls.yellow.time", "3",
        # crossings: SUMO's 5 s clearance plus the 3 s yellow is less than a 16 m crossing takes at
        # 1.2 m/s (13.3 s) before the protected left turns across it; 11 s plus the yellow is not
        *(["--sidewalks.guess", "true", "--crossings.guess", "true", "--tls.crossing-clearance.time", "11"]
          if spec.peds_h > 0 else []),
        "--seed", str(spec.seed),
        "-o", str(path),
    ])


def _routes(spec: ScenarioSpec, net: Path, path: Path) -> None:
    from sumo import SUMO_HOME

    rates = [f"{spec.peak_veh_h * f:g}" for f in PROFILE]
    with tempfile.TemporaryDirectory() as tmp:
        trips = Path(tmp) / "trips.xml"
        _run([
            sys.executable, str(Path(SUMO_HOME) / "tools" / "randomTrips.py"),
            "-n", str(net), "-b", "0", "-e", str(DURATION_S),
            "--insertion-rate", *rates, "--binomial", "4",
            "--fringe-factor", "max", "--min-distance", str(spec.spacing),
            "--seed", str(spec.seed), "--prefix", f"{spec.name}_",
            "--trip-attributes", 'departLane="best" departSpeed="max"',
            "-o", str(trips), "-r", str(path), "--remove-loops", "--validate",
        ])
    for junk in path.parent.glob(path.name.replace(".rou.xml", ".rou.alt.xml")):
        junk.unlink()


def _walks(spec: ScenarioSpec, net: Path, path: Path) -> None:
    """Pedestrians walking between the fringe's sidewalks, on the same demand profile."""
    from sumo import SUMO_HOME

    with tempfile.TemporaryDirectory() as tmp:
        _run([
            sys.executable, str(Path(SUMO_HOME) / "tools" / "randomTrips.py"),
            "-n", str(net), "-b", "0", "-e", str(DURATION_S), "--pedestrians",
            "--insertion-rate", *[f"{spec.peds_h * f:g}" for f in PROFILE], "--binomial", "4",
            "--fringe-factor", "max", "--seed", str(spec.seed + 100), "--prefix", f"{spec.name}_ped_",
            "-o", str(Path(tmp) / "walks.xml"), "-r", str(path), "--validate",
        ])


def _config(spec: ScenarioSpec, path: Path) -> None:
    routes = f"{spec.name}.rou.xml" + (f",{spec.name}.ped.xml" if spec.peds_h > 0 else "")
    path.write_text(
        "<configuration>\n"
        "  <input>\n"
        f'    <net-file value="{spec.name}.net.xml"/>\n'
        f'    <route-files value="{routes}"/>\n'
        "  </input>\n"
        "  <time>\n"
        '    <begin value="0"/>\n'
        f'    <end value="{DURATION_S}"/>\n'
        "  </time>\n"
        "</configuration>\n"
    )


def generate(spec: ScenarioSpec, out: Path) -> Path:
    """Write ``spec``'s net, routes and config into ``out/<name>/``; returns the ``.sumocfg``."""
    folder = out / spec.name
    folder.mkdir(parents=True, exist_ok=True)
    net = folder / f"{spec.name}.net.xml"
    _net(spec, net)
    _routes(spec, net, folder / f"{spec.name}.rou.xml")
    if spec.peds_h > 0:
        _walks(spec, net, folder / f"{spec.name}.ped.xml")
    cfg = folder / f"{spec.name}.sumocfg"
    _config(spec, cfg)
    return cfg


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="citybrain scenarios generate", description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", action="append", choices=[s.name for s in SPECS], help="generate just this one")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent, help="library folder")
    args = ap.parse_args(argv)
    for spec in SPECS:
        if args.only and spec.name not in args.only:
            continue
        cfg = generate(spec, args.out)
        print(f"wrote {cfg}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
