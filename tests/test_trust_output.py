"""Nothing a model, a plugin or a file says breaks or spoofs the tables vbench prints and writes.

Markdown (results.md, report.md, the compare verdict that GitHub renders with
HTML) is checked by rendering it with markdown-it-py (CommonMark with GFM
tables and strike-through, raw HTML allowed as on GitHub); rich tables by
rendering them on recorded consoles, also at 80 and 60 columns, and through the
real CLI in a pseudo-terminal.
"""

import csv
import html
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from rich.cells import cell_len
from rich.console import Console

import archs
from bench.errors import UsageError
from bench.report.builder import MANIFEST, check_report_folder, write_report
from bench.report.escape import markdown_table, md_code, md_escape, md_fence, md_image
from bench.report.tables import arch_table, inspect_table, plain, row_line, summary_markdown, summary_table
from bench.report.tradeoff import paper_frame, report_frames, report_text, tradeoff_frame
from bench.report.verdict import compare_markdown
from bench.results.columns import COLUMNS
from bench.results.compare import CompareConfig, Tolerances, compare_rows
from bench.results.schema import SCHEMA_VERSION

ROOT = Path(__file__).resolve().parents[1]

HOSTILE = [
    "a|b\n| forged | row |",
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "[/]",
    "`",
    "](javascript:x)",
    "[click](javascript:alert(1))",
    "![i](http://x/y.png)",
    "*b* _i_ ~~s~~ **B** __U__",
    "`code` ``two``",
    "a\\|b\\",
    "&lt;b&gt; &#60;i&#62;",
    "# h",
    "- item",
    "1. item",
    "> quote",
    "[ref]: http://x",
    "<http://x>",
    "$x^2$",
    "\x1b[31mred\x1b[0m \u202eevil",
]
# What results and accuracy files may hold: they refuse line breaks and control characters.
ONE_LINE = [h.replace("\n", " ") for h in HOSTILE if h.replace("\n", "").isprintable()]
ORDINARY = [
    "r2plus1d_18",
    "i3d_bottom_heavy(split=Mixed_4b)",
    "16x112x112",
    "560.16 (noisy)",
    "+2.92 %",
    "-",
    "~",
    "K400, 10 clips, none",
    "Carreira & Zisserman CVPR 2017 Table 3; deepmind/kinetics-i3d README (GFLOPs 108 [S]: SlowFast Table 2)",
    "RGB-I3D; Carreira & Zisserman CVPR 2017 Table 3 [P]",
]


def _markdown():
    markdown_it = pytest.importorskip("markdown_it")
    return markdown_it.MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])


def _literal(text: str) -> str:
    """What the escaped text must read as: one line, control characters spelt out, bidi overrides replaced."""
    text = re.sub(r"\s*\n\s*", " ", text).strip()
    return text.replace("\x1b", "\\x1b").replace("\u202e", "\ufffd")


def _split_row(line: str) -> list[str]:
    """The cells of a GFM table row: split on pipes that no backslash escapes."""
    cells, cell, i = [], "", 0
    while i < len(line):
        if line[i] == "\\" and i + 1 < len(line):
            cell += line[i : i + 2]
            i += 2
            continue
        if line[i] == "|":
            cells.append(cell)
            cell = ""
        else:
            cell += line[i]
        i += 1
    cells.append(cell)
    return cells[1:-1]


def _tables(text: str) -> list[list[str]]:
    """The tables of a Markdown text, as lists of their lines (header and delimiter included)."""
    tables: list[list[str]] = []
    previous = False
    for line in text.splitlines():
        if line.startswith("|"):
            if not previous:
                tables.append([])
            tables[-1].append(line)
        previous = line.startswith("|")
    return tables


def _tags(text: str) -> list[str]:
    """The HTML elements a Markdown text renders to, in order (text and attributes left out)."""
    return re.findall(r"</?[a-z][a-z0-9]*", _markdown().render(text))


def _assert_safe(text: str, benign: str, rows_per_table: list[int]) -> None:
    """``text`` (made from hostile strings) renders to the same elements as ``benign`` (the same made from plain
    names); its tables keep their rows and columns; no ``<`` or terminal escape is left raw."""
    tables = _tables(text)
    assert [len(t) - 2 for t in tables] == rows_per_table
    for table in tables:
        width = len(_split_row(table[0]))
        assert all(len(_split_row(line)) == width for line in table), table
    lines = [line for line in text.splitlines() if line.startswith(("|", "- ", "> "))]
    assert lines and not any("<" in line for line in lines)  # outside code spans, where it is literal anyway
    assert "\x1b" not in text and "\u202e" not in text
    assert _tags(text) == _tags(benign)


