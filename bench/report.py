"""Presentation: rich tables for the terminal and Markdown tables for files.

Numbers arrive here already computed (by :mod:`bench.counting`,
:mod:`bench.timing`, ...); this module only scales and formats them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.table import Table

from bench.schema import clip_of

__all__ = [
    "arch_table",
    "compare_markdown",
    "fmt_input",
    "inspect_table",
    "markdown_table",
    "row_line",
    "summary_markdown",
    "summary_table",
]


def fmt_input(shape: Sequence[int]) -> str:
    """(C, T, H, W) -> ``"3x16x112x112"``."""
    return "x".join(str(v) for v in shape)


def arch_table(rows: Sequence[dict[str, Any]]) -> Table:
    """The ``vbench list`` table: one row per architecture spec (with ``params``)."""
    table = Table(title="vbench architectures", title_justify="left")
    for col, justify in [("name", "left"), ("family", "left"), ("default input (CxTxHxW)", "left"),
                         ("min input", "left"), ("params (M)", "right")]:  # fmt: skip
        table.add_column(col, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    table.add_column("paper", overflow="ellipsis", no_wrap=True)
    for r in rows:
        table.add_row(
            r["name"],
            r["family"],
            fmt_input(r["default_input"]),
            fmt_input(r["min_input"]),
            f"{r['params'] / 1e6:.2f}",
            _short_paper(r["paper"]),
        )
    return table


def _short_paper(paper: str) -> str:
    """``"Tran et al., A Closer Look ..., CVPR 2018"`` -> ``"Tran et al., CVPR 2018"``."""
    parts = [p.strip() for p in paper.split(",")]
    return f"{parts[0]}, {parts[-1]}" if len(parts) > 2 else paper


# Columns of the run summary: (header with unit, row key, format).
_SUMMARY: tuple[tuple[str, str, str], ...] = (
    ("arch", "arch", "{}"),
    ("mode", "mode", "{}"),
    ("batch", "batch", "{}"),
    ("input (TxHxW)", "_input", "{}"),
    ("dtype", "dtype", "{}"),
    ("params (M)", "params", "{:.2f}"),
    ("GMACs/clip", "gmacs", "{:.2f}"),
    ("latency (ms)", "latency_ms", "{:.2f}"),
    ("IQR (ms)", "latency_iqr_ms", "{:.2f}"),
    ("clips/s", "clips_per_s", "{:.1f}"),
    ("peak mem (MiB)", "peak_mem_mib", "{:.0f}"),
    ("status", "status", "{}"),
)


def _value(row: dict[str, Any], key: str, fmt: str) -> str:
    if key == "_input":
        return clip_of(row)
    v = row.get(key)
    if v is None or v == "":
        return "-"
    if key == "params":
        v = v / 1e6
    if key == "status" and v != "ok" and row.get("error"):
        return f"{v}: {str(row['error'])[:60]}"
    if key == "latency_ms" and row.get("noisy"):
        return fmt.format(v) + " (noisy)"
    return fmt.format(v)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]], left: Sequence[str] = ()) -> list[str]:
    """Lines of a Markdown table; columns named in ``left`` are left-aligned, the others right-aligned."""
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" if h in left else "---:" for h in header) + "|",
    ]
    lines += ["| " + " | ".join(str(c).replace("|", "/") for c in row) + " |" for row in rows]
    return lines


def summary_markdown(rows: Sequence[dict[str, Any]]) -> str:
    """The run's rows as a Markdown table with units in the header (fit for a README or PR)."""
    lines = [
        "MACs are multiply-accumulates of conv, linear and matmul layers (FLOPs = 2 x MACs), per clip. "
        "Latency is the median per iteration of the whole batch.",
        "",
        *markdown_table(
            [h for h, _, _ in _SUMMARY],
            [[_value(row, k, f) for _, k, f in _SUMMARY] for row in rows],
            left=("arch", "mode", "dtype", "status", "input (TxHxW)"),
        ),
    ]
    return "\n".join(lines) + "\n"


def summary_table(rows: Sequence[dict[str, Any]], title: str = "vbench results") -> Table:
    """The same table for the terminal."""
    table = Table(title=title, title_justify="left")
    # Leave out columns that nothing filled (a --static run has no timing).
    columns = [(h, k, f) for h, k, f in _SUMMARY if any(_value(r, k, f) != "-" for r in rows)]
    for header, key, _ in columns:
        left = key in ("arch", "mode", "dtype", "status", "_input")
        table.add_column(header, justify="left" if left else "right", no_wrap=True)
    for row in rows:
        cells = [_value(row, k, f) for _, k, f in columns]
        style = None if row.get("status") == "ok" else "red"
        table.add_row(*cells, style=style)
    return table


