"""Reading signal programs: greens, transitions, native minimum spans."""

import math

import pytest

from sim.program import ProgramPhase, all_red_time, green_phases, min_spans, yellow_time


def P(state, dur, mindur=None):
    return ProgramPhase(state, dur, dur if mindur is None else mindur)


COLOGNE_LIKE = [P("rrGGgg", 29), P("rryygg", 5), P("rrrrGG", 6), P("rrrryy", 5),
                P("GGrrrr", 29), P("yyrrrr", 5)]


def test_green_phases_in_program_order_without_duplicates():
    prog = COLOGNE_LIKE + [P("rrGGgg", 10)]
    greens = green_phases(prog)
    assert [g.state for g in greens] == ["rrGGgg", "rrrrGG", "GGrrrr"]
    assert [g.program_index for g in greens] == [0, 2, 4]
    assert greens[0].green_links == (2, 3, 4, 5)


def test_yellow_and_all_red():
    assert yellow_time(COLOGNE_LIKE) == 5
    assert all_red_time(COLOGNE_LIKE) == 0
    assert all_red_time([P("GGrr", 30), P("yyrr", 3), P("rrrr", 2), P("rrGG", 30), P("rryy", 3)]) == 2
    assert yellow_time([P("GG", 10), P("rr", 10)], default=3.5) == 3.5


def test_min_spans_follow_links_across_phases():
    # links 4,5 are green from phase 0 through phase 2: 29 + 5 + 6 = 40 s
    g, y = min_spans(COLOGNE_LIKE)
    assert g == 29 and y == 5
    g, _ = min_spans([P("GGrr", 30, 5), P("yyrr", 3), P("rrGG", 30, 7), P("rryy", 3)])
    assert g == 5  # actuated programs count with minDur


def test_min_spans_of_a_constant_program():
    assert min_spans([P("GG", 10)]) == (math.inf, math.inf)


# a UTOPIA-style program (Bologna 210): one green written as seven phases, an intermediate
# overlap (link 7 gains priority), yellows of 5 and 3 s, all-reds of 2 and 3 s
BOLOGNA_210 = [P("GGgrrrrrGGgrrrGGrrrr", 34), P("yyyrrrrrGGgrrrGGrrrr", 5), P("rrrrrrrryyyrrryyrrrr", 3),
               P("rrrrrrrrrrrrrrrrrrrr", 2)] + [P("rrrGGGGgrrrGGgrrGGGG", d) for d in (1, 1, 5, 3, 2, 10, 5)] + [
               P("rrrGGGGgrrryyyrryyyy", 3), P("rrrGGGGGrrrrrrrrrrrr", 4), P("rrrGGGGGrrrrrrrrrrrr", 1),
               P("rrrGGGGGrrrrrrrrrrrr", 5), P("rrryyyyyrrrrrrrrrrrr", 3), P("rrrrrrrrrrrrrrrrrrrr", 3)]


def test_consecutive_phases_of_one_state_are_one_green():
    greens = green_phases(BOLOGNA_210)
    assert [(g.program_index, g.duration) for g in greens] == [(0, 34), (4, 27), (12, 10)]


def test_the_programs_own_transitions_are_kept_with_their_intervals():
    from sim.program import plan_transitions, program_transitions

    greens = green_phases(BOLOGNA_210)
    own = program_transitions(BOLOGNA_210, greens)
    assert set(own) == {(0, 1), (1, 2), (2, 0)}
    assert [(s.kind, s.duration) for s in own[(0, 1)]] == [("yellow", 5), ("yellow", 3), ("red", 2)]
    plan = plan_transitions(greens, BOLOGNA_210, yellow=None, all_red=None, min_yellow=3.0, min_all_red=0.0)
    assert plan[(0, 1)] == (("yyyrrrrrGGgrrrGGrrrr", 5), ("rrrrrrrryyyrrryyrrrr", 3), ("rrrrrrrrrrrrrrrrrrrr", 2))
    assert plan[(1, 2)] == (("rrrGGGGgrrryyyrryyyy", 3),)  # link 7 goes on (g -> G needs no yellow)
    # a switch the program never makes: yellow for what stops, then the longest all-red it shows
    ys, rs = plan[(0, 2)]
    assert ys == ("yyyrrrrryyyrrryyrrrr", 5) and rs == ("rrrrrrrrrrrrrrrrrrrr", 3)


