"""The interactive page of ``vbench report --html`` and ``vbench history --html``: one self-contained HTML file.

A third renderer beside :mod:`bench.report.markdown` (Markdown) and :mod:`bench.report.plots`
(matplotlib): it shows the same frames (:data:`bench.report.tradeoff.SECTIONS`) and
the same cells (:class:`bench.report.markdown.TableText`), with plotly's JavaScript
inlined, so that the page works offline, from a file, with no server.

plotly is an optional extra (``pip install 'vbench[html]'``), imported only
when a page is written (:func:`plotly_js`). Family colours are the registry's
(:class:`archs.Family`), read as :mod:`bench.report.plots` reads them: only when a page
is drawn, never by the commands that read runs without ``--html``.

Every string from a file (architecture names, sources, errors, paths) reaches
the page either through :func:`html.escape` or inside the page's JSON data
(:func:`_json_for_script`: ``<``, ``>``, ``&`` and the line separators as
``\\uXXXX``, so that nothing in it can close the script element), and the
page's JavaScript puts text into the document with ``textContent`` only.
"""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from bench.errors import UsageError
from bench.report import markdown as report_md
from bench.report.history import HISTORY_METRICS, OTHER_MARKS, History
from bench.report.markdown import TableText

__all__ = [
    "chart_points",
    "history_html",
    "plotly_js",
    "report_html",
    "require_plotly",
]

EXTRA_HINT = "--html needs plotly: pip install 'vbench[html]'"


def require_plotly() -> None:
    """Check, before any long work, that plotly can be imported.

    Raises:
        UsageError: plotly is not installed (the message names the extra).
    """
    try:
        import plotly.offline  # noqa: F401
    except ImportError:
        raise UsageError(EXTRA_HINT) from None


def plotly_js() -> str:
    """plotly.js, to inline in a ``<script>`` element."""
    require_plotly()
    from plotly.offline import get_plotlyjs

    # The bundle holds no "</script"; should a release hold one, it must not end the element early.
    return re.sub(r"</(script)", r"<\\/\1", get_plotlyjs(), flags=re.IGNORECASE)


# ---------------------------------------------------------------- data for the page (numbers, no formatting)


def _clean(v: Any) -> Any:
    """A value for JSON: NaN, inf and pandas' missing values become null; numpy scalars plain Python."""
    if v is None:
        return None
    if isinstance(v, bool):
        return v
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, (int, float, str, bool)):
        return v
    try:
        if pd.isna(v):
            return None
    except (TypeError, ValueError):
        pass
    return str(v)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: _clean(v) for k, v in row.items()} for row in frame.astype(object).to_dict("records")]


