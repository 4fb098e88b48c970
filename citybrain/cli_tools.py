"""The tool commands of ``citybrain``: bench-kernel, scenarios, bench-emergency, add-emergency,
check-timing, report (their parsers are in :func:`citybrain.cli.build_parser`)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from citybrain.cli_common import Signals, load_scenarios, mpc_options, writable_file

__all__ = ["cmd_bench_kernel", "cmd_scenarios", "cmd_bench_emergency", "cmd_emergency_scenario", "cmd_check_timing",
           "cmd_report"]

DEFAULT_SCENARIO = "single"

def cmd_bench_kernel(args: argparse.Namespace) -> int:
    import tempfile

    if not args.warm_cache:  # time a real JIT compilation, not a load from numba's cache
        os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="citybrain-numba-")
    from benchmarks.kernel import bench_kernel, markdown_table

    try:
        sizes = tuple(int(x) for x in args.sizes.split(","))
    except ValueError:
        raise ValueError(f"--sizes takes comma-separated integers, got {args.sizes!r}") from None
    if any(n < 1 for n in sizes):
        raise ValueError("--sizes must all be >= 1")
    if args.steps < 1:
        raise ValueError("--steps must be >= 1")
    writable_file(args.json, "--json")
    writable_file(args.markdown, "--markdown")

    def progress(n: int) -> None:
        print(f"bench-kernel: timing {n:,} intersections ({args.steps} steps)", file=sys.stderr)

    config = mpc_options(args, ["mpc"])
    records = []
    for mode in args.readings.split(","):
        records += bench_kernel(sizes, steps=args.steps, threads=args.threads, progress=progress, readings=mode,
                                config=config)
    table = markdown_table(records, args.title)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(records, indent=1) + "\n")
    if args.markdown:
        Path(args.markdown).parent.mkdir(parents=True, exist_ok=True)
        Path(args.markdown).write_text(table)
    print(table, end="")
    return 0


def cmd_scenarios(args: argparse.Namespace) -> int:
    from scenarios.generate import SPECS
    from scenarios.generate import main as generate_main
    from scenarios.stress import STRESS, stress_dir
    from scenarios.stress import main as stress_main
    from sim.scenario import library_dir

    if args.action == "generate":
        return generate_main(args.rest)
    if args.action == "stress":
        return stress_main(args.rest)
    for spec in SPECS:
        there = (library_dir() / spec.name / f"{spec.name}.sumocfg").exists()
        print(f"{spec.name:<18} {'' if there else '(not generated) '}{spec.about}")
    for spec in STRESS:
        there = (stress_dir() / spec.name / f"{spec.name}.sumocfg").exists()
        print(f"stress/{spec.name:<11} {'' if there else '(not generated) '}{spec.about}")
    return 0


def cmd_bench_emergency(args: argparse.Namespace) -> int:
    from benchmarks.emergency import bench_emergency, write
    from benchmarks.quality import progress_bar

    seeds = args.seed or [1, 2, 3]

    def done(rec: dict, n: int, total: int) -> None:
        progress_bar(n, total, f"{rec['scenario']} x {rec['controller']} (seed {rec['seed']})")

    json_path, md_path = writable_file(args.json, "--json"), writable_file(args.markdown, "--markdown")
    with Signals() as stop:
        rows = bench_emergency(args.scenario or ["grid4x4", "arterial"], seeds, Path(args.work), every_s=args.every,
                               workers=args.jobs or os.cpu_count() or 1, progress=done, stop=lambda: bool(stop.name))
    print(write(rows, args.every, json_path, md_path), end="")
    return stop.exit_code or 0


def cmd_emergency_scenario(args: argparse.Namespace) -> int:
    from scenarios.emergency import add_emergency

    print(add_emergency(args.scenario, Path(args.out), every_s=args.every, seed=args.seed))
    return 0


def cmd_check_timing(args: argparse.Namespace) -> int:
    from sim.backend import SumoBackend
    from sim.clearance import check_timing
    from sim.safety import read_conflicts

    (scenario,) = load_scenarios(args, DEFAULT_SCENARIO)
    json_path = writable_file(args.json, "--json")
    if args.ped_speed <= 0 or args.walk < 0:
        raise ValueError(f"--walk must be >= 0 and --ped-speed > 0, got {args.walk:g} and {args.ped_speed:g}")
    from brain.timing import Timing

    rules = Timing(min_green=args.min_green, walk=args.walk, ped_speed=args.ped_speed, profile=args.profile)
    with SumoBackend(scenario) as b:
        ids = b.ts.trafficlight.getIDList()
        found = check_timing(b.ts, rules, read_conflicts(scenario.net, ids))
        n_tls = len(ids)
    if json_path:
        json_path.write_text(json.dumps(found, indent=1) + "\n")
    for f in found:
        have = "" if f["have"] is None else f" has {f['have']:g} s, needs {f['need']}"
        print(f"{f['tls']:<12} phase {f['phase']!s:<3} {f['rule']:<32}{have}  {f['detail']}")
    print(f"{scenario.name}: {len(found)} finding(s) in {n_tls} signal program(s) (profile {args.profile})")
    return 0 if not found else 4


def cmd_report(args: argparse.Namespace) -> int:
    from benchmarks.report import build_report

    print(build_report(args.folder, args.title))
    return 0
