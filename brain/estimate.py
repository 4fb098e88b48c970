"""Per-lane state estimation from whatever the sensing source reports.

The same estimator serves SUMO's lane detectors now and camera counts later: both arrive as
:class:`brain.model.Readings` (vehicles and halted vehicles in each lane's zone, cumulative
arrivals and departures at the lane itself).

Example:
    >>> est = LaneEstimator(n_lanes=2, halflife_s=60.0)
    >>> est.update(readings)          # doctest: +SKIP
    >>> est.rate                      # veh/s entering each lane, smoothed   # doctest: +SKIP
"""

from __future__ import annotations

import math

import numpy as np

from brain.model import Readings

__all__ = ["LaneEstimator"]


class LaneEstimator:
    """Queue, recent arrivals and a smoothed arrival rate per lane.

    Args:
        n_lanes: lanes in the readings.
        halflife_s: half-life of the exponential smoothing of the arrival rate (s).

    Attributes:
        queue: halted vehicles in each lane's zone now.
        moving: vehicles in the zone that are not halted (they will reach the queue soon).
        arrivals_last: vehicles that entered each lane since the previous update.
        departures_last: vehicles that left each lane (crossed its stop line) since then.
        rate: smoothed arrival rate (veh/s).
    """

    def __init__(self, n_lanes: int, halflife_s: float = 120.0) -> None:
        if halflife_s <= 0:
            raise ValueError(f"halflife_s must be > 0, got {halflife_s}")
        self.tau = halflife_s / math.log(2.0)
        self.queue = np.zeros(n_lanes)
        self.moving = np.zeros(n_lanes)
        self.arrivals_last = np.zeros(n_lanes)
        self.departures_last = np.zeros(n_lanes)
        self.rate = np.zeros(n_lanes)
        self._time: float | None = None
        self._arr = np.zeros(n_lanes)
        self._dep = np.zeros(n_lanes)
        self._elapsed = 0.0

    def update(self, readings: Readings) -> None:
        """Take in one set of readings (times must not go backwards)."""
        if readings.vehicles.shape != self.queue.shape:
            raise ValueError(f"readings cover {readings.vehicles.shape[0]} lanes, expected {self.queue.shape[0]}")
        self.queue = readings.halting.astype(np.float64)
        self.moving = np.maximum(readings.vehicles - readings.halting, 0.0)
        if self._time is None:
            self._time = readings.time
            self._arr = readings.arrivals.astype(np.float64)
            self._dep = readings.departures.astype(np.float64)
            return
        dt = readings.time - self._time
        if dt < 0:
            raise ValueError(f"readings went back in time: {readings.time} after {self._time}")
        self.arrivals_last = np.maximum(readings.arrivals - self._arr, 0.0)
        self.departures_last = np.maximum(readings.departures - self._dep, 0.0)
        self._arr = readings.arrivals.astype(np.float64)
        self._dep = readings.departures.astype(np.float64)
        self._time = readings.time
        if dt > 0:
            self._elapsed += dt
            # early on, average over what has been seen rather than decaying from zero
            alpha = max(1.0 - math.exp(-dt / self.tau), dt / self._elapsed)
            self.rate += alpha * (self.arrivals_last / dt - self.rate)
