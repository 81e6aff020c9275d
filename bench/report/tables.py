"""Presentation of a run's rows and of ``vbench inspect``: rich tables for the terminal, and the run's Markdown.

Numbers arrive here already computed (by :mod:`bench.measure.counting`,
:mod:`bench.measure.timing`, ...); this module only scales and formats them.

Text that comes from outside (architecture names a plugin registered, a
model's error message, strings read from a results file, paths) is shown
literally, whatever it holds (``docs/guarantees.md``, "Escaping"): in rich
tables every cell is a :class:`rich.text.Text` (never parsed as markup) of one
line (:func:`bench.report.escape.one_line`), and :func:`plain` makes such a
Text for the CLI; in Markdown it goes through :mod:`bench.report.escape`.
The verdict of ``vbench compare`` is :mod:`bench.report.verdict`'s.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, JustifyMethod, RenderResult
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from bench.measure.roofline import intensity
from bench.report.escape import markdown_table, md_escape, one_line
from bench.results.breakdowns import PROFILER_TOLERANCE, SUM_TOLERANCE
from bench.results.columns import SUMMARY_COLUMNS, column
from bench.results.records import Row
from bench.results.schema import clip_of, is_contended

if TYPE_CHECKING:
    from bench.measure.tokens import StageTokens

__all__ = [
    "arch_table",
    "breakdown_checks",
    "contended_footnote",
    "fmt_input",
    "inspect_table",
    "kind_table",
    "plain",
    "row_line",
    "summary_markdown",
    "summary_table",
    "time_table",
    "tokens_table",
]


def fmt_input(shape: Sequence[int]) -> str:
    """(C, T, H, W) -> ``"3x16x112x112"``."""
    return "x".join(str(v) for v in shape)


def plain(text: object) -> Text:
    """A line for ``console.print`` that shows ``text`` literally: no markup, no emoji codes, no highlighting.

    ``console.print(f"wrote {path}")`` parses the path as rich markup (``[/]``
    raises, ``[red]`` vanishes); ``console.print(plain(f"wrote {path}"))`` does not.
    """
    return Text(one_line(text))


# ---------------------------------------------------------------- rich tables that fit the terminal


@dataclass(frozen=True)
class _Column:
    header: str
    cells: tuple[str, ...]
    justify: JustifyMethod = "left"
    rank: int = 0
    """0: the name column, never left out or cut; the larger, the sooner a column is left out when narrow."""
    wrap: bool = True
    """When narrow, the column may wrap between words (its header too) rather than keep one line."""
    shrink: int | None = None
    """When narrow, the column may instead be cut with an ellipsis down to this width."""

    @property
    def natural(self) -> int:
        """Width on one line (what rich gives a ``no_wrap`` column)."""
        return max(cell_len(t) for t in (self.header, *self.cells))

    @property
    def narrow(self) -> int:
        """The least width it takes when the console is narrow."""
        if self.rank == 0:
            return self.natural
        if self.shrink is not None:
            return min(self.natural, self.shrink)
        if not self.wrap:
            return self.natural
        words = [cell_len(w) for t in (self.header, *self.cells) for w in t.split()]
        return min(max(words, default=1), 20)  # a longer word folds

    @property
    def constant(self) -> str | None:
        """The value every row holds, if they all hold the same one."""
        return self.cells[0] if self.cells and len(set(self.cells)) == 1 else None


@dataclass(frozen=True)
class _TableSpec:
    title: str
    columns: tuple[_Column, ...]
    row_styles: tuple[str | None, ...]


def _table_width(widths: Sequence[int]) -> int:
    """The width rich gives a table with these content widths (heavy-head box, one cell of padding a side)."""
    return sum(widths) + 3 * len(widths) + 1


class _FittedTable(Table):
    """A rich Table that, printed on a console narrower than itself, prints the narrow cut of its rows instead.

    So a table made without knowing the terminal's width still never truncates
    the name column: rich would otherwise squeeze every column, names included.
    """

    spec: _TableSpec | None = None
    needs: int = 0

    def _refit(self, max_width: int) -> Table | None:
        if self.spec is None or self.needs <= max_width:
            return None
        fitted = _build_table(self.spec, max_width)
        fitted.spec = None  # as narrow as it gets: printed as it is (wider, if the name alone is wider)
        return fitted

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        fitted = self._refit(options.max_width)
        if fitted is None:
            yield from super().__rich_console__(console, options)
        else:
            yield fitted

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        fitted = self._refit(options.max_width)
        if fitted is None:
            return super().__rich_measure__(console, options)
        return Measurement.get(console, options, fitted)


def _build_table(spec: _TableSpec, width: int | None) -> _FittedTable:
    """The table with every column if it fits in ``width`` (or ``width`` is None), else its narrow cut.

    The narrow cut first lets columns wrap (headers included) or shrink; while
    that is still too wide it leaves out whole columns: first those that hold
    the same value in every row (the caption gives it), then the others from
    the highest ``rank`` down. The rank-0 name column keeps its full width
    (a name wider than the whole console folds onto a second line) and is
    never left out. What is left out is named in the caption, with its value
    where every row holds the same.
    """
    columns = list(spec.columns)
    natural = [c.natural for c in columns]
    fits = width is None or _table_width(natural) <= width
    dropped: list[_Column] = []
    if not fits:
        assert width is not None
        order = sorted((c for c in columns if c.rank), key=lambda c: (c.constant is None, -c.rank))
        while order and _table_width([c.narrow for c in columns]) > width:
            gone = order.pop(0)
            dropped.append(gone)
            columns.remove(gone)
        widths = [c.narrow for c in columns]
        spare = width - _table_width(widths)
        for i in sorted(range(len(columns)), key=lambda i: columns[i].rank):
            grow = max(0, min(spare, columns[i].natural - widths[i]))
            widths[i] += grow
            spare -= grow
    table = _FittedTable(title=Text(spec.title, style="table.title"), title_justify="left")
    for i, c in enumerate(columns):
        key = c.rank == 0
        if fits:
            table.add_column(
                Text(c.header), justify=c.justify, no_wrap=True, min_width=c.natural if key else None,
                overflow="fold" if key else "ellipsis",
            )  # fmt: skip
        else:
            # A name wider than the whole terminal folds onto a second line rather than lose its end.
            wraps = (c.wrap and c.shrink is None) or key
            table.add_column(
                Text(c.header), justify=c.justify, width=widths[i], no_wrap=not wraps,
                overflow="fold" if wraps else "ellipsis",
            )  # fmt: skip
    rows = zip(*(c.cells for c in columns)) if columns else iter(())
    for cells, style in zip(rows, spec.row_styles):
        table.add_row(*(Text(cell) for cell in cells), style=style)
    if dropped:
        left_out = [f"{c.header} = {c.constant}" if c.constant is not None else c.header for c in dropped]
        table.caption = Text("Left out at this width: " + "; ".join(left_out) + ".", style="table.caption")
        table.caption_justify = "left"
    table.spec = spec
    table.needs = _table_width(natural if fits else widths)
    return table


def _make_table(
    title: object, columns: Sequence[_Column], row_styles: Sequence[str | None], width: int | None
) -> Table:
    cleaned = tuple(
        _Column(one_line(c.header), tuple(one_line(v) for v in c.cells), c.justify, c.rank, c.wrap, c.shrink)
        for c in columns
    )
    return _build_table(_TableSpec(one_line(title), cleaned, tuple(row_styles)), width)


def arch_table(rows: Sequence[dict[str, Any]], width: int | None = None) -> Table:
    """The ``vbench list`` table: one row per architecture spec (with ``params``).

    Args:
        width: The console's width (``console.width``). When the table is wider,
            columns are left out in this order (named in the caption): any that
            hold one value in every row, then min input, paper, family, default
            input, params; the paper column is cut short first. The name column
            is never cut. None: decided when the table is printed, from the
            width it is printed at.
    """
    columns = [
        _Column("name", tuple(str(r["name"]) for r in rows)),
        _Column("family", tuple(str(r["family"]) for r in rows), rank=3),
        _Column("default input (CxTxHxW)", tuple(fmt_input(r["default_input"]) for r in rows), rank=2),
        _Column("min input", tuple(fmt_input(r["min_input"]) for r in rows), rank=5),
        _Column("params (M)", tuple(f"{r['params'] / 1e6:.2f}" for r in rows), "right", rank=1),
        _Column("paper", tuple(_short_paper(str(r["paper"])) for r in rows), rank=4, shrink=16),
    ]
    return _make_table("vbench architectures", columns, [None] * len(rows), width)


def _short_paper(paper: str) -> str:
    """``"Tran et al., A Closer Look ..., CVPR 2018"`` -> ``"Tran et al., CVPR 2018"``."""
    parts = [p.strip() for p in paper.split(",")]
    return f"{parts[0]}, {parts[-1]}" if len(parts) > 2 else paper


def _value(row: Mapping[str, Any], name: str) -> str:
    """The cell of column ``name`` (in :mod:`bench.results.columns`) for ``row``, as the summary shows it."""
    if name == "input":
        return clip_of(row)
    col = column(name)
    v = row.get(name)
    if v is None or v == "":
        return "-"
    if col.divisor is not None:
        v = v / col.divisor
    if name == "status" and v != "ok" and row.get("error"):
        return f"{v}: {str(row['error'])[:60]}"
    if name == "latency_ms":
        marks = [m for m, on in (("noisy", row.get("noisy")), ("contended", is_contended(row))) if on]
        return col.fmt.format(v) + (f" ({', '.join(marks)})" if marks else "")
    return col.fmt.format(v)


def contended_footnote(rows: Sequence[Mapping[str, Any]]) -> str | None:
    """The footnote under a table whose rows include contended ones (None when none is)."""
    n = sum(is_contended(row) for row in rows)
    if not n:
        return None
    return (
        f"(contended): {n} row{'s were' if n != 1 else ' was'} timed while another workload took a material part "
        "of the machine (CPU share below 0.8, or another process or throttled clocks on "
        "the GPU: cpu_share, load_before/after, gpu_other_processes, throttle_reasons in results.csv); such a "
        "row's latency is not the model's alone. compare calls such rows inconclusive; report leaves them out of "
        "fits and Pareto fronts unless --include-contended."
    )


def summary_markdown(rows: Sequence[Row]) -> str:
    """The run's rows as a Markdown table with units in the header (fit for a README or PR)."""
    lines = [
        "MACs are multiply-accumulates of conv, linear and matmul layers (FLOPs = 2 x MACs), per clip. "
        "Latency is the median per iteration of the whole batch.",
        "",
        *markdown_table(
            [c.header for c in SUMMARY_COLUMNS],
            [[_value(row, c.name) for c in SUMMARY_COLUMNS] for row in rows],
            left=[c.header for c in SUMMARY_COLUMNS if not c.numeric],
        ),
    ]
    note = contended_footnote(rows)
    if note:
        lines += ["", md_escape(note)]
    return "\n".join(lines) + "\n"


