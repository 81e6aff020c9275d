"""How cost grows with clip length and frame size (``bench.report.growth``): the fits on hand-made rows of known
exponents, attention-like costs, contended rows, and the report section's presence and absence."""

import json
import math

import pytest

from bench.report.builder import write_report
from bench.report.growth import end_to_end_exponent, growth_frame, growth_verdict
from bench.report.markdown import growth_lines
from bench.results.columns import COLUMNS
from bench.results.schema import SCHEMA_VERSION

FRAMES = (8, 16, 32)
SIZES = (112, 160, 224)


def _row(arch, family, t, s, gmacs, latency=None, **over):
    row = dict.fromkeys(COLUMNS)
    row.update(arch=arch, family=family, mode="infer", batch=1, frames=t, height=s, width=s, device="cpu",
               device_name="test cpu", dtype="fp32", channels_last=False, compiled=False, cuda_graphs=False,
               arch_kwargs="{}", params=1_000_000, gmacs=gmacs, gflops=2 * gmacs, status="ok", error="",
               latency_ms=latency, n_samples=3 if latency is not None else 0, contended=False)  # fmt: skip
    row.update(over)
    return row


def _conv_rows(arch="conv", family="cnn", **over):
    """Cost exactly c x T^1 x (H=W)^2, MACs and latency alike."""
    return [_row(arch, family, t, s, 1e-4 * t * s**2, 3e-3 * t * s**2, **over) for t in FRAMES for s in SIZES]


