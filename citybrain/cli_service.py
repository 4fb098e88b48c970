"""The service commands of ``citybrain``: export-network, serve, sim, keys, bench-loop.

    citybrain export-network --scenario S --out network.json [rules]      what the brain drives
    citybrain serve --network network.json [--config brain.toml] [--cameras cams.json]   the brain
    citybrain sim --scenario S --network network.json [--sensing truth|vision --cameras cams.json]
    citybrain worker --config cams.json --frames tcp://HOST:5555 --connect tcp://HOST:5556
    citybrain keys --out DIR [--client worker-1 ...]                      CURVE key pairs
    citybrain bench-loop [--json F]                                       latency and load

``run --sensing`` (all of them on loopback) is :mod:`citybrain.services`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from brain.timing import RULES
from citybrain.cli_common import PORTS_HELP

__all__ = ["add_commands", "serve_config", "brain_network"]

def _mpc_dict(pairs: list[str] | None) -> dict:
    out = {}
    for p in pairs or []:
        k, sep, v = p.partition("=")
        if not sep:
            raise ValueError(f"--mpc takes KEY=VALUE, got {p!r}")
        out[k] = v
    return out


def _given_rules(args: argparse.Namespace) -> list[str]:
    return [f"--{k.replace('_', '-')}" for k in RULES if getattr(args, k, None) is not None]


def _rules_timing(args: argparse.Namespace, step: float):
    """The rules given on the command line (the defaults where not given)."""
    from brain.timing import Timing

    return Timing(step=step, **{k: getattr(args, k) for k in RULES if getattr(args, k, None) is not None})


def serve_config(args: argparse.Namespace):
    """The :class:`brain.service.ServeConfig` of ``citybrain serve``: the config file's values,
    overridden by the options given."""
    from brain.service import ServeConfig

    return ServeConfig.load(args.config, network=args.network, controller=args.controller, cameras=args.cameras,
                            intake=args.intake, decisions=args.decisions, metrics_port=args.metrics_port,
                            keys=args.keys, lockstep=False if args.free_running else None, wait_s=args.wait,
                            mpc=_mpc_dict(args.mpc) or None, step=args.step)


def brain_network(args: argparse.Namespace, cfg):
    """The network the brain drives: its ``--network`` file, or (``--scenario``, on a host with
    SUMO) the scenario read as the sim reads it, under the rules given."""
    from brain.netfile import NetworkFile, digest, load_network

    scenario = args.scenario or args.net
    if cfg.network:
        if scenario:
            raise ValueError("serve takes --network or --scenario/--net, not both")
        if _given_rules(args):
            raise ValueError(f"{', '.join(_given_rules(args))}: the rules come from the network file "
                             f"{cfg.network} (export it under other rules)")
        return load_network(cfg.network, cfg.step)
    if not scenario:
        raise ValueError("serve needs --network FILE (from `citybrain export-network`) or --scenario S")
    from citybrain.cli_common import load_scenarios
    from sim.review import controlled_network

    sc = load_scenarios(args)[0]
    timing = _rules_timing(args, cfg.step)
    net = controlled_network(sc, timing)
    return NetworkFile(net, timing, digest(net, timing), sc.name)


def cmd_export_network(args: argparse.Namespace) -> int:
    from brain.netfile import write_network
    from citybrain.cli_common import load_scenarios, outside_scenarios, writable_file
    from sim.review import controlled_network

    sc = load_scenarios(args)[0]
    outside_scenarios(args.out, [sc], "--out")  # a scenario folder may be read-only: never written into
    writable_file(args.out, "--out")
    timing = _rules_timing(args, 10.0)
    net = controlled_network(sc, timing)
    if not net.intersections:
        raise ValueError(f"{sc.path}: no signal a controller can drive (none with two green phases)")
    d = write_network(args.out, net, timing, sc.name)
    n = len(net.intersections)
    print(f"{args.out}: {n} signal{'' if n == 1 else 's'} and {net.n_lanes} lanes of {sc.name}; digest {d}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from brain.service import Brain
    from wire.transport import setup_logging

    setup_logging(args.log_json, args.verbose, "brain")
    cfg = serve_config(args)
    brain = Brain(cfg, brain_network(args, cfg))
    try:
        brain.run()
    finally:
        print(json.dumps({"decisions": brain.decisions, "rejected": brain.rejected}), file=sys.stderr)
    return 0


def cmd_sim(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from citybrain.cli_common import writable_file
    from sim.service import SimConfig, run_sim
    from wire.transport import setup_logging

    setup_logging(args.log_json, args.verbose, "sim")
    writable_file(args.json, "--json")
    writable_file(args.trace, "--trace")
    rules, expect = {k: getattr(args, k) for k in RULES if getattr(args, k) is not None}, ""
    if args.network:
        from brain.netfile import load_network

        if rules:
            raise ValueError(f"{', '.join(_given_rules(args))}: the rules come from the network file "
                             f"{args.network} (export it under other rules)")
        nf = load_network(args.network)
        rules, expect = {k: getattr(nf.timing, k) for k in RULES}, nf.digest
    cfg = SimConfig(scenario=args.scenario or "single", seed=args.seed, sensing=args.sensing,
                    cameras=args.cameras or "", fps=args.fps, interval=args.interval, lockstep=not args.free_running,
                    timeout_s=args.timeout, frames=args.frames, brain=args.brain, decisions=args.decisions,
                    end=args.end, json=args.json or "", trace=args.trace or "", realtime=args.realtime,
                    step_length=args.step_length, net=args.net or "", routes=tuple(args.routes),
                    additional=tuple(args.additional), progress=args.progress, keys=args.keys or "",
                    network=expect)
    cfg = replace(cfg, **rules)
    rec = run_sim(cfg)
    print(json.dumps(rec, default=str))
    for w in rec.get("warnings") or ():
        print(f"citybrain: warning: {w}", file=sys.stderr)
    if rec.get("channel_error"):
        print(f"citybrain: {rec['channel_error']}", file=sys.stderr)
        return 2
    err = rec.get("error") or ""
    for name, code in (("SIGINT", 130), ("SIGTERM", 143)):
        if err.startswith(f"stopped by {name}"):
            return code
    if err:
        return 1
    return 0 if rec.get("safety_violations", 0) == 0 else 3


def cmd_keys(args: argparse.Namespace) -> int:
    from wire.transport import make_keys

    files = make_keys(args.out, args.client or ["worker"])
    print(f"wrote {len(files)} key files to {args.out}: every process takes --keys {args.out} (the brain "
          f"brain.key_secret, the sim sim.key_secret, each worker its NAME.key_secret; secret keys are 0600); "
          f"the enrolled public keys are in {args.out}/clients")
    return 0


def add_commands(sub, timing_args, mpc_args) -> None:
    """Register the service commands on the ``citybrain`` sub-parser."""
    from citybrain.cli_common import scenario_args
    from wire.protocol import PORTS

    def common(p):
        p.add_argument("--log-json", action="store_true", help="structured logs: one JSON object per line")
        p.formatter_class = argparse.RawDescriptionHelpFormatter
        p.epilog = ((p.epilog + "\n\n") if p.epilog else "") + PORTS_HELP

    p = sub.add_parser("export-network", help="write the description of the signals a controller drives in a "
                                              "scenario, with the timing rules (what `serve --network` takes)")
    scenario_args(p)
    p.add_argument("--out", required=True, help="the JSON file to write")
    timing_args(p, step=False, step_length=False)
    p.set_defaults(func=cmd_export_network)

    p = sub.add_parser("serve", help="the brain: counts and status in over ZeroMQ, decisions out")
    p.add_argument("--network", help="the network description from `citybrain export-network` (its rules are "
                                     "the brain's); needs neither SUMO nor the detector")
    p.add_argument("--config", help="TOML service config (keys as ServeConfig; command-line options win)")
    scenario_args(p)
    p.add_argument("--controller")
    p.add_argument("--cameras", help="camera config JSON (vision sensing); none: the sim's detector readings")
    p.add_argument("--intake", help=f"endpoint to bind for counts, heartbeats and status "
                                    f"(default tcp://*:{PORTS['intake']})")
    p.add_argument("--decisions", help=f"the sim's decision endpoint to connect to "
                                       f"(default tcp://127.0.0.1:{PORTS['decisions']})")
    p.add_argument("--metrics-port", type=int, help=f"serve Prometheus metrics on this port (e.g. {PORTS['metrics']}; "
                                                    f"default: off)")
    p.add_argument("--keys", help="CURVE keys folder (see `citybrain keys`): the intake admits only enrolled keys, "
                                  "the decisions channel to the sim is encrypted")
    p.add_argument("--free-running", action="store_true", help="decide at once, do not wait for cameras")
    p.add_argument("--wait", type=float, help="lockstep: longest wait for a step's counts, wall seconds (default 2)")
    timing_args(p, step_length=False)
    p.set_defaults(**{k: None for k in RULES}, step=None)  # not given: the file's rules; the config's step
    mpc_args(p)
    common(p)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("sim", help="SUMO with the actuator, safety monitor and cameras, driven by a brain over ZeroMQ")
    scenario_args(p, default="single")
    p.add_argument("--network", help="the brain's network description: the sim takes its rules from it and "
                                     "refuses to start when its own network is not the one described")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--sensing", choices=["truth", "vision"], default="truth")
    p.add_argument("--cameras", help="camera config JSON (vision sensing)")
    p.add_argument("--fps", type=float, default=4.0, help="camera frames (and simulation steps) per second")
    p.add_argument("--interval", type=float, default=3.0,
                   help="seconds between decisions: the brain's controller's (default 3, mpc's; the others' "
                        "are the brain's --step). The hello tells the brain, which refuses another cadence; "
                        "`run --sensing` passes it")
    p.add_argument("--progress", action="store_true", help="print the simulated time every simulated minute")
    p.add_argument("--free-running", action="store_true", help="do not wait for each step's decision")
    p.add_argument("--realtime", type=float, default=0.0,
                   help="pace the simulation: simulated seconds per wall second (1: live; default 0: flat out)")
    p.add_argument("--timeout", type=float, default=5.0, help="wall seconds to wait for a decision (lockstep)")
    p.add_argument("--frames", default=f"tcp://*:{PORTS['frames']}",
                   help=f"endpoint to bind for the camera frames (default tcp://*:{PORTS['frames']})")
    p.add_argument("--brain", default=f"tcp://127.0.0.1:{PORTS['intake']}",
                   help=f"the brain's intake to connect to (default tcp://127.0.0.1:{PORTS['intake']})")
    p.add_argument("--decisions", default=f"tcp://*:{PORTS['decisions']}",
                   help=f"endpoint to bind for decisions (default tcp://*:{PORTS['decisions']})")
    p.add_argument("--keys", help="CURVE keys folder (see `citybrain keys`): frames and decisions admit only "
                                  "enrolled keys; the intake is reached with sim.key_secret")
    p.add_argument("--end", type=float)
    p.add_argument("--json", help="write the run's record here")
    p.add_argument("--trace", help="write one JSON line per decision step (time, wall time, brain, fallbacks)")
    timing_args(p, step=False)
    p.set_defaults(**{k: None for k in RULES})  # not given: the network file's, else Timing's defaults
    common(p)
    p.set_defaults(func=cmd_sim)

    p = sub.add_parser("keys", help="make CURVE key pairs: the brain's, the sim's and one per worker")
    p.add_argument("--out", required=True)
    p.add_argument("--client", action="append", help="a worker name to enrol (repeatable; default: worker)")
    p.set_defaults(func=cmd_keys)
    add_bench_loop(sub)


def cmd_bench_loop(args: argparse.Namespace) -> int:
    from benchmarks.loop import bench_loop, markdown_report
    from citybrain.cli_common import writable_file

    writable_file(args.json, "--json")
    writable_file(args.markdown, "--markdown")
    r = bench_loop(steps=args.steps, cameras=args.cameras, rate=args.rate, seconds=args.seconds,
                   progress=lambda s: print(f"bench-loop: {s}", file=sys.stderr, flush=True))
    for path, text in ((args.json, json.dumps(r, indent=1) + "\n"), (args.markdown, markdown_report(r))):
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(text)
    print(markdown_report(r), end="")
    return 0


def add_bench_loop(sub) -> None:
    p = sub.add_parser("bench-loop", help="brain service latency (count -> decision) and a load run over ZeroMQ")
    p.add_argument("--steps", type=int, default=300, help="lockstep steps timed for latency (default 300)")
    p.add_argument("--cameras", type=int, default=1000, help="simulated cameras in the load run (default 1000)")
    p.add_argument("--rate", type=float, default=10.0, help="messages per second per camera (default 10)")
    p.add_argument("--seconds", type=float, default=60.0, help="length of the load run (default 60)")
    p.add_argument("--json")
    p.add_argument("--markdown")
    p.set_defaults(func=cmd_bench_loop)
