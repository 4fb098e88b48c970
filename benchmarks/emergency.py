"""Emergency-vehicle priority: their travel time with and without pre-emption, and the cost to everyone else.

Each scenario gets emergency vehicles (:func:`scenarios.emergency.add_emergency`, one every
``every_s`` seconds on routes through at least three signals) and runs under the scenario's own
fixed-time plan (``plan``: what a city runs today) and the optimiser (``mpc``), each with and
without pre-emption (``+priority``), over several seeds, each run in its own process. The table
gives the emergency vehicles' mean travel time and delay and everyone else's mean delay, and the
changes that priority brings against the same controller without it (and, for the optimiser,
against the fixed-time plan).
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

__all__ = ["bench_emergency", "markdown_table"]

CONTROLLERS = ("plan", "plan+priority", "mpc", "mpc+priority")


def bench_emergency(scenarios: list[str], seeds: list[int], work: Path, *, every_s: float = 300.0,
                    workers: int = 2, progress=None, stop=None) -> list[dict]:
    from benchmarks.quality import Job, run_jobs
    from brain.timing import Timing
    from scenarios.emergency import add_emergency
    from sim.scenario import load_scenario

    scens = [load_scenario(add_emergency(s, work, every_s=every_s)) for s in scenarios]
    jobs = [Job(sc, c, seed, Timing()) for sc in scens for c in CONTROLLERS for seed in seeds]
    recs = run_jobs(jobs, workers, progress or (lambda r, n, t: None), stop=stop)
    rows = []
    for sc in scens:
        for c in CONTROLLERS:
            rs = [r for r in recs if r["scenario"] == sc.name and r["controller"] == c and r.get("ev_trips")]
            if not rs:
                continue

            def mean(k: str, rs: list[dict] = rs) -> float:
                return statistics.mean(r[k] for r in rs)

            rows.append({"scenario": sc.name, "controller": c, "seeds": sorted(r["seed"] for r in rs),
                         "ev_trips": rs[0]["ev_trips"], "ev_avg_trip_time_s": mean("ev_avg_trip_time_s"),
                         "ev_avg_delay_s": mean("ev_avg_delay_s"), "others_avg_delay_s": mean("others_avg_delay_s"),
                         "safety_violations": sum(r["safety_violations"] for r in rs), "runs": rs})
    return rows


def markdown_table(rows: list[dict], every_s: float) -> str:
    out = ["# Emergency-vehicle priority", "",
           f"Emergency vehicles: one every {every_s:g} s, routes through at least 3 signals, up to 1.5x the "
           "limit. Means over seeds. Each `+priority` row against the same controller without priority, and "
           "`mpc+priority` also against the fixed-time `plan` (the city without the brain).", "",
           "| scenario | controller | EV trips | EV travel time (s) | EV delay (s) | others' delay (s) | "
           "EV travel time vs same controller | others' delay vs same controller | EV travel time vs plan | "
           "others' delay vs plan | violations |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    by = {(r["scenario"], r["controller"]): r for r in rows}

    def pct(a: float, b: float) -> str:
        return f"{100 * (a - b) / b:+.1f}%"

    for r in rows:
        extra = ["", "", "", ""]
        if r["controller"].endswith("+priority"):
            base = by.get((r["scenario"], r["controller"].removesuffix("+priority")))
            plan = by.get((r["scenario"], "plan")) if r["controller"] != "plan+priority" else None
            extra = [pct(r["ev_avg_trip_time_s"], base["ev_avg_trip_time_s"]) if base else "",
                     pct(r["others_avg_delay_s"], base["others_avg_delay_s"]) if base else "",
                     pct(r["ev_avg_trip_time_s"], plan["ev_avg_trip_time_s"]) if plan else "",
                     pct(r["others_avg_delay_s"], plan["others_avg_delay_s"]) if plan else ""]
        out.append(f"| {r['scenario']} | {r['controller']} | {r['ev_trips']} | {r['ev_avg_trip_time_s']:.1f} | "
                   f"{r['ev_avg_delay_s']:.1f} | {r['others_avg_delay_s']:.2f} | " + " | ".join(extra) +
                   f" | {r['safety_violations']} |")
    return "\n".join(out) + "\n"


def write(rows: list[dict], every_s: float, json_path: Path | None, md_path: Path | None) -> str:
    md = markdown_table(rows, every_s)
    if json_path:
        Path(json_path).write_text(json.dumps(rows, indent=1, default=str) + "\n")
    if md_path:
        Path(md_path).write_text(md)
    return md