def _attention_macs(t, s, dim=384, depth=12):
    """A ViT over 2x16x16 tubelets, in GMACs: per block 12 N d^2 for the linear layers (qkv, projection, MLP of 4d)
    plus 2 N^2 d for the attention matmuls (scores and the weighted sum)."""
    n = (t // 2) * (s // 16) ** 2
    return depth * (12 * n * dim**2 + 2 * n**2 * dim) / 1e9


def _one(frame, arch):
    rows = frame[frame["arch"] == arch]
    assert len(rows) == 1
    return rows.iloc[0]


def test_an_exact_power_law_gives_its_exponents_and_every_point():
    r = _one(growth_frame(_conv_rows()), "conv")
    for metric in ("macs", "latency"):
        assert r[f"{metric}_frames"] == pytest.approx(1.0)
        assert r[f"{metric}_size"] == pytest.approx(2.0)
        assert r[f"{metric}_voxels"] == pytest.approx(1.0)  # T^1 (H=W)^2 is (T H W)^1
    assert r["macs_frames_at_largest"] == pytest.approx(1.0)
    assert (r["macs_n"], r["latency_n"], r["latency_timed"]) == (9, 9, 9)
    assert (r["frames"], r["sizes"], r["growth"]) == ("8,16,32", "112,160,224", "in proportion")


def test_a_static_run_beside_a_timed_one_counts_each_clip_once():
    static = [dict(r, latency_ms=None, n_samples=0) for r in _conv_rows()]
    timed = _conv_rows()[:5]  # the timed run stopped early
    r = _one(growth_frame([*static, *timed]), "conv")
    assert (r["macs_n"], r["latency_n"], r["latency_timed"]) == (9, 5, 5)
    assert r["macs_voxels"] == pytest.approx(1.0) and r["latency_size"] == pytest.approx(2.0)


def test_attention_like_cost_grows_faster_than_the_clip():
    rows = [*_conv_rows(), *[_row("vit", "attn", t, s, _attention_macs(t, s)) for t in FRAMES for s in SIZES]]
    frame = growth_frame(rows)
    vit = _one(frame, "vit")
    # At 32x224, N = 16 x 196 = 3136 tokens: 2 N^2 d / 12 N d^2 = N / 6d = 1.36, the quadratic part outweighs the
    # linear layers; at 8x224 (N = 784) it is 0.34 of them. Between the two the cost grows 4 x 2.36 / 1.34:
    expected = math.log(4 * (1 + 3136 / 2304) / (1 + 784 / 2304)) / math.log(4)
    assert vit["macs_frames_at_largest"] == pytest.approx(expected) and expected == pytest.approx(1.41, abs=0.01)
    assert vit["macs_voxels"] > 1.2 and vit["macs_frames"] > 1.1 and vit["macs_size"] > 2.2
    assert vit["growth"] == "faster than the clip" and math.isnan(vit["latency_voxels"])
    assert (vit["latency_n"], vit["latency_timed"]) == (0, 0)  # counted only: no latency fit
    # Sorted by the MACs exponent in the voxels: the convolution first, side by side in one table.
    assert list(frame["arch"]) == ["conv", "vit"]
    text = "\n".join(growth_lines(frame))
    assert "- MACs grow faster than the clip: `vit` (attn, " in text
    assert "- MACs grow in proportion: `conv` (cnn, 1.00)." in text
    assert "| vit | attn | infer fp32 cpu b1 | 8,16,32 x 112,160,224 |" in text


def test_the_verdict_and_the_two_point_exponent_by_hand():
    assert growth_verdict(1.06) == "faster than the clip" and growth_verdict(0.94) == "slower than the clip"
    assert growth_verdict(1.04) == growth_verdict(0.96) == "in proportion" and growth_verdict(None) == ""
    assert end_to_end_exponent([(32, 64.0), (8, 1.0), (16, 100.0)]) == pytest.approx(3.0)  # first and last by x
    assert end_to_end_exponent([(8, 1.0)]) is None and end_to_end_exponent([(8, 1.0), (8, 2.0)]) is None
    assert end_to_end_exponent([(8, 0.0), (16, 2.0)]) is None  # one usable point


def test_contended_rows_are_left_out_of_the_latency_fits_unless_included():
    rows = _conv_rows()
    for r in rows[:4]:  # timed beside another workload: ten times slower
        r.update(latency_ms=10 * r["latency_ms"], contended=True)
    rows.append(_row("conv", "cnn", 8, 128, 1e-4 * 8 * 128**2, status="error", error="boom", latency_ms=None))
    quiet = _one(growth_frame(rows), "conv")
    assert (quiet["latency_n"], quiet["latency_timed"]) == (5, 9)
    assert quiet["latency_frames"] == pytest.approx(1.0) and quiet["latency_size"] == pytest.approx(2.0)
    assert quiet["macs_n"] == 10  # MACs are counted, contended or failed alike
    both = _one(growth_frame(rows, include_contended=True), "conv")
    assert (both["latency_n"], both["latency_timed"]) == (9, 9) and both["latency_frames"] != pytest.approx(1.0)
    # CSV cells spell the flag as text.
    as_text = [dict(r, contended=str(r["contended"])) for r in rows]
    assert _one(growth_frame(as_text), "conv")["latency_n"] == 5


def test_no_section_when_nothing_varies_but_the_batch():
    rows = [_row("a", "x", 16, 112, 40.0 * b, 10.0 * b, batch=b) for b in (1, 2, 4)]
    rows += [_row("b", "y", 16, 112, 4.0, 1.0)]
    assert len(growth_frame(rows)) == 0 and growth_lines(growth_frame(rows)) == []
    assert len(growth_frame([])) == 0


def _save(path, rows):
    path.mkdir(parents=True, exist_ok=True)
    (path / "results.json").write_text(json.dumps({"schema_version": SCHEMA_VERSION, "environment": {}, "rows": rows}))
    return path


@pytest.mark.parametrize("varied", [True, False])
def test_the_report_has_the_section_only_when_a_run_varies_the_clip(tmp_path, varied):
    rows = _conv_rows() if varied else _conv_rows()[:1]
    text, paths, _ = write_report([_save(tmp_path / "run", rows)], tmp_path / "out", plots=False, variants=False)
    assert ("## How cost grows with clip length and frame size" in text) is varied
    csv = (tmp_path / "out" / "growth.csv").read_text().splitlines()
    assert csv[0].startswith("arch,family,mode,dtype,device,batch,frames,sizes,macs_frames,")
    assert len(csv) == (2 if varied else 1) and tmp_path / "out" / "growth.csv" in paths


def test_the_html_page_carries_the_section(tmp_path):
    pytest.importorskip("plotly", reason="the html extra is not installed (pip install 'vbench[html]')")
    write_report([_save(tmp_path / "run", _conv_rows())], tmp_path / "out", plots=False, variants=False, html=True)
    page = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert "<h2>How cost grows with clip length and frame size</h2>" in page and 'id="t-growth"' in page


def test_the_growth_figure_draws_what_varies(tmp_path):
    pytest.importorskip("matplotlib")
    import xml.etree.ElementTree as ET

    from bench.report.plots import plot_growth

    rows = [*_conv_rows(), *[_row("vit", "attn", t, s, _attention_macs(t, s)) for t in FRAMES for s in SIZES]]
    paths = plot_growth(rows, tmp_path / "growth")
    assert [p.suffix for p in paths] == [".png", ".svg"] and paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert ET.parse(paths[1]).getroot().tag.endswith("svg")
    assert plot_growth([_row("a", "x", 16, 112, 4.0)], tmp_path / "none") == []  # one clip: nothing to draw