# ---------------------------------------------------------------- the escaping functions


@pytest.mark.parametrize("text", ORDINARY)
def test_ordinary_text_is_left_as_it_is(text):
    assert md_escape(text, cell=True) == text
    if text not in ("-", "~"):  # at the start of a line: a list item, or a delimiter next to unknown text
        assert md_escape(text) == text


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_reads_literally_in_a_cell_and_in_a_line(text):
    md = _markdown()
    cell = md.render("\n".join(markdown_table(["x", "y"], [[text, "1"]])))
    body = cell.split("<tbody>")[1]
    assert body.count("<tr>") == 1 and body.count("<td") == 2
    inner = re.search(r"<td[^>]*>(.*?)</td>", body, re.S).group(1)
    assert "<" not in inner and html.unescape(inner) == _literal(text)
    line = md.render(f"- {md_escape(text)} at {md_escape(text)}\n")
    inner = re.fullmatch(r"<ul>\n<li>(.*)</li>\n</ul>\n", line, re.S).group(1)
    assert "<" not in inner and html.unescape(inner) == f"{_literal(text)} at {_literal(text)}"


@pytest.mark.parametrize("text", ["a`b``c", "`x", "x`", " both ", "plain/path", "<b>|*x*"])
def test_code_spans_hold_any_path(text):
    rendered = _markdown().render(f"Base {md_code(text)}, head.")
    code = re.findall(r"<code>(.*?)</code>", rendered, re.S)
    assert len(code) == 1 and html.unescape(code[0]) == text


def test_fenced_block_and_image_links():
    command = "vbench profile --arch '```' --out 'a````b'\nsecond line"
    rendered = _markdown().render("\n".join(md_fence(command)) + "\n")
    assert html.unescape(re.search(r"<pre><code>(.*)</code></pre>", rendered, re.S).group(1)) == command + "\n"
    image = _markdown().render(md_image("a](x) [b", "my fig.png"))
    assert 'src="my%20fig.png"' in image and 'alt="a](x) [b"' in image
    assert md_image("tradeoff_gmacs", "tradeoff_gmacs.png") == "![tradeoff_gmacs](tradeoff_gmacs.png)"


# ---------------------------------------------------------------- the Markdown writers


def _row(arch="r3d_18", **over):
    row = dict.fromkeys(COLUMNS)
    row.update(arch=arch, family="r3d", mode="infer", batch=1, frames=16, height=112, width=112, device="cpu",
               device_name="test cpu", dtype="fp32", channels_last=False, compiled=False, cuda_graphs=False,
               arch_kwargs="{}", params=33371472, trainable_params=33371472, gmacs=40.697, gflops=81.394,
               output_shape="1x400", status="ok", error="", latency_ms=None, n_samples=0)  # fmt: skip
    row.update(over)
    return row


def _benign(strings: list[str]) -> list[str]:
    return [f"name{i}" for i in range(len(strings))]


def test_results_markdown_keeps_its_rows():
    def make(strings):
        rows = [_row(s, mode=s, dtype=s) for s in strings]
        return summary_markdown(rows + [_row(f"e{i}", status="error", error=s) for i, s in enumerate(strings)])

    _assert_safe(make(HOSTILE), make(_benign(HOSTILE)), [2 * len(HOSTILE)])
    assert "| r3d_18 | infer | 1 | 16x112x112 | fp32 | 33.37 | 40.70 |" in summary_markdown([_row()])


def test_compare_verdict_keeps_its_rows_and_its_code():
    def make(strings, base_path, head_path, refresh):
        base = [_row(s) for s in strings] + [_row("gone" + s) for s in strings[:3]]
        head = [_row(s, status="error", error=s) for s in strings[:-1]] + [_row(strings[-1], params=1)]
        comparison = compare_rows(base, head + [_row("new" + s) for s in strings[:3]])
        assert len(comparison.changes) == len(strings) and len(comparison.new) == len(comparison.removed) == 3
        return compare_markdown(comparison, base_path, head_path, refresh)

    refresh = "vbench profile --arch '``` `' --out 'base`dir'"
    text = make(HOSTILE, "base``dir<b>", "head|`x`", refresh)
    _assert_safe(text, make(_benign(HOSTILE), "base", "head", "vbench profile"), [len(HOSTILE)])
    rendered = _markdown().render(text)
    code = [html.unescape(c) for c in re.findall(r"<code>(.*?)</code>", rendered, re.S)]
    assert code[:2] == ["base``dir<b>", "head|`x`"]  # the paths, whole
    assert html.unescape(re.search(r"<pre><code>(.*)</code></pre>", rendered, re.S).group(1)) == refresh + "\n"


