"""The pieces of vbench's HTML pages (``vbench report --html``, ``vbench history --html``): one self-contained file each.

A third renderer beside :mod:`bench.report.markdown` (Markdown) and :mod:`bench.report.plots`
(matplotlib): the pages (:mod:`bench.report.html_report`, :mod:`bench.report.html_history`) show the same
frames and the same cells (:class:`bench.report.markdown.TableText`) with what is here: sortable tables, the
page's frame and style, and plotly's JavaScript inlined, so that a page works offline, from a file, with no
server.

plotly is an optional extra (``pip install 'vbench[html]'``), imported only
when a page is written (:func:`plotly_js`). Family colours are the registry's
(:class:`archs.Family`), read as :mod:`bench.report.plots` reads them: only when a page
is drawn, never by the commands that read runs without ``--html``.

Every string from a file (architecture names, sources, errors, paths) reaches
the page either through :func:`esc` (:func:`html.escape`) or inside the page's JSON data
(:func:`_json_for_script`: ``<``, ``>``, ``&`` and the line separators as
``\\uXXXX``, so that nothing in it can close the script element), and the
page's JavaScript puts text into the document with ``textContent`` only.
"""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Sequence
from typing import Any

import pandas as pd

from bench.errors import UsageError
from bench.report.markdown import TableText

__all__ = [
    "esc",
    "family_colours",
    "json_records",
    "json_value",
    "page",
    "plotly_js",
    "prose",
    "require_plotly",
    "table_html",
]

_EXTRA_HINT = "--html needs plotly: pip install 'vbench[html]'"


def require_plotly() -> None:
    """Check, before any long work, that plotly can be imported.

    Raises:
        UsageError: plotly is not installed (the message names the extra).
    """
    try:
        import plotly.offline  # noqa: F401
    except ImportError:
        raise UsageError(_EXTRA_HINT) from None


def plotly_js() -> str:
    """plotly.js, to inline in a ``<script>`` element."""
    require_plotly()
    from plotly.offline import get_plotlyjs

    # The bundle holds no "</script"; should a release hold one, it must not end the element early.
    return re.sub(r"</(script)", r"<\\/\1", get_plotlyjs(), flags=re.IGNORECASE)


# ---------------------------------------------------------------- data for the page (numbers, no formatting)


def json_value(v: Any) -> Any:
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


def json_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: json_value(v) for k, v in row.items()} for row in frame.astype(object).to_dict("records")]


def family_colours(families: Sequence[str]) -> dict[str, str]:
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


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def prose(text: str) -> str:
    """One of our own sentences (with Markdown ``*emphasis*`` and ``code`` spans) as HTML."""
    out = esc(text)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    return re.sub(r"\*([^*]+)\*", r"<em>\1</em>", out)


_NUMERIC = re.compile(r"^[+-]?[\d,]*\.?\d+(?:e[+-]?\d+)?")


def _sort_key(cell: str) -> str:
    """The number a cell starts with (``"651.55 (noisy)"``, ``"41.3%"``, ``"+1,024"``), for sorting; else ''."""
    m = _NUMERIC.match(cell.strip())
    return m.group().replace(",", "") if m else ""


def table_html(t: TableText, table_id: str, marks: Sequence[Sequence[tuple[str, str]]] = ()) -> str:
    """A sortable table (click a header); every cell escaped.

    Args:
        marks: Per body row, per cell: (CSS class, title) to add, ``("", "")`` for none.
    """
    head = "".join(
        f'<th class="{"l" if h in t.left else "r"}" data-col="{i}" tabindex="0">{esc(h)}</th>'
        for i, h in enumerate(t.header)
    )
    rows = []
    for n, row in enumerate(t.body):
        cells = []
        for i, (h, cell) in enumerate(zip(t.header, row)):
            key = _sort_key(cell) if h not in t.left else ""
            attr = f' data-v="{esc(key)}"' if key else ""
            cls, title = marks[n][i] if marks else ("", "")
            attr += f' title="{esc(title)}"' if title else ""
            cells.append(f'<td class="{"l" if h in t.left else "r"}{" " + cls if cls else ""}"{attr}>{esc(cell)}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f'<div class="scroll"><table class="sortable" id="{esc(table_id)}"><thead><tr>{head}</tr></thead>'
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
function esc(s){return String(s===null||s===undefined?'':s).replace(/&/g,'&amp;').replace(/</g,'&lt;').replace(/>/g,'&gt;');}
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


def page(title: str, body: str, data: Any, script: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width,initial-scale=1"><title>{esc(title)}</title>'
        f"<style>{_STYLE}</style><script>{plotly_js()}</script></head><body>\n{body}\n"
        f'<script type="application/json" id="vbench-data">{_json_for_script(data)}</script>\n'
        f"<script>{_SORT_JS}\n{script}</script></body></html>\n"
    )
