"""The verdict of ``vbench compare`` as Markdown: the changes, their marks, the tolerances, the refresh command.

The numbers are :mod:`bench.results.compare`'s (a :class:`bench.results.compare.Comparison`); this module only
formats them. The verdict also goes to ``$GITHUB_STEP_SUMMARY``, which GitHub renders with HTML, so every string
from the runs goes through :mod:`bench.report.escape`.
"""

from __future__ import annotations

from typing import Any

from bench.report.escape import markdown_table, md_code, md_escape, md_fence
from bench.results.columns import LABELS
from bench.results.compare import rounds_needed

__all__ = ["compare_markdown"]


_FORMATS = {"latency_ms": ".3f", "peak_mem_mib": ".1f"}
"""How the verdict writes a measured value (the format spec, by metric); any other float: ``.6g``."""


def _fmt_metric(metric: str, v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, (bool, str)):
        return str(v)
    if isinstance(v, int):
        return f"{v:,}"  # exact counts, whole
    return format(v, _FORMATS.get(metric, ".6g"))


_MARKS = {
    # asv-style marks of `vbench compare` (which of them fail is bench.results.compare.Change.fails)
    "x": "an exact count or the output shape changed (fails)",
    "!": "ok in the base, not ok in the head (fails)",
    "+": "worse beyond the tolerance, significantly (fails)",
    "-": "better beyond the tolerance, significantly (or fixed)",
    "~": "beyond the tolerance but not significant, a CPU row's peak RSS within its noise, or a failure that "
    "changed kind (shown, not failed)",
    "?": "inconclusive: timed while another workload shared the machine (`contended`); neither passed nor failed",
}


def _fmt_change(ch: Any) -> str:
    """Exact counts: the signed difference; latency and memory: the relative change."""
    if isinstance(ch.base, (int, float)) and isinstance(ch.head, (int, float)) and ch.mark == "x":
        diff = ch.head - ch.base
        return f"{diff:+,}" if isinstance(diff, int) else f"{diff:+.6g}"
    return "-" if ch.ratio is None else f"{ch.ratio - 1:+.1%}"


def _pct(fraction: float) -> str:
    """0.1 -> ``"10%"``, 0.155 -> ``"15.5%"``; above 100 % in bold with ``(!)``: a gate that hardly gates."""
    text = f"{round(100 * fraction, 4):g}%"
    return f"**{text} (!)**" if fraction > 1 else text


def _tolerance_lines(config: Any) -> list[str]:
    """The default tolerances, then every per-architecture value that differs from them (a config can loosen the
    gate for some architectures only; the verdict must say so, not only the defaults)."""
    tol = config.default
    lines = [
        f"Tolerances: latency {_pct(tol.latency)}, memory {_pct(tol.memory)}; latency is tested with a one-sided "
        f"Mann-Whitney U test, alpha {tol.alpha:g}, against the tolerance, on the quiet rounds' medians where both "
        f"sides have enough ({rounds_needed(tol.alpha)} a side), else on the raw samples. Params, MACs, FLOPs "
        "and output shapes must be equal."
    ]
    overrides = []
    for pattern, arch_tol in config.per_arch:
        parts = [f"latency {_pct(arch_tol.latency)}"] if arch_tol.latency != tol.latency else []
        parts += [f"memory {_pct(arch_tol.memory)}"] if arch_tol.memory != tol.memory else []
        parts += [f"alpha {arch_tol.alpha:g}"] if arch_tol.alpha != tol.alpha else []
        if parts:
            overrides.append(f"{md_code(pattern)} {', '.join(parts)}")
    if overrides:
        lines.append("Per-architecture tolerances (the last pattern that matches wins): " + "; ".join(overrides) + ".")
    if "(!)" in " ".join(lines):
        lines.append("(!) above 100 %: a change of more than twice the base passes the gate.")
    return lines


def compare_markdown(comparison: Any, base: str, head: str, refresh: str = "") -> str:
    """The verdict of ``vbench compare`` (a :class:`bench.results.compare.Comparison`) as Markdown.

    Every string from the runs (architecture names, configurations, values,
    error notes, warnings) and the paths are escaped: the verdict also goes to
    ``$GITHUB_STEP_SUMMARY``, which GitHub renders with HTML.
    """
    c = comparison
    n_fail = len(c.regressions)
    title = f"{n_fail} regression{'s' if n_fail != 1 else ''}" if n_fail else "no regression"
    n_open = len(c.inconclusive)
    if n_open:
        title += f", {n_open} inconclusive"
    lines = [
        f"## vbench compare: {title}",
        "",
        f"Base {md_code(base)}, head {md_code(head)}: {c.matched} configurations matched, {c.unchanged} unchanged; "
        f"{len(c.new)} new, {len(c.removed)} removed.",
        *_tolerance_lines(c.tolerances),
        "",
    ]
    lines += [f"> warning: {md_escape(w)}" for w in c.warnings]
    if c.warnings:
        lines.append("")
    if c.changes:
        header = ["", "arch", "configuration", "metric", "base", "head", "change", "p", "verdict"]
        body = [
            [
                ch.mark,
                ch.arch,
                ch.config,
                LABELS.get(ch.metric, ch.metric),
                _fmt_metric(ch.metric, ch.base),
                _fmt_metric(ch.metric, ch.head),
                _fmt_change(ch),
                "-" if ch.p is None else f"{ch.p:.2g}",
                ch.verdict + (f" ({ch.note})" if ch.note else ""),
            ]
            for ch in sorted(c.changes, key=lambda ch: (not ch.fails, ch.arch, ch.config, ch.metric))
        ]
        lines += markdown_table(header, body, left=("", "arch", "configuration", "metric", "verdict"))
        used = dict.fromkeys(ch.mark for ch in c.changes)
        lines += ["", "Marks: " + "; ".join(f"`{m}` {_MARKS[m]}" for m in _MARKS if m in used) + "."]
    if n_open:
        lines += [
            "",
            f"{n_open} latenc{'ies' if n_open != 1 else 'y'} could not be judged: the row was timed while another "
            "workload took a material part of the machine (`contended`), so its latency can hide a regression as "
            "well as fake one. Measure again on a quiet machine; until then the verdict is inconclusive "
            "(exit 4 when nothing regressed).",
        ]
    for what, items in (("New rows (not in the base)", c.new), ("Removed rows (not in the head)", c.removed)):
        if items:
            lines += ["", f"{what}:", *[f"- {md_escape(item)}" for item in items]]
    if c.counts_changed:
        lines += [
            "",
            "Exact counts changed. If the change is intended, refresh the baseline and commit it:",
            "",
            *md_fence(refresh),
        ]
    return "\n".join(lines) + "\n"
