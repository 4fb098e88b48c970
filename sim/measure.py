"""Trip measurement from SUMO's tripinfo, with the RESCO benchmark's delay definition.

Average delay per vehicle is ``timeLoss + departDelay`` over every vehicle scheduled to depart
in the simulated window. Vehicles still driving at the end count with the time lost so far
(``--tripinfo-output.write-unfinished``); vehicles never inserted count ``end - scheduled
departure`` (``--tripinfo-output.write-undeparted`` reports exactly that as ``departDelay``).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

__all__ = ["TripStats", "read_tripinfo"]


@dataclass(frozen=True)
class TripStats:
    """Aggregates over the trips of one run.

    Attributes:
        vehicles: trips counted (finished, unfinished and never inserted).
        arrived: trips that reached their destination (throughput).
        avg_delay_s: mean ``timeLoss + departDelay`` (the RESCO metric).
        avg_trip_time_s: mean duration of arrived trips.
        avg_wait_s: mean waiting time (time spent below 0.1 m/s) per vehicle.
        complete: False when the file was cut short (SUMO died); the figures cover what was read.
        ev_trips: emergency vehicles (type id starting with ``emergency``) among the trips;
        ev_avg_trip_time_s / ev_avg_delay_s: their mean duration (arrived) and delay;
        others_avg_delay_s: the mean delay of every other vehicle.
        ped_trips: pedestrians (SUMO persons) among the trips; ped_avg_delay_s: their mean
            time lost walking (``timeLoss`` summed over each person's walks: waiting at
            crossings, mostly). Vehicle figures never include them.
        not_inserted: vehicles due in the window that SUMO never inserted (no room to enter).
        entries: per edge vehicles entered on, ``(vehicles inserted, mean seconds they waited to
            be inserted)``.
    """

    vehicles: int
    arrived: int
    avg_delay_s: float
    avg_trip_time_s: float
    avg_wait_s: float
    complete: bool = True
    ev_trips: int = 0
    ev_avg_trip_time_s: float | None = None
    ev_avg_delay_s: float | None = None
    others_avg_delay_s: float | None = None
    ped_trips: int = 0
    ped_avg_delay_s: float | None = None
    not_inserted: int = 0
    entries: dict[str, tuple[int, float]] | None = None


def read_tripinfo(path: Path) -> TripStats:
    """Aggregate a tripinfo file; a truncated file gives the figures of the trips it holds."""
    n = arrived = 0
    delay = trip = wait = 0.0
    ev_n = ev_arr = 0
    ev_delay = ev_trip = 0.0
    ped_n, ped_delay = 0, 0.0
    not_inserted = 0
    entries: dict[str, list[float]] = {}
    complete = True
    try:
        for _event, el in ET.iterparse(path):
            if el.tag == "personinfo":
                ped_n += 1
                ped_delay += sum(float(w.get("timeLoss", 0.0)) for w in el.iter("walk"))
                el.clear()
                continue
            if el.tag != "tripinfo":
                continue
            n += 1
            depart_delay = float(el.get("departDelay", 0.0))
            d = float(el.get("timeLoss", 0.0)) + depart_delay
            if float(el.get("depart", 0.0)) < 0:
                not_inserted += 1
            else:
                lane = el.get("departLane", "")
                acc = entries.setdefault(lane.rsplit("_", 1)[0] if "_" in lane else lane, [0, 0.0])
                acc[0] += 1
                acc[1] += depart_delay
            delay += d
            wait += float(el.get("waitingTime", 0.0))
            done = float(el.get("arrival", -1.0)) >= 0
            if done:
                arrived += 1
                trip += float(el.get("duration", 0.0))
            if el.get("vType", "").startswith("emergency"):
                ev_n += 1
                ev_delay += d
                if done:
                    ev_arr += 1
                    ev_trip += float(el.get("duration", 0.0))
            el.clear()
    except ET.ParseError:
        complete = False
    except FileNotFoundError:
        return TripStats(0, 0, float("nan"), float("nan"), float("nan"), complete=False)
    nan = float("nan")
    return TripStats(
        vehicles=n,
        arrived=arrived,
        avg_delay_s=delay / n if n else nan,
        avg_trip_time_s=trip / arrived if arrived else nan,
        avg_wait_s=wait / n if n else nan,
        complete=complete,
        ev_trips=ev_n,
        ev_avg_trip_time_s=ev_trip / ev_arr if ev_arr else None,
        ev_avg_delay_s=ev_delay / ev_n if ev_n else None,
        others_avg_delay_s=(delay - ev_delay) / (n - ev_n) if n > ev_n else None,
        ped_trips=ped_n,
        ped_avg_delay_s=ped_delay / ped_n if ped_n else None,
        not_inserted=not_inserted,
        entries={e: (int(k), s / k) for e, (k, s) in entries.items() if k},
    )
