"""Finding and checking a SUMO scenario before anything starts.

A scenario is any SUMO configuration file (recognised by its content, whatever its name:
``x.sumocfg``, ``run.sumo.cfg``), a folder holding exactly one, a folder holding a network and
route files but no configuration, a network and route files given one by one, or the name of one
of the project's own scenarios (``single``, ``arterial``, ...). SUMO itself reads the
configuration (:func:`sim.sumocfg.read_config`), so option synonyms, ``H:M:S`` times and
gzipped files mean what they mean to SUMO. Every file it names is checked up front, so a broken
scenario fails with one line naming the file instead of a SUMO stack trace half-way through a
benchmark.

Example:
    >>> s = load_scenario("single")          # doctest: +SKIP
    >>> s.name, s.begin, s.end               # doctest: +SKIP
    ('single', 0.0, 3600.0)
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from wire.errors import ScenarioError
from sim.sumocfg import (ConfigError, additional_outputs, catalogue, dropped_options, is_output, open_xml,
                         option_names, parse_time, read_config)

__all__ = ["Scenario", "ScenarioError", "load_scenario", "library_dir", "library_names", "unique_names",
           "is_sumo_config"]

_GENERIC = frozenset({"run", "sim", "simulation", "config", "configuration", "cfg", "sumo", "scenario", "osm",
                      "test", "default", "main", "input", "data", "net", "network", "map", "case"})
"""Configuration names that say nothing of the scenario: the folder's name is used instead."""

_MAX_CONFIG_BYTES = 1 << 20




def library_dir() -> Path:
    """Folder of the project's own generated scenarios."""
    return Path(__file__).resolve().parent.parent / "scenarios"


def library_names() -> list[str]:
    """Names of the project's own scenarios present on disk."""
    root = library_dir()
    return sorted(p.parent.name for p in root.glob("*/*.sumocfg"))


@dataclass(frozen=True)
class Scenario:
    """A checked scenario.

    Attributes:
        name: short, readable name (the configuration's, or its folder's where that says nothing).
        config: absolute path of the configuration; ``None`` for a network and routes given without one.
        net: absolute path of the network file.
        routes: absolute paths of the route files.
        additional: absolute paths of the configuration's additional files.
        begin: simulation start (s).
        end: simulation end (s); ``None`` when the configuration sets none (SUMO then runs until
            every vehicle has arrived).
        step_length: SUMO's step (s), the configuration's or SUMO's default 1 s.
        options: every option of the configuration, as SUMO read it (full names, absolute paths).
        notes: what a run does differently from ``sumo -c`` and why (options left out, outputs
            sent to the run's folder), one line each.
    """

    name: str
    config: Path | None
    net: Path
    routes: tuple[Path, ...]
    additional: tuple[Path, ...]
    begin: float
    end: float | None
    step_length: float = 1.0
    options: tuple[tuple[str, str], ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def path(self) -> Path:
        """What names the scenario: its configuration, or its network where it has none."""
        return self.config if self.config is not None else self.net

    @property
    def folder(self) -> Path:
        return self.path.parent

    @property
    def option_map(self) -> dict[str, str]:
        return dict(self.options)

    def spec(self) -> list[str]:
        """Command-line arguments that load this scenario again in another process."""
        if self.config is not None:
            return ["--scenario", str(self.config)]
        out = ["--net", str(self.net)]
        for r in self.routes:
            out += ["--routes", str(r)]
        for a in self.additional:
            out += ["--additional", str(a)]
        return out


def _first_tag(path: Path) -> str | None:
    """The root element's name, or ``None`` for a file that is not XML."""
    try:
        with open_xml(path) as f:
            for _event, el in ET.iterparse(f, events=("start",)):
                return el.tag
    except (ET.ParseError, OSError, EOFError):
        return None
    return None


def is_sumo_config(path: Path) -> bool:
    """True for a file whose content is a SUMO configuration: XML whose options are all SUMO's
    (by full name or synonym) and name a network. Another tool's configuration (netconvert's,
    duarouter's) names options SUMO does not have."""
    path = Path(path)
    if not path.is_file() or path.stat().st_size > _MAX_CONFIG_BYTES or path.name.endswith(".gz"):
        return False
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError):
        return False
    if root.tag in ("net", "routes", "additional", "add", "a"):
        return False
    names = [el.tag for el in root.iter() if el is not root and "value" in el.attrib]
    known = option_names()
    return bool(names) and all(n in known for n in names) and any(known[n] == "net-file" for n in names)


