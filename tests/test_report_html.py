"""``vbench report --html`` and ``vbench history --html``: the page's data, its escaping, the missing extra, and the
page itself in a real headless Chromium (Playwright driving the system's Chromium; skipped when there is none)."""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bench.cli import app
from bench.report.history import history_frame
from bench.report.tradeoff import accuracy_records, tradeoff_frame
from bench.results.compare import CompareConfig
from bench.results.schema import SCHEMA_VERSION, clip_of
from bench.results.store import load_results

ROOT = Path(__file__).resolve().parent.parent
PAPER_RUN = ROOT / "reports" / "cpu-paper"
KEEP = ("r2d_18", "r3d_18", "mc3_18", "rmc3_18", "r2plus1d_18", "s3d", "s3d_g", "i3d", "i2d")
"""A small fixture run: rows of the committed CPU run, four families, one architecture without a published top-1."""
HOSTILE = 'evil</script><img src=x onerror="alert(1)">&amp;'

runner = CliRunner()
plotly = pytest.importorskip("plotly", reason="the html extra is not installed (pip install 'vbench[html]')")


def _save(path: Path, rows: list[dict], env: dict | None = None) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    doc = {"schema_version": SCHEMA_VERSION, "environment": env or {}, "rows": rows}
    (path / "results.json").write_text(json.dumps(doc))
    return path


@pytest.fixture(scope="module")
def fixture_rows() -> list[dict]:
    rows, _ = load_results(PAPER_RUN)
    return [r for r in rows if r["arch"] in KEEP]


@pytest.fixture(scope="module")
def page(tmp_path_factory, fixture_rows) -> Path:
    """report.html of the fixture run, one hostile-named row with its own accuracy among them."""
    folder = tmp_path_factory.mktemp("html")
    evil = dict(fixture_rows[0], arch=HOSTILE, family="evil<b>")
    run = _save(folder / "run", [*fixture_rows, evil], load_results(PAPER_RUN)[1])
    acc = folder / "acc.json"
    acc.write_text(json.dumps([{"arch": HOSTILE, "input": clip_of(evil), "top1": 50.0, "source": "</script>me"}]))
    out = folder / "report"
    result = runner.invoke(app, ["report", str(run), "--out", str(out), "--no-plots", "--html", "--accuracy", str(acc)])
    assert result.exit_code == 0, result.output
    return out / "report.html"


def _data(text: str) -> dict:
    m = re.search(r'<script type="application/json" id="vbench-data">(.*?)</script>', text, re.S)
    assert m is not None
    return json.loads(m.group(1))


# ---------------------------------------------------------------- no browser needed


def test_the_page_is_self_contained_and_escapes_every_string(page):
    text = page.read_text(encoding="utf-8")
    # plotly.js is inlined in the first script element (it holds no "</script"); nothing else loads anything.
    start = text.index("<script>")
    end = text.index("</script>", start)
    assert "Plotly" in text[start:end] and len(text[start:end]) > 1_000_000
    ours = text[:start] + text[end:]
    assert not re.search(r"<(script|link|img|iframe)[^>]*\b(src|href)=", ours, re.I)
    # The hostile name appears only escaped: in the tables as entities, in the JSON as \u003c ... \u003e.
    assert HOSTILE not in text and "<img" not in text and "</script>me" not in text
    assert html_escaped(HOSTILE) in text
    data = _data(text)
    evil = [p for p in data["points"] if p["arch"] == HOSTILE]
    assert len(evil) == 1 and evil[0]["accuracy_source"] == "</script>me" and evil[0]["family"] == "evil<b>"


def html_escaped(s: str) -> str:
    import html

    return html.escape(s, quote=True)


def test_the_chart_points_are_the_tradeoff_rows_with_their_setting(fixture_rows):
    from bench.report.html_report import chart_points

    acc = accuracy_records()
    points = chart_points(fixture_rows, acc)
    trade = tradeoff_frame(fixture_rows, acc)
    assert len(points) == len(trade) == len(KEEP)
    assert list(points["arch"]) == list(trade["arch"]) and list(points["top1"].fillna(-1)) == list(
        trade["top1"].fillna(-1)
    )
    assert set(points["device"]) == {"cpu"} and set(points["dtype"]) == {"fp32"} and set(points["mode"]) == {"infer"}
    # MFU is the timing row's own.
    by_arch = {r["arch"]: r for r in fixture_rows}
    for p in points.itertuples():
        assert p.mfu == pytest.approx(by_arch[p.arch]["mfu"])


def test_html_without_plotly_is_one_line_and_exit_2(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "plotly", None)
    monkeypatch.setitem(sys.modules, "plotly.offline", None)
    result = runner.invoke(app, ["report", str(PAPER_RUN), "--out", str(tmp_path / "r"), "--no-plots", "--html"])
    assert result.exit_code == 2
    assert result.output.strip() == "vbench: error: --html needs plotly: pip install 'vbench[html]'"
    assert not (tmp_path / "r").exists()  # refused before any work
    result = runner.invoke(app, ["history", str(PAPER_RUN), str(PAPER_RUN), "--html", "--out", str(tmp_path / "h")])
    assert result.exit_code == 2 and "vbench[html]" in result.output


