"""Highway Capacity Manual (signalised intersections) and ITE timing formulas, as plain functions.

Example:
    >>> round(uniform_delay(cycle=90.0, green=45.0, x=0.8), 2)
    18.75
    >>> los(18.75), los(81.0), los(30.0, v_c=1.05)
    ('B', 'F', 'F')
    >>> round(ite_yellow(speed_kmh=50.0), 2)
    3.28
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["uniform_delay", "incremental_delay", "control_delay", "los", "LOS_THRESHOLDS", "ite_yellow",
           "ite_all_red", "percentile_queue", "YELLOW_MIN", "YELLOW_MAX"]

LOS_THRESHOLDS = ((10.0, "A"), (20.0, "B"), (35.0, "C"), (55.0, "D"), (80.0, "E"))
"""HCM level of service for signalised intersections: control delay (s/veh) at most the bound."""

YELLOW_MIN = 3.0
YELLOW_MAX = 6.0
"""Yellow is clamped to 3-6 s (ITE practice)."""


def uniform_delay(cycle: float, green: float, x: float) -> float:
    """HCM uniform delay d1 = 0.5 C (1 - g/C)^2 / (1 - min(1, X) g/C) (s/veh)."""
    if cycle <= 0 or not 0 <= green <= cycle:
        raise ValueError(f"need 0 <= green <= cycle and cycle > 0, got green={green}, cycle={cycle}")
    r = green / cycle
    return 0.5 * cycle * (1.0 - r) ** 2 / (1.0 - min(1.0, x) * r)


def incremental_delay(x: float, capacity_vph: float, period_h: float = 0.25, k: float = 0.5,
                      upstream: float = 1.0) -> float:
    """HCM incremental (random and oversaturation) delay d2 (s/veh); ``k = 0.5`` for pretimed."""
    if capacity_vph <= 0:
        return math.inf
    return 900.0 * period_h * ((x - 1.0) + math.sqrt((x - 1.0) ** 2 + 8.0 * k * upstream * x / (capacity_vph * period_h)))


def control_delay(cycle: float, green: float, volume_vph: float, sat_flow_vph: float, period_h: float = 0.25) -> float:
    """d1 + d2 for a lane group (progression factor 1, no initial queue)."""
    cap = sat_flow_vph * green / cycle
    x = volume_vph / cap if cap > 0 else math.inf
    return uniform_delay(cycle, green, x) + incremental_delay(x, cap, period_h)


def los(delay_s: float, v_c: float | None = None) -> str:
    """Level of service A-F from control delay; F whenever demand exceeds capacity."""
    if v_c is not None and v_c > 1.0:
        return "F"
    if not math.isfinite(delay_s):
        return "F"
    for bound, letter in LOS_THRESHOLDS:
        if delay_s <= bound:
            return letter
    return "F"


def ite_yellow(speed_kmh: float, grade: float = 0.0, reaction_s: float = 1.0, decel: float = 3.05) -> float:
    """ITE change interval y = t + v / (2a + 2 G g), clamped to 3-6 s.

    ``speed_kmh`` approach speed (the limit), ``grade`` as a fraction (+ uphill), ``decel`` 3.05 m/s^2 (10 ft/s^2).
    """
    v = speed_kmh / 3.6
    y = reaction_s + v / (2.0 * decel + 2.0 * 9.81 * grade)
    return float(min(max(y, YELLOW_MIN), YELLOW_MAX))


def ite_all_red(speed_kmh: float, crossing_m: float, vehicle_m: float = 6.0) -> float:
    """ITE red clearance r = (W + L) / v (s): crossing width plus vehicle length at approach speed."""
    v = max(speed_kmh / 3.6, 1.0)
    return float((crossing_m + vehicle_m) / v)


def percentile_queue(samples: np.ndarray, q: float = 95.0) -> float:
    """The ``q``-th percentile of queue samples (vehicles)."""
    a = np.asarray(samples, dtype=np.float64)
    return float(np.percentile(a, q)) if a.size else 0.0