def summary_table(rows: Sequence[Row], title: str = "vbench results", width: int | None = None) -> Table:
    """The same table for the terminal.

    Args:
        width: The console's width (``console.width``). When the table is wider,
            columns wrap their headers and then are left out (named in the
            caption), first any that hold one value in every row, then in this
            order: IQR, clips/s, peak memory, dtype, mode, params, batch, input,
            GMACs, latency, status. The arch column is never cut. None: decided
            when the table is printed, from the width it is printed at.
    """
    # Leave out columns that nothing filled (a --static run has no timing).
    used = [c for c in SUMMARY_COLUMNS if any(_value(row, c.name) != "-" for row in rows)]
    columns = [
        _Column(
            c.header, tuple(_value(row, c.name) for row in rows), "right" if c.numeric else "left", c.summary_rank or 0
        )
        for c in used
    ]
    styles = [None if row.get("status") == "ok" else "red" for row in rows]
    return _make_table(title, columns, styles, width)


def row_line(row: Row) -> str:
    """One plain log line per finished row (when stdout is not a terminal); text from outside kept on the line."""
    line = (
        f"{row['arch']} {row['mode']} batch={row['batch']} input={_value(row, 'input')} {row['dtype']} "
        f"status={row['status']} gmacs={_value(row, 'gmacs')} "
        f"latency_ms={_value(row, 'latency_ms')} peak_mem_mib={_value(row, 'peak_mem_mib')}"
    )
    return one_line(line + (f" error={row['error']}" if row.get("error") else ""))