def test_compare_header_names_every_per_architecture_tolerance():
    config = CompareConfig(
        per_arch=(("i3d*", Tolerances(latency=0.15)), ("r3d_18", Tolerances()),
                  ("*", Tolerances(latency=9.0, memory=0.08, alpha=0.01)), ("<b>`|", Tolerances(memory=2.0)))
    )  # fmt: skip
    text = compare_markdown(compare_rows([_row()], [_row()], config), "b", "h")
    header = next(line for line in text.splitlines() if line.startswith("Per-architecture tolerances"))
    assert "`i3d*` latency 15%" in header
    assert "`*` latency **900% (!)**, memory 8%, alpha 0.01" in header
    assert "``<b>`|`` memory **200% (!)**" in header
    assert "r3d_18" not in header  # the same as the default: nothing to say
    assert "Tolerances: latency 10%, memory 5%;" in text and "(!) above 100 %" in text
    plain_text = compare_markdown(compare_rows([_row()], [_row()]), "b", "h")
    assert "Per-architecture" not in plain_text and "(!)" not in plain_text
    loose = CompareConfig(default=Tolerances(latency=5.0))
    assert "Tolerances: latency **500% (!)**" in compare_markdown(compare_rows([_row()], [_row()], loose), "b", "h")


def _save(folder: Path, rows: list[dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.json").write_text(
        json.dumps({"schema_version": SCHEMA_VERSION, "environment": {}, "rows": rows})
    )
    return folder


def test_report_markdown_keeps_its_rows(tmp_path):
    def make(strings, where):
        rows = [_row(s, family="fam<b>", latency_ms=1.0, n_samples=3, device_name=s) for s in strings]
        rows += [_row(f"e{s}", status="error", error=s) for s in strings]
        run = _save(tmp_path / where / "run`x", rows)
        accuracy = tmp_path / where / "acc.csv"
        with accuracy.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["arch", "input", "top1", "source", "dataset"])
            writer.writerows([s, "16x112x112", 50.0, s, s] for s in strings)
        text, _, _ = write_report([run], tmp_path / where / "out", accuracy_file=accuracy, plots=False)
        assert text == (tmp_path / where / "out" / "report.md").read_text()
        return text

    text = make(ONE_LINE, "hostile")
    # the trade-off table, the failures, and the throughput ranking (one line per timed row)
    _assert_safe(text, make(_benign(ONE_LINE), "benign"), [2 * len(ONE_LINE), len(ONE_LINE), len(ONE_LINE)])
    rendered = _markdown().render(text)
    assert rendered.count("<li>") == len(ONE_LINE)  # the accuracy sources
    assert html.unescape(re.findall(r"<code>(.*?)</code>", rendered)[0]) == str(tmp_path / "hostile" / "run`x")

    # names with line breaks or escape sequences straight from a plugin (files refuse them), and a paper table
    def markdown(strings):
        rows = [_row(s, latency_ms=1.0, n_samples=3) for s in strings]
        accuracy = [{"arch": s, "input": "16x112x112", "top1": 1.0, "source": s} for s in strings]
        # the report's own tables, with a paper table of a row that has published counts
        return report_text({**report_frames(rows, accuracy), "paper": paper_frame([_row()])}, strings)

    # the trade-off table, ours beside the papers, and the throughput ranking (one line per timed row)
    _assert_safe(
        markdown(HOSTILE), markdown(_benign(HOSTILE)), [len(HOSTILE), len(paper_frame([_row()])), len(HOSTILE)]
    )


def test_row_line_stays_one_line():
    line = row_line(_row("r3d\nfake", status="error", error="boom\nr3d_18 infer batch=1 status=ok\x1b[2J"))
    assert "\n" not in line and "\x1b" not in line and "\\x1b[2J" in line


# ---------------------------------------------------------------- rich


MARKUP = ["[/]", "[enforce fail at alloc_cpu.cpp:127]", "[bold red]x[/bold red]", "[link=http://x]y[/link]", ":smile:"]


def _render(table, width=200):
    console = Console(width=width, record=True, force_terminal=True, file=io.StringIO(), color_system="truecolor")
    console.print(table)
    return console.export_text(), console.file.getvalue()


