"""SUMO configurations read as SUMO reads them, and the configuration a measured run uses.

SUMO itself parses a configuration: ``sumo -c FILE --save-configuration OUT`` writes it back with
every option under its full name (``<net value=...>`` in a RiLSA ``run.sumo.cfg`` becomes
``net-file``), whatever the file's name or root element. :func:`read_config` does that and
returns the options with their file paths made absolute. SUMO's own option catalogue (``sumo
--save-template``) says which options name files, which of those are outputs, and which only
matter to sumo-gui or to a TraCI client.

:func:`write_run_config` writes the configuration a run actually loads into the run's own folder:
the scenario's options, with every output (the configuration's ``summary-output``, ``log``, ...,
and the ``file=`` of detectors and edge data in its additional files) sent into
``RUN/scenario-outputs/``, and the TraCI- and GUI-only options (``remote-port``,
``gui-settings-file``, ...) left out. Nothing is ever written into the scenario's folder.
"""

from __future__ import annotations

import functools
import gzip
import os
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from wire.errors import ScenarioError

__all__ = ["ConfigError", "OptionInfo", "catalogue", "read_config", "write_run_config", "sumo_binary", "sumo_env",
           "parse_time", "open_xml", "OUTPUT_DIR", "dropped_options", "option_names", "is_output",
           "additional_outputs"]

OUTPUT_DIR = "scenario-outputs"
"""Sub-folder of a run's folder that receives the scenario's own outputs."""

_INPUTS_DIR = "scenario-inputs"

_OUTPUT_ELEMENTS = {
    "file": frozenset({"e1Detector", "inductionLoop", "instantInductionLoop", "e2Detector", "laneAreaDetector",
                       "e3Detector", "entryExitDetector", "edgeData", "laneData", "edgeRelations", "tazRelations",
                       "edgeEmissions", "laneEmissions", "edgeNoise", "laneNoise", "routeProbe", "vTypeProbe",
                       "edgeFollowDetector"}),
    "output": frozenset({"calibrator", "laneCalibrator"}),
    "dest": frozenset({"timedEvent"}),
}
"""Attributes of additional-file elements that name a file SUMO writes."""

_PATH_SUFFIXES = (".xml", ".gz", ".csv", ".txt", ".png", ".jpg", ".gif", ".obj", ".osg", ".3ds", ".ply", ".dae")


class ConfigError(ScenarioError):
    """A configuration SUMO cannot read; the message names the file."""


@dataclass(frozen=True)
class OptionInfo:
    """One SUMO option: its section in the template and its type (``FILE``, ``BOOL``, ...)."""

    section: str
    type: str

    @property
    def is_file(self) -> bool:
        return self.type == "FILE"


def sumo_binary(gui: bool = False) -> str:
    """Path of the ``sumo`` (or ``sumo-gui``) binary of the eclipse-sumo wheel."""
    from sumo import SUMO_HOME

    return str(Path(SUMO_HOME) / "bin" / ("sumo-gui" if gui else "sumo"))


def sumo_env() -> dict[str, str]:
    """The environment for a SUMO subprocess (``SUMO_HOME`` set, so it validates nothing online)."""
    from sumo import SUMO_HOME

    return dict(os.environ, SUMO_HOME=str(SUMO_HOME))


@functools.lru_cache(maxsize=1)
def _template() -> ET.Element:
    with tempfile.TemporaryDirectory(prefix="citybrain-template-") as tmp:
        out = Path(tmp) / "template.xml"
        done = subprocess.run([sumo_binary(), "--save-template", str(out)], capture_output=True, text=True,
                              env=sumo_env())
        if done.returncode != 0 or not out.exists():
            raise ConfigError(f"{sumo_binary()}: SUMO could not list its options ({done.stderr.strip()[:200]})")
        return ET.parse(out).getroot()


@functools.lru_cache(maxsize=1)
def catalogue() -> dict[str, OptionInfo]:
    """Every option of this SUMO, by full name, from ``sumo --save-template``."""
    return {opt.tag: OptionInfo(section.tag, opt.get("type", "")) for section in _template() for opt in section}


@functools.lru_cache(maxsize=1)
def option_names() -> dict[str, str]:
    """Every option name and synonym SUMO accepts in a configuration -> the option's full name."""
    out: dict[str, str] = {}
    for section in _template():
        for opt in section:
            out[opt.tag] = opt.tag
            for syn in opt.get("synonymes", "").split():
                out.setdefault(syn, opt.tag)
    return out


_DEVICE_FILES = frozenset({"device.ssm.file", "device.toc.file"})
"""Output files SUMO's catalogue types as plain strings."""

_NOT_RUN = frozenset({"save-configuration", "save-template", "save-schema", "save-commented", "output-prefix",
                      "output-suffix"})
"""Options a measured run leaves out: writing a configuration or template makes SUMO exit without
running, and a prefix or suffix would move the run's own outputs."""


def is_output(name: str) -> bool:
    """True for an option naming a file SUMO writes."""
    if name in _DEVICE_FILES:
        return True
    info = catalogue().get(name)
    if info is None or not info.is_file or name in _NOT_RUN:
        return False
    if info.section == "output":
        return not name.endswith("input-file")
    return name in ("log", "message-log", "error-log") or name.endswith(".output") or name.startswith("save-state.")


def dropped_options(gui: bool = False) -> frozenset[str]:
    """Options a run never passes on: TraCI's (the run is its own client), what would stop SUMO
    from running or move the run's outputs, and, without a GUI, sumo-gui's."""
    return frozenset(n for n, i in catalogue().items()
                     if i.section == "traci_server" or (i.section == "gui_only" and not gui)) | _NOT_RUN


