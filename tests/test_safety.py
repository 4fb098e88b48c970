"""The safety monitor flags every kind of breach in a state sequence, and nothing in a legal one."""

import pytest

from sim.safety import SafetyMonitor, SafetyRules

RULES = SafetyRules(allowed_greens=(frozenset({0, 1}), frozenset({2, 3})), min_green=5, min_yellow=3, all_red=1)


def feed(states):
    """states: list of (time, state)."""
    mon = SafetyMonitor({"J": RULES})
    for t, s in states:
        mon.observe(float(t), "J", s)
    return mon


def test_legal_sequence_has_no_violation():
    mon = feed([(0, "GGrr"), (10, "yyrr"), (13, "rrrr"), (14, "rrGG"), (30, "rryy"), (33, "rrrr"), (34, "GGrr")])
    assert mon.violations == 0 and mon.checked == 7


@pytest.mark.parametrize("states,kind", [
    ([(0, "GGrr"), (10, "rrGG")], "green-to-red"),
    ([(0, "rrrr"), (1, "GGrr"), (4, "yyrr")], "short-green"),
    ([(0, "GGrr"), (10, "yyrr"), (11, "rrrr")], "short-yellow"),
    ([(0, "GGrr"), (10, "yyrr"), (13, "rrGG")], "no-all-red"),
    ([(0, "GGGr")], "conflicting-green"),
    ([(0, "GGrr"), (10, "GGGr")], "conflicting-green"),
    ([(0, "Ggrr"), (10, "ggrr")], "green-to-red"),  # G -> g: priority lost without yellow
])
def test_each_breach_is_flagged(states, kind):
    mon = feed(states)
    assert mon.counts[kind] >= 1, mon.kept
    assert mon.kept[0].tls == "J"


def test_spans_begun_before_the_first_look_are_not_judged():
    # a run that starts mid-phase (e.g. a scenario beginning at 25200 s) sees a short first green
    mon = feed([(0, "GGrr"), (2, "yyrr"), (5, "rrrr"), (6, "rrGG")])
    assert mon.violations == 0