def inspect_table(rows: Sequence[Any], title: str, width: int | None = None) -> Table:
    """``vbench inspect``: one row per module (``bench.measure.counting.ModuleStats``), indented by depth.

    Arithmetic intensity is FLOPs per byte the module's leaf layers read and write
    (fp32 inputs, outputs and weights, :func:`bench.measure.roofline.intensity`): a rough
    guide to whether a layer is bound by compute or by memory traffic.

    Args:
        width: The console's width (``console.width``). When the table is wider,
            columns are left out (named in the caption) in this order: FLOP/B,
            activations, type, params, % MACs, GMACs. The module column is never
            cut. None: decided when the table is printed.
    """
    total = max(rows[0].macs, 1) if rows else 1
    cells: list[list[str]] = []
    for r in rows:
        flop_per_byte = intensity(r.macs, r.traffic, r.params, "fp32") if r.traffic else 0.0
        cells.append(
            [
                "  " * r.depth + str(r.name).split(".")[-1],
                str(r.type),
                f"{r.params / 1e6:.3f}",
                f"{r.macs / 1e9:.3f}",
                f"{100 * r.macs / total:.1f}",
                f"{r.activations / 1e6:.2f}",
                f"{flop_per_byte:.1f}" if flop_per_byte else "-",
            ]
        )
    spec = (("module", 0), ("type", 4), ("params (M)", 3), ("GMACs", 1), ("% MACs", 2), ("activations (M)", 5),
            ("FLOP/B", 6))  # fmt: skip
    columns = [
        _Column(h, tuple(c[i] for c in cells), "left" if h in ("module", "type") else "right", rank)
        for i, (h, rank) in enumerate(spec)
    ]
    return _make_table(title, columns, [None] * len(rows), width)


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


