"""The page of ``vbench report --html``: the trade-off chart, the roofline, time by kind, and every table of
report.md, in one self-contained HTML file (its pieces: :mod:`bench.report.html`).

It shows the same frames as the Markdown (:data:`bench.report.tradeoff.SECTIONS`), with the same cells; the
chart's points are :func:`chart_points`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from bench.report import markdown as report_md
from bench.report.html import esc, family_colours, json_records, json_value, page, prose, table_html

__all__ = ["chart_points", "report_html"]


def chart_points(rows: Sequence[dict[str, Any]], accuracy: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """The trade-off chart's points: the trade-off table (:func:`bench.report.tradeoff.tradeoff_frame`) of each
    setting (device, dtype, mode), with that setting and the timing row's MFU.

    A run of one setting (the usual case) gives exactly the trade-off table's rows; runs of several devices or
    dtypes give one point per row and setting, which the page's filters choose between.
    """
    # The trade-off table's own grouping and choice of timing row, so that the MFU is the latency's row's.
    from bench.report.tradeoff import config_label, timing_row, tradeoff_frame
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
            by_config.setdefault((config_label(row), clip_of(row)), []).append(row)
        mfu = []
        for r in frame.itertuples():
            timed = timing_row(by_config[(r.arch, r.input)])
            ok = timed is not None and timed.get("status") == "ok"
            mfu.append(timed.get("mfu") if ok and timed is not None else None)
        frame.insert(2, "device", device)
        frame.insert(3, "dtype", dtype)
        frame.insert(4, "mode", mode)
        frame["mfu"] = mfu
        frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


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
        swatch = f'<span style="color:{esc(colours[v])}">&#9632;</span> ' if colours else ""
        items.append(
            f'<label><input type="checkbox" data-filter="{esc(name)}" value="{esc(v)}" checked> {swatch}{esc(v)}</label>'
        )
    return f"<fieldset><legend>{esc(name)}</legend>{''.join(items)}</fieldset>"


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
    data = _page_data(frames, points, rooflines or {}, breakdowns, include_contended)
    parts = _tradeoff_chart(points, sources, data)
    if data["rooflines"]:
        parts += _roofline_chart(data["rooflines"])
    if breakdowns:
        parts += _kinds_chart()
    parts += _sections_html(frames, titles or {}, breakdowns)
    return page("vbench report", "\n".join(parts), data, _REPORT_JS)


def _page_data(
    frames: Mapping[str, pd.DataFrame],
    points: pd.DataFrame,
    rooflines: Mapping[tuple[str, str], Mapping[str, Any]],
    breakdowns: Sequence[dict[str, Any]],
    include_contended: bool,
) -> dict[str, Any]:
    """What the page's JavaScript draws (its JSON): the chart's points, families and their colours and symbols, the
    rooflines with the points under them, the kinds of work of each breakdown."""
    from bench.results.records import KIND_COLOURS, KINDS

    families = sorted({str(f) for f in points["family"].dropna()}) if len(points) else []
    inputs = sorted({str(v) for v in points["input"]}) if len(points) else []
    thr = frames.get("throughput", pd.DataFrame())
    family_of = {str(r.arch): str(r.family) for r in points.itertuples()} if len(points) else {}
    roof_pts = []
    if len(thr):
        infer = thr[(thr["mode"] == "infer") & thr["intensity"].notna() & thr["achieved_tflops"].notna()]
        infer = infer[infer["batch"] == infer.groupby(["device", "dtype", "arch"])["batch"].transform("max")]
        roof_pts = json_records(infer)
        for p in roof_pts:
            p["family"] = family_of.get(str(p["arch"]), "")
    roofs = [
        {"device": d, "dtype": t, **{k: json_value(v) for k, v in r.items()}}
        for (d, t), r in rooflines.items()
        if any(p["device"] == d and p["dtype"] == t for p in roof_pts)
    ]
    kinds = [k for k in KINDS if any(any(x["kind"] == k for x in b["kinds"]) for b in breakdowns)]
    return {
        "include_contended": include_contended,
        "points": json_records(points),
        "families": families,
        "colours": family_colours(families),
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


def _tradeoff_chart(points: pd.DataFrame, sources: Sequence[str], data: Mapping[str, Any]) -> list[str]:
    """The page's heading and the trade-off chart with its controls (cost axis, filters)."""
    return [
        "<h1>vbench report</h1>",
        f'<p class="note">From {", ".join(f"<code>{esc(s)}</code>" for s in sources)}. MACs are multiply-accumulates '
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
        + _checkboxes("family", data["families"], data["colours"])
        + _checkboxes("device", sorted({str(v) for v in points.get("device", [])}))
        + _checkboxes("dtype", sorted({str(v) for v in points.get("dtype", [])}))
        + _checkboxes("mode", sorted({str(v) for v in points.get("mode", [])}))
        + _checkboxes("input", list(data["symbols"]))  # the inputs, sorted
        + "</div>",
        '<div id="tradeoff" class="chart"></div>',
        '<p class="note" id="tradeoff-count"></p><p class="note" id="tradeoff-missing"></p>',
        '<p class="note">The Pareto front is that of the points shown: no other shown point is at most as costly '
        "(for MFU: at least as high) and at least as accurate. Hollow markers: measured accuracy.</p>",
    ]


