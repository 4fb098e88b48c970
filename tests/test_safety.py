"""The safety monitor, an independent oracle: SUMO's state characters as SUMO means them, SUMO's
own conflict matrices, every kind of breach flagged, nothing flagged in a legal sequence."""

import pytest

from sim.safety import RULE_NAMES, Conflicts, SafetyMonitor, SafetyRules

RULES = SafetyRules(min_green=5, min_yellow=3, all_red=1)
# links 0, 1 (north-south) cross links 2, 3 (east-west)
CROSSING = Conflicts.of_pairs(4, foes=[(0, 2), (0, 3), (1, 2), (1, 3)])


def feed(states, rules=RULES, conf=CROSSING):
    """states: list of (time, state)."""
    mon = SafetyMonitor({"J": rules}, {"J": conf})
    for t, s in states:
        mon.observe(float(t), "J", s)
    return mon


def test_legal_sequence_has_no_violation():
    mon = feed([(0, "GGrr"), (10, "yyrr"), (13, "rrrr"), (14, "rrGG"), (30, "rryy"), (33, "rrrr"), (34, "GGrr")])
    assert mon.violations == 0 and mon.checked == 7


@pytest.mark.parametrize("states,kind", [
    ([(0, "GGrr"), (10, "rrGG")], "no-yellow-before-red"),
    ([(0, "GGrr"), (10, "sGrr")], "no-yellow-before-red"),         # to stop-then-go: vehicles at speed must stop
    ([(0, "GGrr"), (10, "uurr")], "no-yellow-before-red"),         # red-yellow is red
    ([(0, "rrrr"), (1, "GGrr"), (4, "yyrr")], "green-below-minimum"),
    ([(0, "GGrr"), (10, "yyrr"), (11, "rrrr")], "yellow-below-minimum"),
    ([(0, "GGrr"), (10, "YYrr"), (11, "rrrr")], "yellow-below-minimum"),  # SUMO's major-road yellow
    ([(0, "GGrr"), (10, "yyrr"), (13, "rrGG")], "all-red-below-minimum"),
    ([(0, "GGrr"), (10, "yyrr"), (12, "yyGG")], "all-red-below-minimum"),  # green while the crossing one is yellow
    ([(0, "GGGr")], "conflicting-greens"),
    ([(0, "GGrr"), (10, "GGGr")], "conflicting-greens"),
    ([(0, "GGrr"), (10, "OOOr")], "conflicting-greens"),           # a signal switched off: O has the right of way
    ([(0, "Ggrr"), (10, "ggrr")], "no-yellow-before-permissive"),  # G -> g: priority lost without yellow
])
def test_each_breach_is_flagged(states, kind):
    mon = feed(states)
    assert mon.counts[kind] >= 1, mon.kept
    assert mon.kept[0].tls == "J"


def test_sumo_major_yellow_is_yellow():
    """``Y`` (SUMO's yellow on a link with the right of way) is a yellow: 3 s of it is legal."""
    mon = feed([(0, "GGrr"), (10, "YYrr"), (13, "rrrr"), (14, "rrGG")])
    assert mon.violations == 0, mon.kept


def test_eu_profile_allows_the_permissive_change_and_still_judges_the_rest():
    eu = SafetyRules(min_green=5, min_yellow=3, all_red=1, permissive_needs_yellow=False)
    assert feed([(0, "Ggrr"), (10, "ggrr")], eu).violations == 0
    assert feed([(0, "Ggrr"), (10, "rgrr")], eu).counts["no-yellow-before-red"] == 1


def test_a_link_that_yields_may_go_beside_its_priority_foe():
    """A permissive left (g) that SUMO's response makes give way to the oncoming through (G) is not
    a conflict; shown G, or without the response entry, it is."""
    conf = Conflicts.of_pairs(2, foes=[(0, 1)], yields=[(0, 1)])
    assert feed([(0, "gG")], conf=conf).violations == 0
    assert feed([(0, "GG")], conf=conf).counts["conflicting-greens"] == 1
    assert feed([(0, "Gg")], conf=conf).counts["conflicting-greens"] == 1  # 1 does not yield to 0
    assert feed([(0, "sG")], conf=conf).violations == 0  # stop, then give way: always yields


def test_spans_begun_before_the_first_look_are_not_judged():
    # a run that starts mid-phase (e.g. a scenario beginning at 25200 s) sees a short first green
    mon = feed([(0, "GGrr"), (2, "yyrr"), (5, "rrrr"), (6, "rrGG")])
    assert mon.violations == 0


def test_counts_by_signal_and_by_program_phase():
    mon = SafetyMonitor({"A": RULES, "B": RULES}, {"A": CROSSING, "B": CROSSING})
    for t, s, k in [(0, "GGrr", 0), (10, "rrGG", 2)]:
        mon.observe(float(t), "A", s, k)
        mon.observe(float(t), "B", s)
    assert mon.count_for(["A"]) == 2 and mon.count_for(["A", "B"]) == 4
    assert mon.by_phases == {("A", 0, 2, "no-yellow-before-red"): 2}


def test_rule_names_are_those_it_counts():
    assert set(RULE_NAMES) >= {"no-yellow-before-red", "conflicting-greens", "ped-clearance-below-minimum"}


@pytest.mark.sumo
def test_conflicts_come_from_sumos_matrices():
    """On the own crosswalk junction: through movements of crossing approaches are foes, a permissive
    left gives way to the oncoming through, the crosswalks are found with their lengths."""
    from sim.scenario import library_dir

    from sim.safety import read_conflicts

    read = read_conflicts(library_dir() / "crosswalk" / "crosswalk.net.xml")
    conf = read["A0"]
    assert conf.n_links == 20 and sorted(conf.crossings) == [16, 17, 18, 19]
    assert all(12.0 <= v <= 20.0 for v in conf.crossings.values())
    assert (1, 5) in conf.foes  # north through x east through
    assert (1, 9) not in conf.foes  # north and south through: opposite, no conflict
    left_yields = [(a, b) for a, b in conf.yields if a == 3]  # the north approach's left turn
    assert (3, 9) in left_yields or (3, 10) in left_yields  # gives way to the oncoming (south) through


def test_a_yellow_changing_between_y_and_Y_is_one_yellow():
    mon = feed([(0, "GGrr"), (10, "yyrr"), (11, "YYrr"), (13, "rrrr"), (14, "rrGG")])
    assert mon.violations == 0, mon.kept


def test_a_yellow_followed_by_green_is_flagged_but_the_yellow_arrow_is_not():
    assert feed([(0, "GGrr"), (10, "yyrr"), (13, "GGrr")]).counts["green-after-yellow"] == 2
    conf = Conflicts.of_pairs(2, foes=[(0, 1)], yields=[(0, 1)])
    # a protected left (G) shows its yellow arrow, then turns permissive (g) beside the oncoming through
    assert feed([(0, "Grr"), (10, "yrr"), (13, "grG")], conf=Conflicts.of_pairs(3)).violations == 0
    assert feed([(0, "gG"), (10, "yG"), (13, "gG")], conf=conf).counts["green-after-yellow"] == 1


def test_a_walk_that_starts_while_a_conflicting_link_is_yellow_is_flagged():
    conf = Conflicts.of_pairs(2, foes=[(0, 1)], crossings={1: 10.0})
    mon = feed([(0, "Gr"), (10, "yr"), (12, "yG")], conf=conf)
    assert mon.counts["all-red-below-minimum"] == 1, mon.kept
    assert feed([(0, "Gr"), (10, "yr"), (13, "rr"), (14, "rG")], conf=conf).violations == 0
