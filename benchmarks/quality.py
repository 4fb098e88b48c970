"""Controller-quality benchmark: controllers x scenarios x seeds, one table.

Each run happens in its own process (libsumo holds one simulation per process, and a SUMO that
crashes takes only its own run down). Results are written after every finished run, so an
interrupted benchmark keeps what it measured.
"""

from __future__ import annotations

import json
import math
import multiprocessing as mp
import os
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

__all__ = ["Job", "run_jobs", "aggregate", "markdown_table", "write_results", "plain_sumo_record", "findings_by_rule",
           "provenance_lines", "rules_text"]

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
    step_length: float | None = None


def plain_sumo_record(scenario: Scenario, seed: int, end: float | None = None, step_length: float | None = None,
                      stop: Callable[[], str] | None = None) -> dict:
    """Run the scenario with the ``sumo`` binary and its own programs as written; the same metric
    as ours (it equals ``fixed`` under the ``resco`` protocol, which runs the programs as written).
    A scenario without an end gets the same ceiling as a run; ``stop()`` naming a signal ends it."""
    from sim.backend import sumo_command
    from sim.loop import CEILING_S
    from sim.measure import read_tripinfo
    from sim.sumocfg import sumo_env

    open_ended = end is None and scenario.end is None
    with tempfile.TemporaryDirectory(prefix="citybrain-plain-") as tmp:
        trip = Path(tmp) / "tripinfo.xml"
        t0 = time.perf_counter()
        cmd = sumo_command(scenario, Path(tmp), seed=seed, tripinfo=trip, step_length=step_length, end=end)
        if open_ended:  # SUMO ends by itself once every vehicle has arrived; the ceiling caps a jam
            cmd += ["--route-steps", "0", "--end", f"{scenario.begin + CEILING_S:g}"]
        log_path = Path(tmp) / "sumo.err"
        with open(log_path, "w") as log_file:
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log_file, env=sumo_env())
        stopped = ""
        while proc.poll() is None:
            if stop is not None and stop():
                stopped = stop()
                proc.terminate()
                proc.wait(30)
                break
            time.sleep(0.2)
        err_text = log_path.read_text(errors="replace")
        wall = time.perf_counter() - t0
        stats = read_tripinfo(trip)
    if stopped:
        err = f"stopped by {stopped}"
    else:
        err = None if proc.returncode == 0 else (err_text.strip().splitlines() or ["sumo failed"])[-1]
    return {"scenario": scenario.name, "controller": PLAIN, "seed": seed, "avg_delay_s": stats.avg_delay_s,
            "avg_trip_time_s": stats.avg_trip_time_s, "avg_wait_s": stats.avg_wait_s,
            "throughput": stats.arrived, "vehicles": stats.vehicles, "mean_queue": None,
            "safety_violations": 0, "decisions": 0, "wall_s": wall, "complete": stats.complete, "error": err,
            "not_inserted": stats.not_inserted,
            "provenance": {"scenario_path": str(scenario.path), "seed": seed, "program": "as written",
                           "end_s": end if end is not None else scenario.end}}


def _work(job: Job, conn) -> None:  # runs in a child process
    import logging
    import signal

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    stopping = {"name": ""}

    def on_signal(signum, _frame) -> None:
        stopping["name"] = signal.Signals(signum).name

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)  # a terminal's Ctrl-C reaches every process of the group
    try:
        if job.controller == PLAIN:
            rec = plain_sumo_record(job.scenario, job.seed, job.end, job.step_length, stop=lambda: stopping["name"])
        else:
            from brain.controllers import make
            from sim.loop import Stop, run_scenario

            ctrl = make(job.controller, job.options)
            recorder, extra_add = None, ()
            if job.report:
                from sim.record import Recorder

                folder = f"{job.scenario.name.replace('/', '--')}_{job.controller}_{job.seed}"
                recorder = Recorder(Path(job.report) / folder)
                extra_add = recorder.additional_files()

            def on_step(b) -> None:
                if stopping["name"]:
                    raise Stop(f"stopped by {stopping['name']}")
                if recorder is not None:
                    recorder(b)

            rec = run_scenario(job.scenario, ctrl, seed=job.seed, timing=job.timing, end=job.end,
                               additional=extra_add, on_step=on_step, step_length=job.step_length,
                               options=job.options).to_dict()
            if recorder is not None and recorder.ready:
                recorder.save(record=rec)
    except Exception as e:  # a failed run becomes a record with the reason, never a lost benchmark
        rec = _error_record(job, f"{type(e).__name__}: {e}")
    conn.send(rec)
    conn.close()