def test_a_report_without_html_imports_no_plotly(tmp_path):
    code = (
        "import runpy, sys\n"
        f"sys.argv = ['vbench', 'report', {str(PAPER_RUN)!r}, '--no-plots', '--out', {str(tmp_path / 'r')!r}]\n"
        "try:\n    runpy.run_module('bench.cli', run_name='__main__')\nexcept SystemExit as e:\n    code = e.code\n"
        "print(code, 'plotly' in sys.modules, file=sys.stderr)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.stderr.strip().splitlines()[-1] == "0 False", proc.stderr
    assert not (tmp_path / "r" / "report.html").exists()


def test_history_options_are_checked_first(tmp_path):
    result = runner.invoke(app, ["history", str(PAPER_RUN), str(PAPER_RUN), "--out", str(tmp_path / "h")])
    assert result.exit_code == 2 and "add --html" in result.output and not (tmp_path / "h").exists()


def test_history_orders_by_time_and_marks_what_compare_fails(tmp_path, fixture_rows):
    old = [copy.deepcopy(r) for r in fixture_rows if r["arch"] in ("r3d_18", "s3d")]
    new = copy.deepcopy(old)
    for r in old:
        r["timestamp"], r["git_sha"] = "2026-01-01T00:00:00+00:00", "aaaa"
    for r in new:
        r["timestamp"], r["git_sha"] = "2026-02-01T00:00:00+00:00", "bbbb"
    new[0]["params"] += 1  # an exact count changed: x
    new[1]["peak_mem_mib"] *= 1.5  # memory 50 % up, over the 5 % tolerance: +
    runs = [("new", new, {}), ("old", old, {})]  # given newest first: ordered by time
    history = history_frame(runs, CompareConfig())
    assert [r["git_sha"] for r in history.runs] == ["aaaa", "bbbb"]
    f = history.frame
    second = f[f["run"] == 1].set_index("arch")
    assert (second.loc["r3d_18", "params_mark"], bool(second.loc["r3d_18", "params_fails"])) == ("x", True)
    assert second.loc["r3d_18", "params"] == pytest.approx(new[0]["params"] / 1e6)
    assert (second.loc["s3d", "peak_mem_mib_mark"], bool(second.loc["s3d", "peak_mem_mib_fails"])) == ("+", True)
    assert second.loc["s3d", "params_mark"] == "" and f[f["run"] == 0]["params_mark"].eq("").all()

    # A count-only run in between hides no memory change: memory is judged against the last run that measured it.
    mid = [dict(copy.deepcopy(r), timestamp="2026-01-15T00:00:00+00:00", git_sha="mmmm", peak_mem_mib=None,
                latency_ms=None, samples_ms=None) for r in old]  # fmt: skip
    f = history_frame([("old", old, {}), ("new", new, {}), ("mid", mid, {})], CompareConfig()).frame
    third = f[f["run"] == 2].set_index("arch")
    assert (third.loc["s3d", "peak_mem_mib_mark"], bool(third.loc["s3d", "peak_mem_mib_fails"])) == ("+", True)

    a, b = _save(tmp_path / "a", old), _save(tmp_path / "b", new)
    result = runner.invoke(app, ["history", str(b), str(a), "--config", "/dev/null"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("#1 aaaa") and "0 regressions" in lines[0]
    assert any(line.startswith("#2 bbbb") and "2 regressions" in line for line in lines)
    result = runner.invoke(app, ["history", str(a), "--html"])
    assert result.exit_code == 2 and "at least two runs" in result.output


# ---------------------------------------------------------------- in a real browser


def _chromium() -> str | None:
    """The system's Chromium: ``$VBENCH_CHROMIUM`` where set, else ``chromium`` on the PATH (None: the test skips)."""
    given = os.environ.get("VBENCH_CHROMIUM")
    if given is not None:
        return given if Path(given).is_file() else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (the Python package) is not installed")
    exe = _chromium()
    if exe is None:
        pytest.skip("no Chromium installed (apt-get install chromium); set VBENCH_CHROMIUM to its path")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=["--no-sandbox"])
        yield b
        b.close()


def _points(pg) -> int:
    return pg.locator("#tradeoff .scatterlayer .trace .points path.point").count()


@pytest.mark.slow
def test_the_page_in_a_headless_browser(browser, page, fixture_rows):
    pg = browser.new_page(viewport={"width": 1300, "height": 900})
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    remote: list[str] = []
    pg.on("request", lambda r: remote.append(r.url) if not r.url.startswith(("file:", "data:", "blob:")) else None)
    pg.goto(page.as_uri())
    pg.wait_for_selector("#tradeoff .scatterlayer .trace .points path.point")
    data = _data(page.read_text(encoding="utf-8"))
    with_top1 = [p for p in data["points"] if p["top1"] is not None and p["gmacs"] is not None]
    # One point per trade-off row that has a top-1 (i2d has none: it is named under the chart instead).
    assert _points(pg) == len(with_top1) == len(KEEP)
    assert "i2d" in pg.locator("#tradeoff-missing").inner_text()
    # The Pareto front is bench.report.analysis's: the rows flagged pareto_gmacs in the trade-off frame.
    trade = tradeoff_frame(fixture_rows, accuracy_records())
    front = sorted(trade[trade["pareto_gmacs"] == True]["arch"])  # noqa: E712
    shown = pg.locator("#tradeoff-count").inner_text().split("Pareto front: ")[1].rstrip(".").split(", ")
    assert set(front) <= set(shown)  # the hostile row joins the front on its own accuracy; the others match

    # Hover over r3d_18's point: its details show.
    r3d = next(p for p in data["points"] if p["arch"] == "r3d_18")
    box = _point_box(pg, "r3d_18")
    pg.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    hover = pg.locator("#tradeoff .hoverlayer .hovertext")
    hover.first.wait_for()
    text = hover.first.text_content() or ""
    assert "r3d_18" in text and "top-1 64.7 % (published)" in text and f"GMACs {r3d['gmacs']:.2f}" in text
    assert "source:" in text and "latency" in text

    # A filter hides a family.
    family = r3d["family"]
    n_family = sum(p["family"] == family for p in with_top1)
    before = _points(pg)
    pg.locator(f'input[data-filter="family"][value="{family}"]').uncheck()
    pg.wait_for_function(
        f"document.querySelectorAll('#tradeoff .scatterlayer .trace .points path.point').length=={before - n_family}"
    )
    legend = pg.locator("#tradeoff .legendtext").all_inner_texts()
    assert family not in legend and _points(pg) == before - n_family

    # The cost axis switches: latency.
    pg.select_option("#cost", "latency_ms")
    pg.wait_for_function("document.querySelector('#tradeoff .xtitle').textContent.startsWith('latency')")

    # A table sorts: params ascending, then descending.
    header = pg.locator("#t-tradeoff th", has_text="params (M)")
    archs_before = pg.locator("#t-tradeoff tbody tr td:nth-child(1)").all_inner_texts()
    header.click()
    col = [h.strip() for h in pg.locator("#t-tradeoff th").all_inner_texts()].index("params (M)")
    values = [float(v) for v in pg.locator(f"#t-tradeoff tbody tr td:nth-child({col + 1})").all_inner_texts()]
    assert values == sorted(values)
    assert pg.locator("#t-tradeoff tbody tr td:nth-child(1)").all_inner_texts() != archs_before
    header.click()
    values = [float(v) for v in pg.locator(f"#t-tradeoff tbody tr td:nth-child({col + 1})").all_inner_texts()]
    assert values == sorted(values, reverse=True)
    assert not errors, errors
    assert not remote, remote  # works offline: nothing fetched
    pg.close()


def _point_box(pg, arch: str) -> dict:
    """The screen box of the point whose trace and index name ``arch`` (read from plotly's own data)."""
    where = pg.evaluate(
        """arch => { const gd = document.getElementById('tradeoff');
        for (let t = 0; t < gd.data.length; t++) { const i = (gd.data[t].customdata || []).indexOf(arch);
          if (i >= 0) return [t, i]; } return null; }""",
        arch,
    )
    assert where is not None
    trace = pg.locator("#tradeoff .scatterlayer .trace").nth(where[0])
    box = trace.locator("path.point").nth(where[1]).bounding_box()
    assert box is not None
    return box


@pytest.mark.slow
def test_the_history_page_in_a_headless_browser(browser, tmp_path, fixture_rows):
    old = [copy.deepcopy(r) for r in fixture_rows if r["arch"] in ("r3d_18", "s3d")]
    new = copy.deepcopy(old)
    for r in new:
        r["timestamp"] = "2099-01-01T00:00:00+00:00"
    new[0]["gmacs"] *= 2
    a, b = _save(tmp_path / "a", old), _save(tmp_path / "b", new)
    result = runner.invoke(
        app, ["history", str(b), str(a), "--html", "--out", str(tmp_path / "h"), "--config", "/dev/null"]
    )
    assert result.exit_code == 0, result.output
    pg = browser.new_page()
    pg.goto((tmp_path / "h" / "history.html").as_uri())
    pg.select_option("#metric", "gmacs")
    pg.wait_for_selector("#history .scatterlayer .trace")
    assert pg.locator("#history .scatterlayer .trace").count() == 2
    failed = pg.locator('.metric-table[data-metric="gmacs"] td.fail')
    assert failed.count() == 1 and failed.first.inner_text().endswith(" x")
    assert "changed" in (failed.first.get_attribute("title") or "")
    pg.close()
