"""The page of ``vbench history --html``: a chart of the chosen metric across runs and a table per metric, in
one self-contained HTML file (its pieces: :mod:`bench.report.html`).
"""

from __future__ import annotations

import math
from typing import Any

from bench.report.history import HISTORY_METRICS, OTHER_MARKS, History
from bench.report.html import esc, family_colours, json_records, page, table_html
from bench.report.markdown import TableText

__all__ = ["history_html"]

# ---------------------------------------------------------------- history across runs

_HISTORY_JS = r"""
var D=JSON.parse(document.getElementById('vbench-data').textContent);
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
                           "points": json_records(group.drop(columns=["arch", "config", "family"]))})  # fmt: skip
    data = {
        "runs": history.runs,
        "series": series,
        "colours": family_colours(families),
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
    options = "".join(f'<option value="{m}">{esc(label)}</option>' for m, label in HISTORY_METRICS)
    parts = [
        "<h1>vbench history</h1>",
        f"<p>{len(history.runs)} runs, oldest first; {n_fail} change{'s' if n_fail != 1 else ''} that "
        "<code>vbench compare</code> calls a regression (marked in red). Each configuration is compared with the "
        "last earlier run that holds it (latency and memory: that measured them), with the tolerances of "
        "<code>[tool.vbench.compare]</code>.</p>",
        *[f'<p class="note">{esc(n)}</p>' for n in history.notes],
        "<h2>Runs</h2>",
        table_html(runs_table, "t-runs"),
        "<h2>Across runs</h2>",
        f'<div class="controls"><label>metric <select id="metric">{options}</select></label>'
        '<label><input type="checkbox" id="relative"> relative to the first run</label>'
        '<label><input type="checkbox" id="changed"> only configurations that changed</label>'
        '<label>arch contains <input type="search" id="archfilter" size="14"></label></div>',
        '<div id="history" class="chart"></div><p class="note" id="history-count"></p>',
        '<p class="note">Marks as in <code>vbench compare</code>: <code>x</code> an exact count changed, <code>!</code> '
        "a new failure, <code>+</code> worse beyond the tolerance, significantly (these three are regressions); "
        "<code>-</code> better; <code>~</code> beyond the tolerance but not significant, or a CPU row's peak RSS within "
        "its noise (shown, not failed).</p>",
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
        table = table_html(TableText(header, body, ("arch", "configuration")), f"t-{metric}", classes)
        parts.append(f'<div class="metric-table" data-metric="{metric}"><h3>{esc(label)}</h3>{table}</div>')
    others = [
        [f"#{int(r['run']) + 1} {history.runs[int(r['run'])]['git_sha']}", str(r["arch"]), str(r["config"]),
         str(r[f"{m}_mark"]), str(r[f"{m}_verdict"])]
        for _, r in frame.iterrows() for m in OTHER_MARKS if r[f"{m}_mark"]
    ] if len(frame) else []  # fmt: skip
    if others:
        parts += ["<h2>Status and other changes</h2>",
                  table_html(TableText(["run", "arch", "configuration", "mark", "verdict"], others,
                                   ("run", "arch", "configuration", "mark", "verdict")), "t-other")]  # fmt: skip
    return page("vbench history", "\n".join(parts), data, _HISTORY_JS)
