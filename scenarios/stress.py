"""The generated stress set of the benchmark suite: oversaturation, irregular networks, an incident.

Made by the same generator as the own library (:mod:`scenarios.generate`), with fixed seeds, into
``scenarios/stress/<name>/``:

- ``single``, ``arterial`` and ``grid4x4`` at 1.3 and 1.6 times their peak demand (the same
  networks; trips drawn again at the higher rate): oversaturated at the peak.
- ``rand-1`` .. ``rand-3``: irregular networks from ``netgenerate --rand`` with close junctions
  joined into clusters (one signal over several nodes) and the multi-phase programs SUMO guesses
  for them (three to eight green phases).
- ``arterial-incident``: ``arterial-x1.3`` with one eastbound through lane at its fourth signal closed
  for 15 minutes mid-run (SUMO's ``closingLaneReroute``; vehicles merge into the other lane).

Usage:
    citybrain scenarios stress [--only NAME] [--out DIR]
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from scenarios.generate import DURATION_S, SPECS, ScenarioSpec, _config, _routes, _run, _tool, generate

__all__ = ["STRESS", "StressSpec", "generate_stress", "stress_dir"]


@dataclass(frozen=True)
class StressSpec:
    """One scenario of the stress set.

    Attributes:
        name: folder and file stem.
        kind: ``scaled`` (``base`` at ``factor`` times its demand), ``rand`` (an irregular network
            from ``seed``) or ``incident`` (``base`` with a lane closed).
        about: one line for the README.
        base: the own scenario it is made from (``scaled``, ``incident``).
        factor: demand factor (``scaled``).
        demand: the stress scenario whose routes it runs (``incident``).
        seed: netgenerate's and randomTrips' seed (``rand``).
        peak_veh_h: vehicles per hour entering at the peak (``rand``).
    """

    name: str
    kind: str
    about: str
    base: str = ""
    factor: float = 1.0
    demand: str = ""
    seed: int = 0
    peak_veh_h: float = 0.0


STRESS = (
    *(StressSpec(f"{b}-x{f:g}", "scaled", f"`{b}` at {f:g} times its peak demand", base=b, factor=f)
      for b in ("single", "arterial", "grid4x4") for f in (1.3, 1.6)),
    StressSpec("rand-1", "rand", "an irregular network (netgenerate --rand), clustered junctions",
               seed=21, peak_veh_h=1400.0),
    StressSpec("rand-2", "rand", "an irregular network (netgenerate --rand), clustered junctions",
               seed=23, peak_veh_h=1400.0),
    StressSpec("rand-3", "rand", "an irregular network (netgenerate --rand), clustered junctions",
               seed=24, peak_veh_h=1400.0),
    StressSpec("arterial-incident", "incident",
               "`arterial-x1.3` with an eastbound through lane at its fourth signal closed from 22:30 to 37:30",
               base="arterial", demand="arterial-x1.3"),
)

INCIDENT_LANE = "C0D0.260.00_1"
"""The closed lane of ``arterial-incident``: the inner eastbound through lane on the approach to
the fourth signal, beside its left-turn pocket (through traffic merges into the outer lane; the
side streets' turns onto the link keep their lanes, so every route stays valid)."""

INCIDENT_EDGES = "B0C0.260.00 C0D0"
"""Where vehicles learn of the closure: the two edges before it."""

INCIDENT_S = (1350.0, 2250.0)
"""When the lane is closed (s): 15 minutes in the middle of the hour."""


def stress_dir() -> Path:
    return Path(__file__).resolve().parent / "stress"


def _base(name: str) -> ScenarioSpec:
    return next(s for s in SPECS if s.name == name)


def _rand_net(spec: StressSpec, path: Path) -> None:
    _run([
        _tool("netgenerate"), "--rand",
        "--rand.iterations", "30", "--rand.min-distance", "20", "--rand.max-distance", "300",
        "--rand.connectivity", "0.9", "--rand.neighbor-dist5", "2", "--rand.neighbor-dist6", "0.5",
        "--default.lanenumber", "2", "--default.speed", "13.89",
        "--turn-lanes", "1", "--turn-lanes.length", "30", "--no-turnarounds", "true",
        # junctions closer than 50 m become one cluster under one signal
        "--junctions.join", "true", "--junctions.join-dist", "50",
        "--tls.guess", "true", "--tls.guess.threshold", "30",
        "--tls.default-type", "static", "--tls.yellow.time", "3", "--tls.layout", "opposites",
        "--seed", str(spec.seed), "-o", str(path),
    ])
    text = path.read_text()
    if "cluster_" not in text:
        raise RuntimeError(f"{spec.name}: seed {spec.seed} made no clustered junction")


def _incident(spec: StressSpec, folder: Path) -> Path:
    add = folder / f"{spec.name}.add.xml"
    begin, end = INCIDENT_S
    add.write_text(
        "<additional>\n"
        f'  <!-- {INCIDENT_LANE} closed from {begin:g} s to {end:g} s -->\n'
        f'  <rerouter id="incident" edges="{INCIDENT_EDGES}">\n'
        f'    <interval begin="{begin:g}" end="{end:g}">\n'
        f'      <closingLaneReroute id="{INCIDENT_LANE}" disallow="all"/>\n'
        "    </interval>\n"
        "  </rerouter>\n"
        "</additional>\n"
    )
    cfg = folder / f"{spec.name}.sumocfg"
    cfg.write_text(
        "<configuration>\n"
        "  <input>\n"
        f'    <net-file value="../../{spec.base}/{spec.base}.net.xml"/>\n'
        f'    <route-files value="../{spec.demand}/{spec.demand}.rou.xml"/>\n'
        f'    <additional-files value="{add.name}"/>\n'
        "  </input>\n"
        "  <time>\n"
        '    <begin value="0"/>\n'
        f'    <end value="{DURATION_S}"/>\n'
        "  </time>\n"
        "</configuration>\n"
    )
    return cfg


def generate_stress(spec: StressSpec, out: Path) -> Path:
    """Write ``spec``'s files into ``out/<name>/``; returns the ``.sumocfg``."""
    if spec.kind == "scaled":
        base = _base(spec.base)
        return generate(replace(base, name=spec.name, peak_veh_h=base.peak_veh_h * spec.factor), out)
    folder = out / spec.name
    folder.mkdir(parents=True, exist_ok=True)
    if spec.kind == "incident":
        return _incident(spec, folder)
    if spec.kind != "rand":
        raise ValueError(f"{spec.name}: unknown kind {spec.kind!r}")
    net = folder / f"{spec.name}.net.xml"
    _rand_net(spec, net)
    as_spec = ScenarioSpec(spec.name, 0, 0, 150.0, 0.0, 2, spec.peak_veh_h, spec.seed, spec.about)
    _routes(as_spec, net, folder / f"{spec.name}.rou.xml")
    cfg = folder / f"{spec.name}.sumocfg"
    _config(as_spec, cfg)
    return cfg


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="citybrain scenarios stress", description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", action="append", choices=[s.name for s in STRESS], help="generate just this one")
    ap.add_argument("--out", type=Path, default=stress_dir(), help="stress-set folder")
    args = ap.parse_args(argv)
    for spec in STRESS:
        if args.only and spec.name not in args.only:
            continue
        print(f"wrote {generate_stress(spec, args.out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
