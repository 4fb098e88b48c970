"""Numba kernels of the rolling-horizon optimiser: arrays and scalars in, arrays out.

Nothing here knows about SUMO, controllers or Python objects; :mod:`brain.controllers.mpc` packs
the arrays. Time runs in planning steps of ``dt`` seconds over a horizon of ``H`` steps.

Per-step arrays (``arr``, ``outflow``, ``inflow``) are flat: intersection ``i``'s block starts at
``slot_ptr[i] * H`` and holds ``H`` rows of its ``nl`` slots (``[t * nl + j]``), so one planning
step of one intersection is contiguous.

The queue model is store-and-forward: per incoming lane (slot), ``x <- max(0, x + a_t - s dt g)``
with ``a_t`` the predicted arrivals in step ``t``, ``s`` the saturation flow and ``g`` the share of
the lane's links the phase shows green. A plan is a sequence of *segments*, each a phase preceded
by its lost time (yellow + all-red, during which only links green in both phases keep flowing;
a lane holding a standing queue starts a start-up lost time later, an empty one at once) and held
from its minimum green until its lanes clear (or its maximum green). The search is a
depth-first branch-and-bound over the order of the segments; leaves are completed to the horizon
by serving the longest remaining queue. The objective is the weighted queue integral (vehicle
seconds of delay); with a hysteresis, a plan that switches now must beat the best plan that
holds by that share of its cost.

Costs and scores within :data:`TIE` of each other are equal, and the first found wins (the search
tries holding first, then the other phases by weighted queue, the lower index first among equal
queues): a tie is never decided by rounding in the sums, so a plan does not depend on the order
the compiler adds in (``benchmarks/results/README.md`` shows what one such tie did to a run).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange, uint64

from brain._flow import predict_arrivals, route_inflow, turning_room  # noqa: F401  (part of this API)

try:  # an internal of Numba: without it the search simply keeps the runtime
    from numba.core.cpu import CPUTargetOptions
except ImportError:  # pragma: no cover
    CPUTargetOptions = None

_NO_RC = {"_nrt": False} if hasattr(CPUTargetOptions, "_nrt") else {}
"""Compile the search without Numba's runtime: it allocates nothing, and otherwise every helper
call increments and decrements the reference count of each array it is given (atomic operations,
a function call each). Measured: 1.3x faster on the 10,000-intersection benchmark, same plans."""

__all__ = ["turning_room", "predict_arrivals", "plan_all", "plan_one", "plan_outflow", "route_inflow", "MAX_SEG"]

MAX_SEG = 8
"""Segments kept per plan (branched ones first, then the greedy completion)."""

MAX_DEPTH = 6
"""Deepest branch-and-bound search supported (segments after the first action)."""

CLEAR_EPS = 0.5
"""A lane holding less than half a vehicle counts as cleared."""

MAIN_SHARE = 0.5
"""Only lanes a phase serves at least this much decide when it has cleared."""

NO_PLAN = 1e300
"""Cost of no plan yet."""

TIE = 1e-9
"""Relative margin below which two costs or scores count as equal: ties go to the first found, so
rounding in the sums never decides between them."""

# The search's inner loops index with unsigned integers: Numba wraps a negative signed index
# around (a compare and a select per access), which keeps the lane loops from compiling tight.
# Measured on 40,000 captured decisions: the same plans and node counts, 1.46 times faster.


@njit(cache=True, inline="always", **_NO_RC)
def _above(a, b):
    """``a`` exceeds ``b`` by more than the tie margin."""
    return a > b + TIE * (1.0 + abs(b))


ACT, MAIN = 0, 1
"""Lane lists per phase in :func:`_tables`: lanes it serves at all, lanes deciding its end."""


@njit(cache=True, fastmath=True, **_NO_RC)
def _tables(sv, P, nl, keep, lanes, counts):
    """Per phase ``q`` its lane lists (``lanes[(2 q + kind) nl + k]``, ``counts[2 q + kind]``; kinds
    :data:`ACT`, :data:`MAIN`) and per ordered pair ``(p, q)`` the share each lane keeps while
    ``p`` changes to ``q`` (``keep[(p P + q) nl + j]``, the smaller of the two)."""
    for q in range(P):
        na = 0
        nm = 0
        for j in range(nl):
            s = sv[q * nl + j]
            if s > 0.0:
                lanes[(2 * q + ACT) * nl + na] = j
                na += 1
            if s >= MAIN_SHARE:
                lanes[(2 * q + MAIN) * nl + nm] = j
                nm += 1
        counts[2 * q + ACT] = na
        counts[2 * q + MAIN] = nm
        for p in range(P):
            for j in range(nl):
                keep[(p * P + q) * nl + j] = min(sv[p * nl + j], sv[q * nl + j])


@njit(cache=True, fastmath=True, inline="always", **_NO_RC)
def _segment(x, xo, arr, nl, satdt, w, sv, keep, lanes, counts, P, p, q, t0, lost_f, start_f, nmin, nmax,
             H, use_main, stop):
    """Serve phase ``q`` after ``p`` on the queues ``x[xo:xo + nl]`` (in place) from step ``t0``.

    Returns (cost / dt, end step, steps run). ``arr`` is the intersection's ``(H * nl)`` arrival
    block. During the lost time (``lost_f`` steps) each lane keeps the share both phases give it; a
    lane holding a standing queue (more than :data:`CLEAR_EPS`) keeps only that share for
    ``start_f`` steps more (the start-up lost time: its first vehicle needs them to reach the stop
    line), while an empty lane passes its arrivals at once.
    The segment ends once its main lanes hold less than :data:`CLEAR_EPS` (not before ``nmin``
    steps; never with ``use_main`` False), at ``nmax`` steps or at the horizon. It is cut short once
    its cost reaches ``stop`` (the branch can no longer win; the queues are then left mid-way).
    """
    cost = 0.0
    t = t0
    n = 0
    xu = uint64(xo)
    so = uint64(q * nl)
    ko = uint64((p * P + q) * nl)
    lm = uint64((2 * q + MAIN) * nl)
    nm = counts[2 * q + MAIN] if use_main else 0
    while t < H and n < nmax:
        if n >= nmin:
            done = True
            for k in range(nm):
                if x[xu + uint64(lanes[lm + uint64(k)])] > CLEAR_EPS:
                    done = False
                    break
            if done:
                break
        gf = n + 1.0 - lost_f
        gs = min(max(gf - start_f, 0.0), 1.0)
        gf = min(max(gf, 0.0), 1.0)
        row = uint64(t * nl)
        c = 0.0
        if gs == gf:  # no start-up left in this step (or none at all): one share for every lane
            for jj in range(nl):
                j = uint64(jj)
                g = sv[so + j] * gf + keep[ko + j] * (1.0 - gf)
                v = max(x[xu + j] + arr[row + j] - satdt[j] * g, 0.0)
                x[xu + j] = v
                c += w[j] * v
        else:
            for jj in range(nl):
                j = uint64(jj)
                gj = gs if x[xu + j] > CLEAR_EPS else gf
                g = sv[so + j] * gj + keep[ko + j] * (1.0 - gj)
                v = max(x[xu + j] + arr[row + j] - satdt[j] * g, 0.0)
                x[xu + j] = v
                c += w[j] * v
        cost += c
        t += 1
        n += 1
        if cost >= stop:
            break
    return cost, t, n


@njit(cache=True, fastmath=True, inline="always", **_NO_RC)
def _score(x, xo, w, sv, lanes, counts, nl, r):
    """Weighted queue phase ``r`` would serve."""
    v = 0.0
    la = uint64((2 * r + ACT) * nl)
    xu = uint64(xo)
    ru = uint64(r * nl)
    for k in range(counts[2 * r + ACT]):
        j = uint64(lanes[la + uint64(k)])
        v += w[j] * x[xu + j] * sv[ru + j]
    return v


@njit(cache=True, fastmath=True)
def workspace(max_nl, max_p, depth, H):
    """Scratch arrays for :func:`plan_one` (allocated once per thread, not per intersection)."""
    D = depth + 1
    f = np.empty((D + 2) * max_nl + max_p * max_p * max_nl + max_p + (D + 1))
    g = np.empty(5 * (D + 1) + (D + 1) * max_p + 6 * MAX_SEG + 2 * max_p * max_nl + 2 * max_p, dtype=np.int64)
    return f, g


@njit(cache=True, fastmath=True, **_NO_RC)
def plan_one(q0, arr, satdt, w, sv, P, cur, prev, age, force, lost_s, start_s, dt, min_g, max_g, dec_s, depth,
             beam, leaf_beam, hyst, out_ph, out_t0, out_n, fws, iws):
    """Best plan for one intersection (see the module docstring).

    Args:
        q0: queue per slot now, ``(nl,)``.
        arr: predicted arrivals, the intersection's ``(H * nl)`` block.
        satdt: vehicles each slot discharges per step at full green; w: delay weight per slot.
        sv: ``(P * nl)`` service share of each phase (row ``q`` at ``q * nl``); P: phases.
        cur: current (or, in a transition, target) phase; prev: the phase before the transition.
        age: seconds of green shown; negative while in transition (minus the lost time left).
        force: a phase that must be served next (-1: none).
        lost_s: lost time of a switch (yellow + all-red); start_s: start-up lost time after it for
            lanes holding a standing queue (see :func:`_segment`).
        depth: branched segments after the first action.
        beam: after the first action, only this many of the next phases (those with the largest
            weighted queues) are branched on (0: all).
        leaf_beam: at the last searched depth, only this many (0: as ``beam`` says).
        hyst: a switch is chosen only if its plan costs less than the best plan that holds by more
            than this share of it (0: the cheapest plan, whatever its first action).
        out_ph, out_t0, out_n: the chosen plan's segments (phase, first step, steps), ``(MAX_SEG,)``.
        fws, iws: float and int scratch from :func:`workspace`.

    Returns:
        (first phase to wish, plan cost in vehicle-seconds, segments in the plan, nodes expanded).
    """
    nl = q0.shape[0]
    H = arr.shape[0] // nl if nl > 0 else 0
    D = depth + 1
    # carve the scratch space: queues per depth (row d at d * nl) and the leaf's, then the tables
    xs = fws
    xl = (D + 1) * nl
    o = (D + 2) * nl
    keep = fws[o:o + P * P * nl]
    o += P * P * nl
    score = fws[o:o + P]
    o += P
    cs = fws[o:o + D + 1]
    k = 0
    ts = iws[k:k + D + 1]  # a segment at depth d starts where its parent ended
    k += D + 1
    ph = iws[k:k + D + 1]
    k += D + 1
    n_child = iws[k:k + D + 1]
    k += D + 1
    nxt = iws[k:k + D + 1]
    k += D + 1
    seg_n = iws[k:k + D + 1]
    k += D + 1
    order = iws[k:k + (D + 1) * P]
    k += (D + 1) * P
    tmp_ph = iws[k:k + MAX_SEG]
    k += MAX_SEG
    tmp_t0 = iws[k:k + MAX_SEG]
    k += MAX_SEG
    tmp_n = iws[k:k + MAX_SEG]
    k += MAX_SEG
    hold_ph = iws[k:k + MAX_SEG]
    k += MAX_SEG
    hold_t0 = iws[k:k + MAX_SEG]
    k += MAX_SEG
    hold_n = iws[k:k + MAX_SEG]
    k += MAX_SEG
    lanes = iws[k:k + 2 * P * nl]
    k += 2 * P * nl
    counts = iws[k:k + 2 * P]
    _tables(sv, P, nl, keep, lanes, counts)

    lost_f = lost_s / dt
    start_f = start_s / dt
    nmin_new = int(np.ceil((lost_s + min_g) / dt - 1e-9))
    nmax_new = int(np.floor((lost_s + max_g) / dt + 1e-9))
    in_transition = age < 0.0
    hold_min = int(np.ceil(dec_s / dt - 1e-9))
    if in_transition:
        rem = -age
        hold_lost = rem / dt
        hold_start = start_f
        hold_min = int(np.ceil((rem + min_g) / dt - 1e-9))
        hold_max = int(np.floor((rem + max_g) / dt + 1e-9))
    else:
        hold_lost = 0.0
        hold_start = 0.0
        hold_max = int(np.floor((max_g - age) / dt + 1e-9))
    if P == 1:
        hold_max = H
    can_hold = in_transition or P == 1 or hold_max >= hold_min
    can_switch = (not in_transition) and age >= min_g - 1e-9 and P > 1
    hold_from = prev if in_transition else cur

    for j in range(nl):
        xs[j] = q0[j]
    ph[0] = cur
    ts[0] = 0
    cs[0] = 0.0
    nc = 0
    if force >= 0 and (can_switch or force == cur):
        order[0] = force
        nc = 1
    else:
        if can_hold:
            order[nc] = cur
            nc += 1
        if can_switch:
            for q in range(P):
                if q != cur:
                    order[nc] = q
                    nc += 1
    if nc == 0:  # at maximum green before minimum green: only the actuator's own move remains
        order[0] = (cur + 1) % P
        nc = 1
    n_child[0] = nc
    nxt[0] = 0

    best = NO_PLAN  # finite: fastmath assumes no infinities
    best_first = cur
    best_nseg = 0
    best_hold = NO_PLAN  # the cheapest plan that holds (searched first, so exact)
    hold_nseg = 0
    nodes = 0
    d = 0
    while d >= 0:
        if nxt[d] >= n_child[d]:
            d -= 1
            continue
        q = order[d * P + nxt[d]]
        nxt[d] += 1
        p = ph[d]
        nodes += 1
        dd = d + 1
        xo = dd * nl
        xu = uint64(xo)
        xp = uint64(d * nl)
        for j in range(nl):
            xs[xu + uint64(j)] = xs[xp + uint64(j)]
        if d == 0 and q == cur:
            c, t2, n = _segment(xs, xo, arr, nl, satdt, w, sv, keep, lanes, counts, P, hold_from, cur,
                                0, hold_lost, hold_start, hold_min, hold_max, H, True, best - cs[d])
        else:
            c, t2, n = _segment(xs, xo, arr, nl, satdt, w, sv, keep, lanes, counts, P, p, q, ts[d],
                                lost_f, start_f, nmin_new, nmax_new, H, True, best - cs[d])
        cost = cs[d] + c
        if not _above(best, cost):
            continue  # bound: the cost only grows along a branch
        ts[dd] = t2
        cs[dd] = cost
        ph[dd] = q
        seg_n[dd] = n
        if dd == D or t2 >= H or P == 1:  # a leaf (a single phase has no other to branch to)
            for j in range(nl):
                xs[uint64(xl + j)] = xs[xu + uint64(j)]
            nseg = 0
            for kk in range(1, dd + 1):
                if nseg < MAX_SEG:
                    tmp_ph[nseg] = ph[kk]
                    tmp_t0[nseg] = ts[kk - 1]
                    tmp_n[nseg] = seg_n[kk]
                    nseg += 1
            # greedy completion to the horizon: serve the largest weighted queue next, until clear;
            # stop once the leaf can no longer beat the best plan (written out here: as a function,
            # inlined or not, the search measured 23% slower)
            limit = best - TIE * (1.0 + abs(best)) - cost
            extra = 0.0
            pc = q
            t = t2
            guard = 0
            while t < H and guard < 2 * P + 2 and extra < limit:
                guard += 1
                best_q = -1
                best_v = 1e-9
                for r in range(P):
                    if r != pc:
                        v = _score(xs, xl, w, sv, lanes, counts, nl, r)
                        if _above(v, best_v):
                            best_v = v
                            best_q = r
                if best_q < 0:  # nothing waits elsewhere: hold to the horizon
                    c, t3, n = _segment(xs, xl, arr, nl, satdt, w, sv, keep, lanes, counts, P, pc, pc,
                                        t, 0.0, 0.0, H, H, H, False, best - cost - extra)
                else:
                    c, t3, n = _segment(xs, xl, arr, nl, satdt, w, sv, keep, lanes, counts, P, pc,
                                        best_q, t, lost_f, start_f, nmin_new, nmax_new, H, True, best - cost - extra)
                    pc = best_q
                extra += c
                if nseg < MAX_SEG and n > 0:
                    tmp_ph[nseg] = pc
                    tmp_t0[nseg] = t
                    tmp_n[nseg] = n
                    nseg += 1
                t = t3
            total = cost + extra
            if order[nxt[0] - 1] == cur and _above(best_hold, total):
                best_hold = total
                hold_nseg = nseg
                for kk in range(nseg):
                    hold_ph[kk] = tmp_ph[kk]
                    hold_t0[kk] = tmp_t0[kk]
                    hold_n[kk] = tmp_n[kk]
            if _above(best, total):
                best = total
                best_first = order[nxt[0] - 1]
                best_nseg = nseg
                for kk in range(nseg):
                    out_ph[kk] = tmp_ph[kk]
                    out_t0[kk] = tmp_t0[kk]
                    out_n[kk] = tmp_n[kk]
            continue
        # expand: children are the other phases, largest weighted queue first
        m = 0
        b = dd * P
        for r in range(P):
            if r == q:
                continue
            score[m] = _score(xs, xo, w, sv, lanes, counts, nl, r)
            order[b + m] = r
            m += 1
        for a in range(1, m):  # insertion sort, descending (stable)
            kk = a
            while kk > 0 and _above(score[kk], score[kk - 1]):
                tv = score[kk]
                score[kk] = score[kk - 1]
                score[kk - 1] = tv
                ti = order[b + kk]
                order[b + kk] = order[b + kk - 1]
                order[b + kk - 1] = ti
                kk -= 1
        nc = m if beam <= 0 else min(m, beam)
        if dd == D - 1 and leaf_beam > 0:
            nc = min(nc, leaf_beam)
        n_child[dd] = nc
        nxt[dd] = 0
        d = dd
    if best_first != cur and best_hold < NO_PLAN and not _above(best_hold, best * (1.0 + hyst)):
        for kk in range(hold_nseg):
            out_ph[kk] = hold_ph[kk]
            out_t0[kk] = hold_t0[kk]
            out_n[kk] = hold_n[kk]
        return cur, best_hold * dt, hold_nseg, nodes
    return best_first, best * dt, best_nseg, nodes


@njit(parallel=True, cache=True)
def plan_all(slot_ptr, phase_ptr, serve_ptr, serve, q, arr, satdt, w, cur, prev, age, force, lost_s, start_s,
             dt, min_g, max_g, dec_s, depth, beam, leaf_beam, hyst, H, threads, plan_locked, choice, cost, plan_ph,
             plan_t0, plan_n, plan_len, nodes):
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
            P = phase_ptr[i + 1] - phase_ptr[i]
            f, cc, ns, nd = plan_one(q[s0:s1], arr[s0 * H:s1 * H], satdt[s0:s1], w[s0:s1],
                                     serve[serve_ptr[i]:serve_ptr[i] + P * (s1 - s0)], P, cur[i], prev[i], age[i],
                                     force[i], lost_s[i], start_s, dt, min_g, max_g, dec_s, depth, beam,
                                     leaf_beam, hyst, plan_ph[i], plan_t0[i], plan_n[i], fws, iws)
            choice[i] = f
            cost[i] = cc
            plan_len[i] = ns
            nodes[i] = nd


@njit(parallel=True, cache=True, fastmath=True)
def plan_outflow(slot_ptr, phase_ptr, serve_ptr, serve, q, arr, satdt, cur, prev, age, lost_s, start_s, dt, H,
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
                sf = start_s / dt
                if k == 0 and age[i] < 0.0:
                    lf = -age[i] / dt
                elif qk == p:
                    lf = 0.0
                    sf = 0.0
                else:
                    lf = lost_s[i] / dt
                keep = min(sv[p, j], sv[qk, j])
                for r in range(plan_n[i, k]):
                    if t >= H:
                        break
                    gf = r + 1.0 - lf
                    gf = min(max(gf - sf if x > CLEAR_EPS else gf, 0.0), 1.0)
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