def _error_record(job: Job, error: str) -> dict:
    return {"scenario": job.scenario.name, "controller": job.controller, "seed": job.seed,
            "avg_delay_s": None, "safety_violations": 0, "decisions": 0, "complete": False, "error": error}


def run_jobs(jobs: Sequence[Job], workers: int, on_done: Callable[[dict, int, int], None],
             stop: Callable[[], bool] | None = None) -> list[dict]:
    """Run ``jobs`` in up to ``workers`` processes; ``on_done(record, done, total)`` after each.

    Once ``stop()`` is true no further job starts, and the runs under way are asked (SIGTERM) to
    end at their next step: their records keep what they measured."""
    import signal

    ctx = mp.get_context("spawn")
    pending = list(jobs)
    running: list[tuple[Job, mp.Process, object]] = []
    records: list[dict] = []
    told = False
    while pending or running:
        if stop is not None and stop():
            pending.clear()
            if not told:
                told = True
                for _, proc, _ in running:
                    if proc.is_alive() and proc.pid:
                        os.kill(proc.pid, signal.SIGTERM)
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
                if told and proc.exitcode in (-signal.SIGTERM, -signal.SIGINT):
                    rec = _error_record(job, f"stopped by {signal.Signals(-proc.exitcode).name} before it began")
                else:
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
        agg["not_inserted"] = _mean([r.get("not_inserted") for r in ok])
        warned: dict[str, list[int]] = {}
        for r in runs:
            for w in r.get("warnings") or ():
                warned.setdefault(w, []).append(r["seed"])
        agg["warnings"] = [f"seed {','.join(map(str, seeds))}: {w}" for w, seeds in warned.items()]
        agg["program_findings"] = sum(len(r.get("program_findings") or ()) for r in runs[:1])
        agg["provenance"] = _row_provenance(runs)
        agg["runs"] = runs
        out.append(agg)
    fixed = {a["scenario"]: a["avg_delay_s"] for a in out if a["controller"] == "fixed"}
    for a in out:
        f = fixed.get(a["scenario"])
        a["ratio_to_fixed"] = a["avg_delay_s"] / f if f and a["avg_delay_s"] is not None else None
    return out


def _row_provenance(runs: Sequence[dict]) -> dict:
    """What the runs of one row share: scenario path, window, step, rules, options, versions."""
    provs = [r["provenance"] for r in runs if r.get("provenance")]
    if not provs:
        return {}
    keep = ("scenario_path", "begin_s", "end_s", "end_reason", "step_length_s", "timing", "controller_options",
            "citybrain", "sumo", "python")
    out = {k: provs[0].get(k) for k in keep}
    out["end_s"] = max(p.get("end_s") or 0.0 for p in provs)
    out["dates"] = sorted({p["date"][:10] for p in provs if p.get("date")})
    return out


def provenance_lines(rows: Sequence[dict]) -> list[str]:
    """How the table was made, one Markdown bullet per fact (the same for every row, or per scenario)."""
    provs = [r["provenance"] for r in rows if r.get("provenance")]
    if not provs:
        return []
    lines = []
    scen = {}
    for r in rows:
        p = r.get("provenance")
        if p:
            scen.setdefault(r["scenario"], p)
    window = {f"{p['begin_s']:g}-{p['end_s']:g} s ({p['end_reason']}), step {p['step_length_s']:g} s"
              for p in scen.values()}
    for name, p in scen.items():
        lines.append(f"- `{name}`: `{p['scenario_path']}`" + (f", {p['begin_s']:g}-{p['end_s']:g} s, step "
                                                              f"{p['step_length_s']:g} s" if len(window) > 1 else ""))
    if len(window) == 1:
        lines.append(f"- window: {window.pop()}")
    seeds = sorted({s for r in rows for s in r["seeds"]})
    lines.append(f"- seeds: {', '.join(map(str, seeds))}")
    lines.append(f"- rules: {rules_text(provs[0]['timing'])}")
    opts = {r["controller"]: r["provenance"].get("controller_options") for r in rows
            if r.get("provenance") and r["provenance"].get("controller_options")}
    if opts:
        lines.append("- controller options: " + "; ".join(f"{c}: {o}" for c, o in opts.items()))
    p = provs[0]
    dates = sorted({d for q in provs for d in q.get("dates", [])})
    lines.append(f"- citybrain {p['citybrain']}, SUMO {p['sumo']}, Python {p['python']}; run {', '.join(dates)}")
    return lines


