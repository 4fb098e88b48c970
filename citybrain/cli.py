"""The ``citybrain`` command line.

    citybrain demo                         all controllers on the default scenario, one table
    citybrain run --scenario S --controller C [--seed N] [--json F] [--gui]
    citybrain bench --scenario S... --controller C... --seed N... [--json F] [--markdown F]
    citybrain bench-kernel [--sizes 1,16,100,1000,10000] [--json F] [--markdown F]
    citybrain scenarios list | generate | stress
    citybrain cameras | vision dataset|train|render | worker | bench-vision   (see citybrain.cli_vision)
    citybrain export-network | serve | sim | keys | bench-loop                (see citybrain.cli_service)

This module is the composition root: it is the one place that wires the controllers (brain)
to the simulator (sim) and the benchmarks.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

from citybrain.cli_common import (EXIT_CODES, Signals, load_scenarios, mpc_keys_text, mpc_options, outside_scenarios,
                                  ped_args,
                              scenario_args, timing, timing_args, writable_dir, writable_file)
from wire.errors import InputError

__all__ = ["main"]

DEFAULT_SCENARIO = "single"
CLASSIC = ("fixed", "webster", "actuated", "max-pressure", "greedy")
ALL = CLASSIC + ("mpc",)
BENCH_TITLE = "citybrain bench"

log = logging.getLogger("citybrain")


def _mpc_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mpc", action="append", metavar="KEY=VALUE",
                   help="an option of the optimiser (repeatable), e.g. --mpc depth=2 --mpc horizon=90; every "
                        "key with its default and meaning is listed below")
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = ((p.epilog + "\n\n") if p.epilog else "") + mpc_keys_text()


_timing_args = timing_args
_ped_args = ped_args
_timing = timing


_options = mpc_options


def _controller_names() -> list[str]:
    from brain.controllers import names

    return names()


def _check_controllers(names: list[str]) -> None:
    known = set(_controller_names())
    for n in names:
        base = n[: -len("+priority")] if n.endswith("+priority") else n
        if base not in known:
            raise ValueError(f"unknown controller {n!r} (known: {', '.join(sorted(known))}, "
                             "each also as NAME+priority)")
        if base != n and base in ("fixed", "actuated"):
            raise ValueError(f"{n!r}: SUMO runs {base} itself, so it cannot be pre-empted; "
                             "use plan+priority (the same fixed-time plan through the actuator)")


def cmd_run(args: argparse.Namespace) -> int:
    from sim.loop import check_end, run_scenario

    _check_controllers([args.controller])
    (scenario,) = load_scenarios(args, DEFAULT_SCENARIO)
    check_end(scenario, args.end)
    json_path = writable_file(args.json, "--json")
    for opt, path in (("--keep-trips", args.keep_trips), ("--report", args.report), ("--out", args.out)):
        outside_scenarios(path, [scenario], opt)
    writable_dir(args.keep_trips, "--keep-trips")
    writable_dir(args.report, "--report")
    rules = _timing(args)
    if args.sensing:
        writable_dir(args.out, "--out")
        return _run_services(args, scenario, rules)

    import time as _time

    t_start = _time.perf_counter()

    def progress(done: float, total_s: float) -> None:
        rate = done / max(_time.perf_counter() - t_start, 1e-9)
        end = "" if sys.stderr.isatty() else "\n"
        sys.stderr.write(f"\r{scenario.name} x {args.controller}: {done:.0f}/{total_s:.0f} s simulated "
                         f"({rate:.0f}x real time){end}")
        sys.stderr.flush()

    from brain.controllers import make

    opts = _options(args, [args.controller])
    ctrl = make(args.controller, opts)
    recorder, extra_add = None, ()
    if args.report:
        from sim.record import Recorder

        recorder = Recorder(args.report / _run_folder(scenario.name, args.controller, args.seed))
        extra_add = recorder.additional_files()
    with Signals() as stop:
        def on_step(b) -> None:
            stop.hook(b)
            if recorder is not None:
                recorder(b)

        rec = run_scenario(scenario, ctrl, seed=args.seed, timing=rules, gui=args.gui, out_dir=args.keep_trips,
                           end=args.end, progress=progress, additional=extra_add, on_step=on_step,
                           step_length=args.step_length, options=opts)
    if sys.stderr.isatty():
        sys.stderr.write("\n")
    d = rec.to_dict()
    if json_path:
        json_path.write_text(json.dumps(d, indent=1, allow_nan=False) + "\n")
    if recorder is not None and recorder.ready:
        from benchmarks.report import build_report

        recorder.save(record=d)
        print(f"report: {build_report(args.report)}", file=sys.stderr)
    width = max(len(k) for k in d)
    for k, v in d.items():
        if k in ("provenance", "insertion", "program_findings"):
            continue
        print(f"{k:<{width}}  {v:.2f}" if isinstance(v, float) else f"{k:<{width}}  {v}")
    _print_findings([d])
    for w in rec.warnings:
        print(f"citybrain: warning: {w}", file=sys.stderr)
    if stop.exit_code is not None:
        print(f"citybrain: {rec.error}; the record keeps what was measured until then", file=sys.stderr)
        return stop.exit_code
    if rec.safety_violations:
        return 3
    if rec.error:
        print(f"citybrain: run incomplete: {rec.error}", file=sys.stderr)
        return 1
    return 0


def _run_folder(scenario: str, controller: str, seed: int) -> str:
    return f"{scenario.replace('/', '--')}_{controller}_{seed}"


def _print_findings(records: list[dict]) -> None:
    """The scenario programs' own findings, by rule, one line each (stderr)."""
    from benchmarks.quality import findings_by_rule

    for scen, lines in findings_by_rule(records).items():
        for line in lines:
            print(f"citybrain: {scen}: its own programs: {line}", file=sys.stderr)


