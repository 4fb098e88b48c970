"""The road network between signals, as a graph and as flat arrays for the kernels.

:func:`build_graph` gives a networkx ``DiGraph`` whose nodes are intersections (by position in
``Network.intersections``) and whose edges are the roads between them, with the lane pairs they
carry, their length and free-flow travel time. :func:`compile_network` flattens the same model
into CSR-style arrays: per intersection a range of *slots* (its incoming lanes) and a dense
phase-by-slot service block; per slot its outgoing links and, through ``Network.feeds``, the
downstream slots its discharge reaches and after how many steps.

Example:
    >>> g = build_graph(network)                                        # doctest: +SKIP
    >>> g.edges[0, 1]["travel_s"]                                       # doctest: +SKIP
    14.4
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
import numpy as np

from brain.model import GREEN_CHARS, PRIORITY_CHARS, Network

__all__ = ["CompiledNetwork", "build_graph", "compile_network", "PERMISSIVE_SHARE"]

PERMISSIVE_SHARE = 0.6
"""Share of saturation flow a permissive green (``g``: yielding to opposing traffic) delivers."""


def build_graph(network: Network) -> nx.DiGraph:
    """Intersections as nodes, roads between them as edges.

    Node attributes: ``id`` (SUMO id), ``phases``, ``in_lanes``. Edge ``u -> v`` attributes:
    ``lanes`` (list of ``(out_lane, in_lane, distance_m)``), ``length_m`` (shortest of them) and
    ``travel_s`` (free-flow time over it at the outgoing lane's speed limit).
    """
    g = nx.DiGraph()
    owner_out: dict[int, int] = {}
    owner_in: dict[int, int] = {}
    for i, x in enumerate(network.intersections):
        g.add_node(i, id=x.id, phases=x.n_phases, in_lanes=x.in_lanes)
        for ln in x.out_lanes:
            owner_out.setdefault(ln, i)
        for ln in x.in_lanes:
            owner_in.setdefault(ln, i)
    for o, ln, dist in network.feeds:
        u, v = owner_out.get(o), owner_in.get(ln)
        if u is None or v is None:
            continue
        travel = dist / max(float(network.lane_speed[o]), 1.0)
        if g.has_edge(u, v):
            e = g.edges[u, v]
            e["lanes"].append((o, ln, dist))
            e["length_m"] = min(e["length_m"], dist)
            e["travel_s"] = min(e["travel_s"], travel)
        else:
            g.add_edge(u, v, lanes=[(o, ln, dist)], length_m=dist, travel_s=travel)
    return g


@dataclass(frozen=True)
class CompiledNetwork:
    """The network as flat arrays (all int64 / float64).

    Intersection ``i`` owns slots ``slot_ptr[i]:slot_ptr[i+1]`` (its incoming lanes, ``slot_lane``
    gives the network lane of each) and phases ``phase_ptr[i]:phase_ptr[i+1]``. Its service block
    starts at ``serve_ptr[i]``: ``serve[serve_ptr[i] + k * n_slots_i + j]`` is the share of slot
    ``j``'s saturation flow that phase ``k`` lets through (0 red, 1 all its links green).

    Outgoing links of slot ``s`` are ``link_ptr[s]:link_ptr[s+1]`` with ``link_out`` (network lane).
    Routes ``route_ptr[s]:route_ptr[s+1]`` say where a slot's discharge goes next: ``route_link``
    (which outgoing link), ``route_to`` (downstream slot) and ``route_delay_s`` (free-flow time
    from the stop line of ``s`` to the stop line of ``route_to``).
    """

    slot_ptr: np.ndarray
    slot_lane: np.ndarray
    slot_owner: np.ndarray
    phase_ptr: np.ndarray
    serve_ptr: np.ndarray
    serve: np.ndarray
    link_ptr: np.ndarray
    link_out: np.ndarray
    route_ptr: np.ndarray
    route_link: np.ndarray
    route_to: np.ndarray
    route_delay_s: np.ndarray
    zone_s: np.ndarray
    lost_s: np.ndarray

    @property
    def n_intersections(self) -> int:
        return len(self.slot_ptr) - 1

    @property
    def n_slots(self) -> int:
        return len(self.slot_lane)


def compile_network(network: Network, yellow: float | None, all_red: float | None) -> CompiledNetwork:
    """Flatten ``network`` for the kernels.

    Args:
        network: the controllers' model.
        yellow: yellow time the actuator inserts (s); ``None`` takes each intersection's own.
        all_red: all-red after yellow (s); ``None`` takes each intersection's own.
    """
    slot_ptr, slot_lane, slot_owner = [0], [], []
    phase_ptr, serve_ptr, serve = [0], [0], []
    lost = []
    slot_of_lane: dict[int, int] = {}
    for i, x in enumerate(network.intersections):
        lanes = x.in_lanes
        base = len(slot_lane)
        for j, ln in enumerate(lanes):
            slot_of_lane.setdefault(ln, base + j)
        slot_lane.extend(lanes)
        slot_owner.extend([i] * len(lanes))
        slot_ptr.append(len(slot_lane))
        phase_ptr.append(phase_ptr[-1] + x.n_phases)
        pos = {ln: j for j, ln in enumerate(lanes)}
        n_links = np.zeros(len(lanes))
        for a, _ in x.links:
            if a >= 0:
                n_links[pos[a]] += 1
        for p in x.phases:
            share = np.zeros(len(lanes))
            for li, (a, _) in enumerate(x.links):
                if a < 0:
                    continue
                c = p.state[li]
                if c in PRIORITY_CHARS:
                    share[pos[a]] += 1.0
                elif c in GREEN_CHARS:
                    share[pos[a]] += PERMISSIVE_SHARE
            serve.extend((share / np.maximum(n_links, 1)).tolist())
        serve_ptr.append(len(serve))
        lost.append((x.yellow_s if yellow is None else yellow) + (all_red if all_red is not None else x.all_red_s))
    # outgoing links per slot, and where each leads
    downstream: dict[int, list[tuple[int, float]]] = {}
    for o, ln, dist in network.feeds:
        if ln in slot_of_lane:
            downstream.setdefault(o, []).append((slot_of_lane[ln], dist))
    link_ptr, link_out = [0], []
    route_ptr, route_link, route_to, route_delay = [0], [], [], []
    for s, ln in enumerate(slot_lane):
        x = network.intersections[slot_owner[s]]
        outs = sorted({b for a, b in x.links if a == ln and b >= 0})
        for o in outs:
            k = len(link_out)
            link_out.append(o)
            speed = max(float(network.lane_speed[o]), 1.0)
            for to, dist in downstream.get(o, ()):
                route_link.append(k)
                route_to.append(to)
                route_delay.append(dist / speed)
        link_ptr.append(len(link_out))
        route_ptr.append(len(route_to))
    lanes_arr = np.array(slot_lane, dtype=np.int64)
    zone_s = network.lane_length[lanes_arr] / np.maximum(network.lane_speed[lanes_arr], 1.0) if len(lanes_arr) else np.zeros(0)
    i64 = lambda v: np.array(v, dtype=np.int64)  # noqa: E731
    f64 = lambda v: np.array(v, dtype=np.float64)  # noqa: E731
    return CompiledNetwork(
        slot_ptr=i64(slot_ptr), slot_lane=lanes_arr, slot_owner=i64(slot_owner),
        phase_ptr=i64(phase_ptr), serve_ptr=i64(serve_ptr), serve=f64(serve),
        link_ptr=i64(link_ptr), link_out=i64(link_out),
        route_ptr=i64(route_ptr), route_link=i64(route_link), route_to=i64(route_to),
        route_delay_s=f64(route_delay), zone_s=f64(zone_s), lost_s=f64(lost),
    )