def _roofline_chart(roofs: Sequence[Mapping[str, Any]]) -> list[str]:
    """The roofline chart, with a choice of (device, dtype) among the measured rooflines."""
    options = "".join(
        f'<option value="{i}">{esc(r.get("device_name") or r["device"])}: {esc(r["device"])} {esc(r["dtype"])}</option>'
        for i, r in enumerate(roofs)
    )
    return [
        "<h2>Roofline</h2>",
        f'<div class="controls"><label>device and dtype <select id="roof">{options}</select></label></div>',
        '<div id="roofline" class="chart"></div>',
        '<p class="note">Each timed architecture (inference, largest batch) at its arithmetic intensity and '
        "achieved TFLOP/s, under the device's measured roofs; the dotted line is the ridge point.</p>",
    ]


def _kinds_chart() -> list[str]:
    """The time-by-kind chart of the breakdowns."""
    return [
        "<h2>Where the time goes, by kind of work</h2>",
        '<div class="controls"><label>share of <select id="kind-field"><option value="pct_time">time</option>'
        '<option value="pct_macs">MACs</option></select></label></div>',
        '<div id="kinds" class="chart"></div>',
    ]


def _sections_html(
    frames: Mapping[str, pd.DataFrame], titles: Mapping[str, str], breakdowns: Sequence[dict[str, Any]]
) -> list[str]:
    """Every table of report.md, in its order, with the same cells."""
    out: list[str] = []
    trade = frames.get("tradeoff")
    if trade is not None and len(trade):
        out += [
            f"<h2>{esc(titles.get('tradeoff', 'tradeoff'))}</h2>",
            table_html(report_md.tradeoff_table(trade), "t-tradeoff"),
        ]
        timings = sorted({str(t) for t in trade["timing"] if t})
        if timings:
            out.append(f'<p class="note">Timing rows: {esc("; ".join(timings))}.</p>')
        sourced = trade[trade["accuracy_source"].notna()]
        if len(sourced):
            items = "".join(
                f"<li>{esc(r.arch)} at {esc(r.input)}: {esc(r.accuracy_source)}</li>" for r in sourced.itertuples()
            )
            out.append(f'<details><summary>Accuracy sources</summary><ul class="note">{items}</ul></details>')
    failures = frames.get("failures")
    if failures is not None:
        out.append(f"<h2>{esc(titles.get('failures', 'failures'))}</h2>")
        out.append(table_html(report_md.failures_table(failures), "t-failures") if len(failures)
                   else f"<p>{esc(report_md.FAILURES_NONE)}</p>")  # fmt: skip
    for name, note, table in (
        ("paper", report_md.PAPER_NOTE, report_md.paper_table),
        ("scaling", report_md.SCALING_NOTE, report_md.scaling_table),
        ("growth", report_md.GROWTH_NOTE, report_md.growth_table),
    ):
        frame = frames.get(name)
        if frame is not None and len(frame):
            out += [f"<h2>{esc(titles.get(name, name))}</h2>", f'<p class="note">{prose(note)}</p>',
                    table_html(table(frame), f"t-{name}")]  # fmt: skip
    thr = frames.get("throughput")
    if (thr is not None and len(thr)) or breakdowns:
        out.append(f"<h2>{esc(titles.get('throughput', 'throughput'))}</h2>")
    if thr is not None and len(thr):
        out.append(f'<p class="note">{prose(report_md.THROUGHPUT_NOTE)}</p>')
        for i, g in enumerate(report_md.throughput_tables(thr)):
            below = (
                "below the ridge: " + ", ".join(f"<code>{esc(a)}</code>" for a in g.below_ridge) + "."
                if g.below_ridge
                else "every architecture is at or right of the ridge point."
            )
            out += [f"<p><b>{esc(g.device)} {esc(g.dtype)}, {esc(g.mode)}, batch {g.batch}</b>: {below}</p>",
                    table_html(g.table, f"t-throughput-{i}")]  # fmt: skip
    if breakdowns:
        out += [
            f'<p class="note">{prose(report_md.KINDS_NOTE)}</p>',
            table_html(report_md.kinds_table(breakdowns), "t-kinds"),
        ]
    return out