def test_short_yellows_are_raised_and_explicit_ones_replace_the_programs():
    from sim.program import plan_transitions

    prog = [P("GGrr", 30), P("yyrr", 2), P("rrGG", 30), P("rrYY", 2)]  # sumo-rl's 2 s, Y is a yellow too
    g = green_phases(prog)
    assert plan_transitions(g, prog, yellow=None, all_red=None, min_yellow=3, min_all_red=0) == {
        (0, 1): (("yyrr", 3),), (1, 0): (("rrYY", 3),)}
    assert plan_transitions(g, prog, yellow=4, all_red=1, min_yellow=3, min_all_red=0) == {
        (0, 1): (("yyrr", 4), ("rrrr", 1)), (1, 0): (("rrYY", 4), ("rrrr", 1))}
    long = [P("GGrr", 30), P("yyrr", 100), P("rrGG", 30), P("rryy", 100)]  # sumo-rl big-intersection
    assert plan_transitions(green_phases(long), long, yellow=None, all_red=None, min_yellow=3, min_all_red=0,
                            max_yellow=6)[(0, 1)] == (("yyrr", 6),)


def test_a_transition_that_breaks_the_profile_is_not_kept():
    from sim.program import Step, illegal_reason, plan_transitions

    # as in Bologna 221: a protected turn (link 3, G) turns permissive (g) during the others' yellow
    prog = [P("GGrGr", 30), P("yyrgr", 3), P("rrGgG", 30), P("rryyy", 3)]
    g = green_phases(prog)
    steps = [Step("yyrgr", 3, "yellow")]
    assert "permissive" in illegal_reason("GGrGr", steps, "rrGgG", permissive_needs_yellow=True)
    assert illegal_reason("GGrGr", steps, "rrGgG", permissive_needs_yellow=False) is None
    assert "without yellow" in illegal_reason("GGrGr", [], "rrGgG")  # links 0, 1 would stop on the spot
    short_overlap = [Step("yyGr", 2, "yellow"), Step("rryr", 3, "yellow")]  # link 2 green for 2 s only
    assert "inside the transition" in illegal_reason("GGrr", short_overlap, "rrrG", min_green=5)
    mutcd = plan_transitions(g, prog, yellow=None, all_red=None, min_yellow=3, min_all_red=0)
    eu = plan_transitions(g, prog, yellow=None, all_red=None, min_yellow=3, min_all_red=0,
                          permissive_needs_yellow=False)
    assert mutcd[(0, 1)] == (("yyryr", 3),)  # the yellow arrow for link 3
    assert eu[(0, 1)] == (("yyrgr", 3),)  # the program's own: link 3 may turn permissive directly


def test_fixed_time_programs_are_retimed_keeping_their_cycle():
    from sim.program import rewrite_clearances

    prog = [P("GGrr", 30), P("yyrr", 2), P("rrGG", 30), P("rrYY", 2)]
    out = rewrite_clearances(prog, yellow=None, all_red=None, min_yellow=3, min_all_red=0, min_green=5)
    assert [(p.state, p.duration) for p in out] == [("GGrr", 29), ("yyrr", 3), ("rrGG", 29), ("rrYY", 3)]
    out = rewrite_clearances(prog, yellow=4, all_red=1, min_yellow=3, min_all_red=0, min_green=5)
    assert [(p.state, p.duration) for p in out] == [("GGrr", 27), ("yyrr", 4), ("rrrr", 1), ("rrGG", 27),
                                                    ("rrYY", 4), ("rrrr", 1)]
    assert sum(p.duration for p in out) == sum(p.duration for p in prog)  # offsets and coordination stay
    long = [P("GGrr", 100), P("yyrr", 100), P("rrGG", 100), P("rryy", 100)]
    out = rewrite_clearances(long, yellow=None, all_red=None, min_yellow=3, min_all_red=0, max_yellow=6)
    assert [p.duration for p in out] == [194, 6, 194, 6]


def test_staggered_yellows_keep_every_links_yellow_within_the_limits_or_are_not_kept():
    from sim.program import Untimeable, _yellow_group, plan_transitions

    assert _yellow_group([5, 3], ["yyr", "rry"], None, 3, 6) == [5, 3]  # one link each: as written
    assert _yellow_group([2, 1], ["yy", "yy"], None, 3, 6) == [2, 1]  # both links: 3 s in all
    with pytest.raises(Untimeable):  # link 0 over both (8 s after raising link 1's to 3 s)
        _yellow_group([5, 1], ["yr", "yy"], None, 3, 6)
    assert _yellow_group([5, 1], ["yr", "yy"], None, 3, 6, strict=False) == [5, 3]  # SUMO's own: as near as it gets
    prog = [P("GGrr", 30), P("yGrr", 5), P("yyrr", 1), P("rrGG", 30), P("rryy", 3)]
    plan = plan_transitions(green_phases(prog), prog, yellow=None, all_red=None, min_yellow=3, min_all_red=0,
                            max_yellow=6)
    assert plan[(0, 1)] == (("yyrr", 5),)  # the actuator's own (the longest yellow shown) instead