def _run_services(args: argparse.Namespace, scenario, rules) -> int:
    """``run --sensing``: the same run as separate processes talking ZeroMQ on loopback."""
    from citybrain.services import run_services

    opts = _options(args, [args.controller]) or {}
    for flag, given in (("--report", args.report), ("--keep-trips", args.keep_trips), ("--gui", args.gui)):
        if given:
            raise ValueError(f"{flag} is not available with --sensing (the service run keeps its folder: --out)")
    with Signals() as stop:
        rec = run_services(scenario, args.controller, args.sensing, seed=args.seed, end=args.end,
                           workers=args.workers, out_dir=args.out, mpc=opts, fps=args.fps, verbose=args.verbose,
                           weights=args.weights, timing=rules, step_length=args.step_length,
                           stop=lambda: bool(stop.name), curve=args.curve)
    if args.json:
        Path(args.json).write_text(json.dumps(rec, indent=1, default=str) + "\n")
    for k in ("scenario", "controller", "brain_controller", "sensing", "avg_delay_s", "avg_trip_time_s", "throughput",
              "safety_violations", "decisions", "service", "count_to_decision_ms_p50", "exit_codes", "error", "logs"):
        if k in rec:
            v = rec[k]
            print(f"{k:<26}  {v:.2f}" if isinstance(v, float) else f"{k:<26}  {v}")
    step = (rec.get("provenance") or {}).get("step_length_s")
    if step is not None:
        print(f"{'step_length_s':<26}  {step:g}")
    for w in rec.get("warnings") or ():
        print(f"citybrain: warning: {w}", file=sys.stderr)
    if stop.exit_code is not None:
        print(f"citybrain: {rec.get('error') or 'stopped'}; the record keeps what was measured until then",
              file=sys.stderr)
        return stop.exit_code
    if rec.get("safety_violations", 1):
        return 3
    if rec.get("error"):
        print(f"citybrain: run incomplete: {rec['error']}", file=sys.stderr)
        return 1
    return 0


