"""Numba kernels of the rolling-horizon optimiser: arrays and scalars in, arrays out.

Nothing here knows about SUMO, controllers or Python objects; :mod:`brain.controllers.mpc` packs
the arrays. Time runs in planning steps of ``dt`` seconds over a horizon of ``H`` steps.

Per-step arrays (``arr``, ``outflow``, ``inflow``) are flat: intersection ``i``'s block starts at
``slot_ptr[i] * H`` and holds ``H`` rows of its ``nl`` slots (``[t * nl + j]``), so one planning
step of one intersection is contiguous.

The queue model is store-and-forward: per incoming lane (slot), ``x <- max(0, x + a_t - s dt g)``
with ``a_t`` the predicted arrivals in step ``t``, ``s`` the saturation flow and ``g`` the share of
the lane's links the phase shows green. A plan is a sequence of *segments*, each a phase preceded
by its lost time (yellow + all-red, during which only links green in both phases keep flowing)
and held from its minimum green until its lanes clear (or its maximum green). The search is a
depth-first branch-and-bound over the order of the segments; leaves are completed to the horizon
by serving the longest remaining queue. The objective is the weighted queue integral (vehicle
seconds of delay).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["turning_room", "predict_arrivals", "plan_all", "plan_one", "plan_outflow", "route_inflow", "MAX_SEG"]

MAX_SEG = 8
"""Segments kept per plan (branched ones first, then the greedy completion)."""

MAX_DEPTH = 6
"""Deepest branch-and-bound search supported (segments after the first action)."""

CLEAR_EPS = 0.5
"""A lane holding less than half a vehicle counts as cleared."""

MAIN_SHARE = 0.5
"""Only lanes a phase serves at least this much decide when it has cleared."""


@njit(cache=True, fastmath=True)
def turning_room(link_ptr, link_out, lane_rate, feeders, lane_veh, cap, link_share, room):
    """Turning shares and spillback room per slot, written in place.

    A slot's share of its discharge on each outgoing link follows the measured arrival rate of
    the link's outgoing lane (split among the lanes feeding it). ``room`` is the share of the
    discharge that finds space downstream: an outgoing lane within two vehicles of full takes
    nothing.
    """
    for s in range(link_ptr.shape[0] - 1):
        a = link_ptr[s]
        b = link_ptr[s + 1]
        if a == b:
            room[s] = 1.0
            continue
        tot = 0.0
        for k in range(a, b):
            o = link_out[k]
            v = lane_rate[o] / max(feeders[o], 1.0) + 1e-6
            link_share[k] = v
            tot += v
        r = 0.0
        for k in range(a, b):
            o = link_out[k]
            link_share[k] /= tot
            free = min(max((cap[o] - lane_veh[o]) / 2.0, 0.0), 1.0)
            r += link_share[k] * free
        room[s] = r


@njit(cache=True, fastmath=True)
def predict_arrivals(slot_ptr, moving, rate, zone_s, inflow, up_from_s, use_inflow, dt, H, out):
    """Predicted arrivals at each slot's queue per step, written to ``out`` (flat, see module doc).

    Vehicles moving in the sensing zone now arrive spread evenly over the zone's travel time;
    beyond it, the slot's measured rate, or (``use_inflow`` and the slot has planned upstream
    discharges, ``up_from_s >= 0``) ``inflow`` from the upstream plans from ``up_from_s`` on.
    """
    n = slot_ptr.shape[0] - 1
    for i in range(n):
        s0 = slot_ptr[i]
        nl = slot_ptr[i + 1] - s0
        base = s0 * H
        for j in range(nl):
            s = s0 + j
            tz = zone_s[s] if zone_s[s] > dt else dt
            m = moving[s] * dt / tz
            r = rate[s] * dt
            up = use_inflow and up_from_s[s] >= 0.0
            scale = 1.0
            if up:  # upstream plans give the timing (platoons); the measured rate keeps the volume honest
                tot = 0.0
                cnt = 0.0
                for h in range(H):
                    if h * dt + 0.5 * dt >= up_from_s[s] and h * dt + dt > tz:
                        tot += inflow[base + h * nl + j]
                        cnt += 1.0
                if tot > 0.05 * max(cnt, 1.0) * r and tot > 1e-6:
                    scale = min(max(cnt * r / tot, 0.5), 2.0)
                else:
                    up = False
            for h in range(H):
                a0 = h * dt
                inside = 0.0
                if a0 < tz:
                    inside = (min(a0 + dt, tz) - a0) / dt
                v = m * inside
                beyond = 1.0 - inside
                if beyond > 0.0:
                    if up and a0 + 0.5 * dt >= up_from_s[s]:
                        v += beyond * scale * inflow[base + h * nl + j]
                    else:
                        v += beyond * r
                out[base + h * nl + j] = v


@njit(cache=True, fastmath=True)
def _segment(x, arr, cum, cum2, nl, satdt, w, sv_q, keep, t0, lost_f, nmin, nmax, H, main, n_main, act, n_act):
    """Run one segment on queues ``x`` (in place): returns (cost / dt, end step, steps run).

    ``arr`` is the intersection's ``(H * nl)`` arrival block, ``cum`` and ``cum2`` its first and
    second running sums (``(H + 1) * nl``); ``keep`` the share each lane keeps during the lost
    time; ``main[:n_main]`` the lanes whose clearing ends the segment; ``act[:n_act]`` the lanes
    the phase serves at all. Lanes it does not serve only gather arrivals: their queue and cost
    come in closed form from the running sums, without stepping.
    """
    cost = 0.0
    t = t0
    n = 0
    while t < H and n < nmax:
        if n >= nmin:
            done = True
            for k in range(n_main):
                if x[main[k]] > CLEAR_EPS:
                    done = False
                    break
            if done:
                break
        gf = n + 1.0 - lost_f
        gf = min(max(gf, 0.0), 1.0)
        row = t * nl
        for k in range(n_act):
            j = act[k]
            g = sv_q[j] * gf + keep[j] * (1.0 - gf)
            v = max(x[j] + arr[row + j] - satdt[j] * g, 0.0)
            x[j] = v
            cost += w[j] * v
        t += 1
        n += 1
    if n > 0:
        a = t0 * nl
        b = t * nl
        for j in range(nl):
            if sv_q[j] <= 0.0:
                c0 = cum[a + j]
                cost += w[j] * (n * (x[j] - c0) + cum2[b + j] - cum2[a + j])
                x[j] += cum[b + j] - c0
    return cost, t, n


@njit(cache=True, fastmath=True)
def _sums(arr, nl, H, cum, cum2):
    """Running sums of the arrivals: ``cum[t]`` before step ``t``, ``cum2[t] = sum of cum[1..t]``."""
    for j in range(nl):
        cum[j] = 0.0
        cum2[j] = 0.0
    for t in range(H):
        r0 = t * nl
        r1 = r0 + nl
        for j in range(nl):
            c = cum[r0 + j] + arr[r0 + j]
            cum[r1 + j] = c
            cum2[r1 + j] = cum2[r0 + j] + c


@njit(cache=True, fastmath=True)
def _prep(sv_q, sv_p, keep, main, act):
    """Fill ``keep`` (min of the two phases' shares), ``main`` and ``act``; returns their lengths."""
    nm = 0
    na = 0
    for j in range(sv_q.shape[0]):
        keep[j] = min(sv_p[j], sv_q[j])
        if sv_q[j] > 0.0:
            act[na] = j
            na += 1
        if sv_q[j] >= MAIN_SHARE:
            main[nm] = j
            nm += 1
    return nm, na


@njit(cache=True, fastmath=True)
def _complete(x, arr, cum, cum2, nl, satdt, w, serve, p, t, H, lost_f, nmin, nmax, keep, main, act,
              seg_ph, seg_t0, seg_n, nseg, limit):
    """Greedy completion to the horizon: serve the largest weighted queue next, until clear.

    Stops early once its cost reaches ``limit`` (the leaf can no longer beat the best plan).
    """
    P = serve.shape[0]
    cost = 0.0
    guard = 0
    while t < H and guard < 2 * P + 2 and cost < limit:
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
            nm, na = _prep(serve[p], serve[p], keep, main, act)
            c, t2, n = _segment(x, arr, cum, cum2, nl, satdt, w, serve[p], keep, t, 0.0, H, H, H, main, 0, act, na)
        else:
            nm, na = _prep(serve[best_q], serve[p], keep, main, act)
            c, t2, n = _segment(x, arr, cum, cum2, nl, satdt, w, serve[best_q], keep, t, lost_f, nmin, nmax, H,
                                main, nm, act, na)
            p = best_q
        cost += c
        if nseg < seg_ph.shape[0] and n > 0:
            seg_ph[nseg] = p
            seg_t0[nseg] = t
            seg_n[nseg] = n
            nseg += 1
        t = t2
    return cost, nseg


@njit(cache=True)
def workspace(max_nl, max_p, depth, H):
    """Scratch arrays for :func:`plan_one` (allocated once per thread, not per intersection)."""
    D = depth + 1
    f = np.empty((D + 2) * max_nl + 3 * max_nl + max_p + 2 * (D + 1) + 2 * (H + 1) * max_nl)
    g = np.empty((D + 1) * (max_p + 5) + 3 * MAX_SEG + 2 * max_nl, dtype=np.int64)
    return f, g


@njit(cache=True, fastmath=True)
def plan_one(q0, arr, satdt, w, serve, cur, prev, age, force, lost_s, dt, min_g, max_g, dec_s, depth,
             out_ph, out_t0, out_n, fws, iws):
    """Best plan for one intersection (see the module docstring).

    Args:
        q0: queue per slot now, ``(nl,)``.
        arr: predicted arrivals, the intersection's ``(H * nl)`` block.
        satdt: vehicles each slot discharges per step at full green; w: delay weight per slot.
        serve: ``(P, nl)`` service share of each phase.
        cur: current (or, in a transition, target) phase; prev: the phase before the transition.
        age: seconds of green shown; negative while in transition (minus the lost time left).
        force: a phase that must be served next (-1: none).
        depth: branched segments after the first action.
        out_ph, out_t0, out_n: the chosen plan's segments (phase, first step, steps), ``(MAX_SEG,)``.
        fws, iws: float and int scratch from :func:`workspace`.

    Returns:
        (first phase to wish, plan cost in vehicle-seconds, segments in the plan, nodes expanded).
    """
    P, nl = serve.shape
    H = arr.shape[0] // nl if nl > 0 else 0
    D = depth + 1
    # carve the scratch space
    o = 0
    xs = fws[o:o + (D + 1) * nl].reshape((D + 1, nl))
    o += (D + 1) * nl
    xleaf = fws[o:o + nl]
    o += nl
    keep = fws[o:o + nl]
    o += nl
    score = fws[o:o + P]
    o += P
    cs = fws[o:o + D + 1]
    o += D + 1
    cum = fws[o:o + (H + 1) * nl]
    o += (H + 1) * nl
    cum2 = fws[o:o + (H + 1) * nl]
    o += (H + 1) * nl
    k = 0
    ts = iws[k:k + D + 1]
    k += D + 1
    ph = iws[k:k + D + 1]
    k += D + 1
    order = iws[k:k + (D + 1) * P].reshape((D + 1, P))
    k += (D + 1) * P
    n_child = iws[k:k + D + 1]
    k += D + 1
    nxt = iws[k:k + D + 1]
    k += D + 1
    seg_n = iws[k:k + D + 1]
    k += D + 1
    tmp_ph = iws[k:k + MAX_SEG]
    k += MAX_SEG
    tmp_t0 = iws[k:k + MAX_SEG]
    k += MAX_SEG
    tmp_n = iws[k:k + MAX_SEG]
    k += MAX_SEG
    main = iws[k:k + nl]
    k += nl
    act = iws[k:k + nl]
    seg_t0 = ts  # a segment at depth d starts where its parent ended
    _sums(arr, nl, H, cum, cum2)

    lost_f = lost_s / dt
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
    if P == 1:
        hold_max = H
    can_hold = in_transition or P == 1 or hold_max >= hold_min
    can_switch = (not in_transition) and age >= min_g - 1e-9 and P > 1

    for j in range(nl):
        xs[0, j] = q0[j]
    ph[0] = cur
    ts[0] = 0
    cs[0] = 0.0
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
    if nc == 0:  # at maximum green before minimum green: only the actuator's own move remains
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
        dd = d + 1
        for j in range(nl):
            xs[dd, j] = xs[d, j]
        if d == 0 and q == cur:
            nm, na = _prep(serve[cur], serve[prev] if in_transition else serve[cur], keep, main, act)
            c, t2, n = _segment(xs[dd], arr, cum, cum2, nl, satdt, w, serve[cur], keep, 0, hold_lost, hold_min,
                                hold_max, H, main, nm, act, na)
        else:
            nm, na = _prep(serve[q], serve[p], keep, main, act)
            c, t2, n = _segment(xs[dd], arr, cum, cum2, nl, satdt, w, serve[q], keep, ts[d], lost_f, nmin_new,
                                nmax_new, H, main, nm, act, na)
        cost = cs[d] + c
        if cost >= best:
            continue  # bound: the cost only grows along a branch
        ts[dd] = t2
        cs[dd] = cost
        ph[dd] = q
        seg_n[dd] = n
        if dd == D or t2 >= H:
            for j in range(nl):
                xleaf[j] = xs[dd, j]
            nseg = 0
            for kk in range(1, dd + 1):
                if nseg < MAX_SEG:
                    tmp_ph[nseg] = ph[kk]
                    tmp_t0[nseg] = ts[kk - 1]
                    tmp_n[nseg] = seg_n[kk]
                    nseg += 1
            extra, nseg = _complete(xleaf, arr, cum, cum2, nl, satdt, w, serve, q, t2, H, lost_f, nmin_new,
                                    nmax_new, keep, main, act, tmp_ph, tmp_t0, tmp_n, nseg, best - cost)
            total = cost + extra
            if total < best:
                best = total
                best_first = order[0, nxt[0] - 1]
                best_nseg = nseg
                for kk in range(nseg):
                    out_ph[kk] = tmp_ph[kk]
                    out_t0[kk] = tmp_t0[kk]
                    out_n[kk] = tmp_n[kk]
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
            kk = a
            while kk > 0 and score[kk] > score[kk - 1]:
                tv = score[kk]
                score[kk] = score[kk - 1]
                score[kk - 1] = tv
                ti = order[dd, kk]
                order[dd, kk] = order[dd, kk - 1]
                order[dd, kk - 1] = ti
                kk -= 1
        n_child[dd] = m
        nxt[dd] = 0
        d = dd
    _ = seg_t0
    return best_first, best * dt, best_nseg, nodes


@njit(parallel=True, cache=True)
def plan_all(slot_ptr, phase_ptr, serve_ptr, serve, q, arr, satdt, w, cur, prev, age, force, lost_s,
             dt, min_g, max_g, dec_s, depth, H, threads, plan_locked, choice, cost, plan_ph, plan_t0, plan_n,
             plan_len, nodes):
    """:func:`plan_one` for every intersection, in ``threads`` chunks. Outputs written in place.

    A signal that cannot switch now (in a transition, or before its minimum green) can only hold:
    unless ``plan_locked`` (its plan is wanted for coordination), it is not searched.
    """
    n = slot_ptr.shape[0] - 1
    if n == 0:
        return
    max_nl = 1
    max_p = 1
    for i in range(n):
        max_nl = max(max_nl, slot_ptr[i + 1] - slot_ptr[i])
        max_p = max(max_p, phase_ptr[i + 1] - phase_ptr[i])
    chunks = max(1, min(threads, n))
    for c in prange(chunks):
        fws, iws = workspace(max_nl, max_p, depth, H)
        lo = n * c // chunks
        hi = n * (c + 1) // chunks
        for i in range(lo, hi):
            if not plan_locked and age[i] < min_g - 1e-9:
                choice[i] = cur[i]
                cost[i] = 0.0
                plan_len[i] = 0
                nodes[i] = 0
                continue
            s0 = slot_ptr[i]
            s1 = slot_ptr[i + 1]
            nl = s1 - s0
            P = phase_ptr[i + 1] - phase_ptr[i]
            sv = serve[serve_ptr[i]:serve_ptr[i] + P * nl].reshape((P, nl))
            f, cc, ns, nd = plan_one(q[s0:s1], arr[s0 * H:s1 * H], satdt[s0:s1], w[s0:s1], sv, cur[i], prev[i],
                                     age[i], force[i], lost_s[i], dt, min_g, max_g, dec_s, depth,
                                     plan_ph[i], plan_t0[i], plan_n[i], fws, iws)
            choice[i] = f
            cost[i] = cc
            plan_len[i] = ns
            nodes[i] = nd


@njit(parallel=True, cache=True, fastmath=True)
def plan_outflow(slot_ptr, phase_ptr, serve_ptr, serve, q, arr, satdt, cur, prev, age, lost_s, dt, H,
                 plan_ph, plan_n, plan_len, out):
    """Replay each intersection's plan; write each slot's discharge per step to ``out`` (flat)."""
    n = slot_ptr.shape[0] - 1
    for i in prange(n):
        s0 = slot_ptr[i]
        nl = slot_ptr[i + 1] - s0
        P = phase_ptr[i + 1] - phase_ptr[i]
        sv = serve[serve_ptr[i]:serve_ptr[i] + P * nl].reshape((P, nl))
        base = s0 * H
        for j in range(nl):
            x = q[s0 + j]
            sd = satdt[s0 + j]
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
                keep = min(sv[p, j], sv[qk, j])
                for r in range(plan_n[i, k]):
                    if t >= H:
                        break
                    gf = min(max(r + 1.0 - lf, 0.0), 1.0)
                    g = sv[qk, j] * gf + keep * (1.0 - gf)
                    a = arr[base + t * nl + j]
                    v = max(x + a - sd * g, 0.0)
                    out[base + t * nl + j] = x + a - v
                    x = v
                    t += 1
                p = qk
            while t < H:
                out[base + t * nl + j] = 0.0
                t += 1


@njit(cache=True, fastmath=True)
def route_inflow(slot_ptr, outflow, route_ptr, route_share, route_lag, route_base, route_nl, route_col, H,
                 shift, inflow):
    """Move each slot's planned discharge to the downstream slots it feeds, ``route_lag`` steps later.

    ``outflow`` may be a plan made ``shift`` steps ago (then it arrives ``shift`` steps sooner).
    A route's receiving slot sits in the block starting at ``route_base`` with ``route_nl`` slots,
    in column ``route_col``. ``inflow`` is overwritten (flat layout, as ``outflow``).
    """
    n = slot_ptr.shape[0] - 1
    inflow[:] = 0.0
    for i in range(n):
        s0 = slot_ptr[i]
        nl = slot_ptr[i + 1] - s0
        base = s0 * H
        for j in range(nl):
            s = s0 + j
            for r in range(route_ptr[s], route_ptr[s + 1]):
                share = route_share[r]
                lag = route_lag[r] - shift
                if share <= 0.0 or lag >= H:
                    continue
                tn = route_nl[r]
                tb = route_base[r] + route_col[r]
                for h in range(max(0, -lag), H - max(lag, 0)):
                    inflow[tb + (h + lag) * tn] += outflow[base + h * nl + j] * share