def _find(spec: str | Path) -> Path:
    """The configuration file, or the folder without one, that ``spec`` names."""
    p = Path(spec)
    if not p.exists() and not p.suffix and "/" not in str(spec):
        lib = library_dir() / str(spec)
        if lib.is_dir():
            p = lib
    if not p.exists():
        known = ", ".join(library_names()) or "none generated"
        raise ScenarioError(f"{p}: no such scenario file or folder (own scenarios: {known})")
    if p.is_dir():
        cfgs = sorted(c for c in p.iterdir() if is_sumo_config(c))
        if len(cfgs) > 1:
            names = ", ".join(c.name for c in cfgs)
            raise ScenarioError(f"{p}: several SUMO configurations ({names}); name one")
        if cfgs:
            return cfgs[0].resolve()
        for c in sorted(p.iterdir()):  # a file named as a configuration that is broken: say so
            if c.is_file() and c.name.endswith((".sumocfg", ".sumo.cfg")):
                raise ScenarioError(_not_config(c))
        return p.resolve()
    if not is_sumo_config(p):
        raise ScenarioError(_not_config(p))
    return p.resolve()


def _not_config(p: Path) -> str:
    """Why ``p`` is not a SUMO configuration, in one line."""
    try:
        root = ET.parse(p).getroot()
    except ET.ParseError as e:
        return f"{p}: not valid XML ({e})"
    except OSError as e:
        return f"{p}: cannot be read ({e.strerror})"
    names = [el.tag for el in root.iter() if el is not root and "value" in el.attrib]
    known = option_names()
    unknown = [n for n in names if n not in known]
    if unknown:
        return f"{p}: not a SUMO configuration (options SUMO does not have: {', '.join(unknown[:3])})"
    if not any(known[n] == "net-file" for n in names):
        return f"{p}: names no <net-file>"
    return f"{p}: not a SUMO configuration (root element <{root.tag}>)"


def _check_xml(path: Path, role: str, named_in: str, whole: bool = True) -> Path:
    if not path.is_file():
        raise ScenarioError(f"{path}: {role} named in {named_in} does not exist")
    try:
        with open_xml(path) as f:
            if whole:
                for _event, el in ET.iterparse(f):
                    el.clear()
            else:
                for _event, _el in ET.iterparse(f, events=("start",)):
                    break
    except ET.ParseError as e:
        raise ScenarioError(f"{path}: {role} is not valid XML ({e})") from None
    except (OSError, EOFError) as e:  # a gzip file cut short
        raise ScenarioError(f"{path}: {role} cannot be read ({e})") from None
    return path.resolve()


def _split(value: str) -> list[str]:
    return [v for v in value.replace(";", ",").split(",") if v.strip()]


def _time(options: dict[str, str], key: str, where: Path) -> float | None:
    v = options.get(key)
    if v is None or v == "":
        return None
    try:
        t = parse_time(v)
    except ValueError:
        raise ScenarioError(f"{where}: <{key}> value {v!r} is not a time") from None
    return t


def _name(path: Path) -> str:
    stem = path.name
    for suffix in (".gz", ".xml", ".sumocfg", ".cfg", ".sumo", ".net"):
        stem = stem.removesuffix(suffix)
    if not stem or stem.lower() in _GENERIC:
        return path.parent.name
    return stem