def test_rich_tables_show_markup_literally():
    rows = [_row(m, status="oom", error=f"CUDA out of memory {m}") for m in MARKUP]
    rows.append(_row("esc", status="error", error="\x1b[2J\x1b]0;title\x07 gone"))
    text, raw = _render(summary_table(rows, title="[/] run"))
    for m in MARKUP:
        assert m in text and f"out of memory {m}" in text
    assert "[/] run" in text and "\\x1b[2J" in text and "\x1b[2J" not in raw and "\x1b]0;" not in raw
    specs = [{"name": m, "family": m, "default_input": (3, 8, 8, 8), "min_input": (3, 1, 1, 1), "params": 1e6,
              "paper": f"{m}, x, CVPR 2018"} for m in MARKUP]  # fmt: skip
    text, _ = _render(arch_table(specs))
    assert all(m in text for m in MARKUP)
    modules = [
        SimpleNamespace(name=f"root.{m}", type=m, depth=1, params=10, macs=100, activations=5, traffic=9)
        for m in MARKUP
    ]
    text, _ = _render(inspect_table(modules, title="[/]"))
    assert all(m in text for m in MARKUP) and "[/]" in text.splitlines()[0]
    text, _ = _render(plain("wrote [/] :smile: [bold]x"))
    assert text.strip() == "wrote [/] :smile: [bold]x"


def _fake_specs() -> list[dict]:
    specs = [archs.get_arch(name).to_dict() for name in archs.list_archs()]
    for i, spec in enumerate(specs):
        spec["params"] = 1_000_000 * (i + 1)
    return specs


def _assert_names_whole(text: str, names: list[str], width: int) -> None:
    lines = text.splitlines()
    assert max(cell_len(line) for line in lines) <= width
    cells = {cell.strip() for line in lines for cell in re.split(r"[│┃]", line)}
    missing = [name for name in names if name not in cells]
    assert not missing, text


@pytest.mark.parametrize("width", [80, 60])
@pytest.mark.parametrize("given", [True, False], ids=["width-given", "at-print"])
def test_names_are_never_cut_on_a_narrow_terminal(width, given):
    plugin = {"name": "a_very_long_name_from_some_plugin_x", "family": "plugin", "default_input": (3, 16, 112, 112),
              "min_input": (3, 1, 32, 32), "params": 5, "paper": "Someone et al., A Title, NeurIPS 2030"}  # fmt: skip
    specs = [*_fake_specs(), plugin]
    names = [s["name"] for s in specs]
    text, _ = _render(arch_table(specs, width=width if given else None), width)
    _assert_names_whole(text, names, width)
    rows = [_row(n, mode=mode, latency_ms=12.5, latency_iqr_ms=0.5, clips_per_s=80.0, peak_mem_mib=512.0,
                 n_samples=10) for n in names for mode in ("infer", "train")]  # fmt: skip
    rows[3].update(status="oom", error="CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 79.1 GiB total)")
    text, _ = _render(summary_table(rows, width=width if given else None), width)
    _assert_names_whole(text, names, width)
    assert "mode" in text  # shown, or named as left out
    assert "oom" in text and "status" in text


def test_wide_tables_are_unchanged():
    specs = _fake_specs()
    narrow_free, _ = _render(arch_table(specs), 200)
    assert narrow_free == _render(arch_table(specs, width=200), 200)[0]
    header = narrow_free.splitlines()[2]
    assert [h.strip() for h in re.split(r"[┃]", header)[1:-1]] == [
        "name", "family", "default input (CxTxHxW)", "min input", "params (M)", "paper"
    ]  # fmt: skip
    assert "Left out" not in narrow_free


