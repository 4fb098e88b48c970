"""The engineer's report: an HTML page with HCM tables and plots, and CSV, from recorded runs.

Input: a folder of runs recorded by :class:`sim.record.Recorder` (``<scenario>_<controller>_<seed>/
report-data.json``, as ``citybrain bench --report DIR`` leaves them). Output in the same folder:
``report.html`` (self-contained: the plots are embedded PNGs, also written as files),
``intervals.csv`` (per run, approach and interval: volume, mean queue, control delay),
``hcm.csv`` (the HCM table) and ``entries.csv`` (demand that could not enter, per entry edge).

HCM per approach (the incoming edge of a signal), averaged over seeds: control delay = SUMO's
time loss on the approach edge per vehicle that left it; volume = stop-line crossings per hour
(SUMO's own loops at the end of every lane of the approach: a lane change is no crossing; the
counts the controllers get); capacity = 1,800 veh/h per lane x the share of time one of the
lane's movements showed green (1,800 for a lane the signal does not stop); v/c counts as demand
also the vehicles still waiting at the end to enter on the approach itself (``held_back_veh``:
the most waiting at once), so a queue that reaches back to where vehicles enter does not hide
demand at v/c = 1; level of service from the signalised thresholds (10/20/35/55/80 s, F whenever v/c > 1); the 95th-percentile
queue (halted vehicles in the 200 m zone, sampled every 5 s) and its ratio to the storage (the
approach lanes' length at 7.5 m per vehicle). Per intersection: volume-weighted delay.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import statistics
from collections import defaultdict
from pathlib import Path

import numpy as np

from brain.hcm import los, percentile_queue

__all__ = ["build_report", "hcm_rows", "load_runs"]

SAT_PER_LANE = 1800.0
VEHICLE_SPACE_M = 7.5
WINDOW_S = 900.0
"""The phase timelines and time-space diagrams show this much of each run from its start (s)."""


def load_runs(folder: Path) -> list[dict]:
    runs = []
    for p in sorted(Path(folder).glob("*/report-data.json")):
        d = json.loads(p.read_text())
        rec = d.get("record", {})
        scen, ctrl, seed = p.parent.name.rsplit("_", 2)
        d["scenario"], d["controller"], d["seed"] = rec.get("scenario", scen), rec.get("controller", ctrl), int(seed)
        runs.append(d)
    return runs


def _approach_metrics(run: dict) -> list[dict]:
    sim_s = run.get("record", {}).get("sim_s") or run["steps"]
    hours = max(sim_s, 1.0) / 3600.0
    q = np.array(run["queue"]) if run["queue"] else np.zeros((0, len(run["approaches"])))
    out = []
    for k, a in enumerate(run["approaches"]):
        loss = left = 0.0
        for iv in run["edgedata"]:
            e = iv["edges"].get(a["edge"])
            if e:
                loss += e.get("timeLoss", 0.0)
                left += e.get("left", 0.0)
        q95 = percentile_queue(q[:, k]) if len(q) else 0.0
        # nobody left: an empty approach has no delay, a blocked one (vehicles waiting) is LOS F
        delay = loss / left if left > 0 else (float("inf") if q95 > 0 or loss > 0 else 0.0)
        volume = a["crossed"] / hours
        # each signalised lane for the share of time one of its movements showed green (its lane
        # group), a lane the signal does not stop all the time
        shares = a.get("lane_green_share")
        green = sum(shares) if shares else max(a["n_lanes"], 1) * a["green_share"]
        cap = SAT_PER_LANE * (green + a.get("free_lanes", 0))
        # vehicles due to enter on this very approach that SUMO could not insert are demand too
        entry = ((run.get("record") or {}).get("insertion") or {}).get("by_entry", {}).get(a["edge"], {})
        held = float(entry.get("waiting_at_end", 0))
        vc = (a["crossed"] + held) / hours / cap if cap > 0 else float("inf")
        storage = max(a["storage_m"], 1.0)
        out.append({"tls": a["tls"], "approach": a["edge"], "lanes": a["n_lanes"], "volume_vph": volume,
                    "green_share": a["green_share"], "capacity_vph": cap, "v_c": vc, "delay_s": delay,
                    "q95_veh": q95, "queue_storage": q95 * VEHICLE_SPACE_M / storage,
                    "held_back_veh": float(entry.get("waiting_max", 0))})
    return out


def hcm_rows(runs: list[dict]) -> list[dict]:
    """The HCM table: per scenario, controller, intersection and approach, means over seeds."""
    acc: dict[tuple, list[dict]] = defaultdict(list)
    for r in runs:
        for m in _approach_metrics(r):
            acc[(r["scenario"], r["controller"], m["tls"], m["approach"])].append(m)
    rows = []
    keys = ("volume_vph", "green_share", "capacity_vph", "v_c", "delay_s", "q95_veh", "queue_storage", "held_back_veh")
    by_tls: dict[tuple, list[dict]] = defaultdict(list)
    for (s, c, t, a), ms in sorted(acc.items()):
        row = {"scenario": s, "controller": c, "tls": t, "approach": a, "lanes": ms[0]["lanes"], "seeds": len(ms)}
        row.update({k: float(np.mean([m[k] for m in ms])) for k in keys})
        row["los"] = los(row["delay_s"], row["v_c"])
        rows.append(row)
        by_tls[(s, c, t)].append(row)
    for (s, c, t), rs in sorted(by_tls.items()):
        vol = sum(r["volume_vph"] for r in rs)
        d = sum(r["delay_s"] * r["volume_vph"] for r in rs if np.isfinite(r["delay_s"])) / vol if vol > 0 else 0.0
        if any(not np.isfinite(r["delay_s"]) for r in rs):  # an approach that let nobody across
            d = float("inf")
        vc = max(r["v_c"] for r in rs)
        rows.append({"scenario": s, "controller": c, "tls": t, "approach": "(intersection)", "lanes": sum(r["lanes"] for r in rs),
                     "seeds": rs[0]["seeds"], "volume_vph": vol, "green_share": float("nan"), "capacity_vph": float("nan"),
                     "v_c": vc, "delay_s": d, "q95_veh": max(r["q95_veh"] for r in rs),
                     "queue_storage": max(r["queue_storage"] for r in rs),
                     "held_back_veh": sum(r["held_back_veh"] for r in rs), "los": los(d, vc)})
    return rows


def entry_rows(runs: list[dict]) -> list[dict]:
    """Demand that could not enter, per scenario, controller and entry edge (means over seeds):
    vehicles still waiting to be inserted at the end, the most waiting at once, and the mean
    seconds inserted vehicles waited. A queue reaching back to where vehicles enter hides this
    demand from every count on the road (v/c stops at 1)."""
    acc: dict[tuple, list[dict]] = defaultdict(list)
    seeds: dict[tuple, int] = defaultdict(int)
    for r in runs:
        ins = r.get("record", {}).get("insertion") or {}
        seeds[(r["scenario"], r["controller"])] += 1
        for edge, e in (ins.get("by_entry") or {}).items():
            acc[(r["scenario"], r["controller"], edge)].append(e)
    out = []
    for (s, c, edge), es in sorted(acc.items()):
        n = seeds[(s, c)]
        row = {"scenario": s, "controller": c, "entry": edge, "seeds": n,
               "waiting_at_end": sum(e["waiting_at_end"] for e in es) / n,
               "waiting_max": sum(e["waiting_max"] for e in es) / n,
               "mean_insert_delay_s": float(np.mean([e["mean_insert_delay_s"] for e in es]))}
        if row["waiting_max"] > 0 or row["mean_insert_delay_s"] >= 1.0:
            out.append(row)
    return out


def _provenance_html(runs: list[dict], scenario: str) -> str:
    from benchmarks.quality import provenance_lines

    rows = {}
    for r in runs:
        rec = r.get("record", {})
        if r["scenario"] != scenario or not rec.get("provenance"):
            continue
        p = rec["provenance"]
        row = rows.setdefault(r["controller"], {"scenario": scenario, "controller": r["controller"], "seeds": [],
                                                "provenance": dict(p, dates=[p.get("date", "")[:10]])})
        row["seeds"].append(r["seed"])
    lines = provenance_lines(list(rows.values()))
    return ("<p>How it was made:</p><ul>" + "".join(f"<li>{html.escape(ln[2:]).replace('`', '')}</li>"
                                                     for ln in lines) + "</ul>") if lines else ""


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return buf.getvalue()


def _run_start(run: dict) -> float:
    """When the run began: its first signal state or, without signals, its first sample."""
    firsts = [tl[0][0] for tl in run.get("timeline", {}).values() if tl]
    if firsts:
        return min(firsts)
    return min((t for t, _, _ in run.get("trajectories", ())), default=0.0)


def timeline_bars(timeline: dict[str, list], sigs: list[str]) -> list[tuple[int, float, float, str]]:
    """(row, start, width, kind) of what ``sigs`` showed in the run's first :data:`WINDOW_S` seconds,
    counted from the run's own start (RESCO's scenarios begin hours into the day, not at 0)."""
    until = _run_start({"timeline": timeline}) + WINDOW_S
    bars = []
    for y, t in enumerate(sigs):
        for t0, t1, kind in timeline[t]:
            if t0 > until:
                break
            bars.append((y, t0, min(t1, until) - t0 + 1, kind))
    return bars


def _plots(runs: list[dict], scenario: str, out: Path) -> list[tuple[str, str, bytes]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mine = [r for r in runs if r["scenario"] == scenario]
    ctrls = sorted({r["controller"] for r in mine}, key=lambda c: (c != "fixed", c))
    plots = []
    # 1. controller comparison with the spread over seeds
    fig, ax = plt.subplots(figsize=(7, 3.2))
    means, sds = [], []
    for c in ctrls:
        v = [r["record"].get("avg_delay_s") for r in mine if r["controller"] == c and r["record"].get("avg_delay_s") is not None]
        means.append(np.mean(v) if v else np.nan)
        sds.append(statistics.stdev(v) if len(v) > 1 else 0.0)
    ax.bar(ctrls, means, yerr=sds, capsize=4, color="#4c78a8")
    ax.set_ylabel("average delay (s/veh)")
    ax.set_title(f"{scenario}: controllers (mean ± sd over seeds)")
    plots.append(("bars", "Average delay by controller", _png(fig)))
    plt.close(fig)
    # 2. queue over time, 3. delay over time
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 3.2))
    for c in ctrls:
        rs = [r for r in mine if r["controller"] == c]
        n = min(len(r["queue"]) for r in rs)
        if n:
            q = np.mean([np.array(r["queue"][:n]).sum(axis=1) for r in rs], axis=0)
            a1.plot(np.array(rs[0]["samples_t"][:n]) / 60.0, q, label=c, lw=1)
        ivs = rs[0]["edgedata"]
        if ivs:
            t = [iv["end"] / 60.0 for iv in ivs]
            d = []
            for j in range(len(ivs)):
                loss = sum(e.get("timeLoss", 0.0) for r in rs if j < len(r["edgedata"]) for e in r["edgedata"][j]["edges"].values())
                left = sum(e.get("left", 0.0) for r in rs if j < len(r["edgedata"]) for e in r["edgedata"][j]["edges"].values())
                d.append(loss / left if left else np.nan)
            a2.plot(t, d, marker="o", ms=3, label=c, lw=1)
    a1.set_xlabel("time (min)")
    a1.set_ylabel("halted vehicles, all approaches")
    a2.set_xlabel("time (min)")
    a2.set_ylabel("time loss per vehicle and edge (s)")
    a1.legend(fontsize=7)
    a2.legend(fontsize=7)
    plots.append(("time", "Queue and delay over time (mean over seeds)", _png(fig)))
    plt.close(fig)
    # 4. phase timeline per signal (first seed, first 15 minutes)
    colours = plt.get_cmap("tab10")
    for c in ctrls:
        r = min((x for x in mine if x["controller"] == c), key=lambda x: x["seed"])
        sigs = sorted(r["timeline"])[:16]
        if not sigs:
            continue
        fig, ax = plt.subplots(figsize=(11, 0.3 * len(sigs) + 1.0))
        for y, t0, width, kind in timeline_bars(r["timeline"], sigs):
            col = "#f2c744" if kind == "yellow" else "#333333" if kind == "red" else colours(
                int(kind.split()[-1]) % 10 if kind.startswith("phase") else 9)
            ax.broken_barh([(t0, width)], (y - 0.4, 0.8), color=col)
        ax.set_yticks(range(len(sigs)), sigs, fontsize=7)
        ax.set_xlabel("time (s)")
        ax.set_title(f"{scenario} / {c}: phases shown (colour = green phase, yellow, red), first 15 min")
        plots.append((f"timeline-{c}", f"Phase timeline, {c}", _png(fig)))
        plt.close(fig)
    # 5. time-space diagram along the corridor
    for c in ctrls:
        r = min((x for x in mine if x["controller"] == c), key=lambda x: x["seed"])
        if not r.get("corridor") or not r.get("trajectories"):
            continue
        until = _run_start(r) + WINDOW_S
        tr = np.array([(t, p) for t, _, p in r["trajectories"] if t <= until])
        ids = [v for t, v, _ in r["trajectories"] if t <= until]
        fig, ax = plt.subplots(figsize=(11, 3.6))
        sample_s = float(r.get("sample_s") or 5.0)
        if len(tr):
            order = np.argsort(ids, kind="stable")
            ids_s = np.array(ids)[order]
            pts = tr[order]
            starts = np.flatnonzero(np.r_[True, ids_s[1:] != ids_s[:-1]])
            ends = np.r_[starts[1:], len(ids_s)]
            for a, b in zip(starts, ends):
                seg = pts[a:b]
                gaps = np.flatnonzero(np.diff(seg[:, 0]) > 1.5 * sample_s) + 1  # left the corridor and came back
                for piece in np.split(seg, gaps):
                    ax.plot(piece[:, 0], piece[:, 1], lw=0.5, color="#4c78a8")
        ax.set_xlabel("time (s)")
        ax.set_ylabel("distance along the corridor (m)")
        ax.set_title(f"{scenario} / {c}: time-space diagram, {len(r['corridor'])} edges, first 15 min")
        plots.append((f"timespace-{c}", f"Time-space diagram, {c}", _png(fig)))
        plt.close(fig)
    for key, _, data in plots:
        (out / f"{scenario}-{key}.png").write_bytes(data)
    return plots


def build_report(folder: Path, title: str = "citybrain report") -> Path:
    """Write ``report.html``, ``hcm.csv`` and ``intervals.csv`` for the runs in ``folder``."""
    folder = Path(folder)
    runs = load_runs(folder)
    if not runs:
        raise ValueError(f"no recorded runs in {folder} (record them with `citybrain bench --report {folder}`)")
    rows = hcm_rows(runs)
    cols = ["scenario", "controller", "tls", "approach", "lanes", "seeds", "volume_vph", "green_share",
            "capacity_vph", "v_c", "delay_s", "los", "q95_veh", "queue_storage", "held_back_veh"]
    with open(folder / "hcm.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        for r in rows:
            w.writerow({k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items() if k in cols})
    with open(folder / "intervals.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["scenario", "controller", "seed", "approach", "interval_begin", "interval_end", "left",
                    "time_loss_s", "delay_s_per_veh", "mean_queue_veh"])
        for r in runs:
            t = np.array(r["samples_t"])
            q = np.array(r["queue"]) if r["queue"] else np.zeros((0, len(r["approaches"])))
            for k, a in enumerate(r["approaches"]):
                for iv in r["edgedata"]:
                    e = iv["edges"].get(a["edge"], {})
                    sel = (t >= iv["begin"]) & (t < iv["end"])
                    mq = float(q[sel, k].mean()) if len(q) and sel.any() else 0.0
                    left = e.get("left", 0.0)
                    w.writerow([r["scenario"], r["controller"], r["seed"], a["edge"], iv["begin"], iv["end"], left,
                                round(e.get("timeLoss", 0.0), 1), round(e.get("timeLoss", 0.0) / left, 2) if left else "",
                                round(mq, 2)])
    entries = entry_rows(runs)
    ecols = ["scenario", "controller", "entry", "seeds", "waiting_at_end", "waiting_max", "mean_insert_delay_s"]
    with open(folder / "entries.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=ecols)
        w.writeheader()
        for r in entries:
            w.writerow({k: (round(v, 2) if isinstance(v, float) else v) for k, v in r.items()})
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>"
             "body{font-family:sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;font-size:12px}"
             "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}th{background:#eee}"
             ".los-A,.los-B{background:#cfc}.los-C,.los-D{background:#ffc}.los-E,.los-F{background:#fcc}"
             "</style></head><body>", f"<h1>{html.escape(title)}</h1>",
             "<p>HCM signalised-intersection measures per approach (means over seeds): control delay is SUMO's "
             "time loss on the approach edge per vehicle; capacity = 1,800 veh/h per lane x the share of time one of "
             "its movements showed green; LOS by "
             "10/20/35/55/80 s, F when v/c &gt; 1 (v/c counts the vehicles still waiting to enter on the approach "
             "itself: held_back_veh, the most at once); 95th-percentile queue of halted vehicles in the 200 m zone "
             "and its ratio to storage (7.5 m per vehicle). CSV: <code>hcm.csv</code>, <code>intervals.csv</code>, "
             "<code>entries.csv</code>.</p>"]
    for scenario in sorted({r["scenario"] for r in runs}):
        parts.append(f"<h2>{html.escape(scenario)}</h2>")
        parts.append(_provenance_html(runs, scenario))
        for key, caption, data in _plots(runs, scenario, folder):
            b64 = base64.b64encode(data).decode()
            parts.append(f"<figure><img alt='{html.escape(caption)}' src='data:image/png;base64,{b64}'>"
                         f"<figcaption>{html.escape(caption)}</figcaption></figure>")
        parts.append("<table><tr>" + "".join(f"<th>{c}</th>" for c in cols[1:]) + "</tr>")
        for r in rows:
            if r["scenario"] != scenario:
                continue
            cells = []
            for c in cols[1:]:
                v = r[c]
                cells.append(f"<td>{'' if isinstance(v, float) and np.isnan(v) else (f'{v:.2f}' if isinstance(v, float) else html.escape(str(v)))}</td>")
            parts.append(f"<tr class='los-{r['los']}'>" + "".join(cells) + "</tr>")
        parts.append("</table>")
        mine = [e for e in entries if e["scenario"] == scenario]
        parts.append("<h3>Demand that could not enter</h3>")
        if not mine:
            parts.append("<p>Every vehicle entered the network when it was due (no entry held one back for a "
                         "second or more on average).</p>")
        else:
            parts.append("<p>Vehicles SUMO could not insert yet, per entry edge (means over seeds): no count on "
                         "the road sees them, so an approach fed by such an entry shows v/c near 1 while demand "
                         "exceeds it.</p><table><tr>" + "".join(f"<th>{c}</th>" for c in ecols[1:]) + "</tr>")
            for e in mine:
                parts.append("<tr>" + "".join(f"<td>{e[c]:.1f}</td>" if isinstance(e[c], float) else
                                              f"<td>{html.escape(str(e[c]))}</td>" for c in ecols[1:]) + "</tr>")
            parts.append("</table>")
    parts.append("<script>window.addEventListener('load',function(){var im=document.images,ok=0;"
                 "for(var i=0;i<im.length;i++){if(im[i].complete&&im[i].naturalWidth>0)ok++;}"
                 "document.body.setAttribute('data-images',im.length);document.body.setAttribute('data-loaded',ok);});"
                 "</script></body></html>")
    path = folder / "report.html"
    path.write_text("\n".join(parts))
    return path
