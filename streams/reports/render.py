"""A report's rows as CSV, JSON or one self-contained HTML page (a table and an SVG bar chart of the
first metric; no script, no external resource, every value escaped).

A CSV cell holding text that a spreadsheet would read as a formula (it starts with `= + - @`, a tab
or a carriage return: OWASP "CSV Injection") is written with a leading `'`, so a producer's
`=HYPERLINK(…)` shows as text instead of running. Numbers are written as numbers (-5 stays -5)."""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import orjson

#: bars drawn at most (a longer report's chart shows its first rows and says so)
MAX_BARS = 60
BAR_COLOUR = "#2563eb"
HEADER_COLOUR = "#0f172a"


@dataclass(frozen=True)
class Report:
    name: str
    workspace_id: str
    source: str
    start: datetime
    end: datetime
    timezone: str
    generated_at: datetime
    columns: list[str]
    rows: list[tuple]
    dimensions: int  # the first `dimensions` columns are dimensions, the rest metrics


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, (date, datetime)):
        return v.isoformat()
    if isinstance(v, float):
        return repr(v)
    return str(v)


#: the first characters that make a spreadsheet evaluate a cell (OWASP CSV injection)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(v: Any) -> str:
    """A value as a CSV cell: text that could start a formula is prefixed with `'`; numbers stay numbers."""
    text = _cell(v)
    if isinstance(v, (int, float, Decimal)):
        return text
    # leading spaces too: LibreOffice's import may trim them ("trim spaces") and then evaluate
    return "'" + text if text.lstrip(" ").startswith(FORMULA_START) else text


