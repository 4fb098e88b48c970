"""Controller-quality benchmark: controllers x scenarios x seeds, one table.

Each run happens in its own process (libsumo holds one simulation per process, and a SUMO that
crashes takes only its own run down). Results are written after every finished run, so an
interrupted benchmark keeps what it measured.
"""

from __future__ import annotations

import json
import math
import multiprocessing as mp
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from brain.timing import Timing
from sim.scenario import Scenario

__all__ = ["Job", "run_jobs", "aggregate", "markdown_table", "write_results", "plain_sumo_record"]

PLAIN = "plain-sumo"
"""Pseudo-controller: the scenario run by the ``sumo`` binary alone, to check our own fixed-time."""

_METRICS = ("avg_delay_s", "avg_trip_time_s", "avg_wait_s", "throughput", "vehicles", "mean_queue", "wall_s")


@dataclass(frozen=True)
class Job:
    scenario: Scenario
    controller: str
    seed: int
    timing: Timing
    end: float | None = None
    options: dict | None = None
    report: str | None = None  # folder: record the run's report data there


def plain_sumo_record(scenario: Scenario, seed: int) -> dict:
    """Run the scenario with the ``sumo`` binary and its own programs; the same metric as ours."""
    from sim.backend import sumo_command
    from sim.measure import read_tripinfo

    with tempfile.TemporaryDirectory(prefix="citybrain-plain-") as tmp:
        trip = Path(tmp) / "tripinfo.xml"
        t0 = time.perf_counter()
        done = subprocess.run(sumo_command(scenario, seed=seed, tripinfo=trip), capture_output=True, text=True)
        wall = time.perf_counter() - t0
        stats = read_tripinfo(trip)
    err = None if done.returncode == 0 else (done.stderr.strip().splitlines() or ["sumo failed"])[-1]
    return {"scenario": scenario.name, "controller": PLAIN, "seed": seed, "avg_delay_s": stats.avg_delay_s,
            "avg_trip_time_s": stats.avg_trip_time_s, "avg_wait_s": stats.avg_wait_s,
            "throughput": stats.arrived, "vehicles": stats.vehicles, "mean_queue": None,
            "safety_violations": 0, "decisions": 0, "wall_s": wall, "complete": stats.complete, "error": err}


def _work(job: Job, conn) -> None:  # runs in a child process
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        if job.controller == PLAIN:
            rec = plain_sumo_record(job.scenario, job.seed)
        else:
            from brain.controllers import make
            from sim.loop import run_scenario

            ctrl = make(job.controller, job.options)
            recorder, extra = None, ()
            if job.report:
                from sim.record import Recorder

                recorder = Recorder(Path(job.report) / f"{job.scenario.name}_{job.controller}_{job.seed}")
                extra = recorder.sumo_args(job.scenario)
            rec = run_scenario(job.scenario, ctrl, seed=job.seed, timing=job.timing, end=job.end, extra=extra,
                               on_step=recorder).to_dict()
            if recorder is not None:
                recorder.save(record=rec)
    except Exception as e:  # a failed run becomes a record with the reason, never a lost benchmark
        rec = _error_record(job, f"{type(e).__name__}: {e}")
    conn.send(rec)
    conn.close()


def _error_record(job: Job, error: str) -> dict:
    return {"scenario": job.scenario.name, "controller": job.controller, "seed": job.seed,
            "avg_delay_s": None, "safety_violations": 0, "decisions": 0, "complete": False, "error": error}


def run_jobs(jobs: Sequence[Job], workers: int, on_done: Callable[[dict, int, int], None]) -> list[dict]:
    """Run ``jobs`` in up to ``workers`` processes; ``on_done(record, done, total)`` after each."""
    ctx = mp.get_context("spawn")
    pending = list(jobs)
    running: list[tuple[Job, mp.Process, object]] = []
    records: list[dict] = []
    while pending or running:
        while pending and len(running) < max(workers, 1):
            job = pending.pop(0)
            recv, send = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=_work, args=(job, send), daemon=True)
            proc.start()
            send.close()
            running.append((job, proc, recv))
        ready = mp.connection.wait([r for _, _, r in running], timeout=1.0)
        for job, proc, recv in list(running):
            if recv not in ready and proc.is_alive():
                continue
            try:
                rec = recv.recv()
            except EOFError:
                proc.join()
                rec = _error_record(job, f"run process died (exit code {proc.exitcode}): SUMO crashed")
            proc.join()
            running.remove((job, proc, recv))
            records.append(rec)
            on_done(rec, len(records), len(jobs))
    return records


