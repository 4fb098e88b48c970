"""Add emergency vehicles to any scenario.

``add_emergency`` writes a copy of a scenario's configuration that loads its own network and
routes plus a route file of emergency vehicles (SUMO class ``emergency``, type id ``emergency``,
driving up to 1.5 times the limit, as on a call). Each departs every ``every_s`` seconds (with a
random offset of up to a quarter of that), from a fringe edge to a far one, on the shortest
path, which must pass at least ``min_signals`` signals. Seeds are fixed.

Example:
    >>> add_emergency("grid4x4", Path("runs/ev"))       # doctest: +SKIP
    PosixPath('runs/ev/grid4x4-ev/grid4x4-ev.sumocfg')
"""

from __future__ import annotations

import os
import random
from pathlib import Path

__all__ = ["add_emergency"]


def add_emergency(scenario: str | Path, out: Path, *, every_s: float = 300.0, seed: int = 42,
                  min_signals: int = 3) -> Path:
    """Write ``out/<name>-ev/<name>-ev.sumocfg``; returns its path."""
    import sumolib

    from sim.scenario import load_scenario

    sc = load_scenario(scenario)
    net = sumolib.net.readNet(str(sc.net), withInternal=False)
    tls_edges = {c[0].getEdge().getID() for t in net.getTrafficLights() for c in t.getConnections()}
    edges = [e for e in net.getEdges() if e.allows("emergency") and e.getFunction() != "internal"]
    sources = [e for e in edges if not e.getIncoming()]
    sinks = [e for e in edges if not e.getOutgoing()]
    if not sources or not sinks:
        sources = sinks = edges
    rng = random.Random(seed)
    begin, end = sc.begin, sc.end if sc.end is not None else sc.begin + 3600.0
    routes = []
    t = begin + every_s / 2
    tries = 0
    while t < end - 120.0 and tries < 10_000:
        tries += 1
        a, b = rng.choice(sources), rng.choice(sinks)
        if a == b:
            continue
        path, _ = net.getShortestPath(a, b, vClass="emergency")
        if not path or sum(1 for e in path if e.getID() in tls_edges) < min_signals:
            continue
        depart = t + rng.uniform(0.0, every_s / 4)
        routes.append((depart, " ".join(e.getID() for e in path)))
        t += every_s
    if not routes:
        raise ValueError(f"{sc.name}: no route from the fringe passes {min_signals} signals")
    folder = Path(out) / f"{sc.name}-ev"
    folder.mkdir(parents=True, exist_ok=True)
    rou = folder / f"{sc.name}-ev.rou.xml"
    lines = ['<routes>',
             '  <vType id="emergency" vClass="emergency" guiShape="emergency" color="1,0,0" speedFactor="1.5" '
             'speedDev="0"/>']
    for k, (depart, path) in enumerate(routes):
        lines.append(f'  <vehicle id="ev{k}" type="emergency" depart="{depart:.2f}" departLane="best">'
                     f'<route edges="{path}"/></vehicle>')
    lines.append("</routes>")
    rou.write_text("\n".join(lines) + "\n")

    def rel(p: Path) -> str:
        return os.path.relpath(p, folder)

    cfg = folder / f"{sc.name}-ev.sumocfg"
    route_files = ",".join([rel(r) for r in sc.routes] + [rou.name])
    add = f'\n    <additional-files value="{",".join(rel(a) for a in sc.additional)}"/>' if sc.additional else ""
    cfg.write_text(f"""<configuration>
  <input>
    <net-file value="{rel(sc.net)}"/>
    <route-files value="{route_files}"/>{add}
  </input>
  <time>
    <begin value="{begin:g}"/>
    <end value="{end:g}"/>
  </time>
</configuration>
""")
    return cfg
