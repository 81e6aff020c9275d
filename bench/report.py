"""Presentation: rich tables for the terminal and Markdown tables for files.

Numbers arrive here already computed (by :mod:`bench.counting`,
:mod:`bench.timing`, ...); this module only scales and formats them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.table import Table

__all__ = ["arch_table", "fmt_input"]


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
