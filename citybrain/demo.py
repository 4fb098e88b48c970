"""The demo's second part: the camera-to-signal loop through the services, beside the same window
sensed by SUMO's detectors in one process."""

from __future__ import annotations

import json
import sys
from pathlib import Path

__all__ = ["DEMO_SERVICE_S", "demo_service"]

DEMO_SERVICE_S = 300.0


def _fmt_opt(v: float | None, spec: str) -> str:
    return "-" if v is None else format(v, spec)
"""Simulated seconds of the demo's closed loop through the services."""


def demo_service(out: Path, stop, scenario: str) -> int:
    """The pipeline as deployed: sim, brain and a camera worker as separate processes over ZeroMQ
    with CURVE keys, the detector counting on the rendered frames, beside the same window sensed
    by SUMO's detectors in one process."""
    from brain.controllers import make
    from citybrain.services import run_services
    from sim.loop import run_scenario
    from sim.scenario import load_scenario

    sc = load_scenario(scenario)
    end = sc.begin + DEMO_SERVICE_S
    print(f"\ncitybrain demo: the camera-to-signal loop on '{sc.name}', {DEMO_SERVICE_S:g} simulated s: the sim "
          f"renders camera frames, a camera worker counts vehicles with the detector, the brain (mpc) decides, "
          f"each a separate process over ZeroMQ with CURVE keys", file=sys.stderr)
    fps = 2.0  # camera frames a second: SUMO steps 1 / fps in both runs, so only the sensing differs
    svc = run_services(sc, "mpc", "vision", end=end, out_dir=out / "service", fps=fps, curve=True,
                       stop=lambda: bool(stop.name))
    truth = run_scenario(sc, make("mpc"), seed=1, end=end, step_length=1.0 / fps).to_dict()
    counted = svc.get("vehicles_counted") or {}
    rows = [("cameras -> brain -> signals (services)", svc, counted), ("SUMO's detectors (one process)", truth, {})]
    lines = ["| sensing | avg delay (s) | vehicles | stop-line crossings counted / true | decisions on live cameras "
             "| count -> decision p50 (ms) | safety violations |", "|---|---|---|---|---|---|---|"]
    for name, r, c in rows:
        delay, lat, svc_stats = r.get("avg_delay_s"), r.get("count_to_decision_ms_p50"), r.get("service") or {}
        cells = [name, _fmt_opt(delay, ".2f"), str(r.get("vehicles", 0)),
                 f"{c['cameras']:.0f} / {c['sumo']:.0f}" if c else "-",
                 f"{svc_stats['live_steps']} of {svc_stats['steps']}" if svc_stats else "-",
                 _fmt_opt(lat, ".1f"), str(r.get("safety_violations"))]
        lines.append("| " + " | ".join(cells) + " |")
    table = "\n".join(lines) + "\n"
    print()
    print(table, end="")
    (out / "service.md").write_text(f"# citybrain demo: the loop through the services ({sc.name}, "
                                    f"{DEMO_SERVICE_S:g} s)\n\n{table}")
    (out / "service.json").write_text(json.dumps({"service": svc, "truth": truth}, indent=1, default=str) + "\n")
    print(f"results: {out / 'service.md'}; the processes' logs in {out / 'service'}")
    for w in svc.get("warnings") or ():
        print(f"citybrain: warning: service run: {w}", file=sys.stderr)
    codes = svc.get("exit_codes") or {}
    if svc.get("error") or any(codes.values()) or svc.get("safety_violations"):
        print(f"citybrain: the service run failed: {svc.get('error') or codes}", file=sys.stderr)
        return 1
    return stop.exit_code or 0