def _mean(values: list[float]) -> float | None:
    vals = [v for v in values if v is not None and math.isfinite(v)]
    return statistics.fmean(vals) if vals else None


def aggregate(records: Sequence[dict]) -> list[dict]:
    """One record per (scenario, controller): means over seeds, spread, ratio to fixed-time."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in records:
        groups.setdefault((r["scenario"], r["controller"]), []).append(r)
    out = []
    for (scen, ctrl), runs in groups.items():
        runs = sorted(runs, key=lambda r: r["seed"])
        ok = [r for r in runs if r.get("error") is None]
        agg: dict = {"scenario": scen, "controller": ctrl, "seeds": [r["seed"] for r in runs]}
        for m in _METRICS:
            agg[m] = _mean([r.get(m) for r in ok])
        delays = [r["avg_delay_s"] for r in ok if r.get("avg_delay_s") is not None]
        agg["avg_delay_s_std"] = statistics.stdev(delays) if len(delays) > 1 else 0.0
        agg["avg_delay_s_min"] = min(delays) if delays else None
        agg["avg_delay_s_max"] = max(delays) if delays else None
        agg["safety_violations"] = sum(r.get("safety_violations") or 0 for r in runs)
        agg["decisions"] = sum(r.get("decisions") or 0 for r in runs)
        agg["errors"] = [f"seed {r['seed']}: {r['error']}" for r in runs if r.get("error")]
        agg["runs"] = runs
        out.append(agg)
    fixed = {a["scenario"]: a["avg_delay_s"] for a in out if a["controller"] == "fixed"}
    for a in out:
        f = fixed.get(a["scenario"])
        a["ratio_to_fixed"] = a["avg_delay_s"] / f if f and a["avg_delay_s"] is not None else None
    return out


def _fmt(v: float | None, digits: int = 2) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def markdown_table(rows: Sequence[dict]) -> str:
    head = ("| scenario | controller | avg delay (s) | ± sd | / fixed | trip time (s) | wait (s) | throughput "
            "| vehicles | queue (veh/lane) | violations | decisions | wall (s) | seeds |")
    lines = [head, "|" + "---|" * 14]
    for r in rows:
        lines.append(
            f"| {r['scenario']} | {r['controller']} | {_fmt(r['avg_delay_s'])} | {_fmt(r['avg_delay_s_std'])} "
            f"| {_fmt(r['ratio_to_fixed'], 3)} | {_fmt(r['avg_trip_time_s'])} | {_fmt(r['avg_wait_s'])} "
            f"| {_fmt(r['throughput'], 0)} | {_fmt(r['vehicles'], 0)} | {_fmt(r['mean_queue'])} "
            f"| {r['safety_violations']} | {r['decisions']} | {_fmt(r['wall_s'], 1)} "
            f"| {','.join(map(str, r['seeds']))} |"
        )
        for e in r["errors"]:
            lines.append(f"|  | ↳ error | {e} |" + " |" * 11)
        for run in r.get("runs", ()):
            if run.get("gridlocks"):
                where = "; ".join(f"{g['tls']} from {g['since_s']:,.0f} s" for g in run["gridlocks"])
                lines.append(f"|  | ↳ gridlock | seed {run['seed']}: {where} |" + " |" * 11)
    return "\n".join(lines) + "\n"


def write_results(records: Sequence[dict], order: Sequence[tuple[str, str]], json_path: Path | None,
                  md_path: Path | None, title: str = "") -> list[dict]:
    """Aggregate, order as asked, and write JSON and Markdown (each rewritten whole)."""
    rank = {k: i for i, k in enumerate(order)}
    rows = sorted(aggregate(records), key=lambda a: rank.get((a["scenario"], a["controller"]), 1 << 30))
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = json_path.with_suffix(json_path.suffix + ".tmp")
        tmp.write_text(json.dumps(_clean(rows), indent=1, allow_nan=False) + "\n")
        tmp.replace(json_path)
    if md_path is not None:
        md_path.parent.mkdir(parents=True, exist_ok=True)
        text = (f"# {title}\n\n" if title else "") + markdown_table(rows)
        md_path.write_text(text)
    return rows


def _clean(v: object) -> object:
    """Non-finite floats become None (JSON has no NaN)."""
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_clean(x) for x in v]
    return v


def progress_bar(done: int, total: int, label: str, stream=sys.stderr) -> None:
    width = 24
    fill = int(width * done / total) if total else width
    bar = "#" * fill + "-" * (width - fill)
    end = "\n" if done == total or not stream.isatty() else ""
    stream.write(f"\r[{bar}] {done}/{total} runs  {label:<60.60}{end}")
    stream.flush()