def rules_text(t: dict) -> str:
    """The timing rules of a record's provenance, as a traffic engineer reads them (mpc's cadence:
    its default; options given are listed apart)."""
    from brain.controllers.mpc import MpcConfig
    from brain.timing import PROFILES

    prof = PROFILES.get(t.get("profile", "mutcd"))
    lim = f"{prof.min_yellow:g}-{prof.max_yellow:g} s" if prof else ""
    if t.get("clearance") == "ite":
        clear = "yellow and all-red from the ITE formulas at each signal"
    else:
        y = f"{t['yellow']:g} s" if t.get("yellow") is not None else f"each transition's own in the program ({lim})"
        r = f"{t['all_red']:g} s" if t.get("all_red") is not None else "the program's own"
        clear = f"yellow {y}, all-red {r}"
    who = ("SUMO's own programs run as written, 3 s yellow for the adaptive controllers (RESCO's protocol)"
           if t.get("protocol") == "resco" else "the same for every controller, SUMO's fixed and actuated included")
    return (f"{clear}; min green {t['min_green']:g} s, max green {t['max_green']:g} s; walk {t['walk']:g} s, "
            f"clearance at {t['ped_speed']:g} m/s; profile {t.get('profile', 'mutcd')}; {who}; decisions every "
            f"{t['step']:g} s (mpc: its own {MpcConfig().interval:g} s)")


def findings_by_rule(records: Sequence[dict]) -> dict[str, list[str]]:
    """Per scenario, the programs' own findings, one line per rule: as written (judged by the
    profile) and what SUMO's programs showed in the runs (``fixed``, ``actuated``, undriven signals)."""
    out: dict[str, list[str]] = {}
    by_scen: dict[str, list[dict]] = {}
    for r in records:
        by_scen.setdefault(r["scenario"], []).append(r)
    for scen, runs in by_scen.items():
        written: dict[str, set] = {}
        shown: dict[tuple[str, str], int] = {}
        for r in runs:
            for f in r.get("program_findings") or ():
                where = f"{f['tls']} {f['phases'][0]}->{f['phases'][1]}" if f.get("phases") else f["tls"]
                if f.get("source") == "program as written":
                    written.setdefault(f["rule"], set()).add(where)
                else:
                    shown[(f["rule"], r["controller"])] = shown.get((f["rule"], r["controller"]), 0) + f.get("count", 1)
        lines = []
        for rule, where in sorted(written.items()):
            w = sorted(where)
            lines.append(f"{rule} as written: {len(w)} signal/phase pair(s): {', '.join(w[:6])}"
                         + (" ..." if len(w) > 6 else ""))
        for (rule, ctrl), n in sorted(shown.items()):
            lines.append(f"{rule} shown by the programs under {ctrl}: {n:,} time(s) over its seeds")
        if lines:
            out[scen] = lines
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
        for w in r.get("warnings") or ():
            lines.append(f"|  | ↳ warning | {w} |" + " |" * 11)
        for run in r.get("runs", ()):
            if run.get("gridlocks"):
                where = "; ".join(f"{g['tls']} from {g['since_s']:,.0f} s" for g in run["gridlocks"])
                lines.append(f"|  | ↳ gridlock | seed {run['seed']}: {where} |" + " |" * 11)
        acts: dict[str, list[str]] = {}
        for run in r.get("runs", ()):
            if run.get("interventions"):
                kinds: dict[str, int] = {}
                for a in run["interventions"]:
                    kinds[a["kind"]] = kinds.get(a["kind"], 0) + 1
                acts[f"seed {run['seed']}"] = [f"{n} {k}" for k, n in sorted(kinds.items())]
        if acts:
            text = "; ".join(f"{s}: {', '.join(v)}" for s, v in acts.items())
            lines.append(f"|  | ↳ interventions | {text} |" + " |" * 11)
    return "\n".join(lines) + "\n"


def write_results(records: Sequence[dict], order: Sequence[tuple[str, str]], json_path: Path | None,
                  md_path: Path | None, title: str = "",
                  epilogue: Callable[[list[dict]], str] | None = None) -> list[dict]:
    """Aggregate, order as asked, and write JSON and Markdown (each rewritten whole); ``epilogue(rows)``
    adds a section to the Markdown after the table."""
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
        prov = provenance_lines(rows)
        if prov:
            text += "\nHow it was made:\n\n" + "\n".join(prov) + "\n"
        if epilogue is not None:
            text += epilogue(rows)
        found = findings_by_rule(records)
        if found:
            text += "\nThe scenarios' own programs (not a citybrain controller's doing; `violations` counts those):\n\n"
            for scen, lines in found.items():
                text += "".join(f"- `{scen}`: {ln}\n" for ln in lines)
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
