"""Stop-line counts as SUMO counts them: vehicles that leave a lane across its end.

An induction loop 0.1 m before the end of every lane of every edge a signal controls a movement
from or into (:func:`stopline_detectors`) is SUMO's own count of the vehicles crossing each stop
line; it sees a vehicle that passes a lane of a few centimetres (the stubs real networks have at
junctions) within one step, which no look at the lanes' vehicles between steps does. A vehicle
that changes lanes on its approach has crossed no stop line, nor has one whose trip ends on the
lane. :class:`StopLines` turns the lanes' and loops' vehicle ids of each step into cumulative
crossings (departures) and arrivals per lane, and crossings per edge (the HCM report's volume).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from xml.sax.saxutils import quoteattr

import numpy as np

__all__ = ["STOPLINE_FILE", "stopline_detectors", "StopLines"]

STOPLINE_FILE = "citybrain-stopline.add.xml"


def stopline_detectors(net_file: Path, run_dir: Path) -> tuple[Path, dict[str, str]]:
    """Write the loops' additional file into ``run_dir`` (sumolib reads the network); returns it and
    the loop of each lane."""
    import sumolib

    net = sumolib.net.readNet(str(net_file), withInternal=False)
    edges = set()
    for tls in net.getTrafficLights():
        for in_lane, out_lane, _ in tls.getConnections():
            for lane in (in_lane, out_lane):
                e = lane.getEdge()
                if not e.getID().startswith(":") and e.getFunction() in ("", "normal"):
                    edges.add(e)
    dets: dict[str, str] = {}
    out = run_dir / "citybrain-stopline.xml"
    lines = ["<additional>"]
    for e in sorted(edges, key=lambda x: x.getID()):
        for lane in e.getLanes():
            det = f"citybrain_sl_{len(dets)}"
            dets[lane.getID()] = det
            pos = max(lane.getLength() - 0.1, 0.0)
            lines.append(f'  <e1Detector id="{det}" lane={quoteattr(lane.getID())} pos="{pos:.3f}" friendlyPos="true" '
                         f'period="86400" file={quoteattr(str(out))}/>')
    lines.append("</additional>")
    path = run_dir / STOPLINE_FILE
    path.write_text("\n".join(lines) + "\n")
    return path, dets


class StopLines:
    """Cumulative stop-line crossings and arrivals.

    Args:
        lanes: the lanes whose counts the readings carry, in order.
        edge_of: each of those lanes' edge; edge_lanes: every lane of each such edge.
        detector_of: the stop-line loop of a lane (lanes without one are counted by their ids:
            gone from the lane and from every lane of its edge).
    """

    def __init__(self, lanes: Sequence[str], edge_of: Mapping[str, str], edge_lanes: Mapping[str, tuple[str, ...]],
                 detector_of: Mapping[str, str]) -> None:
        self.lanes = tuple(lanes)
        self.edge_of = dict(edge_of)
        self.edge_lanes = dict(edge_lanes)
        self.id_lanes = sorted({x for v in self.edge_lanes.values() for x in v})
        self.detectors = {ln: detector_of[ln] for ln in self.id_lanes if ln in detector_of}
        self._ids: dict[str, tuple[str, ...]] = {ln: () for ln in self.id_lanes}
        self._on_det: dict[str, tuple[str, ...]] = {ln: () for ln in self.detectors}
        self.arrivals = np.zeros(len(self.lanes), dtype=np.int64)
        self.departures = np.zeros(len(self.lanes), dtype=np.int64)
        self.edge_left = {e: 0 for e in self.edge_lanes}

    def lane_vehicles(self) -> list[tuple[str, ...]]:
        """The vehicles on each of :attr:`lanes` (the lane itself), as of the last update."""
        return [self._ids[ln] for ln in self.lanes]

    def update(self, now: Mapping[str, tuple[str, ...]], det_now: Mapping[str, tuple[str, ...]],
               arrived: set[str]) -> None:
        """One step: the vehicles on every lane of :attr:`id_lanes` and on every loop, and the
        vehicles whose trips ended in the step.

        A crossing is a vehicle that left a lane's loop; a lane without a loop counts the vehicles
        gone from it that are not on another lane of its edge. An arrival is a vehicle seen on the
        lane (or its loop) that was on no lane of its edge the step before."""
        before, det_before = self._ids, self._on_det
        self._ids, self._on_det = dict(now), dict(det_now)
        edge_before: dict[str, set[str]] = {}
        gone_of: dict[str, int] = {}
        for e, lanes in self.edge_lanes.items():  # the whole approach: every lane, controlled or not
            if all(now[ln] == before[ln] and det_now.get(ln, ()) == det_before.get(ln, ()) for ln in lanes):
                continue
            on_now = {v for ln in lanes for v in now[ln]} | {v for ln in lanes for v in det_now.get(ln, ())}
            edge_before[e] = {v for ln in lanes for v in before[ln]} | {v for ln in lanes
                                                                          for v in det_before.get(ln, ())}
            left = 0
            for ln in lanes:
                if ln in det_now:
                    gone = set(det_before[ln]) - set(det_now[ln]) - arrived
                else:
                    gone = set(before[ln]) - set(now[ln]) - on_now - arrived
                gone_of[ln] = len(gone)
                left += len(gone)
            self.edge_left[e] += left
        for i, lane in enumerate(self.lanes):
            e = self.edge_of[lane]
            if e not in edge_before:
                continue
            self.departures[i] += gone_of.get(lane, 0)
            seen = set(now[lane]) | set(det_now.get(lane, ()))
            self.arrivals[i] += len(seen - edge_before[e])
