"""The actuator: every switch passes yellow (and all-red), minimum and maximum green hold."""

import pytest

from brain.model import GreenPhase
from brain.timing import Timing
from sim.signal import SignalMachine, transition_states

NS, EW, LEFT = GreenPhase(0, "GGrrgg"), GreenPhase(2, "rrGGrr"), GreenPhase(4, "rrrrGG")


@pytest.mark.parametrize("src,dst,yellow,red", [
    ("GGrr", "rrGG", "yyrr", "rrrr"),
    ("GGgr", "rrrG", "yyyr", "rrrr"),     # a permissive green also clears through yellow
    ("GGGg", "rrGG", "yyGg", "rrGg"),     # links green in both keep their character
    ("Gsrr", "rsGG", "ysrr", "rsrr"),     # stop signs (s) stay stop signs
    ("rrrg", "GGrG", "rrrg", "rrrg"),     # a permissive turn becoming protected keeps green
    ("rrrG", "GGrg", "rrry", "rrrr"),     # a protected turn becoming permissive: yellow arrow first
])
def test_transition_states(src, dst, yellow, red):
    assert transition_states(src, dst) == (yellow, red)


def run(machine, wishes, until):
    """Tick every second from 0 to ``until``; wishes maps time -> requested phase."""
    shown = []
    for t in range(until):
        if t in wishes:
            machine.request(float(t), wishes[t])
        shown.append(machine.tick(float(t)))
    return shown


def test_switch_goes_through_yellow_then_green():
    m = SignalMachine([NS, EW], Timing(yellow=3, min_green=5), now=0.0)
    shown = run(m, {10: 1}, 16)
    assert shown[9] == "GGrrgg"
    assert shown[10:13] == ["yyrryy"] * 3
    assert shown[13] == "rrGGrr"
    assert m.switches == 1


def test_all_red_is_inserted_after_yellow():
    m = SignalMachine([NS, EW], Timing(yellow=3, min_green=5, all_red=2), now=0.0)
    shown = run(m, {10: 1}, 17)
    assert shown[10:13] == ["yyrryy"] * 3
    assert shown[13:15] == ["rrrrrr"] * 2
    assert shown[15] == "rrGGrr"


def test_scenario_all_red_used_when_timing_leaves_it_open():
    m = SignalMachine([NS, EW], Timing(yellow=3, min_green=5), now=0.0, all_red=1.0)
    shown = run(m, {10: 1}, 15)
    assert shown[13] == "rrrrrr" and shown[14] == "rrGGrr"


def test_switch_before_min_green_is_refused_and_counted():
    m = SignalMachine([NS, EW], Timing(yellow=3, min_green=10), now=0.0)
    assert m.request(4.0, 1) is False
    assert m.refused == 1 and m.tick(4.0) == "GGrrgg"
    assert m.request(10.0, 1) is True


def test_requests_during_transition_are_refused():
    m = SignalMachine([NS, EW, LEFT], Timing(yellow=3, min_green=5), now=0.0)
    m.request(10.0, 1)
    m.tick(10.0)
    assert m.request(11.0, 2) is False and m.refused == 1
    assert run(m, {}, 14)[13] == "rrGGrr"  # the first target is still served


def test_max_green_ends_a_green_the_controller_keeps():
    m = SignalMachine([NS, EW], Timing(yellow=3, min_green=5, max_green=30), now=0.0)
    shown = run(m, {t: 0 for t in range(0, 60, 10)}, 40)
    assert shown[29] == "GGrrgg" and shown[30] == "yyrryy"
    assert m.max_outs == 1


@pytest.mark.parametrize("phase", [5, -1])
def test_a_phase_the_signal_lacks_is_refused_and_counted(phase):
    m = SignalMachine([NS, EW], Timing(), now=0.0)
    assert not m.request(20.0, phase)
    assert (m.refused, m.invalid, m.phase, m.tick(21.0)) == (1, 1, 0, NS.state)


@pytest.mark.parametrize("kwargs,msg", [
    ({"yellow": 0}, "never switches without yellow"),
    ({"min_green": 30, "max_green": 20}, "below min_green"),
    ({"step": 0}, "step must be > 0"),
    ({"all_red": -1}, "must be >= 0"),
])
def test_bad_timing_is_rejected(kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        Timing(**kwargs)


def test_timing_from_mapping_rejects_unknown_keys():
    assert Timing.from_mapping({"yellow": 4}).yellow == 4
    with pytest.raises(ValueError, match="unknown timing key"):
        Timing.from_mapping({"yelow": 4})