def _bench(args: argparse.Namespace, controllers: list[str], seeds: list[int], json_path: Path | None,
           md_path: Path | None, title: str, scenarios: list | None = None,
           epilogue: Callable[[list[dict]], str] | None = None) -> tuple[list[dict], Signals]:
    from benchmarks.quality import PLAIN, Job, progress_bar, run_jobs, write_results
    from sim.loop import check_end

    _check_controllers([c for c in controllers if c != PLAIN])
    scens = scenarios if scenarios is not None else load_scenarios(args)  # every scenario checked first
    end = getattr(args, "end", None)
    for s in scens:
        check_end(s, end)
    writable_file(json_path, "--json")
    writable_file(md_path, "--markdown")
    report = getattr(args, "report", None)
    outside_scenarios(report, scens, "--report")
    writable_dir(report, "--report")
    rules = _timing(args)
    opts = _options(args, controllers)
    jobs = [Job(s, c, seed, rules, end, opts if c.split("+")[0] == "mpc" else None,
                str(report) if report and c != PLAIN else None, getattr(args, "step_length", None))
            for s in scens for c in controllers for seed in seeds]
    order = [(s.name, c) for s in scens for c in controllers]
    records: list[dict] = []

    def done(rec: dict, n: int, total: int) -> None:
        records.append(rec)
        write_results(records, order, json_path, md_path, title, epilogue)
        label = f"{rec['scenario']} x {rec['controller']} (seed {rec['seed']})"
        label += f" {rec['avg_delay_s']:.1f} s delay" if rec.get("avg_delay_s") is not None else " FAILED"
        label += " (gridlock)" if rec.get("gridlocks") else ""
        progress_bar(n, total, label)

    workers = args.jobs or min(os.cpu_count() or 1, len(jobs))
    with Signals() as stop:
        run_jobs(jobs, workers, done, stop=lambda: bool(stop.name))
    rows = write_results(records, order, json_path, md_path, title, epilogue)
    if report and records:
        from benchmarks.report import build_report

        print(f"report: {build_report(Path(report), title)}", file=sys.stderr)
    return rows, stop


def cmd_bench(args: argparse.Namespace) -> int:
    from benchmarks.quality import PLAIN, markdown_table
    from sim.gridlock import AFTER_S as GRIDLOCK_AFTER_S

    scens, epilogue = None, None
    if args.suite:
        from benchmarks.suite import judgement, read_suite
        from sim.scenario import load_scenario, unique_names

        if args.scenario or args.net:
            raise InputError("give --suite or --scenario/--net, not both")
        suite = read_suite(args.suite)
        entries = suite.select(args.half)
        scens = unique_names([load_scenario(e.path) for e in entries])
        controllers = args.controller or list(suite.controllers)
        seeds = args.seed or suite.seeds(args.half)
        if args.end is None:
            args.end = suite.end
        if args.title == BENCH_TITLE:
            args.title = f"Suite {suite.name} ({args.half if args.half != 'all' else 'both halves'}), seeds " + \
                ", ".join(map(str, seeds))
        half_of = {s.name: e.half for s, e in zip(scens, entries)}

        def epilogue(rows: list[dict]) -> str:
            table = judgement(rows)
            halves = ", ".join(f"`{n}` {h}" for n, h in half_of.items())
            return f"\n## How mpc stands\n\n{table}\nHalves: {halves}.\n" if table else ""
    else:
        if args.half != "all":
            raise InputError("--half goes with --suite")
        controllers = args.controller or list(ALL)
        seeds = args.seed or [1]
    if args.plain_sumo and PLAIN not in controllers:
        controllers.append(PLAIN)
    rows, stop = _bench(args, controllers, seeds, Path(args.json) if args.json else None,
                        Path(args.markdown) if args.markdown else None, args.title, scens, epilogue)
    print(markdown_table(rows), end="")
    if epilogue is not None:
        print(epilogue(rows), end="")
    _print_findings([run for r in rows for run in r["runs"]])
    bad = sum(r["safety_violations"] for r in rows)
    failed = sum(len(r["errors"]) for r in rows)
    for r in rows:
        for w in r.get("warnings") or ():
            print(f"citybrain: warning: {r['scenario']} x {r['controller']}: {w}", file=sys.stderr)
    if bad:
        print(f"citybrain: {bad} safety violation(s) by citybrain controllers", file=sys.stderr)
    if failed:
        print(f"citybrain: {failed} run(s) failed; see the errors in the table", file=sys.stderr)
    jammed = sum(1 for r in rows for run in r["runs"] if run.get("gridlocks"))
    if jammed:
        print(f"citybrain: {jammed} run(s) gridlocked (a signal let nobody across for "
              f"{GRIDLOCK_AFTER_S:g} s); see the table", file=sys.stderr)
    if stop.exit_code is not None:
        print(f"citybrain: stopped by {stop.name}; {len([x for r in rows for x in r['runs']])} run(s) written "
              "(runs under way kept what they measured)", file=sys.stderr)
        return stop.exit_code
    return 3 if bad else (1 if failed else 0)


