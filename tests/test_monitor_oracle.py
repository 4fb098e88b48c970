"""The safety monitor as an independent oracle: an actuator broken on purpose, in real SUMO runs,
is caught for every kind of breach; the real actuator, under the same rules, for none."""

import pytest

import sim.loop
from brain.timing import Timing
from sim.loop import run_scenario
from sim.scenario import load_scenario
from sim.signal import SignalMachine
from tests.chaos import Chaos

pytestmark = pytest.mark.sumo


def _no_yellow(phases, timing, now, crossings, transitions):
    return SignalMachine(phases, timing, now, crossings=crossings, transitions={k: () for k in transitions})


def _retimed(factor):
    def make(phases, timing, now, crossings, transitions):
        return SignalMachine(phases, timing, now, crossings=crossings,
                             transitions={k: tuple((s, d * factor) for s, d in v) for k, v in transitions.items()})
    return make


def _short_green(phases, timing, now, crossings, transitions):
    from dataclasses import replace

    return SignalMachine(phases, replace(timing, min_green=1.0), now, crossings=crossings, transitions=transitions)


def _merged_greens(phases, timing, now, crossings, transitions):
    from brain.model import GreenPhase

    def union(a, b):
        return "".join("G" if "G" in (x, y) else ("g" if "g" in (x, y) else x) for x, y in zip(a, b))

    bad = [GreenPhase(p.program_index, union(p.state, phases[(k + 1) % len(phases)].state), p.duration)
           for k, p in enumerate(phases)]
    return SignalMachine(bad, timing, now, crossings=crossings)


def _eu_actuator(phases, timing, now, crossings, transitions):
    from dataclasses import replace

    return SignalMachine(phases, replace(timing, profile="eu"), now, crossings=crossings)


def _no_all_red(phases, timing, now, crossings, transitions):
    return SignalMachine(phases, timing, now, crossings=crossings,
                         transitions={k: tuple((s, d) for s, d in v if any(c in "yYGg" for c in s))
                                      for k, v in transitions.items()})


def _no_pedestrians(phases, timing, now, crossings, transitions):
    return SignalMachine(phases, timing, now, crossings=(), transitions=transitions)


CASES = [
    ("single", Timing(), _no_yellow, "no-yellow-before-red"),
    ("single", Timing(), _retimed(1 / 3), "yellow-below-minimum"),
    ("single", Timing(), _retimed(4), "yellow-above-maximum"),
    ("single", Timing(), _short_green, "green-below-minimum"),
    ("single", Timing(), _merged_greens, "conflicting-greens"),
    ("single", Timing(), _eu_actuator, "no-yellow-before-permissive"),
    ("single", Timing(all_red=2.0), _no_all_red, "all-red-below-minimum"),
    ("crosswalk", Timing(), _no_pedestrians, "walk-below-minimum"),
    ("crosswalk", Timing(), _no_pedestrians, "ped-clearance-below-minimum"),
]


@pytest.mark.parametrize("scenario,timing,broken,kind", CASES, ids=[c[3] for c in CASES])
def test_a_broken_actuator_is_caught(monkeypatch, scenario, timing, broken, kind):
    sc = load_scenario(scenario)
    good = run_scenario(sc, Chaos(), timing=timing, end=600.0)
    assert good.safety_violations == 0, good.violation_kinds

    def factory(phases, timing, now, crossings=(), transitions=None):
        return broken(phases, timing, now, crossings, transitions)

    monkeypatch.setattr(sim.loop, "SignalMachine", factory)
    bad = run_scenario(sc, Chaos(), timing=timing, end=600.0)
    assert bad.violation_kinds.get(kind, 0) > 0, bad.violation_kinds
    assert bad.safety_violations >= bad.violation_kinds[kind]
    assert not bad.program_findings or all(f["source"] == "program as written" for f in bad.program_findings)