def chart_points(rows: Sequence[dict[str, Any]], accuracy: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """The trade-off chart's points: the trade-off table (:func:`bench.report.tradeoff.tradeoff_frame`) of each
    setting (device, dtype, mode), with that setting and the timing row's MFU.

    A run of one setting (the usual case) gives exactly the trade-off table's rows; runs of several devices or
    dtypes give one point per row and setting, which the page's filters choose between.
    """
    # The trade-off table's own grouping and choice of timing row, so that the MFU is the latency's row's.
    from bench.report.tradeoff import _label, _timing_row, tradeoff_frame
    from bench.results.schema import clip_of

    settings: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for row in rows:
        key = (str(row.get("device")), str(row.get("dtype")), str(row.get("mode")))
        settings.setdefault(key, []).append(row)
    frames = []
    for (device, dtype, mode), group in settings.items():
        frame = tradeoff_frame(group, accuracy)
        by_config: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for row in group:
            by_config.setdefault((_label(row), clip_of(row)), []).append(row)
        mfu = []
        for r in frame.itertuples():
            timed = _timing_row(by_config[(r.arch, r.input)])
            ok = timed is not None and timed.get("status") == "ok"
            mfu.append(timed.get("mfu") if ok and timed is not None else None)
        frame.insert(2, "device", device)
        frame.insert(3, "dtype", dtype)
        frame.insert(4, "mode", mode)
        frame["mfu"] = mfu
        frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _family_colours(families: Sequence[str]) -> dict[str, str]:
    """Each family's colour, from the registry (grey for a family it does not describe)."""
    import archs

    return {f: archs.get_family(f).color for f in families}


# ---------------------------------------------------------------- HTML pieces


def _json_for_script(data: Any) -> str:
    """``data`` as JSON that is safe inside ``<script type="application/json">``: no ``<``, ``>`` or ``&``."""
    text = json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _prose(text: str) -> str:
    """One of our own sentences (with Markdown ``*emphasis*`` and ``code`` spans) as HTML."""
    out = _e(text)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    return re.sub(r"\*([^*]+)\*", r"<em>\1</em>", out)


_NUMERIC = re.compile(r"^[+-]?[\d,]*\.?\d+(?:e[+-]?\d+)?")


def _sort_key(cell: str) -> str:
    """The number a cell starts with (``"651.55 (noisy)"``, ``"41.3%"``, ``"+1,024"``), for sorting; else ''."""
    m = _NUMERIC.match(cell.strip())
    return m.group().replace(",", "") if m else ""


def _table(t: TableText, table_id: str, marks: Sequence[Sequence[tuple[str, str]]] = ()) -> str:
    """A sortable table (click a header); every cell escaped.

    Args:
        marks: Per body row, per cell: (CSS class, title) to add, ``("", "")`` for none.
    """
    head = "".join(
        f'<th class="{"l" if h in t.left else "r"}" data-col="{i}" tabindex="0">{_e(h)}</th>'
        for i, h in enumerate(t.header)
    )
    rows = []
    for n, row in enumerate(t.body):
        cells = []
        for i, (h, cell) in enumerate(zip(t.header, row)):
            key = _sort_key(cell) if h not in t.left else ""
            attr = f' data-v="{_e(key)}"' if key else ""
            cls, title = marks[n][i] if marks else ("", "")
            attr += f' title="{_e(title)}"' if title else ""
            cells.append(f'<td class="{"l" if h in t.left else "r"}{" " + cls if cls else ""}"{attr}>{_e(cell)}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f'<div class="scroll"><table class="sortable" id="{_e(table_id)}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


_STYLE = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1400px;padding:0 16px;color:#222}
h1{font-size:22px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ddd}
.scroll{overflow:auto;max-height:640px;border:1px solid #e3e3e3}
table{border-collapse:collapse;font-size:12.5px;white-space:nowrap}
th,td{padding:3px 7px;border-bottom:1px solid #eee}th{position:sticky;top:0;background:#f6f6f6;cursor:pointer;user-select:none}
th.asc::after{content:" \\25B2"}th.desc::after{content:" \\25BC"}
td.r,th.r{text-align:right}td.l,th.l{text-align:left}
.controls{display:flex;flex-wrap:wrap;gap:10px 22px;align-items:flex-start;margin:8px 0}
.controls fieldset{border:1px solid #ddd;padding:4px 8px;max-height:140px;overflow:auto}
.controls label{margin-right:8px;white-space:nowrap;display:inline-block}
.note{color:#555;font-size:12.5px}.chart{width:100%;height:620px}
td.fail{background:#fde0dc;color:#a00;font-weight:600}td.better{background:#e3f4e1}td.shown{background:#fff6d5}
code{background:#f3f3f3;padding:0 3px}
"""

_SORT_JS = """
function vbSortable(root){
  root.querySelectorAll('table.sortable').forEach(function(table){
    table.querySelectorAll('th').forEach(function(th){
      function sort(){
        var col=+th.dataset.col, asc=!th.classList.contains('asc');
        table.querySelectorAll('th').forEach(function(o){o.classList.remove('asc','desc');});
        th.classList.add(asc?'asc':'desc');
        var body=table.tBodies[0], rows=Array.prototype.slice.call(body.rows);
        function key(r){var c=r.cells[col];return c===undefined?'':(c.dataset.v!==undefined?c.dataset.v:c.textContent);}
        var numeric=rows.every(function(r){var k=key(r);return k===''||k==='-'||!isNaN(parseFloat(k));});
        rows.sort(function(a,b){
          var x=key(a), y=key(b), d;
          if(numeric){var fx=parseFloat(x), fy=parseFloat(y);
            if(isNaN(fx)&&isNaN(fy))d=0;else if(isNaN(fx))return 1;else if(isNaN(fy))return -1;else d=fx-fy;}
          else d=x.localeCompare(y,undefined,{numeric:true});
          return asc?d:-d;});
        rows.forEach(function(r){body.appendChild(r);});
      }
      th.addEventListener('click',sort);
      th.addEventListener('keydown',function(ev){if(ev.key==='Enter')sort();});
    });
  });
}
vbSortable(document);
"""


def _page(title: str, body: str, data: Any, script: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width,initial-scale=1"><title>{_e(title)}</title>'
        f"<style>{_STYLE}</style><script>{plotly_js()}</script></head><body>\n{body}\n"
        f'<script type="application/json" id="vbench-data">{_json_for_script(data)}</script>\n'
        f"<script>{_SORT_JS}\n{script}</script></body></html>\n"
    )


# ---------------------------------------------------------------- the report page

_REPORT_JS = r"""
var D=JSON.parse(document.getElementById('vbench-data').textContent);
var COSTS={gmacs:{label:'GMACs per clip (log)',log:true,better:'low',fmt:function(v){return v.toFixed(2);}},
  latency_ms:{label:'latency (ms, log)',log:true,better:'low',fmt:function(v){return v.toFixed(2)+' ms';}},
  peak_mem_mib:{label:'peak memory (MiB, log)',log:true,better:'low',fmt:function(v){return v.toFixed(0)+' MiB';}},
  mfu:{label:'MFU (achieved / measured peak; higher is better)',log:false,better:'high',tickformat:'.0%',fmt:function(v){return (100*v).toFixed(1)+' %';}}};
function num(v,f){return v===null||v===undefined?'-':f(v);}
function checked(name){var out={};document.querySelectorAll('input[data-filter="'+name+'"]').forEach(function(c){out[c.value]=c.checked;});return out;}
function visiblePoints(cost){
  var f={family:checked('family'),device:checked('device'),dtype:checked('dtype'),mode:checked('mode'),input:checked('input')};
  return D.points.filter(function(p){
    return f.family[p.family]&&f.device[p.device]&&f.dtype[p.dtype]&&f.mode[p.mode]&&f.input[p.input];});
}
// Pareto: no other point at most as costly (at least as good, for MFU) and at least as accurate, better in one.
function pareto(pts,cost){
  var hi=COSTS[cost].better==='high';
  return pts.filter(function(p){
    return !pts.some(function(q){
      if(q===p)return false;
      var c=hi?q[cost]>=p[cost]:q[cost]<=p[cost], a=q.top1>=p.top1;
      return c&&a&&(q[cost]!==p[cost]||q.top1>p.top1);});
  });
}
function hoverText(p){
  var acc=p.top1===null?'-':p.top1.toFixed(1)+' % ('+(p.accuracy_kind||'')+')';
  return ['<b>'+esc(p.arch)+'</b>  '+esc(p.family),
    'input '+esc(p.input)+', '+esc(p.device+' '+p.dtype+' '+p.mode),
    'params '+num(p.params_m,function(v){return v.toFixed(2)+' M';})+', GMACs '+num(p.gmacs,function(v){return v.toFixed(2);}),
    'latency '+num(p.latency_ms,function(v){return v.toFixed(2)+' ms';})+(p.noisy?' (noisy)':'')+(p.contended?' (contended)':'')+', peak memory '+num(p.peak_mem_mib,function(v){return v.toFixed(0)+' MiB';}),
    'MFU '+num(p.mfu,function(v){return (100*v).toFixed(1)+' %';}),
    'top-1 '+acc,
    'source: '+esc(p.accuracy_source||'-'),
    esc([p.dataset,p.views,p.pretrain].filter(function(x){return x;}).join(', '))].join('<br>');
}
function esc(s){return String(s===null||s===undefined?'':s).replace(/&/g,'&amp;').replace(/</g,'&lt;').replace(/>/g,'&gt;');}
function drawTradeoff(){
  var cost=document.getElementById('cost').value, spec=COSTS[cost];
  var pts=visiblePoints(cost), drawn=pts.filter(function(p){return p[cost]!==null&&p.top1!==null;});
  var labels=document.getElementById('labels').checked, traces=[];
  D.families.forEach(function(fam){
    var g=drawn.filter(function(p){return p.family===fam;});
    if(!g.length)return;
    traces.push({type:'scatter',mode:labels?'markers+text':'markers',name:fam,x:g.map(function(p){return p[cost];}),
      y:g.map(function(p){return p.top1;}),text:g.map(function(p){return p.arch;}),textposition:'top center',
      textfont:{size:9},hovertext:g.map(hoverText),hoverinfo:'text',customdata:g.map(function(p){return p.arch;}),
      marker:{size:g.map(function(p){return p.accuracy_kind==='measured'?11:9;}),color:g.map(function(p){return p.accuracy_kind==='measured'?'white':D.colours[fam];}),
        line:{color:D.colours[fam],width:g.map(function(p){return p.accuracy_kind==='measured'?2:0.5;})},
        symbol:g.map(function(p){return D.symbols[p.input];})}});
  });
  // A latency timed on a shared machine is drawn, not ranked (unless --include-contended).
  var ranked=drawn.filter(function(p){return D.include_contended||!p.contended||cost==='gmacs'||cost==='peak_mem_mib';});
  var front=pareto(ranked,cost).sort(function(a,b){return a[cost]-b[cost];});
  traces.push({type:'scatter',mode:'lines',name:'Pareto front',x:front.map(function(p){return p[cost];}),
    y:front.map(function(p){return p.top1;}),line:{shape:spec.better==='high'?'vh':'hv',dash:'dash',color:'#666',width:1.2},hoverinfo:'skip'});
  Plotly.react('tradeoff',traces,{xaxis:{title:{text:spec.label},type:spec.log?'log':'linear',tickformat:spec.tickformat||''},
    yaxis:{title:{text:'top-1 (%) at the same input'}},hovermode:'closest',margin:{t:30},legend:{title:{text:'family'}}},{responsive:true});
  var missing=pts.filter(function(p){return p[cost]===null||p.top1===null;});
  document.getElementById('tradeoff-count').textContent=drawn.length+' points drawn; Pareto front: '+front.map(function(p){return p.arch;}).join(', ')+'.';
  document.getElementById('tradeoff-missing').textContent=missing.length?('Not drawn (no top-1 or no '+cost+'): '+
    missing.map(function(p){return p.arch+' '+p.input;}).join(', ')+'.'):'';
}
function drawRoofline(){
  var sel=document.getElementById('roof'); if(!sel)return;
  var roof=D.rooflines[+sel.value], famOn=checked('family');
  var pts=D.roofline_points.filter(function(p){return p.device===roof.device&&p.dtype===roof.dtype&&famOn[p.family]!==false;});
  var xs=pts.map(function(p){return p.intensity;}).concat([roof.ridge_flop_per_byte]);
  var lo=Math.min.apply(null,xs)/4, hi=Math.max.apply(null,xs)*4, line=[], n=100;
  for(var i=0;i<=n;i++){var x=lo*Math.pow(hi/lo,i/n);line.push([x,Math.min(roof.peak_tflops,roof.bandwidth_gbs*x/1e3)]);}
  var traces=[{type:'scatter',mode:'lines',name:'measured roof',x:line.map(function(p){return p[0];}),y:line.map(function(p){return p[1];}),
    line:{color:'black'},hoverinfo:'skip'}];
  D.families.forEach(function(fam){
    var g=pts.filter(function(p){return p.family===fam;}); if(!g.length)return;
    traces.push({type:'scatter',mode:'markers',name:fam,x:g.map(function(p){return p.intensity;}),y:g.map(function(p){return p.achieved_tflops;}),
      marker:{color:D.colours[fam],size:9},hoverinfo:'text',hovertext:g.map(function(p){return '<b>'+esc(p.arch)+'</b> '+esc(p.input)+' b'+p.batch+
        '<br>'+p.intensity.toFixed(1)+' FLOP/byte, '+p.achieved_tflops.toFixed(3)+' TFLOP/s<br>MFU '+num(p.mfu,function(v){return (100*v).toFixed(1)+' %';})+', bound: '+esc(p.bound||'-');})});
  });
  Plotly.react('roofline',traces,{xaxis:{type:'log',title:{text:'arithmetic intensity (FLOP per byte read and written, log)'}},
    yaxis:{type:'log',title:{text:'achieved TFLOP/s (log)'}},hovermode:'closest',margin:{t:30},
    shapes:[{type:'line',x0:roof.ridge_flop_per_byte,x1:roof.ridge_flop_per_byte,yref:'paper',y0:0,y1:1,line:{dash:'dot',color:'#999'}}]},{responsive:true});
}
function drawKinds(){
  if(!document.getElementById('kinds'))return;
  var field=document.getElementById('kind-field').value, traces=[];
  D.kinds.forEach(function(kind){
    traces.push({type:'bar',name:kind,x:D.breakdowns.map(function(b){return b.label;}),
      y:D.breakdowns.map(function(b){return 100*((b.kinds[kind]||{})[field]||0);}),marker:{color:D.kind_colours[kind]||'#999'},
      hovertemplate:'%{x}<br>'+kind+': %{y:.1f} %<extra></extra>'});
  });
  Plotly.react('kinds',traces,{barmode:'stack',yaxis:{range:[0,100],title:{text:field==='pct_time'?'% of time':'% of MACs'}},margin:{t:30}},{responsive:true});
}
document.querySelectorAll('.controls input,.controls select').forEach(function(c){
  c.addEventListener('change',function(){drawTradeoff();drawRoofline();drawKinds();});});
drawTradeoff();drawRoofline();drawKinds();
"""


def _checkboxes(name: str, values: Sequence[str], colours: Mapping[str, str] | None = None) -> str:
    items = []
    for v in values:
        swatch = f'<span style="color:{_e(colours[v])}">&#9632;</span> ' if colours else ""
        items.append(
            f'<label><input type="checkbox" data-filter="{_e(name)}" value="{_e(v)}" checked> {swatch}{_e(v)}</label>'
        )
    return f"<fieldset><legend>{_e(name)}</legend>{''.join(items)}</fieldset>"


_SYMBOLS = ("circle", "square", "triangle-up", "diamond", "triangle-down", "cross", "star", "x", "pentagon", "hexagon")


def report_html(
    frames: Mapping[str, pd.DataFrame],
    points: pd.DataFrame,
    sources: Sequence[str],
    *,
    rooflines: Mapping[tuple[str, str], Mapping[str, Any]] | None = None,
    breakdowns: Sequence[dict[str, Any]] = (),
    titles: Mapping[str, str] | None = None,
    include_contended: bool = False,
) -> str:
    """The report as one self-contained HTML page.

    Args:
        frames: The report's frames by section name (:data:`bench.report.tradeoff.SECTIONS`).
        points: :func:`chart_points` of the same rows and accuracies.
        sources: The runs' paths, as given.
        rooflines: (device, dtype) -> the measured roofline the runs recorded.
        breakdowns: ``inspect --time --json`` breakdowns (the time-by-kind chart and table).
        titles: Each section's title (by name); default the names.
        include_contended: Points timed on a shared machine (``contended``) join the fronts of the costs
            that come from their latency (latency, MFU); by default they are drawn but not on those fronts.
    """
    from bench.results.records import KIND_COLOURS, KINDS

    titles = titles or {}
    families = sorted({str(f) for f in points["family"].dropna()}) if len(points) else []
    colours = _family_colours(families)
    inputs = sorted({str(v) for v in points["input"]}) if len(points) else []
    rooflines = rooflines or {}
    thr = frames.get("throughput", pd.DataFrame())
    family_of = {str(r.arch): str(r.family) for r in points.itertuples()} if len(points) else {}
    roof_pts = []
    if len(thr):
        infer = thr[(thr["mode"] == "infer") & thr["intensity"].notna() & thr["achieved_tflops"].notna()]
        infer = infer[infer["batch"] == infer.groupby(["device", "dtype", "arch"])["batch"].transform("max")]
        roof_pts = _records(infer)
        for p in roof_pts:
            p["family"] = family_of.get(str(p["arch"]), "")
    roofs = [
        {"device": d, "dtype": t, **{k: _clean(v) for k, v in r.items()}}
        for (d, t), r in rooflines.items()
        if any(p["device"] == d and p["dtype"] == t for p in roof_pts)
    ]
    kinds = [k for k in KINDS if any(any(x["kind"] == k for x in b["kinds"]) for b in breakdowns)]
    data = {
        "include_contended": include_contended,
        "points": _records(points),
        "families": families,
        "colours": colours,
        "symbols": {clip: _SYMBOLS[i % len(_SYMBOLS)] for i, clip in enumerate(inputs)},
        "rooflines": roofs,
        "roofline_points": roof_pts,
        "kinds": kinds,
        "kind_colours": {k: KIND_COLOURS.get(k, "#999999") for k in kinds},
        "breakdowns": [
            {"label": f"{b['arch']} {report_md.breakdown_setting(b)}", "kinds": {x["kind"]: x for x in b["kinds"]}}
            for b in breakdowns
        ],
    }
    parts = [
        "<h1>vbench report</h1>",
        f'<p class="note">From {", ".join(f"<code>{_e(s)}</code>" for s in sources)}. MACs are multiply-accumulates '
        "of conv, linear and matmul layers (FLOPs = 2 x MACs), per clip. Latency: median per iteration of the timing "
        "row (inference, smallest batch). Top-1 at the same input: <em>measured</em> by <code>vbench evaluate</code>, "
        "<em>yours</em> (an accuracy file) or <em>published</em> (datasets, views and pretraining differ between "
        "papers). Hover over a point for its details; click a table header to sort.</p>",
        "<h2>Trade-off chart</h2>",
        '<div class="controls"><label>cost axis <select id="cost">'
        '<option value="gmacs">GMACs</option><option value="latency_ms">latency</option>'
        '<option value="peak_mem_mib">peak memory</option><option value="mfu">MFU</option></select></label>'
        '<label><input type="checkbox" id="labels"> names on the points</label></div>',
        '<div class="controls">'
        + _checkboxes("family", families, colours)
        + _checkboxes("device", sorted({str(v) for v in points.get("device", [])}))
        + _checkboxes("dtype", sorted({str(v) for v in points.get("dtype", [])}))
        + _checkboxes("mode", sorted({str(v) for v in points.get("mode", [])}))
        + _checkboxes("input", inputs)
        + "</div>",
        '<div id="tradeoff" class="chart"></div>',
        '<p class="note" id="tradeoff-count"></p><p class="note" id="tradeoff-missing"></p>',
        '<p class="note">The Pareto front is that of the points shown: no other shown point is at most as costly '
        "(for MFU: at least as high) and at least as accurate. Hollow markers: measured accuracy.</p>",
    ]
    if roofs:
        options = "".join(
            f'<option value="{i}">{_e(r.get("device_name") or r["device"])}: {_e(r["device"])} {_e(r["dtype"])}</option>'
            for i, r in enumerate(roofs)
        )
        parts += [
            "<h2>Roofline</h2>",
            f'<div class="controls"><label>device and dtype <select id="roof">{options}</select></label></div>',
            '<div id="roofline" class="chart"></div>',
            '<p class="note">Each timed architecture (inference, largest batch) at its arithmetic intensity and '
            "achieved TFLOP/s, under the device's measured roofs; the dotted line is the ridge point.</p>",
        ]
    if breakdowns:
        parts += [
            "<h2>Where the time goes, by kind of work</h2>",
            '<div class="controls"><label>share of <select id="kind-field"><option value="pct_time">time</option>'
            '<option value="pct_macs">MACs</option></select></label></div>',
            '<div id="kinds" class="chart"></div>',
        ]
    parts += _sections_html(frames, titles, breakdowns)
    return _page("vbench report", "\n".join(parts), data, _REPORT_JS)


def _sections_html(
    frames: Mapping[str, pd.DataFrame], titles: Mapping[str, str], breakdowns: Sequence[dict[str, Any]]
) -> list[str]:
    """Every table of report.md, in its order, with the same cells."""
    out: list[str] = []
    trade = frames.get("tradeoff")
    if trade is not None and len(trade):
        out += [
            f"<h2>{_e(titles.get('tradeoff', 'tradeoff'))}</h2>",
            _table(report_md.tradeoff_table(trade), "t-tradeoff"),
        ]
        timings = sorted({str(t) for t in trade["timing"] if t})
        if timings:
            out.append(f'<p class="note">Timing rows: {_e("; ".join(timings))}.</p>')
        sourced = trade[trade["accuracy_source"].notna()]
        if len(sourced):
            items = "".join(
                f"<li>{_e(r.arch)} at {_e(r.input)}: {_e(r.accuracy_source)}</li>" for r in sourced.itertuples()
            )
            out.append(f'<details><summary>Accuracy sources</summary><ul class="note">{items}</ul></details>')
    failures = frames.get("failures")
    if failures is not None:
        out.append(f"<h2>{_e(titles.get('failures', 'failures'))}</h2>")
        out.append(_table(report_md.failures_table(failures), "t-failures") if len(failures)
                   else f"<p>{_e(report_md.FAILURES_NONE)}</p>")  # fmt: skip
    for name, note, table in (
        ("paper", report_md.PAPER_NOTE, report_md.paper_table),
        ("scaling", report_md.SCALING_NOTE, report_md.scaling_table),
        ("growth", report_md.GROWTH_NOTE, report_md.growth_table),
    ):
        frame = frames.get(name)
        if frame is not None and len(frame):
            out += [f"<h2>{_e(titles.get(name, name))}</h2>", f'<p class="note">{_prose(note)}</p>',
                    _table(table(frame), f"t-{name}")]  # fmt: skip
    thr = frames.get("throughput")
    if (thr is not None and len(thr)) or breakdowns:
        out.append(f"<h2>{_e(titles.get('throughput', 'throughput'))}</h2>")
    if thr is not None and len(thr):
        out.append(f'<p class="note">{_prose(report_md.THROUGHPUT_NOTE)}</p>')
        for i, g in enumerate(report_md.throughput_tables(thr)):
            below = (
                "below the ridge: " + ", ".join(f"<code>{_e(a)}</code>" for a in g.below_ridge) + "."
                if g.below_ridge
                else "every architecture is at or right of the ridge point."
            )
            out += [f"<p><b>{_e(g.device)} {_e(g.dtype)}, {_e(g.mode)}, batch {g.batch}</b>: {below}</p>",
                    _table(g.table, f"t-throughput-{i}")]  # fmt: skip
    if breakdowns:
        out += [
            f'<p class="note">{_prose(report_md.KINDS_NOTE)}</p>',
            _table(report_md.kinds_table(breakdowns), "t-kinds"),
        ]
    return out


# ---------------------------------------------------------------- history across runs

_HISTORY_JS = r"""
var D=JSON.parse(document.getElementById('vbench-data').textContent);
function esc(s){return String(s===null||s===undefined?'':s).replace(/&/g,'&amp;').replace(/</g,'&lt;').replace(/>/g,'&gt;');}
function drawHistory(){
  var metric=document.getElementById('metric').value, rel=document.getElementById('relative').checked;
  var only=document.getElementById('changed').checked, filt=document.getElementById('archfilter').value.toLowerCase();
  var traces=[], x=D.runs.map(function(r,i){return '#'+(i+1)+' '+r.git_sha;});
  var shown=0;
  D.series.forEach(function(s){
    if(filt&&s.arch.toLowerCase().indexOf(filt)<0)return;
    var pts=s.points.filter(function(p){return p[metric]!==null;});
    if(!pts.length)return;
    if(only&&!pts.some(function(p){return p[metric+'_mark'];}))return;
    var base=pts[0][metric];
    var ys=pts.map(function(p){return rel?p[metric]/base:p[metric];});
    shown++;
    traces.push({type:'scatter',mode:'lines+markers',name:s.arch+' '+s.config,x:pts.map(function(p){return x[p.run];}),y:ys,
      line:{color:D.colours[s.family]||'#999',width:1},
      marker:{size:pts.map(function(p){return p[metric+'_fails']?13:6;}),symbol:pts.map(function(p){return p[metric+'_fails']?'x':'circle';}),
        color:pts.map(function(p){return p[metric+'_fails']?'#d00':(D.colours[s.family]||'#999');})},
      hoverinfo:'text',hovertext:pts.map(function(p){return '<b>'+esc(s.arch)+'</b> '+esc(s.config)+'<br>'+esc(x[p.run])+': '+p[metric]+
        (p[metric+'_mark']?'<br>'+esc(p[metric+'_mark']+' '+p[metric+'_verdict']):'');})});
  });
  Plotly.react('history',traces,{xaxis:{type:'category',categoryorder:'array',categoryarray:x,range:[-0.5,x.length-0.5],title:{text:'run (oldest first)'}},yaxis:{title:{text:rel?'relative to the first run':D.labels[metric]}},
    hovermode:'closest',showlegend:traces.length<=30,margin:{t:30}},{responsive:true});
  document.getElementById('history-count').textContent=shown+' configurations shown.';
  document.querySelectorAll('.metric-table').forEach(function(t){t.style.display=t.dataset.metric===metric?'':'none';});
}
document.querySelectorAll('.controls input,.controls select').forEach(function(c){c.addEventListener('input',drawHistory);c.addEventListener('change',drawHistory);});
drawHistory();
"""

_MARK_CLASS = {"x": "fail", "!": "fail", "+": "fail", "-": "better", "~": "shown"}


_FORMATS = {"params": ".4f", "gmacs": ".4f", "latency_ms": ".2f"}
"""How the history's tables write a value (the format spec, by metric); any other: ``.1f``."""


def _fmt_value(metric: str, v: Any) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    return format(v, _FORMATS.get(metric, ".1f"))


def history_html(history: History) -> str:
    """The history as one self-contained HTML page: a chart of the chosen metric across runs and a table per metric,
    each change marked as ``vbench compare`` marks it (regressions in red)."""
    frame = history.frame
    families = sorted({str(f) for f in frame["family"].dropna()}) if len(frame) else []
    series = []
    if len(frame):
        for (arch, config), group in frame.groupby(["arch", "config"], sort=True):
            series.append({"arch": arch, "config": config, "family": str(group["family"].iloc[0]),
                           "points": _records(group.drop(columns=["arch", "config", "family"]))})  # fmt: skip
    data = {
        "runs": history.runs,
        "series": series,
        "colours": _family_colours(families),
        "labels": dict(HISTORY_METRICS),
    }
    runs_table = TableText(
        ["#", "run", "git_sha", "time (earliest row)", "machine", "rows"],
        [[str(i + 1), r["path"], r["git_sha"], r["timestamp"], r["device_name"], str(r["rows"])]
         for i, r in enumerate(history.runs)],
        ("run", "git_sha", "time (earliest row)", "machine"),
    )  # fmt: skip
    judged = (*(m for m, _ in HISTORY_METRICS), *OTHER_MARKS)
    n_fail = int(sum(frame[f"{m}_fails"].sum() for m in judged)) if len(frame) else 0
    options = "".join(f'<option value="{m}">{_e(label)}</option>' for m, label in HISTORY_METRICS)
    parts = [
        "<h1>vbench history</h1>",
        f"<p>{len(history.runs)} runs, oldest first; {n_fail} change{'s' if n_fail != 1 else ''} that "
        "<code>vbench compare</code> calls a regression (marked in red). Each configuration is compared with the "
        "last earlier run that holds it (latency and memory: that measured them), with the tolerances of "
        "<code>[tool.vbench.compare]</code>.</p>",
        *[f'<p class="note">{_e(n)}</p>' for n in history.notes],
        "<h2>Runs</h2>",
        _table(runs_table, "t-runs"),
        "<h2>Across runs</h2>",
        f'<div class="controls"><label>metric <select id="metric">{options}</select></label>'
        '<label><input type="checkbox" id="relative"> relative to the first run</label>'
        '<label><input type="checkbox" id="changed"> only configurations that changed</label>'
        '<label>arch contains <input type="search" id="archfilter" size="14"></label></div>',
        '<div id="history" class="chart"></div><p class="note" id="history-count"></p>',
        '<p class="note">Marks as in <code>vbench compare</code>: <code>x</code> an exact count changed, <code>!</code> '
        "a new failure, <code>+</code> worse beyond the tolerance, significantly (these three are regressions); "
        "<code>-</code> better; <code>~</code> beyond the tolerance but not significant.</p>",
    ]
    for metric, label in HISTORY_METRICS:
        header = ["arch", "configuration", *[f"#{i + 1} {r['git_sha']}" for i, r in enumerate(history.runs)]]
        body: list[list[str]] = []
        classes: list[list[tuple[str, str]]] = []
        for s in series:
            cells = ["-"] * len(history.runs)
            marks = [("", "")] * len(history.runs)
            for p in s["points"]:
                mark = p[f"{metric}_mark"]
                cells[p["run"]] = _fmt_value(metric, p[metric]) + (f" {mark}" if mark else "")
                marks[p["run"]] = (_MARK_CLASS.get(mark, ""), p[f"{metric}_verdict"])
            body.append([s["arch"], s["config"], *cells])
            classes.append([("", ""), ("", ""), *marks])
        table = _table(TableText(header, body, ("arch", "configuration")), f"t-{metric}", classes)
        parts.append(f'<div class="metric-table" data-metric="{metric}"><h3>{_e(label)}</h3>{table}</div>')
    others = [
        [f"#{int(r['run']) + 1} {history.runs[int(r['run'])]['git_sha']}", str(r["arch"]), str(r["config"]),
         str(r[f"{m}_mark"]), str(r[f"{m}_verdict"])]
        for _, r in frame.iterrows() for m in OTHER_MARKS if r[f"{m}_mark"]
    ] if len(frame) else []  # fmt: skip
    if others:
        parts += ["<h2>Status and other changes</h2>",
                  _table(TableText(["run", "arch", "configuration", "mark", "verdict"], others,
                                   ("run", "arch", "configuration", "mark", "verdict")), "t-other")]  # fmt: skip
    return _page("vbench history", "\n".join(parts), data, _HISTORY_JS)
