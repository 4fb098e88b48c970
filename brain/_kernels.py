"""Numba kernels of the rolling-horizon optimiser: arrays and scalars in, arrays out.

Nothing here knows about SUMO, controllers or Python objects; :mod:`brain.controllers.mpc` packs
the arrays. Time runs in planning steps of ``dt`` seconds over a horizon of ``H`` steps.

The queue model is store-and-forward: per incoming lane (slot), ``x <- max(0, x + a_t - s dt g)``
with ``a_t`` the predicted arrivals in step ``t``, ``s`` the saturation flow and ``g`` the share of
the lane's links the phase shows green. A plan is a sequence of *segments*, each a phase preceded
by its lost time (yellow + all-red, during which only links green in both phases keep flowing)
and held from its minimum green until its lanes clear (or its maximum green). The search is a
depth-first branch-and-bound over the order of the segments; leaves are completed to the horizon
by serving the longest remaining queue. Its objective is the weighted queue integral (vehicle
seconds of delay).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = [
    "predict_arrivals",
    "plan_all",
    "plan_outflow",
    "route_inflow",
    "MAX_SEG",
]

MAX_SEG = 8
"""Segments kept per plan (branched ones first, then the greedy completion)."""

_CLEAR_EPS = 0.5  # a lane holding less than half a vehicle counts as cleared
_MAIN_SHARE = 0.5  # only lanes a phase serves at least this much decide when it has cleared


@njit(cache=True)
def predict_arrivals(moving, rate, zone_s, inflow, up_from_s, use_inflow, dt, out):
    """Predicted arrivals at each slot's queue per step, written to ``out`` (``(n_slots, H)``).

    Vehicles moving in the sensing zone now arrive spread evenly over the zone's travel time;
    beyond it, the slot's measured rate, or (``use_inflow`` and the slot has planned upstream
    discharges, ``up_from_s >= 0``) ``inflow`` from the upstream plans from ``up_from_s`` on.
    """
    n, H = out.shape
    for s in range(n):
        tz = max(zone_s[s], dt)
        m = moving[s]
        for h in range(H):
            a0 = h * dt
            a1 = a0 + dt
            inside = 0.0
            if a0 < tz:
                inside = (min(a1, tz) - a0) / dt
            v = m * inside * dt / tz
            beyond = 1.0 - inside
            if beyond > 0.0:
                if use_inflow and up_from_s[s] >= 0.0 and a0 + 0.5 * dt >= up_from_s[s]:
                    v += beyond * inflow[s, h]
                else:
                    v += beyond * rate[s] * dt
            out[s, h] = v


@njit(cache=True)
def _segment(x, arr, sat, w, sv_q, sv_p, t0, lost_f, nmin, nmax, H, dt):
    """Run one segment on queues ``x`` (in place): returns (cost, end step, steps run)."""
    nl = x.shape[0]
    cost = 0.0
    t = t0
    n = 0
    while t < H and n < nmax:
        if n >= nmin:
            done = True
            for j in range(nl):
                if sv_q[j] >= _MAIN_SHARE and x[j] > _CLEAR_EPS:
                    done = False
                    break
            if done:
                break
        gf = n + 1.0 - lost_f
        if gf < 0.0:
            gf = 0.0
        elif gf > 1.0:
            gf = 1.0
        for j in range(nl):
            keep = sv_p[j] if sv_p[j] < sv_q[j] else sv_q[j]
            g = sv_q[j] * gf + keep * (1.0 - gf)
            v = x[j] + arr[j, t] - sat[j] * dt * g
            if v < 0.0:
                v = 0.0
            x[j] = v
            cost += w[j] * v * dt
        t += 1
        n += 1
    return cost, t, n


@njit(cache=True)
def _complete(x, arr, sat, w, serve, p, t, H, dt, lost_s, min_g, max_g, seg_ph, seg_t0, seg_n, nseg):
    """Greedy completion to the horizon: serve the largest weighted queue next, until clear."""
    P = serve.shape[0]
    nl = x.shape[0]
    cost = 0.0
    nmin = int(np.ceil((lost_s + min_g) / dt - 1e-9))
    nmax = int(np.floor((lost_s + max_g) / dt + 1e-9))
    guard = 0
    while t < H and guard < 2 * P + 2:
        guard += 1
        best_q = -1
        best_v = 1e-9
        for q in range(P):
            if q == p:
                continue
            v = 0.0
            for j in range(nl):
                v += w[j] * x[j] * serve[q, j]
            if v > best_v:
                best_v = v
                best_q = q
        if best_q < 0:  # nothing waits elsewhere: hold to the horizon
            c, t2, n = _segment(x, arr, sat, w, serve[p], serve[p], t, 0.0, H, H, H, dt)
            cost += c
            if nseg < seg_ph.shape[0] and n > 0:
                seg_ph[nseg] = p
                seg_t0[nseg] = t
                seg_n[nseg] = n
                nseg += 1
            t = t2
            break
        c, t2, n = _segment(x, arr, sat, w, serve[best_q], serve[p], t, lost_s / dt, nmin, nmax, H, dt)
        cost += c
        if nseg < seg_ph.shape[0]:
            seg_ph[nseg] = best_q
            seg_t0[nseg] = t
            seg_n[nseg] = n
            nseg += 1
        t = t2
        p = best_q
    return cost, nseg


@njit(cache=True)
def plan_one(q0, arr, sat, w, serve, cur, prev, age, force, lost_s, dt, min_g, max_g, dec_s, depth,
             out_ph, out_t0, out_n):
    """Best plan for one intersection (see the module docstring).

    Args:
        q0: queue per slot now, ``(nl,)``.
        arr: predicted arrivals per slot and step, ``(nl, H)``.
        sat: saturation flow per slot (veh/s); w: delay weight per slot.
        serve: ``(P, nl)`` service share of each phase.
        cur: current (or, in a transition, target) phase; prev: the phase before the transition.
        age: seconds of green shown; negative while in transition (minus the lost time left).
        force: a phase that must be served next (-1: none).
        depth: branched segments after the first action.
        out_ph, out_t0, out_n: the chosen plan's segments (phase, first step, steps), ``(MAX_SEG,)``.

    Returns:
        (first phase to wish, plan cost, segments in the plan, search nodes expanded).
    """
    P, nl = serve.shape
    H = arr.shape[1]
    D = depth + 1
    xs = np.empty((D + 1, nl))
    ts = np.zeros(D + 1, dtype=np.int64)
    cs = np.zeros(D + 1)
    ph = np.zeros(D + 1, dtype=np.int64)
    order = np.zeros((D + 1, P), dtype=np.int64)
    n_child = np.zeros(D + 1, dtype=np.int64)
    nxt = np.zeros(D + 1, dtype=np.int64)
    seg_t0 = np.zeros(D + 1, dtype=np.int64)
    seg_n = np.zeros(D + 1, dtype=np.int64)
    tmp_ph = np.empty(MAX_SEG, dtype=np.int64)
    tmp_t0 = np.empty(MAX_SEG, dtype=np.int64)
    tmp_n = np.empty(MAX_SEG, dtype=np.int64)
    xleaf = np.empty(nl)
    score = np.empty(P)
    zeros = np.zeros(nl)

    nmin_new = int(np.ceil((lost_s + min_g) / dt - 1e-9))
    nmax_new = int(np.floor((lost_s + max_g) / dt + 1e-9))
    in_transition = age < 0.0
    hold_min = int(np.ceil(dec_s / dt - 1e-9))
    if in_transition:
        rem = -age
        hold_lost = rem / dt
        hold_min = int(np.ceil((rem + min_g) / dt - 1e-9))
        hold_max = int(np.floor((rem + max_g) / dt + 1e-9))
    else:
        hold_lost = 0.0
        hold_max = int(np.floor((max_g - age) / dt + 1e-9))
    can_hold = in_transition or (hold_max >= hold_min and P > 1) or P == 1
    if P == 1:
        hold_max = H
    can_switch = (not in_transition) and age >= min_g - 1e-9 and P > 1

    # root children: the first action
    for j in range(nl):
        xs[0, j] = q0[j]
    ph[0] = cur
    nc = 0
    if force >= 0 and (can_switch or force == cur):
        order[0, 0] = force
        nc = 1
    else:
        if can_hold:
            order[0, nc] = cur
            nc += 1
        if can_switch:
            for q in range(P):
                if q != cur:
                    order[0, nc] = q
                    nc += 1
    if nc == 0:  # cannot hold (max green) and cannot switch: cannot happen, keep the signal's own move
        order[0, 0] = (cur + 1) % P
        nc = 1
    n_child[0] = nc
    nxt[0] = 0

    best = np.inf
    best_first = cur
    best_nseg = 0
    nodes = 0
    d = 0
    while d >= 0:
        if nxt[d] >= n_child[d]:
            d -= 1
            continue
        q = order[d, nxt[d]]
        nxt[d] += 1
        p = ph[d]
        nodes += 1
        for j in range(nl):
            xs[d + 1, j] = xs[d, j]
        if d == 0 and q == cur:
            sv_p = serve[prev] if in_transition else serve[cur]
            c, t2, n = _segment(xs[1], arr, sat, w, serve[cur], sv_p, 0, hold_lost, hold_min, hold_max, H, dt)
        else:
            c, t2, n = _segment(xs[d + 1], arr, sat, w, serve[q], serve[p], ts[d], lost_s / dt,
                                nmin_new, nmax_new, H, dt)
        cost = cs[d] + c
        if cost >= best:
            continue  # bound: costs only grow along a branch
        dd = d + 1
        ts[dd] = t2
        cs[dd] = cost
        ph[dd] = q
        seg_t0[dd] = ts[d]
        seg_n[dd] = n
        if dd == D or t2 >= H:
            for j in range(nl):
                xleaf[j] = xs[dd, j]
            nseg = 0
            for k in range(1, dd + 1):
                if nseg < MAX_SEG:
                    tmp_ph[nseg] = ph[k]
                    tmp_t0[nseg] = seg_t0[k]
                    tmp_n[nseg] = seg_n[k]
                    nseg += 1
            extra, nseg = _complete(xleaf, arr, sat, w, serve, q, t2, H, dt, lost_s, min_g, max_g,
                                    tmp_ph, tmp_t0, tmp_n, nseg)
            total = cost + extra
            if total < best:
                best = total
                best_first = order[0, nxt[0] - 1]
                best_nseg = nseg
                for k in range(nseg):
                    out_ph[k] = tmp_ph[k]
                    out_t0[k] = tmp_t0[k]
                    out_n[k] = tmp_n[k]
            continue
        # expand: children are the other phases, largest weighted queue first
        m = 0
        for r in range(P):
            if r == q:
                continue
            v = 0.0
            for j in range(nl):
                v += w[j] * xs[dd, j] * serve[r, j]
            score[m] = v
            order[dd, m] = r
            m += 1
        for a in range(1, m):  # insertion sort, descending
            k = a
            while k > 0 and score[k] > score[k - 1]:
                tv = score[k]
                score[k] = score[k - 1]
                score[k - 1] = tv
                ti = order[dd, k]
                order[dd, k] = order[dd, k - 1]
                order[dd, k - 1] = ti
                k -= 1
        n_child[dd] = m
        nxt[dd] = 0
        d = dd
    _ = zeros
    return best_first, best, best_nseg, nodes


@njit(parallel=True, cache=True)
def plan_all(slot_ptr, phase_ptr, serve_ptr, serve, q, arr, sat, w, cur, prev, age, force, lost_s,
             dt, min_g, max_g, dec_s, depth, choice, cost, plan_ph, plan_t0, plan_n, plan_len, nodes):
    """:func:`plan_one` for every intersection, in parallel. Outputs are written in place."""
    n = slot_ptr.shape[0] - 1
    for i in prange(n):
        s0 = slot_ptr[i]
        s1 = slot_ptr[i + 1]
        nl = s1 - s0
        P = phase_ptr[i + 1] - phase_ptr[i]
        sv = serve[serve_ptr[i]:serve_ptr[i] + P * nl].reshape((P, nl))
        f, c, ns, nd = plan_one(q[s0:s1], arr[s0:s1], sat[s0:s1], w[s0:s1], sv, cur[i], prev[i], age[i],
                                force[i], lost_s[i], dt, min_g, max_g, dec_s, depth,
                                plan_ph[i], plan_t0[i], plan_n[i])
        choice[i] = f
        cost[i] = c
        plan_len[i] = ns
        nodes[i] = nd


@njit(parallel=True, cache=True)
def plan_outflow(slot_ptr, phase_ptr, serve_ptr, serve, q, arr, sat, cur, prev, age, lost_s, dt,
                 plan_ph, plan_t0, plan_n, plan_len, out):
    """Replay each intersection's plan and write each slot's discharge per step to ``out``."""
    n = slot_ptr.shape[0] - 1
    H = arr.shape[1]
    for i in prange(n):
        s0 = slot_ptr[i]
        s1 = slot_ptr[i + 1]
        nl = s1 - s0
        P = phase_ptr[i + 1] - phase_ptr[i]
        sv = serve[serve_ptr[i]:serve_ptr[i] + P * nl].reshape((P, nl))
        for j in range(nl):
            x = q[s0 + j]
            t = 0
            p = prev[i] if age[i] < 0.0 else cur[i]
            for k in range(plan_len[i]):
                qk = plan_ph[i, k]
                if k == 0 and age[i] < 0.0:
                    lf = -age[i] / dt
                elif qk == p:
                    lf = 0.0
                else:
                    lf = lost_s[i] / dt
                for r in range(plan_n[i, k]):
                    if t >= H:
                        break
                    gf = r + 1.0 - lf
                    if gf < 0.0:
                        gf = 0.0
                    elif gf > 1.0:
                        gf = 1.0
                    keep = sv[p, j] if sv[p, j] < sv[qk, j] else sv[qk, j]
                    g = sv[qk, j] * gf + keep * (1.0 - gf)
                    a = arr[s0 + j, t]
                    v = x + a - sat[s0 + j] * dt * g
                    if v < 0.0:
                        v = 0.0
                    out[s0 + j, t] = x + a - v
                    x = v
                    t += 1
                p = qk
            while t < H:
                out[s0 + j, t] = 0.0
                t += 1


@njit(cache=True)
def route_inflow(outflow, route_ptr, route_to, route_share, route_delay_s, dt, inflow):
    """Move each slot's planned discharge to the downstream slots it feeds, delayed by travel time."""
    n, H = outflow.shape
    for s in range(inflow.shape[0]):
        for h in range(H):
            inflow[s, h] = 0.0
    for s in range(n):
        for r in range(route_ptr[s], route_ptr[s + 1]):
            share = route_share[r]
            if share <= 0.0:
                continue
            to = route_to[r]
            lag = route_delay_s[r] / dt
            k = int(lag)
            frac = lag - k
            for h in range(H):
                v = outflow[s, h] * share
                if v == 0.0:
                    continue
                h1 = h + k
                if h1 < H:
                    inflow[to, h1] += v * (1.0 - frac)
                if h1 + 1 < H:
                    inflow[to, h1 + 1] += v * frac
