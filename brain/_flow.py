"""Numba kernels of the flows around the optimiser's search: the spillback room and turning shares
of each slot, the predicted arrivals at each queue, and the planned discharges routed to the
signals downstream. Arrays and scalars in, arrays written in place (see :mod:`brain._kernels` for
the flat layouts); :mod:`brain._kernels` re-exports them."""

from __future__ import annotations

from numba import njit

__all__ = ["turning_room", "predict_arrivals", "route_inflow"]


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
def predict_arrivals(slot_ptr, slot_lane, moving, rate, zone_s, speed, app_ptr, app, use_app, inflow, up_from_s,
                     use_inflow, dt, H, out):
    """Predicted arrivals at each slot's queue per step, written to ``out`` (flat, see module doc).

    Vehicles moving in the sensing zone now arrive within the zone's travel time: with
    ``use_app``, each at its own distance to the stop line over the lane's speed (``app`` rows of
    ``(metres, weight)``, lane ``l``'s at ``app_ptr[l]:app_ptr[l + 1]``; a vehicle moving inside
    the junction is past the stop line and has none); without, spread evenly over that time. Beyond it, the slot's measured rate, or (``use_inflow`` and the slot
    has planned upstream discharges, ``up_from_s >= 0``) ``inflow`` from the upstream plans from
    ``up_from_s`` on.
    """
    n = slot_ptr.shape[0] - 1
    for i in range(n):
        s0 = slot_ptr[i]
        nl = slot_ptr[i + 1] - s0
        base = s0 * H
        for j in range(nl):
            s = s0 + j
            tz = zone_s[s] if zone_s[s] > dt else dt
            m = 0.0 if use_app else moving[s] * dt / tz
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
            if use_app:
                lane = slot_lane[s]
                v_s = speed[s] if speed[s] > 1.0 else 1.0
                for k in range(app_ptr[lane], app_ptr[lane + 1]):
                    eta = app[k, 0] / v_s
                    if eta < tz:
                        h = int(eta / dt)
                        if h < H:
                            out[base + h * nl + j] += app[k, 1]


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
