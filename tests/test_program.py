"""Reading signal programs: greens, transitions, native minimum spans."""

import math

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