def _pty(command: str, width: int, cwd: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env["TERM"] = "xterm-256color"
    result = subprocess.run(
        ["script", "-qec", f"stty cols {width} rows 50; {command}", "/dev/null"],
        capture_output=True, text=True, timeout=120, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", result.stdout).replace("\r", "")


@pytest.mark.slow  # real terminals: four vbench processes under `script`
@pytest.mark.skipif(shutil.which("script") is None or sys.platform != "linux", reason="needs util-linux script")
@pytest.mark.parametrize("width", [80, 60])
def test_cli_in_a_terminal_shows_whole_names(width, tmp_path):
    python = shlex.quote(sys.executable)
    text = _pty(f"{python} -m bench.cli list", width, ROOT)
    names = archs.list_archs()
    _assert_names_whole(text, names, width)
    out = tmp_path / "run"
    text = _pty(f"{python} -m bench.cli profile --arch 'r*_18' --static --out {shlex.quote(str(out))}", width, ROOT)
    table = text[text.index("vbench results") :]
    _assert_names_whole(table.split("wrote")[0], archs.list_archs("r*_18"), width)


# ---------------------------------------------------------------- the report folder


def _report(tmp_path: Path, out: Path, **kwargs):
    run = tmp_path / "run"
    if not run.exists():
        _save(run, [_row()])
    return write_report([run], out, plots=False, **kwargs)


def test_report_refuses_a_folder_of_other_files(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "x.txt").write_text("mine")
    message = (
        f"'{out}' holds files vbench report did not write (e.g. 'x.txt'); choose an empty folder or pass --overwrite"
    )
    with pytest.raises(UsageError) as info:
        _report(tmp_path, out)
    assert str(info.value) == message
    assert sorted(p.name for p in out.iterdir()) == ["x.txt"]  # nothing written
    # also a folder, or a link where a report file would go
    (out / "x.txt").unlink()
    (out / "sub").mkdir()
    with pytest.raises(UsageError, match=r"e\.g\. 'sub'"):
        _report(tmp_path, out)
    (out / "sub").rmdir()
    (out / "report.md").symlink_to(tmp_path / "elsewhere.md")
    with pytest.raises(UsageError, match=r"e\.g\. 'report\.md'"):
        _report(tmp_path, out)


def test_report_rewrites_its_own_folder_and_overwrite_keeps_the_rest(tmp_path):
    out = tmp_path / "out"
    _, paths, _ = _report(tmp_path, out)
    assert paths[-1].name == MANIFEST
    manifest = json.loads((out / MANIFEST).read_text())["files"]
    assert set(manifest) == {
        "report.md",
        "tradeoff.csv",
        "paper.csv",
        "scaling.csv",
        "growth.csv",
        "failures.csv",
        "throughput.csv",
    }
    _report(tmp_path, out)  # its own: rewritten
    (out / "notes.txt").write_text("mine")
    with pytest.raises(UsageError, match=r"notes\.txt"):
        _report(tmp_path, out)
    _report(tmp_path, out, overwrite=True)
    assert (out / "notes.txt").read_text() == "mine"
    assert "notes.txt" not in json.loads((out / MANIFEST).read_text())["files"]


def test_a_report_folder_without_manifest_is_taken_by_its_names(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    for name in ("report.md", "tradeoff.csv", "tradeoff_gmacs.png", "mixed_variants.svg", ".report.md.k3j2x9ab.tmp"):
        (out / name).write_text("old")
    _report(tmp_path, out)
    files = json.loads((out / MANIFEST).read_text())["files"]
    assert "tradeoff_gmacs.png" in files and "mixed_variants.svg" in files  # kept, not deleted, still its own
    assert (out / "tradeoff_gmacs.png").read_text() == "old"
    for committed in ("reports/report", "reports/scaling"):
        if (ROOT / committed).is_dir():
            check_report_folder(ROOT / committed)  # accepted as they are


def test_a_file_is_not_a_report_folder(tmp_path):
    out = tmp_path / "report.md"
    out.write_text("not a folder")
    for overwrite in (False, True):
        with pytest.raises(UsageError, match="is a file; choose a folder"):
            _report(tmp_path, out, overwrite=overwrite)
    assert out.read_text() == "not a folder"


# ---------------------------------------------------------------- figures


def test_figure_labels_are_not_mathtext(tmp_path):
    pytest.importorskip("matplotlib")
    from bench.report.plots import plot_tradeoff

    rows = [_row("a$\\frac$b", gmacs=10.0, latency_ms=2.0, n_samples=3),
            _row("_hidden", family="_nolegend_", gmacs=20.0, latency_ms=3.0, n_samples=3)]  # fmt: skip
    accuracy = [{"arch": r["arch"], "input": "16x112x112", "top1": t, "source": "s"} for r, t in zip(rows, (50, 60))]
    paths = plot_tradeoff(tradeoff_frame(rows, accuracy), "gmacs", tmp_path / "fig")
    assert [p.suffix for p in paths] == [".png", ".svg"]


def test_a_tradeoff_figure_of_more_clips_than_markers_is_drawn(tmp_path):
    """The families since 2018 bring a dozen paper inputs: markers are reused, the figure is still drawn."""
    pytest.importorskip("matplotlib")
    from bench.report.plots import plot_tradeoff

    rows = [_row(f"arch{i}", frames=4 + i, gmacs=10.0 + i, latency_ms=2.0, n_samples=3) for i in range(14)]
    accuracy = [{"arch": r["arch"], "input": f"{r['frames']}x112x112", "top1": 50 + i, "source": "s"}
                for i, r in enumerate(rows)]  # fmt: skip
    paths = plot_tradeoff(tradeoff_frame(rows, accuracy), "gmacs", tmp_path / "fig")
    assert [p.suffix for p in paths] == [".png", ".svg"] and all(p.stat().st_size > 0 for p in paths)