def _csv_field(text: str) -> str:
    """csv.QUOTE_MINIMAL, except that a carriage return is quoted too (the csv module leaves a lone
    `\r` bare when the line terminator is `\n`, and a spreadsheet starts a new row at it, where
    `abc\r=1+1` would put a formula at the start of a cell), and so is a `;`, the separator of
    spreadsheets in locales whose decimal mark is a comma (`x;=1+1` would be two cells there)."""
    if any(ch in text for ch in ',;"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def _csv_line(cells: list[str]) -> str:
    fields = [_csv_field(c) for c in cells]
    return (",".join(fields) if fields != [""] else '""') + "\n"  # a lone empty field is not a blank line


def csv_table(columns: list[str], rows: list[tuple]) -> bytes:
    """A header line and one line per row, each cell guarded against formula injection (above);
    an undefined value (None) is an empty cell."""
    lines = [_csv_line([_csv_cell(c) for c in columns])]
    lines += [_csv_line([_csv_cell(v) for v in row]) for row in rows]
    return "".join(lines).encode()


def to_csv(r: Report) -> bytes:
    return csv_table(r.columns, r.rows)


def to_json(r: Report) -> bytes:
    return orjson.dumps({
        "report": r.name, "workspace_id": r.workspace_id, "source": r.source,
        "period": {"start": r.start, "end": r.end, "timezone": r.timezone}, "generated_at": r.generated_at,
        "columns": r.columns, "rows": [dict(zip(r.columns, row)) for row in r.rows],
    }, option=orjson.OPT_INDENT_2 | orjson.OPT_UTC_Z)


def _label(r: Report, row: tuple) -> str:
    return " · ".join(_cell(v) for v in row[: r.dimensions]) or "all"


def _caption(r: Report) -> str:
    if r.dimensions >= len(r.columns):
        return ""
    return f"{r.columns[r.dimensions]} by {' · '.join(r.columns[: r.dimensions]) or 'total'}"


def _chart(r: Report) -> str:
    metric = r.columns[r.dimensions] if r.dimensions < len(r.columns) else None
    rows = r.rows[:MAX_BARS]
    if metric is None or not rows:
        return '<p class="empty">No rows in this period: nothing to chart.</p>'
    values = [row[r.dimensions] if isinstance(row[r.dimensions], (int, float)) else 0 for row in rows]
    top = max(max(values), 0) or 1
    top_label = f"{top:,}" if isinstance(top, int) else f"{top:,.6g}"
    width, height, left, bottom, top_pad = 1000, 340, 120, 90, 20
    plot_w, plot_h = width - left - 20, height - bottom - top_pad
    slot = plot_w / len(rows)
    bar = max(2.0, slot * 0.7)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="{html.escape(metric)} by {html.escape(", ".join(r.columns[: r.dimensions]) or "total")}">',
             f'<line x1="{left}" y1="{top_pad + plot_h}" x2="{left + plot_w}" y2="{top_pad + plot_h}" stroke="#475569"/>',
             f'<line x1="{left}" y1="{top_pad}" x2="{left}" y2="{top_pad + plot_h}" stroke="#475569"/>',
             f'<text x="{left - 6}" y="{top_pad + 4}" text-anchor="end" font-size="11">{html.escape(top_label)}</text>',
             f'<text x="{left - 6}" y="{top_pad + plot_h}" text-anchor="end" font-size="11">0</text>']
    for i, (row, v) in enumerate(zip(rows, values)):
        h = plot_h * max(v, 0) / top
        x = left + i * slot + (slot - bar) / 2
        label = html.escape(_label(r, row))
        parts.append(f'<rect class="bar" x="{x:.1f}" y="{top_pad + plot_h - h:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                     f'fill="{BAR_COLOUR}"><title>{label}: {html.escape(_cell(row[r.dimensions]))}</title></rect>')
        if len(rows) <= 31 or i % max(1, len(rows) // 20) == 0:
            cx, cy = x + bar / 2, top_pad + plot_h + 12
            parts.append(f'<text x="{cx:.1f}" y="{cy:.1f}" font-size="10" text-anchor="end" '
                         f'transform="rotate(-40 {cx:.1f} {cy:.1f})">{label[:24]}</text>')
    parts.append("</svg>")
    more = (f'<p class="note">The chart shows the first {MAX_BARS} of {len(r.rows)} rows.</p>'
            if len(r.rows) > MAX_BARS else "")
    return "".join(parts) + more


_CSS = f"""
body {{ font-family: system-ui, sans-serif; margin: 24px; color: #1e293b; }}
h1 {{ font-size: 22px; margin: 0 0 4px; }} figure {{ margin: 0; }}
figcaption {{ font-weight: 600; margin-bottom: 6px; }} .meta {{ color: #475569; margin: 0 0 16px; }}
table {{ border-collapse: collapse; margin-top: 16px; }}
th {{ background: {HEADER_COLOUR}; color: #fff; text-align: left; padding: 6px 12px; }}
td {{ padding: 4px 12px; border-bottom: 1px solid #cbd5e1; }} td.num {{ text-align: right; }}
tr:nth-child(even) td {{ background: #f1f5f9; }}
"""


def to_html(r: Report) -> bytes:
    e = html.escape
    head = "".join(f"<th>{e(c)}</th>" for c in r.columns)
    body = "".join(
        "<tr>" + "".join(f'<td class="{"num" if isinstance(v, (int, float)) else "dim"}">{e(_cell(v))}</td>'
                         for v in row) + "</tr>"
        for row in r.rows)
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{e(r.name)}</title>
<meta name="generator" content="learnstream reports"><style>{_CSS}</style></head>
<body>
<h1>{e(r.name)}</h1>
<p class="meta">{e(r.source)} · {e(r.start.isoformat())} to {e(r.end.isoformat())} ({e(r.timezone)}) ·
{len(r.rows)} rows · generated {e(r.generated_at.isoformat(timespec="seconds"))} · workspace {e(r.workspace_id)}</p>
<figure id="chart"><figcaption>{e(_caption(r))}</figcaption>{_chart(r)}</figure>
<table id="rows"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>
</body></html>
"""
    return page.encode()


RENDERERS = {"csv": to_csv, "json": to_json, "html": to_html}
