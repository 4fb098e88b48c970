"""What every ``citybrain`` command shares: scenario and timing options, output checks, signals.

Exit codes (every command):

    0    fine (warnings about figures that may not be trusted go to stderr and into the record)
    1    a run failed or ended incomplete (its record says why)
    2    bad input: one line naming the file or option (or an endpoint that cannot be bound)
    3    safety violations by a citybrain controller
    4    check-timing found programs that break the rules
    130  stopped by SIGINT, 143 stopped by SIGTERM: the run ended at the next step and what was
         measured until then is written
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
from pathlib import Path

__all__ = ["EXIT_CODES", "PORTS_HELP", "mpc_options", "scenario_args", "timing_args", "ped_args", "timing", "load_scenarios", "writable_file",
           "writable_dir", "outside_scenarios", "Signals", "note"]

EXIT_CODES = """exit codes: 0 fine (warnings on stderr and in the record); 1 a run failed or ended incomplete;
2 bad input (one line naming the file or option); 3 safety violations by a citybrain controller;
4 check-timing findings; 130/143 stopped by SIGINT/SIGTERM (what was measured is kept)"""

PORTS_HELP = """ports (TCP; each endpoint option takes a ZeroMQ endpoint such as tcp://10.0.0.2:5556):
  5555  frames     the sim binds (PUB, JPEG frames by camera); workers connect (--frames)
  5556  intake     the brain binds (PULL: counts, heartbeats, the sim's hello and status); the
                   sim (--brain) and workers (--connect) connect
  5557  decisions  the sim binds (PULL); the brain connects (--decisions)
  9108  metrics    the brain serves Prometheus metrics over HTTP (--metrics-port; off by default)
With --keys every ZeroMQ channel is CURVE-encrypted and only enrolled keys connect."""

_SIGNAL_EXIT = {"SIGINT": 130, "SIGTERM": 143}


def scenario_args(p: argparse.ArgumentParser, *, repeat: bool = False, default: str | None = None) -> None:
    """``--scenario`` (a configuration, a folder, an own scenario's name), or ``--net``/``--routes``."""
    what = ("a SUMO configuration (any file name), a folder holding one or holding a network and route "
            "files, or an own scenario's name")
    if repeat:
        p.add_argument("--scenario", action="append", help=f"scenario (repeatable): {what}")
    else:
        p.add_argument("--scenario", default=None, help=f"scenario: {what}" + (f" (default {default})" if default
                                                                                else ""))
        p.set_defaults(default_scenario=default)
    p.add_argument("--net", help="a network file, with --routes: a scenario without a configuration")
    p.add_argument("--routes", action="append", default=[], help="a route file (repeatable; with --net)")
    p.add_argument("--additional", action="append", default=[], help="an additional file (repeatable; with --net)")


def load_scenarios(args: argparse.Namespace, default: str | None = None) -> list:
    """The scenarios the options name, checked, with unique names; their notes printed once each."""
    from sim.scenario import ScenarioError, load_scenario, unique_names

    specs = args.scenario if isinstance(args.scenario, list) else ([args.scenario] if args.scenario else [])
    if args.net:
        if specs:
            raise ScenarioError("give --scenario or --net with --routes, not both")
        scens = [load_scenario(net=args.net, routes=args.routes, additional=args.additional)]
    else:
        if args.routes or args.additional:
            raise ScenarioError("--routes and --additional go with --net")
        specs = specs or [default or getattr(args, "default_scenario", None) or "single"]
        scens = [load_scenario(s) for s in specs]
    scens = unique_names(scens)
    for s in scens:
        for n in s.notes:
            note(n)
    return scens


def note(text: str) -> None:
    print(f"citybrain: note: {text}", file=sys.stderr)


def timing_args(p: argparse.ArgumentParser, step: bool = True, step_length: bool = True) -> None:
    g = p.add_argument_group("signal timing (the same rules for every controller in a run, SUMO's own programs "
                             "included)")
    if step:
        g.add_argument("--step", type=float, default=10.0,
                       help="seconds between decisions of controllers without a cadence of their own "
                            "(default 10, as RESCO; mpc decides every 3 s)")
    g.add_argument("--yellow", type=float, default=None,
                   help="yellow time of every switch (default: each transition's own in the program, raised to "
                        "the profile's minimum of 3 s)")
    g.add_argument("--all-red", type=float, default=None,
                   help="all-red after yellow (default: each transition's own in the program)")
    g.add_argument("--min-green", type=float, default=5.0, help="minimum green (default 5)")
    g.add_argument("--max-green", type=float, default=120.0, help="maximum green (default 120)")
    g.add_argument("--clearance", choices=["fixed", "ite"], default="fixed",
                   help="fixed: --yellow/--all-red or the programs' own; ite: each intersection's own from the "
                        "ITE formulas (approach speed limit, crossing width)")
    g.add_argument("--profile", choices=["mutcd", "eu"], default="mutcd",
                   help="mutcd (default): 3 s minimum yellow, and a protected turn turning permissive shows "
                        "yellow first; eu: it may turn permissive directly")
    g.add_argument("--protocol", choices=["citybrain", "resco"], default="citybrain",
                   help="citybrain (default): these rules for every controller, SUMO's fixed and actuated "
                        "included; resco: RESCO's protocol (3 s yellow for adaptive controllers, the "
                        "programs as written for fixed time)")
    if step_length:
        g.add_argument("--step-length", type=float, default=None,
                       help="SUMO's simulation step in seconds (default: the scenario's own, usually 1)")
    ped_args(g)


def ped_args(g) -> None:
    g.add_argument("--walk", type=float, default=7.0,
                   help="pedestrian walk at signalised crosswalks, at least (default 7, MUTCD)")
    g.add_argument("--ped-speed", type=float, default=1.2,
                   help="walking speed for the pedestrian clearance, m/s (default 1.2): after a walk, no "
                        "conflicting green before the crossing's length at this speed")


def timing(args: argparse.Namespace):
    from brain.timing import Timing

    if getattr(args, "step_length", None) is not None and args.step_length <= 0:
        raise ValueError(f"--step-length must be above 0, got {args.step_length:g}")
    return Timing(step=getattr(args, "step", 10.0), yellow=args.yellow, all_red=args.all_red,
                  min_green=args.min_green, max_green=args.max_green, clearance=getattr(args, "clearance", "fixed"),
                  walk=args.walk, ped_speed=args.ped_speed, profile=getattr(args, "profile", "mutcd"),
                  protocol=getattr(args, "protocol", "citybrain"))


def writable_file(path: str | Path | None, option: str) -> Path | None:
    """``path`` checked now, before anything runs: its folder exists (or is made) and takes a file."""
    if path is None:
        return None
    p = Path(path)
    if p.is_dir():
        raise ValueError(f"{option} {p}: is a folder, not a file")
    writable_dir(p.parent if str(p.parent) else Path("."), option, of=p)
    if p.exists() and not os.access(p, os.W_OK):
        raise ValueError(f"{option} {p}: cannot be written (no permission)")
    return p


def writable_dir(path: str | Path | None, option: str, of: Path | None = None) -> Path | None:
    """A folder checked now: made if missing, and a file can be written into it."""
    if path is None:
        return None
    p = Path(path)
    what = of if of is not None else p
    try:
        p.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=p, prefix=".citybrain-check-"):
            pass
    except OSError as e:
        raise ValueError(f"{option} {what}: cannot be written ({e.strerror or e})") from None
    return p


def outside_scenarios(path: str | Path | None, scenarios, option: str) -> None:
    """Refuse a run folder inside a scenario's folder (nothing is ever written there)."""
    if path is None:
        return
    p = Path(path).resolve()
    for s in scenarios:
        if p == s.folder or s.folder in p.parents:
            raise ValueError(f"{option} {path}: inside the scenario's folder {s.folder}; nothing is written there")


class Signals:
    """SIGINT and SIGTERM noted instead of killing the process, while the ``with`` block runs: a
    run polls :meth:`hook` every step and ends there, keeping what it measured."""

    def __init__(self) -> None:
        self.name = ""
        self._old: dict[int, object] = {}

    def __enter__(self) -> Signals:
        for s in (signal.SIGINT, signal.SIGTERM):
            self._old[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for s, h in self._old.items():
            signal.signal(s, h)

    def _handle(self, signum: int, _frame) -> None:
        if self.name:  # a second signal: give up at once
            raise KeyboardInterrupt
        self.name = signal.Signals(signum).name

    def hook(self, _backend=None) -> None:
        from sim.loop import Stop

        if self.name:
            raise Stop(f"stopped by {self.name}")

    @property
    def exit_code(self) -> int | None:
        return _SIGNAL_EXIT.get(self.name) if self.name else None


def mpc_keys_text() -> str:
    """Every ``--mpc`` key with its default and meaning, read from ``MpcConfig``'s source (its
    docstring and field defaults) without importing the optimiser (Numba) at start-up."""
    import ast
    import importlib.util
    import textwrap

    brain = importlib.util.find_spec("brain")  # the package's folder, without importing the controllers
    src = (Path(next(iter(brain.submodule_search_locations))) / "controllers" / "mpc.py").read_text()
    cls = next(n for n in ast.parse(src).body if isinstance(n, ast.ClassDef) and n.name == "MpcConfig")
    defaults = {n.target.id: ast.literal_eval(n.value) for n in cls.body
                if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name) and n.value is not None}
    doc = ast.get_docstring(cls) or ""
    meaning: dict[str, str] = {}
    key = None
    for line in doc.split("Attributes:", 1)[-1].splitlines():
        head, sep, rest = line.strip().partition(": ")
        names = [h.strip() for h in head.split(",")]
        if sep and names and all(n in defaults for n in names):
            key = names
            for n in names:
                meaning[n] = rest.strip()
        elif key and line.strip():
            for n in key:
                meaning[n] += " " + line.strip()
    out = ["mpc keys (--mpc KEY=VALUE; the defaults are one configuration for every scenario):"]
    for k, d in defaults.items():
        out.append(textwrap.fill(f"{k} (default {d}): {meaning.get(k, '')}", 100, initial_indent="  ",
                                 subsequent_indent="      "))
    return "\n".join(out)


def mpc_options(args: argparse.Namespace, controllers: list[str]) -> dict | None:
    """``--mpc KEY=VALUE`` pairs, checked now so a typo fails before anything runs."""
    pairs = getattr(args, "mpc", None) or []
    if not pairs:
        return None
    opts = {}
    for p in pairs:
        key, sep, value = p.partition("=")
        if not sep or not key:
            raise ValueError(f"--mpc takes KEY=VALUE, got {p!r}")
        opts[key.strip()] = value
    from brain.controllers.mpc import MpcConfig

    MpcConfig.from_mapping(opts)
    if not any(c.split("+")[0] == "mpc" for c in controllers):
        raise ValueError("--mpc options given but the optimiser (mpc) is not among the controllers")
    return opts
