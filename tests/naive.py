"""Plain-Python references for the kernels in ``brain._kernels`` (slow, obvious, no pruning)."""

from __future__ import annotations

import math

CLEAR_EPS = 0.5
MAIN_SHARE = 0.5
TIE = 1e-9


def above(a, b):
    """``a`` exceeds ``b`` by more than the tie margin (ties go to the first found)."""
    return a > b + TIE * (1.0 + abs(b))


def score(x, w, sv):
    return sum(w[j] * x[j] * sv[j] for j in range(len(x)))


def by_score(phases, x, w, serve):
    """``phases`` ordered by weighted queue, largest first; ties keep their order."""
    out = []
    for q in phases:
        k = len(out)
        while k > 0 and above(score(x, w, serve[q]), score(x, w, serve[out[k - 1]])):
            k -= 1
        out.insert(k, q)
    return out


def segment(x, arr, satdt, w, sv_q, sv_p, t0, lost_f, nmin, nmax, H, start_f=0.0):
    """Serve phase ``sv_q`` after ``sv_p`` from step ``t0``; returns (cost/dt, end step, steps). A lane
    holding a queue starts ``start_f`` steps after the lost time."""
    nl = len(x)
    cost, t, n = 0.0, t0, 0
    while t < H and n < nmax:
        if n >= nmin and all(x[j] <= CLEAR_EPS for j in range(nl) if sv_q[j] >= MAIN_SHARE):
            break
        for j in range(nl):
            lost = lost_f + (start_f if x[j] > CLEAR_EPS else 0.0)
            gf = min(max(n + 1.0 - lost, 0.0), 1.0)
            g = sv_q[j] * gf + min(sv_p[j], sv_q[j]) * (1.0 - gf)
            x[j] = max(x[j] + arr[t][j] - satdt[j] * g, 0.0)
            cost += w[j] * x[j]
        t += 1
        n += 1
    return cost, t, n


def complete(x, arr, satdt, w, serve, p, t, H, lost_f, nmin, nmax, start_f=0.0):
    """Serve the largest weighted queue next until the horizon."""
    P = len(serve)
    cost, guard = 0.0, 0
    while t < H and guard < 2 * P + 2:
        guard += 1
        q, top = -1, 1e-9
        for r in range(P):
            if r != p and above(score(x, w, serve[r]), top):
                q, top = r, score(x, w, serve[r])
        if q < 0:
            c, t, _ = segment(x, arr, satdt, w, serve[p], serve[p], t, 0.0, H, H, H)
            cost += c
            break
        c, t, _ = segment(x, arr, satdt, w, serve[q], serve[p], t, lost_f, nmin, nmax, H, start_f)
        cost += c
        p = q
    return cost


def plan(q0, arr, satdt, w, serve, cur, prev, age, force, lost_s, dt, min_g, max_g, dec_s, depth, beam=0,
         start_s=0.0, leaf_beam=0):
    """Every first action and every phase order to ``depth`` (after the first action only the ``beam``
    phases with the largest weighted queues, 0: all; at the last depth only ``leaf_beam`` of them,
    0: as ``beam``): {first action: least cost (veh s)}."""
    P, H = len(serve), len(arr)
    lost_f = lost_s / dt
    start_f = start_s / dt
    nmin = math.ceil((lost_s + min_g) / dt - 1e-9)
    nmax = math.floor((lost_s + max_g) / dt + 1e-9)
    in_tr = age < 0
    if in_tr:
        h_lost, h_min, h_max = -age / dt, math.ceil((-age + min_g) / dt - 1e-9), math.floor((-age + max_g) / dt + 1e-9)
    else:
        h_lost, h_min, h_max = 0.0, math.ceil(dec_s / dt - 1e-9), math.floor((max_g - age) / dt + 1e-9)
    if P == 1:
        h_max = H
    can_hold = in_tr or P == 1 or h_max >= h_min
    can_switch = not in_tr and age >= min_g - 1e-9 and P > 1
    if force >= 0 and (can_switch or force == cur):
        firsts = [force]
    else:
        firsts = ([cur] if can_hold else []) + ([q for q in range(P) if q != cur] if can_switch else [])
    best: dict[int, float] = {}

    def walk(x, t, p, cost, d, first):
        if d == depth + 1 or t >= H or P == 1:  # a single phase has no other to branch to
            total = cost + complete(list(x), arr, satdt, w, serve, p, t, H, lost_f, nmin, nmax, start_f)
            best[first] = min(best.get(first, math.inf), total)
            return
        kids = by_score([q for q in range(P) if q != p], x, w, serve)
        if beam > 0:
            kids = kids[:beam]
        if d == depth and leaf_beam > 0:
            kids = kids[:leaf_beam]
        for q in kids:
            y = list(x)
            c, t2, _ = segment(y, arr, satdt, w, serve[q], serve[p], t, lost_f, nmin, nmax, H, start_f)
            walk(y, t2, q, cost + c, d + 1, first)

    for f in firsts:
        x = list(q0)
        if f == cur:
            sv_p = serve[prev] if in_tr else serve[cur]
            c, t, _ = segment(x, arr, satdt, w, serve[cur], sv_p, 0, h_lost, h_min, h_max, H,
                              start_f if in_tr else 0.0)
        else:
            c, t, _ = segment(x, arr, satdt, w, serve[f], serve[cur], 0, lost_f, nmin, nmax, H, start_f)
        walk(x, t, f, c, 1, f)
    return {f: v * dt for f, v in best.items()}
