"""Where a figure comes from: the scenario, the window, the rules, and the software that made it."""

from __future__ import annotations

import datetime as _dt
import functools
import platform
from dataclasses import asdict
from importlib import metadata

from brain.timing import Timing
from sim.scenario import Scenario

__all__ = ["versions", "provenance"]


@functools.lru_cache(maxsize=1)
def versions() -> dict[str, str]:
    """citybrain's, SUMO's and Python's versions."""
    def version(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "unknown"

    return {"citybrain": version("citybrain"), "sumo": version("eclipse-sumo"), "python": platform.python_version()}


def provenance(scenario: Scenario, *, seed: int | None, timing: Timing, begin: float, end: float | None,
               end_reason: str, step_length: float, controller: str, options: dict | None = None) -> dict:
    """The record's ``provenance``: everything needed to make the same figure again."""
    return {
        "scenario_path": str(scenario.path),
        **({} if scenario.config is not None else {"routes": [str(r) for r in scenario.routes],
                                                    "additional": [str(a) for a in scenario.additional]}),
        "begin_s": begin,
        "end_s": end,
        "end_reason": end_reason,
        "seed": seed,
        "step_length_s": step_length,
        "timing": asdict(timing),
        "controller": controller,
        "controller_options": dict(options or {}),
        **versions(),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
