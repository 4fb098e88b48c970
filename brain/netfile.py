"""The network description the brain loads: the controlled intersections and the rules they run by.

``citybrain export-network`` reads a scenario as the sim drives it (:func:`sim.review.controlled_network`,
the one reader of intersection models) and writes it here: every controlled signal's green
phases, the seconds between them, its links and lanes, the lanes' lengths and speed limits,
which signal's exits feed which signal's entries, and the timing rules (:data:`brain.timing.RULES`).
The brain needs nothing else from the city, and so no simulator.

The file is JSON: ``{"format": "citybrain-network", "version": 1, "scenario": ..., "digest": ...,
"rules": {...}, "network": {...}}``. The digest is the SHA-256 of the canonical JSON of ``rules``
and ``network``; the sim announces the digest of the network it drives in its hello, and a
brain whose file says otherwise refuses to drive it.

Example:
    >>> import numpy as np
    >>> from brain.model import GreenPhase, Intersection, Network
    >>> x = Intersection("t", (GreenPhase(0, "Gr"), GreenPhase(2, "rG")), ((0, 2), (1, 3)), (0, 1), (2, 3), 3.0, 0.0)
    >>> net = Network((x,), ("a", "b", "c", "d"), np.full(4, 100.0), np.full(4, 13.9))
    >>> back = from_dict(to_dict(net, Timing()))
    >>> back.digest == digest(net, Timing()), back.network.intersections[0].phases[1].state
    (True, 'rG')
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from brain.model import GreenPhase, Intersection, Network
from brain.timing import RULES, Timing
from wire.errors import InputError

__all__ = ["FORMAT", "VERSION", "NetworkFile", "digest", "to_dict", "from_dict", "write_network", "load_network"]

FORMAT = "citybrain-network"
VERSION = 1


@dataclass(frozen=True)
class NetworkFile:
    """A loaded network description.

    Attributes:
        network: the controlled intersections and their lanes.
        timing: the rules (``step`` is the loading process's own decision interval).
        digest: SHA-256 (hex) of the rules and the network, as the sim announces it.
        scenario: the scenario it was exported from (informative).
    """

    network: Network
    timing: Timing
    digest: str
    scenario: str = ""


def _rules(timing: Timing) -> dict:
    return {k: getattr(timing, k) for k in RULES}


def _network(net: Network) -> dict:
    return {
        "lanes": list(net.lanes),
        "lane_length": [float(v) for v in net.lane_length],
        "lane_speed": [float(v) for v in net.lane_speed],
        "feeds": [[int(o), int(i), float(d)] for o, i, d in net.feeds],
        "intersections": [{
            "id": x.id,
            "phases": [{"program_index": p.program_index, "state": p.state, "duration": float(p.duration)}
                       for p in x.phases],
            "links": [[int(a), int(b)] for a, b in x.links],
            "in_lanes": [int(v) for v in x.in_lanes], "out_lanes": [int(v) for v in x.out_lanes],
            "yellow_s": float(x.yellow_s), "all_red_s": float(x.all_red_s),
            "crossings": [[int(i), float(n)] for i, n in x.crossings],
            "change_s": [[float(v) for v in row] for row in x.change_s],
        } for x in net.intersections],
    }


def _canonical(body: dict) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def digest(net: Network, timing: Timing) -> str:
    """The SHA-256 (hex) of ``net`` under ``timing``'s rules: equal exactly when both are."""
    return hashlib.sha256(_canonical({"rules": _rules(timing), "network": _network(net)})).hexdigest()


def to_dict(net: Network, timing: Timing, scenario: str = "") -> dict:
    """The JSON-ready description of ``net`` and ``timing``'s rules."""
    return {"format": FORMAT, "version": VERSION, "scenario": scenario, "digest": digest(net, timing),
            "rules": _rules(timing), "network": _network(net)}


def from_dict(d: dict, step: float = 10.0) -> NetworkFile:
    """The :class:`NetworkFile` of a description (raises ``ValueError`` saying what is wrong)."""
    if not isinstance(d, dict) or d.get("format") != FORMAT:
        raise ValueError(f"not a {FORMAT} file")
    if d.get("version") != VERSION:
        raise ValueError(f"{FORMAT} version {d.get('version')!r}; this citybrain reads version {VERSION}")
    try:
        r, n = d["rules"], d["network"]
        unknown = sorted(set(r) - set(RULES))
        if unknown:
            raise ValueError(f"unknown rule(s) {', '.join(unknown)}")
        timing = Timing(step=step, **r)
        inters = tuple(Intersection(
            str(x["id"]),
            tuple(GreenPhase(int(p["program_index"]), str(p["state"]), float(p["duration"])) for p in x["phases"]),
            tuple((int(a), int(b)) for a, b in x["links"]),
            tuple(int(v) for v in x["in_lanes"]), tuple(int(v) for v in x["out_lanes"]),
            float(x["yellow_s"]), float(x["all_red_s"]),
            tuple((int(i), float(m)) for i, m in x["crossings"]),
            tuple(tuple(float(v) for v in row) for row in x["change_s"])) for x in n["intersections"])
        net = Network(inters, tuple(str(v) for v in n["lanes"]), np.array(n["lane_length"], dtype=np.float64),
                      np.array(n["lane_speed"], dtype=np.float64),
                      tuple((int(o), int(i), float(m)) for o, i, m in n["feeds"]))
    except (KeyError, TypeError) as e:
        raise ValueError(f"malformed description ({type(e).__name__}: {e})") from None
    for x in net.intersections:
        for a, b in x.links:
            if not (-1 <= a < net.n_lanes and -1 <= b < net.n_lanes):
                raise ValueError(f"intersection {x.id!r}: link {(a, b)} beyond the {net.n_lanes} lanes")
    got = digest(net, timing)
    if d.get("digest") != got:
        raise ValueError(f"its digest {d.get('digest')!r} is not its content's ({got}): the file was changed")
    return NetworkFile(net, timing, got, str(d.get("scenario", "")))


def write_network(path: str | Path, net: Network, timing: Timing, scenario: str = "") -> str:
    """Write the description to ``path``; returns its digest."""
    d = to_dict(net, timing, scenario)
    Path(path).write_text(json.dumps(d, indent=1) + "\n")
    return d["digest"]


def load_network(path: str | Path, step: float = 10.0) -> NetworkFile:
    """Read a description written by :func:`write_network` (raises :class:`InputError` naming the file)."""
    try:
        d = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise InputError(f"network file not found: {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"network file {path}: cannot be read as JSON ({e})") from None
    try:
        return from_dict(d, step)
    except ValueError as e:
        raise InputError(f"network file {path}: {e}") from None