def cmd_demo(args: argparse.Namespace) -> int:
    from benchmarks.quality import markdown_table

    out = Path(args.out)
    print(f"citybrain demo: the optimiser (mpc) and every classic controller on the '{DEFAULT_SCENARIO}' "
          f"scenario (one simulated hour each, seed 1)", file=sys.stderr)
    args.scenario, args.net, args.routes, args.additional = [DEFAULT_SCENARIO], None, [], []
    rows, stop = _bench(args, list(ALL), [1], out / "demo.json", out / "demo.md",
                        f"citybrain demo: {DEFAULT_SCENARIO}")
    print()
    print(markdown_table(rows), end="")
    if stop.exit_code is not None:
        return stop.exit_code
    best = min((r for r in rows if r["avg_delay_s"] is not None), key=lambda r: r["avg_delay_s"])
    print(f"\nlowest average delay: {best['controller']} ({best['avg_delay_s']:.1f} s/vehicle); "
          f"safety violations in all runs: {sum(r['safety_violations'] for r in rows)}")
    print(f"results: {out / 'demo.md'} and {out / 'demo.json'}")
    if args.no_service:
        return 0
    from citybrain.demo import demo_service

    return demo_service(out, stop, DEFAULT_SCENARIO)


def build_parser() -> argparse.ArgumentParser:
    from citybrain import cli_tools

    ap = argparse.ArgumentParser(
        prog="citybrain",
        description="Traffic-signal control for SUMO scenarios: run a controller, or benchmark several.",
        epilog="Scenarios: a SUMO configuration (any file name), a folder holding one (or a network and route "
               "files), or an own scenario's name (single, arterial, grid4x4, grid10x10, crosswalk). Controllers: "
               "mpc (the optimiser), fixed, webster, actuated, max-pressure, greedy, plan.\n\n" + EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="run one scenario under one controller and print its record", epilog=EXIT_CODES)
    scenario_args(p, default=DEFAULT_SCENARIO)
    p.add_argument("--controller", default="max-pressure", help="controller name (default max-pressure)")
    p.add_argument("--seed", type=int, default=1, help="SUMO seed (default 1)")
    p.add_argument("--json", help="also write the record to this JSON file")
    p.add_argument("--gui", action="store_true", help="watch in sumo-gui (through TraCI; needs a display)")
    p.add_argument("--end", type=float, help="end at this simulation time instead of the scenario's end (later "
                                             "than it too); a scenario without an end runs until every vehicle "
                                             "due has arrived")
    p.add_argument("--keep-trips", type=Path, help="the run's folder: SUMO's tripinfo.xml, the configuration it ran "
                                                   "and the scenario's own outputs are kept there")
    p.add_argument("--report", type=Path, help="record the run and write an HTML report into this folder")
    p.add_argument("--sensing", choices=["truth", "vision"],
                   help="run as separate processes over ZeroMQ (sim, brain and, for vision, camera workers) "
                        "with the brain sensing through SUMO's detectors (truth) or the cameras (vision)")
    p.add_argument("--workers", type=int, default=1, help="camera worker processes (vision sensing)")
    p.add_argument("--curve", action="store_true", help="service runs: CURVE keys made for the run on every channel")
    p.add_argument("--fps", type=float, default=4.0, help="camera frames per second (service runs)")
    p.add_argument("--out", type=Path, help="folder for the service run's logs and record")
    p.add_argument("--weights", help="detector weights for the camera workers (default: the shipped ones)")
    _mpc_args(p)
    _timing_args(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("bench", help="benchmark controllers x scenarios x seeds into one table", epilog=EXIT_CODES)
    scenario_args(p, repeat=True)
    p.add_argument("--suite", type=Path, help="a suite file (TOML: scenarios, halves, seeds, controllers; see "
                                              "benchmarks/suites/generalisation.toml) instead of --scenario")
    p.add_argument("--half", choices=["tuning", "checking", "all"], default="all",
                   help="with --suite: the tuning half (its tuning seeds), the checking half or both (the "
                        "checking seeds; default all)")
    p.add_argument("--controller", action="append", help="controller (repeatable; default all)")
    p.add_argument("--seed", type=int, action="append", help="SUMO seed (repeatable: mean and spread; default 1)")
    p.add_argument("--json", help="write one record per (scenario, controller) to this JSON file")
    p.add_argument("--markdown", help="write the table to this Markdown file")
    p.add_argument("--title", default=BENCH_TITLE, help="heading of the Markdown file")
    p.add_argument("--plain-sumo", action="store_true",
                   help="add a 'plain-sumo' row: the sumo binary alone with the scenario's own programs")
    p.add_argument("--jobs", type=int, default=0, help="runs in parallel (default: one per core)")
    p.add_argument("--end", type=float, help="stop every run at this simulation time")
    p.add_argument("--report", type=Path, help="record every run and write an HTML report (HCM tables, plots, "
                                              "CSV) into this folder")
    _mpc_args(p)
    _timing_args(p)
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("demo", help="the optimiser and all classic controllers on the default scenario")
    p.add_argument("--out", default="runs/demo", help="folder for the demo's table and JSON (default runs/demo)")
    p.add_argument("--no-service", action="store_true",
                   help="skip the closed loop through the services (cameras, detector, brain and sim as processes)")
    p.add_argument("--jobs", type=int, default=0, help="runs in parallel (default: one per core)")
    p.set_defaults(func=cmd_demo, end=None, report=None, mpc=None)
    _timing_args(p)

    p = sub.add_parser("bench-kernel", help="decision time of the optimiser for synthetic city grids",
                       description="Time one mpc decision step (estimation, packing and the search for every "
                                   "intersection that may switch; the default settings unless --mpc options are "
                                   "given) on synthetic grids of "
                                   "four-phase intersections. The first call (JIT compilation) is timed apart "
                                   "as compile_s.")
    p.add_argument("--sizes", default="1,16,100,1000,10000", help="intersection counts (default 1,16,100,1000,10000)")
    p.add_argument("--steps", type=int, default=50, help="timed decision steps per size (default 50)")
    p.add_argument("--threads", type=int, default=1, help="Numba threads (default 1: one core)")
    p.add_argument("--readings", default="traffic",
                   help="traffic (point queues driven by the decisions), random (stress: demand on every "
                        "lane), or both comma-separated (default traffic)")
    p.add_argument("--json", help="write one record per size to this JSON file")
    p.add_argument("--markdown", help="write the table to this Markdown file")
    p.add_argument("--title", default="Optimiser decision time per control step", help="heading of the table")
    p.add_argument("--warm-cache", action="store_true", help="let numba load compiled kernels from its cache")
    _mpc_args(p)
    p.set_defaults(func=cli_tools.cmd_bench_kernel)

    p = sub.add_parser("check-timing", help="report the scenario's own signal plans that break the timing rules "
                                             "(ITE yellow and all-red, 3-6 s yellow, minimum green, pedestrians)")
    scenario_args(p, default=DEFAULT_SCENARIO)
    p.add_argument("--min-green", type=float, default=5.0)
    p.add_argument("--profile", choices=["mutcd", "eu"], default="mutcd",
                   help="mutcd (default) or eu: whether a protected turn may turn permissive without yellow")
    _ped_args(p)
    p.add_argument("--json", help="also write the findings to this JSON file")
    p.set_defaults(func=cli_tools.cmd_check_timing)

    p = sub.add_parser("bench-emergency", help="emergency vehicles' travel time with and without priority")
    p.add_argument("--scenario", action="append", help="scenario (repeatable; default grid4x4 and arterial)")
    p.add_argument("--seed", type=int, action="append", help="seeds (default 1, 2, 3)")
    p.add_argument("--every", type=float, default=300.0, help="one emergency vehicle every this many seconds")
    p.add_argument("--work", default="runs/emergency", help="where the scenarios with emergency vehicles go")
    p.add_argument("--jobs", type=int, default=0)
    p.add_argument("--json")
    p.add_argument("--markdown")
    p.set_defaults(func=cli_tools.cmd_bench_emergency)

    p = sub.add_parser("add-emergency", help="write a copy of a scenario with emergency vehicles added")
    p.add_argument("--scenario", required=True)
    p.add_argument("--out", required=True, help="folder; the copy goes to OUT/<name>-ev/")
    p.add_argument("--every", type=float, default=300.0, help="one emergency vehicle every this many seconds")
    p.add_argument("--seed", type=int, default=42)
    p.set_defaults(func=cli_tools.cmd_emergency_scenario)

    p = sub.add_parser("report", help="HTML report (HCM tables, plots) and CSV from runs recorded with --report")
    p.add_argument("folder", type=Path, help="the folder given to bench/run --report")
    p.add_argument("--title", default="citybrain report")
    p.set_defaults(func=cli_tools.cmd_report)

    p = sub.add_parser("scenarios", help="list or regenerate the own scenario library and the suite's stress set")
    p.add_argument("action", choices=["list", "generate", "stress"],
                   help="generate: the own library; stress: the stress set under scenarios/stress/")
    p.add_argument("rest", nargs=argparse.REMAINDER, help="options for generate/stress (--only NAME, --out DIR)")
    p.set_defaults(func=cli_tools.cmd_scenarios)

    from citybrain import cli_service, cli_vision

    cli_vision.add_commands(sub)
    cli_service.add_commands(sub, _timing_args, _mpc_args)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    from zmq import ZMQError

    from wire.errors import CitybrainError

    import signal

    def terminated(signum, _frame):
        raise _Terminated

    if args.command not in ("serve", "sim", "worker"):  # those stop cleanly on SIGTERM themselves
        signal.signal(signal.SIGTERM, terminated)
    try:
        return args.func(args)
    except (CitybrainError, ValueError, OSError, ZMQError) as e:  # ZMQError: a port in use
        print(f"citybrain: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("citybrain: interrupted by SIGINT; files already written are complete, nothing more is written",
              file=sys.stderr)
        return 130
    except _Terminated:
        print("citybrain: stopped by SIGTERM; files already written are complete, nothing more is written",
              file=sys.stderr)
        return 143


class _Terminated(Exception):
    """SIGTERM in a command that has no run to end at the next step."""



if __name__ == "__main__":
    raise SystemExit(main())
