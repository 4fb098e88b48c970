"""Benchmark suites: a named file of scenarios, seeds and window, split into a tuning and a checking half.

A suite file is TOML::

    name = "generalisation"
    root = "../.."                 # scenario paths are relative to this folder (itself relative to the file)
    controllers = ["fixed", "actuated", "max-pressure", "greedy", "webster", "mpc"]
    tuning_seeds = [1, 2, 3]       # the only seeds settings may be tuned on, on the tuning half only
    checking_seeds = [4, 5, 6]     # what the suite is judged on, over both halves
    # end = 3600.0                 # optional: one end for every scenario (default: each one's own)

    [[scenario]]
    path = "scenarios/single"
    half = "tuning"                # or "checking"

``citybrain bench --suite FILE [--half tuning|checking|all]`` runs it: the tuning half with the
tuning seeds, the checking half or the whole suite with the checking seeds (``--seed`` overrides).
:func:`judgement` states, from the table, how the optimiser stands against the others.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from wire.errors import InputError

__all__ = ["HALVES", "Suite", "SuiteEntry", "SuiteError", "read_suite", "judgement"]

HALVES = ("tuning", "checking")


class SuiteError(InputError):
    """A suite file that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class SuiteEntry:
    path: Path
    half: str


@dataclass(frozen=True)
class Suite:
    name: str
    file: Path
    controllers: tuple[str, ...]
    tuning_seeds: tuple[int, ...]
    checking_seeds: tuple[int, ...]
    entries: tuple[SuiteEntry, ...]
    end: float | None = None

    def select(self, half: str = "all") -> list[SuiteEntry]:
        """The entries of one half (``all``: both)."""
        if half not in (*HALVES, "all"):
            raise SuiteError(f"--half {half!r}: expected tuning, checking or all")
        return [e for e in self.entries if half == "all" or e.half == half]

    def seeds(self, half: str = "all") -> list[int]:
        """The seeds a half runs with: tuning seeds for the tuning half, checking seeds otherwise."""
        return list(self.tuning_seeds if half == "tuning" else self.checking_seeds)


def _ints(data: dict, key: str, file: Path) -> tuple[int, ...]:
    v = data.get(key)
    if not isinstance(v, list) or not v or not all(isinstance(x, int) and not isinstance(x, bool) for x in v):
        raise SuiteError(f"{file}: {key} must be a non-empty list of integers")
    return tuple(v)


def read_suite(file: str | Path) -> Suite:
    """Read and check a suite file; every scenario path must exist. Raises :class:`SuiteError`."""
    file = Path(file)
    try:
        data = tomllib.loads(file.read_text())
    except FileNotFoundError:
        raise SuiteError(f"{file}: no such suite file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise SuiteError(f"{file}: cannot be read ({e})") from None
    except tomllib.TOMLDecodeError as e:
        raise SuiteError(f"{file}: not valid TOML ({e})") from None
    known = {"name", "root", "controllers", "tuning_seeds", "checking_seeds", "end", "scenario"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise SuiteError(f"{file}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    root = (file.parent / str(data.get("root", "."))).resolve()
    ctrls = data.get("controllers")
    if not isinstance(ctrls, list) or not ctrls or not all(isinstance(c, str) for c in ctrls):
        raise SuiteError(f"{file}: controllers must be a non-empty list of controller names")
    tuning, checking = _ints(data, "tuning_seeds", file), _ints(data, "checking_seeds", file)
    if set(tuning) & set(checking):
        raise SuiteError(f"{file}: tuning_seeds and checking_seeds share {sorted(set(tuning) & set(checking))}")
    end = data.get("end")
    if end is not None and (not isinstance(end, (int, float)) or end <= 0):
        raise SuiteError(f"{file}: end must be a positive number of seconds")
    raw = data.get("scenario")
    if not isinstance(raw, list) or not raw:
        raise SuiteError(f"{file}: no [[scenario]] entries")
    entries = []
    for k, item in enumerate(raw, 1):
        if not isinstance(item, dict) or set(item) - {"path", "half"} or "path" not in item:
            raise SuiteError(f"{file}: scenario {k} needs path (and half), nothing else")
        half = item.get("half")
        if half not in HALVES:
            raise SuiteError(f"{file}: scenario {k} ({item['path']}): half must be tuning or checking, got {half!r}")
        path = root / str(item["path"])
        if not path.exists():
            raise SuiteError(f"{file}: scenario {k}: {path} does not exist")
        entries.append(SuiteEntry(path, half))
    if len({e.path for e in entries}) < len(entries):
        raise SuiteError(f"{file}: a scenario is listed twice")
    return Suite(str(data.get("name", file.stem)), file, tuple(ctrls), tuning, checking, tuple(entries),
                 float(end) if end is not None else None)


def judgement(rows: Sequence[dict], candidate: str = "mpc", program: str = "fixed", margin: float = 0.05) -> str:
    """How ``candidate`` stands on every scenario of a table, in Markdown.

    Per scenario: its mean delay, the best other controller's, the ratio, and gridlocked runs;
    then the counts the suite is judged by (lowest of all, within ``margin`` of the best other,
    not worse than the scenario's own program, gridlocks where the program has none).
    """
    by: dict[str, dict[str, dict]] = {}
    for r in rows:
        by.setdefault(r["scenario"], {})[r["controller"]] = r
    lines = [f"| scenario | {candidate} (s) | best other | its delay (s) | {candidate} / best | "
             f"{candidate} / {program} | {candidate} gridlocked runs | {program} gridlocked runs |", "|---" * 8 + "|"]
    n = lowest = within = not_worse = clean = judged = 0
    for scen, ctrls in by.items():
        me = ctrls.get(candidate)
        others = [r for c, r in ctrls.items() if c != candidate and r.get("avg_delay_s") is not None
                  and c != "plain-sumo"]
        if me is None or me.get("avg_delay_s") is None or not others:
            continue
        n += 1
        best = min(others, key=lambda r: r["avg_delay_s"])
        ratio = me["avg_delay_s"] / best["avg_delay_s"] if best["avg_delay_s"] > 0 else float("inf")
        own = ctrls.get(program)
        own_ratio = me["avg_delay_s"] / own["avg_delay_s"] if own and own.get("avg_delay_s") else None
        jam = sum(1 for run in me.get("runs", ()) if run.get("gridlocks"))
        own_jam = sum(1 for run in (own or {}).get("runs", ()) if run.get("gridlocks"))
        lowest += ratio <= 1.0
        within += ratio <= 1.0 + margin
        not_worse += own_ratio is None or own_ratio <= 1.0
        if own_jam == 0:
            judged += 1
            clean += jam == 0
        lines.append(f"| {scen} | {me['avg_delay_s']:.2f} | {best['controller']} | {best['avg_delay_s']:.2f} | "
                     f"{ratio:.3f} | {'-' if own_ratio is None else f'{own_ratio:.3f}'} | {jam} | {own_jam} |")
    if not n:
        return ""
    pct = 100.0 * lowest / n
    lines += ["", f"- {candidate} lowest of all on {lowest} of {n} scenarios ({pct:.0f}%); within "
                  f"{100 * margin:.0f}% of the best other on {within} of {n}",
              f"- {candidate} not worse than the scenario's own program (`{program}`) on {not_worse} of {n}",
              f"- {candidate} without a gridlocked run on {clean} of the {judged} scenarios whose own program has none"]
    return "\n".join(lines) + "\n"