def parse_time(text: str) -> float:
    """A SUMO time value in seconds: ``3600``, ``3600.5`` or ``[[[D:]H:]M:]S`` (``7:00:00``)."""
    parts = text.strip().split(":")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise ValueError(f"{text!r} is not a time") from None
    if len(values) > 4:
        raise ValueError(f"{text!r} is not a time")
    scale = (1.0, 60.0, 3600.0, 86400.0)
    return sum(v * scale[i] for i, v in enumerate(reversed(values)))


def open_xml(path: Path):
    """A binary stream of an XML file, gzipped or not (by content, as SUMO reads it)."""
    with open(path, "rb") as f:
        magic = f.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")


def read_config(config: Path) -> dict[str, str]:
    """The options of a SUMO configuration as SUMO reads them: full names, file paths absolute.

    Raises :class:`ConfigError` (with SUMO's own message) when SUMO cannot read it.
    """
    config = Path(config).resolve()
    with tempfile.TemporaryDirectory(prefix="citybrain-cfg-") as tmp:
        out = Path(tmp) / "normalised.sumocfg"
        done = subprocess.run([sumo_binary(), "-c", str(config), "--save-configuration", str(out)],
                              capture_output=True, text=True, env=sumo_env(), cwd=tmp)
        if done.returncode != 0 or not out.exists():
            lines = [ln.strip() for ln in (done.stderr + done.stdout).splitlines() if ln.strip().startswith("Error")]
            why = lines[0].removeprefix("Error:").strip() if lines else f"sumo exited with {done.returncode}"
            raise ConfigError(f"{config}: SUMO cannot read this configuration ({why})")
        root = ET.parse(out).getroot()
        base = out.parent
        options: dict[str, str] = {}
        info = catalogue()
        for section in root:
            for opt in section:
                value = opt.get("value", "")
                if info.get(opt.tag, OptionInfo("", "")).is_file and value:
                    value = ",".join(str((base / v).resolve()) if not Path(v).is_absolute() else v
                                     for v in _split(value))
                options[opt.tag] = value
    return options


def _split(value: str) -> list[str]:
    return [v for v in value.replace(";", ",").split(",") if v.strip()]


def write_run_config(options: Mapping[str, str], run_dir: Path, *, gui: bool = False,
                     extra_additional: Iterable[Path] = ()) -> Path:
    """Write the configuration a run loads into ``run_dir`` and return its path.

    ``options`` are a scenario's (full names, absolute paths). Outputs go to
    ``run_dir/scenario-outputs/`` (additional files that write outputs are copied to
    ``run_dir/scenario-inputs/`` with their ``file=`` redirected); TraCI options, and sumo-gui's
    unless ``gui``, are left out; ``extra_additional`` files are appended to the additional files.
    """
    run_dir = Path(run_dir)
    outputs = run_dir / OUTPUT_DIR
    drop = dropped_options(gui)
    root = ET.Element("configuration")
    adds: list[str] = []
    for name, value in options.items():
        if name in drop or name == "configuration-file":
            continue
        if name == "additional-files":
            adds = [str(_redirect_additional(Path(p), run_dir)) for p in _split(value)]
            continue
        if is_output(name) and value:
            outputs.mkdir(parents=True, exist_ok=True)
            value = ",".join(str(outputs / Path(v).name) for v in _split(value))
        ET.SubElement(root, name, value=value)
    adds += [str(Path(p).resolve()) for p in extra_additional]
    if adds:
        ET.SubElement(root, "additional-files", value=",".join(adds))
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "run.sumocfg"
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
    return path


def additional_outputs(path: Path) -> list[str]:
    """The files an additional file has SUMO write (detector and edge-data ``file=``, ...)."""
    try:
        with open_xml(path) as f:
            tree = ET.parse(f)
    except (OSError, ET.ParseError, EOFError):
        return []
    return sorted({el.get(attr) for el in tree.getroot().iter() for attr, tags in _OUTPUT_ELEMENTS.items()
                   if el.tag in tags and el.get(attr)})


def _redirect_additional(path: Path, run_dir: Path) -> Path:
    """``path`` itself, or a copy in the run's folder whose outputs go to the run's folder."""
    try:
        with open_xml(path) as f:
            tree = ET.parse(f)
    except (OSError, ET.ParseError):
        return path  # SUMO reports it, naming the file
    writes = False
    for el in tree.getroot().iter():
        for attr, tags in _OUTPUT_ELEMENTS.items():
            if el.tag in tags and el.get(attr):
                writes = True
    if not writes:
        return path
    origin = path.parent
    outputs = run_dir / OUTPUT_DIR
    outputs.mkdir(parents=True, exist_ok=True)
    for el in tree.getroot().iter():
        for attr, value in list(el.attrib.items()):
            if attr in _OUTPUT_ELEMENTS and el.tag in _OUTPUT_ELEMENTS[attr]:
                el.set(attr, str(outputs / Path(value).name))
            elif (value.lower().endswith(_PATH_SUFFIXES) and not Path(value).is_absolute()
                  and " " not in value and (origin / value).exists()):
                el.set(attr, str((origin / value).resolve()))  # an input the copy must still find
    inputs = run_dir / _INPUTS_DIR
    inputs.mkdir(parents=True, exist_ok=True)
    name = path.name[:-3] if path.name.endswith(".gz") else path.name
    dest = inputs / name
    k = 1
    while dest.exists():  # two additional files of the same name from different folders
        dest = inputs / f"{k}-{name}"
        k += 1
    tree.write(dest, encoding="utf-8", xml_declaration=True)
    return dest
