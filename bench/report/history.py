"""``vbench history``: each configuration's costs across runs, oldest commit first, judged as ``vbench compare``
judges two runs (:func:`bench.results.compare.compare_rows`: the same marks, tolerances and tests).

Numbers only; :func:`history_summary` is the text the command prints and :func:`bench.report.html_history.history_html`
the page.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

__all__ = ["HISTORY_METRICS", "OTHER_MARKS", "History", "history_frame", "history_summary"]

HISTORY_METRICS: tuple[tuple[str, str], ...] = (
    ("params", "params (M)"),
    ("gmacs", "GMACs/clip"),
    ("latency_ms", "latency (ms)"),
    ("peak_mem_mib", "peak memory (MiB)"),
)
"""What the history shows, in order: the metric (a results column) and its label."""

_SCALE = {"params": 1e-6}

_TIMED = ("latency_ms", "peak_mem_mib")

OTHER_MARKS = ("status", "other")
"""Besides the metrics: a status that changed, and any other judged column (output shape, FLOPs...) that changed."""


@dataclass(frozen=True)
class History:
    """Runs in commit order and, per configuration, each metric across them with ``compare``'s verdicts.

    Attributes:
        runs: One dict per run, oldest first: ``path``, ``git_sha``, ``timestamp``, ``device_name``, ``rows``.
        frame: One row per (configuration, run) present: ``arch``, ``config``, ``run`` (index), each metric, and
            ``<metric>_mark`` / ``<metric>_verdict`` / ``<metric>_fails``: the change from the last earlier run
            that held the configuration (for latency and memory: that measured them), as
            :func:`bench.results.compare.compare_rows` judges it (empty: no change).
        notes: What the page should say besides.
    """

    runs: list[dict[str, Any]]
    frame: pd.DataFrame
    notes: list[str]


def _run_order(rows: Sequence[Mapping[str, Any]]) -> tuple[str, str]:
    stamps = sorted(str(r.get("timestamp") or "") for r in rows)
    shas = sorted({str(r.get("git_sha") or "") for r in rows})
    return (stamps[0] if stamps else "", shas[0] if shas else "")


def history_frame(runs: Sequence[tuple[str, Sequence[dict[str, Any]], Mapping[str, Any]]], config: Any) -> History:
    """Order the runs by commit time and judge each configuration's every step with ``vbench compare``'s rules.

    The commit's own time is not recorded: a run's earliest row ``timestamp`` stands for it (runs are made from a
    checkout, after its commit), and the ``git_sha`` is shown beside it.

    Args:
        runs: (path, rows, environment) of each run, in any order.
        config: The tolerances (:class:`bench.results.compare.CompareConfig`).
    """
    from bench.results.compare import compare_rows, row_label
    from bench.results.schema import is_missing

    ordered = sorted(runs, key=lambda r: _run_order(r[1]))
    infos = []
    for path, rows, env in ordered:
        stamp, _ = _run_order(rows)
        shas = sorted({str(r.get("git_sha") or "") for r in rows})
        infos.append({"path": str(path), "git_sha": ", ".join(s for s in shas if s) or "-", "timestamp": stamp,
                      "device_name": str(env.get("cpu_name") or env.get("device") or ""), "rows": len(rows)})  # fmt: skip
    last: dict[tuple[str, str], tuple[int, dict[str, Any], Mapping[str, Any]]] = {}
    last_timed: dict[tuple[str, str], tuple[int, dict[str, Any], Mapping[str, Any]]] = {}
    records = []
    for i, (_, rows, env) in enumerate(ordered):
        for row in rows:
            key = (str(row["arch"]), row_label(row))
            rec: dict[str, Any] = {"arch": key[0], "config": key[1], "family": row.get("family"), "run": i,
                                   "status": row.get("status")}  # fmt: skip
            for metric, _ in HISTORY_METRICS:
                v = row.get(metric) if row.get("status") == "ok" or metric in ("params", "gmacs") else None
                rec[metric] = v * _SCALE[metric] if isinstance(v, (int, float)) and metric in _SCALE else v
                rec[f"{metric}_mark"], rec[f"{metric}_verdict"], rec[f"{metric}_fails"] = "", "", False
            for other in OTHER_MARKS:
                rec[f"{other}_mark"], rec[f"{other}_verdict"], rec[f"{other}_fails"] = "", "", False
            # Counts and status against the last earlier run that holds the configuration; latency and memory
            # against the last earlier run that measured them (a count-only run in between hides nothing).
            judged = []
            if key in last:
                judged += [ch for ch in compare_rows([last[key][1]], [row], config, last[key][2], env).changes
                           if ch.metric not in _TIMED]  # fmt: skip
            if key in last_timed:
                before, before_env = last_timed[key][1], last_timed[key][2]
                judged += [ch for ch in compare_rows([before], [row], config, before_env, env).changes
                           if ch.metric in _TIMED]  # fmt: skip
            for ch in judged:
                shown = ch.metric in dict(HISTORY_METRICS) or ch.metric == "status"
                metric = ch.metric if shown else "other"
                verdict = ch.verdict + (f" ({ch.note})" if ch.note else "")
                if not shown:  # e.g. the output shape or the FLOPs: named, and kept in one column
                    verdict = f"{ch.metric} {verdict}"
                    if rec["other_verdict"]:
                        verdict = f"{rec['other_verdict']}; {verdict}"
                rec[f"{metric}_mark"] = ch.mark if not rec[f"{metric}_fails"] else rec[f"{metric}_mark"]
                rec[f"{metric}_verdict"] = verdict
                rec[f"{metric}_fails"] = rec[f"{metric}_fails"] or ch.fails
            if row.get("status") == "ok" and any(not is_missing(row.get(m)) for m in _TIMED):
                last_timed[key] = (i, row, env)
            last[key] = (i, row, env)
            records.append(rec)
    return History(infos, pd.DataFrame.from_records(records), [])


def history_summary(history: History) -> str:
    """The runs in order and, per step, how many changes ``compare`` would call regressions (plain text)."""
    frame = history.frame
    lines = []
    for i, run in enumerate(history.runs):
        here = frame[frame["run"] == i] if len(frame) else frame
        fails = [
            f"{r['arch']} {r['config']}: {metric} {r[f'{metric}_verdict']}"
            for _, r in here.iterrows()
            for metric in (*(m for m, _ in HISTORY_METRICS), *OTHER_MARKS)
            if r[f"{metric}_fails"]
        ]
        lines.append(f"#{i + 1} {run['git_sha']} {run['timestamp']} {run['path']}: {run['rows']} rows, "
                     f"{len(fails)} regression{'s' if len(fails) != 1 else ''}")  # fmt: skip
        lines += [f"    {f}" for f in fails[:20]]
        if len(fails) > 20:
            lines.append(f"    ... and {len(fails) - 20} more")
    return "\n".join(lines) + "\n"