def time_table(b: Any, title: str, max_depth: int, width: int | None = None) -> Table:
    """``vbench inspect --time``: one row per module (``bench.results.breakdowns.ModuleTime``) up to ``max_depth``.

    Columns left out first on a narrow terminal: bound, FLOP/B, type, params, GMAC/s, % MACs.
    """
    rows = [m for m in b.modules if m.depth <= max_depth]
    train = b.mode == "train"
    cells = [
        [
            "  " * m.depth + (m.module if m.module.startswith("(") else m.module.split(".")[-1]),
            m.type,
            f"{m.params / 1e6:.3f}",
            f"{m.gmacs:.3f}",
            f"{100 * m.pct_macs:.1f}",
            _ms(m.forward_ms),
            _ms(m.backward_ms),
            _ms(m.latency_ms),
            f"{100 * m.pct_time:.1f}",
            "-" if m.gmacs_per_s is None else f"{m.gmacs_per_s:.1f}",
            "-" if m.intensity is None else f"{m.intensity:.1f}",
            m.bound or "-",
        ]
        for m in rows
    ]
    spec = [("module", 0), ("type", 8), ("params (M)", 7), ("GMACs", 1), ("% MACs", 3), ("fwd (ms)", 2),
            ("bwd (ms)", 2), ("time (ms)", 0), ("% time", 0), ("GMAC/s", 4), ("FLOP/B", 9), ("bound", 10)]  # fmt: skip
    keep = [i for i, (h, _) in enumerate(spec) if train or h not in ("fwd (ms)", "bwd (ms)")]
    columns = [
        _Column(spec[i][0], tuple(c[i] for c in cells), "left" if spec[i][0] in ("module", "type", "bound") else "right",
                spec[i][1])
        for i in keep
    ]  # fmt: skip
    return _make_table(title, columns, [None] * len(rows), width)


