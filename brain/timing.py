"""Signal timing rules shared by the controllers and the actuator that enforces them."""

from __future__ import annotations

from dataclasses import dataclass, fields

__all__ = ["Timing"]


@dataclass(frozen=True)
class Timing:
    """Signal timing rules the actuator enforces (seconds).

    Attributes:
        step: how often controllers are asked for a decision.
        yellow: yellow time inserted on every switch.
        all_red: all-red time after yellow; ``None`` takes the scenario program's own.
        min_green: shortest green the actuator lets a controller end.
        max_green: longest green; the actuator ends it at this age whatever the controller asks.
        clearance: ``fixed`` (``yellow`` and ``all_red`` everywhere) or ``ite`` (each
            intersection's own from the ITE formulas: yellow from its approach speed limit,
            clamped to 3-6 s; all-red from its crossing width; set on ``Intersection.yellow_s``
            and ``all_red_s`` by the loop).
        walk: pedestrian walk interval (MUTCD minimum 7 s): a green that shows a crossing's walk
            is not ended sooner.
        ped_speed: walking speed for the pedestrian clearance (m/s): after a walk ends, no
            vehicle movement crossing that crosswalk turns green before the crossing's length
            at this speed has passed (the clearance may overlap yellow and all-red).
    """

    step: float = 10.0
    yellow: float = 3.0
    all_red: float | None = None
    min_green: float = 5.0
    max_green: float = 120.0
    clearance: str = "fixed"
    walk: float = 7.0
    ped_speed: float = 1.2

    def __post_init__(self) -> None:
        if self.clearance not in ("fixed", "ite"):
            raise ValueError(f"Timing.clearance must be 'fixed' or 'ite', got {self.clearance!r}")
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, str):
                continue
            if v is not None and v < 0:
                raise ValueError(f"Timing.{f.name} must be >= 0, got {v}")
        if self.step <= 0:
            raise ValueError(f"Timing.step must be > 0, got {self.step}")
        if self.yellow <= 0:
            raise ValueError("Timing.yellow must be > 0: the actuator never switches without yellow")
        if self.ped_speed <= 0:
            raise ValueError(f"Timing.ped_speed must be > 0, got {self.ped_speed}")
        if self.max_green < self.min_green:
            raise ValueError(f"Timing.max_green ({self.max_green}) is below min_green ({self.min_green})")

    def yellow_of(self, x) -> float:
        """Yellow the actuator shows at intersection ``x``."""
        return x.yellow_s if self.clearance == "ite" else self.yellow

    def all_red_of(self, x) -> float:
        """All-red after yellow at intersection ``x``."""
        if self.clearance == "ite" or self.all_red is None:
            return x.all_red_s
        return self.all_red

    def ped_clearance(self, length_m: float) -> float:
        """Pedestrian clearance time for a crossing ``length_m`` long (s)."""
        return length_m / self.ped_speed

    def phase_min_greens(self, x) -> list[float]:
        """Shortest vehicle green of each of ``x``'s phases: the minimum green, or for a phase that
        shows a crosswalk's walk, the walk plus the clearance that yellow and all-red leave."""
        lost = self.yellow_of(x) + self.all_red_of(x)
        out = []
        for p in x.phases:
            walks = [length for i, length in x.crossings if p.state[i] in "Gg"]
            ped = self.walk + max(0.0, max(self.ped_clearance(v) for v in walks) - lost) if walks else 0.0
            out.append(max(self.min_green, ped))
        return out

    @classmethod
    def from_mapping(cls, values: dict[str, float | None]) -> Timing:
        """Build from a config mapping; unknown keys raise ``ValueError``."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown timing key(s): {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        return cls(**values)