def load_scenario(spec: str | Path | None = None, *, net: str | Path | None = None,
                  routes: Sequence[str | Path] = (), additional: Sequence[str | Path] = ()) -> Scenario:
    """Resolve and check a scenario. Raises :class:`ScenarioError` naming the bad file.

    Either ``spec`` (a configuration, a folder, an own scenario's name) or ``net`` with
    ``routes`` (and ``additional``) given one by one.
    """
    if net is not None:
        if spec is not None:
            raise ScenarioError("give a scenario or a network with routes, not both")
        return _from_files(Path(net), [Path(r) for r in routes], [Path(a) for a in additional], "the command line")
    if spec is None:
        raise ScenarioError("no scenario given")
    found = _find(spec)
    if found.is_dir():
        return _from_folder(found)
    try:
        options = read_config(found)
    except ConfigError as e:
        raise ScenarioError(str(e)) from None
    return _build(found, options)


def _from_folder(folder: Path) -> Scenario:
    """A folder with a network and route files but no configuration: every ``<routes>`` file (the
    ``*.rou.xml`` ones where there are also trip or flow files they were made from)."""
    nets, routes, adds = [], [], []
    for p in sorted(folder.iterdir()):
        if not p.is_file() or ".alt." in p.name:  # duarouter's route alternatives repeat the routes
            continue
        tag = _first_tag(p)
        if tag == "net":
            nets.append(p)
        elif tag == "routes":
            routes.append(p)
        elif tag in ("additional", "add", "a"):
            adds.append(p)
    named = [r for r in routes if r.name.endswith((".rou.xml", ".rou.xml.gz"))]
    if named and len(named) < len(routes):  # routes next to the trips or flows they were made from
        routes = named
    if not nets:
        raise ScenarioError(f"{folder}: no SUMO configuration and no network (.net.xml) in this folder")
    if len(nets) > 1:
        raise ScenarioError(f"{folder}: no SUMO configuration and several networks "
                            f"({', '.join(n.name for n in nets)}); name one with --net and --routes")
    if not routes:
        raise ScenarioError(f"{folder}: no SUMO configuration and no route file next to {nets[0].name}")
    return _from_files(nets[0], routes, adds, folder.name, name=folder.name)


def _from_files(net: Path, routes: list[Path], adds: list[Path], named_in: str, name: str | None = None) -> Scenario:
    options = {"net-file": str(net.resolve())}
    if routes:
        options["route-files"] = ",".join(str(r.resolve()) for r in routes)
    if adds:
        options["additional-files"] = ",".join(str(a.resolve()) for a in adds)
    sc = _build(None, options, named_in=named_in)
    return replace(sc, name=name or _name(net))


def _build(cfg: Path | None, options: dict[str, str], named_in: str | None = None) -> Scenario:
    where = cfg if cfg is not None else Path(options["net-file"])
    named_in = named_in or (cfg.name if cfg is not None else "the command line")
    nets = _split(options.get("net-file", ""))
    if not nets:
        raise ScenarioError(f"{where}: names no <net-file>")
    net = Path(nets[0])
    _check_xml(net, "net-file", named_in, whole=False)
    tag = _first_tag(net)
    if tag != "net":
        raise ScenarioError(f"{net}: not a SUMO network (root element <{tag}>)")
    _check_xml(net, "net-file", named_in)
    routes = tuple(_check_xml(Path(r), "route-file", named_in) for r in _split(options.get("route-files", "")))
    adds = tuple(_check_xml(Path(a), "additional-file", named_in)
                 for a in _split(options.get("additional-files", "")))
    begin = _time(options, "begin", where) or 0.0
    end = _time(options, "end", where)
    if end is not None and end < 0:
        end = None  # SUMO's -1: no end
    if end is not None and end <= begin:
        raise ScenarioError(f"{where}: <end> {end:g} is not after <begin> {begin:g}")
    step = options.get("step-length") or "1"
    try:
        step_length = parse_time(step)
    except ValueError:
        raise ScenarioError(f"{where}: <step-length> value {step!r} is not a time") from None
    if step_length <= 0:
        raise ScenarioError(f"{where}: <step-length> must be above 0, is {step}")
    notes = _notes(options, where)
    name = _name(cfg) if cfg is not None else _name(net)
    return Scenario(name, cfg, net.resolve(), routes, adds, begin, end, step_length, tuple(options.items()), notes)