def kind_table(b: Any, title: str, width: int | None = None) -> Table:
    """Time and MACs by kind of work (``bench.results.breakdowns.KindTime``): where a video net's time goes."""
    cells = [
        [k.kind, _ms(k.latency_ms), f"{100 * k.pct_time:.1f}", f"{k.gmacs:.3f}", f"{100 * k.pct_macs:.1f}",
         "-" if k.gmacs_per_s is None else f"{k.gmacs_per_s:.1f}"]
        for k in b.kinds
    ]  # fmt: skip
    spec = (("kind", 0), ("time (ms)", 0), ("% time", 0), ("GMACs", 1), ("% MACs", 0), ("GMAC/s", 2))
    columns = [
        _Column(h, tuple(c[i] for c in cells), "left" if h == "kind" else "right", rank)
        for i, (h, rank) in enumerate(spec)
    ]
    return _make_table(title, columns, [None] * len(cells), width)


def breakdown_checks(b: Any) -> list[str]:
    """The lines ``inspect --time`` prints under its tables: the sum check, the profiler check, the overhead."""

    def verdict(ok: bool) -> str:
        return "ok" if ok else "OUT OF BOUNDS"

    lines = [
        f"sum check: the depth-1 lines add up to {b.attributed_ms:.2f} ms = {100 * b.sum_ratio:.1f} % of the "
        f"uninstrumented latency {b.latency_ms:.2f} ms (IQR {b.latency_iqr_ms:.2f}); within "
        f"{100 * SUM_TOLERANCE:g} %: {verdict(b.sum_ok)}",
        f"profiler check: {100 * b.profiler_ratio:.2f} % of torch.profiler's key_averages() total "
        f"({b.profiler_ms:.2f} ms); within {100 * PROFILER_TOLERANCE:g} %: {verdict(b.profiler_ok)}",
        f"instrumentation overhead: {100 * b.overhead:+.1f} % (an instrumented iteration took {b.profiled_ms:.2f} ms; "
        f"module ranges and Python between operators: {b.annotation_ms:.2f} ms)",
    ]
    r = b.roofline
    if r:
        lines.append(
            f"roofline ({r['device']} {r['dtype']}, {r['device_name']}): peak {r['peak_tflops']:.3f} TFLOP/s "
            f"(matmul {r['matmul_tflops']:.3f}, conv3d {r['conv3d_tflops']:.3f}), bandwidth "
            f"{r['bandwidth_gbs']:.1f} GB/s, ridge {r['ridge_flop_per_byte']:.1f} FLOP/byte"
        )
    return lines


def tokens_table(rows: Sequence[StageTokens], title: str) -> Table:
    """The rows as a table: module (indented by depth), type, output shape, grid, tokens, width."""
    table = Table(title=title)
    for header in ("module", "type", "output", "grid", "tokens", "width"):
        table.add_column(header, justify="left" if header in ("module", "type") else "right")
    for r in rows:
        table.add_row(
            Text("  " * (r.depth - 1) + r.name.split(".")[-1]),
            Text(r.type),
            Text("x".join(map(str, r.shape))),
            Text("x".join(map(str, r.grid)) or "-"),
            Text(f"{r.tokens:,}"),
            Text(str(r.width)),
        )
    return table
