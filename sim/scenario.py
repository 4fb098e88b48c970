"""Finding and checking a SUMO scenario before anything starts.

A scenario is a ``.sumocfg`` file, a folder holding exactly one, or the name of one of the
project's own scenarios (``single``, ``arterial``, ``grid4x4``, ``grid10x10``). Every file the
configuration names is checked up front, so a broken scenario fails with one line naming the
file instead of a SUMO stack trace half-way through a benchmark.

Example:
    >>> s = load_scenario("single")          # doctest: +SKIP
    >>> s.name, s.begin, s.end               # doctest: +SKIP
    ('single', 0.0, 3600.0)
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Scenario", "ScenarioError", "load_scenario", "library_dir", "library_names"]


class ScenarioError(Exception):
    """A scenario that cannot be run; the message names the offending file."""


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
        name: short name (the folder or file stem).
        config: absolute path of the ``.sumocfg``.
        net: absolute path of the network file.
        routes: absolute paths of the route files.
        additional: absolute paths of the configuration's additional files.
        begin: simulation start (s).
        end: simulation end (s); ``None`` when the configuration sets none.
    """

    name: str
    config: Path
    net: Path
    routes: tuple[Path, ...]
    additional: tuple[Path, ...]
    begin: float
    end: float | None


def _find_config(spec: str | Path) -> Path:
    p = Path(spec)
    if not p.exists() and not p.suffix and "/" not in str(spec):
        lib = library_dir() / str(spec)
        if lib.is_dir():
            p = lib
    if p.is_dir():
        cfgs = sorted(p.glob("*.sumocfg"))
        if not cfgs:
            raise ScenarioError(f"{p}: no .sumocfg file in this folder")
        if len(cfgs) > 1:
            names = ", ".join(c.name for c in cfgs)
            raise ScenarioError(f"{p}: several .sumocfg files ({names}); name one")
        return cfgs[0].resolve()
    if not p.exists():
        known = ", ".join(library_names()) or "none generated"
        raise ScenarioError(f"{p}: no such scenario file or folder (own scenarios: {known})")
    if p.suffix != ".sumocfg":
        raise ScenarioError(f"{p}: not a .sumocfg file")
    return p.resolve()


def _values(root: ET.Element, key: str) -> list[str]:
    out: list[str] = []
    for el in root.iter(key):
        v = el.get("value")
        if v:
            out.extend(x for x in v.replace(",", " ").split() if x)
    return out


def _time(root: ET.Element, key: str, cfg: Path) -> float | None:
    vals = _values(root, key)
    if not vals:
        return None
    try:
        return float(vals[0])
    except ValueError:
        raise ScenarioError(f"{cfg}: <{key}> value {vals[0]!r} is not a number of seconds") from None


def _check_xml(path: Path, role: str, cfg: Path) -> Path:
    if not path.is_file():
        raise ScenarioError(f"{path}: {role} named in {cfg.name} does not exist")
    if path.suffix == ".gz":
        return path
    try:
        for _event, _el in ET.iterparse(path, events=("start",)):
            break
    except ET.ParseError as e:
        raise ScenarioError(f"{path}: {role} is not valid XML ({e})") from None
    return path


def load_scenario(spec: str | Path) -> Scenario:
    """Resolve and check a scenario. Raises :class:`ScenarioError` naming the bad file."""
    cfg = _find_config(spec)
    try:
        root = ET.parse(cfg).getroot()
    except ET.ParseError as e:
        raise ScenarioError(f"{cfg}: not valid XML ({e})") from None
    base = cfg.parent
    nets = _values(root, "net-file")
    if not nets:
        raise ScenarioError(f"{cfg}: names no <net-file>")
    net = _check_xml(base / nets[0], "net-file", cfg)
    try:
        for _event, el in ET.iterparse(net, events=("start",)):
            if el.tag != "net":
                raise ScenarioError(f"{net}: not a SUMO network (root element <{el.tag}>)")
            break
    except ET.ParseError as e:
        raise ScenarioError(f"{net}: net-file is not valid XML ({e})") from None
    _check_whole(net, "net-file")
    routes = tuple(_check_xml(base / r, "route-file", cfg) for r in _values(root, "route-files"))
    adds = tuple(_check_xml(base / a, "additional-file", cfg) for a in _values(root, "additional-files"))
    for path in routes:
        _check_whole(path, "route-file")
    for path in adds:
        _check_whole(path, "additional-file")
    begin = _time(root, "begin", cfg) or 0.0
    end = _time(root, "end", cfg)
    if end is not None and end <= begin:
        raise ScenarioError(f"{cfg}: <end> {end:g} is not after <begin> {begin:g}")
    return Scenario(cfg.stem, cfg, net.resolve(), tuple(r.resolve() for r in routes),
                    tuple(a.resolve() for a in adds), begin, end)


def _check_whole(path: Path, role: str) -> None:
    """Parse a file completely (a few MB at most) so a truncated one fails here, not mid-run."""
    if path.suffix == ".gz":
        return
    try:
        for _event, el in ET.iterparse(path):
            el.clear()
    except ET.ParseError as e:
        raise ScenarioError(f"{path}: {role} is not valid XML ({e})") from None