def _notes(options: dict[str, str], where: Path) -> tuple[str, ...]:
    """What a run changes in this configuration, one line each."""
    drop = dropped_options(gui=False)
    notes = []
    traci = sorted(n for n in options if n in drop and n in catalogue() and catalogue()[n].section == "traci_server")
    if traci:
        notes.append(f"{where.name}: {', '.join('<' + n + '>' for n in traci)} is for TraCI clients; ignored "
                     "(citybrain drives SUMO itself)")
    other = sorted(n for n in options if n in drop and n not in traci and catalogue().get(n) is not None
                   and catalogue()[n].section != "gui_only")
    if other:
        notes.append(f"{where.name}: {', '.join('<' + n + '>' for n in other)} ignored (it would keep SUMO from "
                     "running the scenario or move the run's outputs)")
    gui = sorted(n for n in options if n in drop and n not in traci and n not in other)
    if gui:
        notes.append(f"{where.name}: sumo-gui's {', '.join('<' + n + '>' for n in gui)} ignored (used with --gui)")
    outs = sorted(n for n, v in options.items() if v and is_output(n))
    for a in _split(options.get("additional-files", "")):
        files = additional_outputs(Path(a))
        if files:
            outs.append(f"{Path(a).name}: {', '.join(files[:3])}" + (" ..." if len(files) > 3 else ""))
    if outs:
        notes.append(f"{where.name}: its outputs ({'; '.join(outs)}) go to the run's folder (kept with "
                     "--keep-trips), never the scenario's")
    if options.get("random", "false").lower() in ("true", "1", "on", "yes"):
        notes.append(f"{where.name}: <random> is replaced by the run's --seed (runs must be reproducible)")
    if options.get("time-to-teleport") not in (None, "", "-1"):
        notes.append(f"{where.name}: <time-to-teleport> {options['time-to-teleport']} is replaced by -1 "
                     "(teleports would hide gridlock from the measurement)")
    return tuple(notes)


def unique_names(scenarios: Sequence[Scenario]) -> list[Scenario]:
    """The scenarios with names told apart: where two share a name, their parent folders are
    prefixed until the names differ (``bologna/acosta`` and ``bologna/pasubio``, or
    ``x/run`` and ``y/run``). The same scenario given twice is an error."""
    seen: dict[Path, int] = {}
    for i, s in enumerate(scenarios):
        if s.path in seen:
            raise ScenarioError(f"{s.path}: scenario given twice")
        seen[s.path] = i
    names = [s.name for s in scenarios]
    # two configurations of one folder: told apart by their files, not by more folders
    for i, s in enumerate(scenarios):
        if sum(1 for t in scenarios if t.name == s.name and t.folder == s.folder) > 1:
            names[i] = f"{s.name}/{s.path.name}"
    depth = [0] * len(scenarios)
    for _ in range(32):
        clash = {n for n in names if names.count(n) > 1}
        if not clash:
            break
        for i, s in enumerate(scenarios):
            if names[i] in clash and depth[i] < len(s.folder.parts):
                depth[i] += 1
                parents = s.folder.parts[-depth[i]:]
                base = names[i].split("/")[-1] if names[i].split("/")[-1] != s.folder.name else None
                names[i] = "/".join([*parents, *([base] if base else [])]).lstrip("/")
    return [replace(s, name=n) for s, n in zip(scenarios, names)]