def row_line(row: dict[str, Any]) -> str:
    """One plain log line per finished row (when stdout is not a terminal)."""
    line = (
        f"{row['arch']} {row['mode']} batch={row['batch']} input={_value(row, '_input', '{}')} {row['dtype']} "
        f"status={row['status']} gmacs={_value(row, 'gmacs', '{:.2f}')} "
        f"latency_ms={_value(row, 'latency_ms', '{:.2f}')} peak_mem_mib={_value(row, 'peak_mem_mib', '{:.0f}')}"
    )
    return line + (f" error={row['error']}" if row.get("error") else "")


def inspect_table(rows: Sequence[Any], title: str) -> Table:
    """``vbench inspect``: one row per module (``bench.counting.ModuleStats``), indented by depth.

    Arithmetic intensity is FLOPs per byte of fp32 weights and outputs: a rough
    guide to whether a layer is bound by compute or by memory traffic.
    """
    total = max(rows[0].macs, 1) if rows else 1
    table = Table(title=title, title_justify="left")
    for col in ("module", "type", "params (M)", "GMACs", "% MACs", "activations (M)", "FLOP/B"):
        table.add_column(col, justify="left" if col in ("module", "type") else "right", no_wrap=True)
    for r in rows:
        traffic = 4 * (r.activations + r.params)
        table.add_row(
            "  " * r.depth + r.name.split(".")[-1],
            r.type,
            f"{r.params / 1e6:.3f}",
            f"{r.macs / 1e9:.3f}",
            f"{100 * r.macs / total:.1f}",
            f"{r.activations / 1e6:.2f}",
            f"{2 * r.macs / traffic:.1f}" if traffic else "-",
        )
    return table


_METRIC_NAMES = {
    "params": "params",
    "trainable_params": "trainable params",
    "gmacs": "GMACs/clip",
    "gflops": "GFLOPs/clip",
    "train_gmacs": "train GMACs/clip",
    "output_shape": "output shape",
    "status": "status",
    "latency_ms": "latency (ms)",
    "peak_mem_mib": "peak mem (MiB)",
}


def _fmt_metric(metric: str, v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, (bool, str)):
        return str(v)
    if isinstance(v, int):
        return f"{v:,}"
    if metric == "latency_ms":
        return f"{v:.3f}"
    if metric == "peak_mem_mib":
        return f"{v:.1f}"
    return f"{v:.6g}"


_MARKS = {
    # asv-style marks of `vbench compare` (which of them fail is bench.compare.Change.fails)
    "x": "an exact count or the output shape changed (fails)",
    "!": "ok in the base, not ok in the head (fails)",
    "+": "worse beyond the tolerance, significantly (fails)",
    "-": "better beyond the tolerance, significantly (or fixed)",
    "~": "beyond the tolerance but not significant, or a failure that changed kind (shown, not failed)",
}


def _fmt_change(ch: Any) -> str:
    """Exact counts: the signed difference; latency and memory: the relative change."""
    if isinstance(ch.base, (int, float)) and isinstance(ch.head, (int, float)) and ch.mark == "x":
        diff = ch.head - ch.base
        return f"{diff:+,}" if isinstance(diff, int) else f"{diff:+.6g}"
    return "-" if ch.ratio is None else f"{ch.ratio - 1:+.1%}"


def compare_markdown(comparison: Any, base: str, head: str, refresh: str = "") -> str:
    """The verdict of ``vbench compare`` (a :class:`bench.compare.Comparison`) as Markdown."""
    c = comparison
    n_fail = len(c.regressions)
    title = f"{n_fail} regression{'s' if n_fail != 1 else ''}" if n_fail else "no regression"
    tol = c.tolerances.default
    lines = [
        f"## vbench compare: {title}",
        "",
        f"Base `{base}`, head `{head}`: {c.matched} configurations matched, {c.unchanged} unchanged; "
        f"{len(c.new)} new, {len(c.removed)} removed.",
        f"Tolerances: latency {tol.latency:.0%}, memory {tol.memory:.0%}"
        + (" (with per-architecture overrides)" if c.tolerances.per_arch else "")
        + f"; latency is tested with a one-sided Mann-Whitney U test on the raw samples, alpha {tol.alpha:g}, "
        "against the tolerance. Params, MACs, FLOPs and output shapes must be equal.",
        "",
    ]
    lines += [f"> warning: {w}" for w in c.warnings]
    if c.warnings:
        lines.append("")
    if c.changes:
        header = ["", "arch", "configuration", "metric", "base", "head", "change", "p", "verdict"]
        body = [
            [
                ch.mark,
                ch.arch,
                ch.config,
                _METRIC_NAMES.get(ch.metric, ch.metric),
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
    for what, items in (("New rows (not in the base)", c.new), ("Removed rows (not in the head)", c.removed)):
        if items:
            lines += ["", f"{what}:", *[f"- {item}" for item in items]]
    if c.counts_changed:
        lines += [
            "",
            "Exact counts changed. If the change is intended, refresh the baseline and commit it:",
            "",
            "```",
            refresh,
            "```",
        ]
    return "\n".join(lines) + "\n"
