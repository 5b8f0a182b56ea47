"""Charts as inline SVG, drawn on the server: no JavaScript, nothing from a CDN.

Every chart is an ``<svg role="img">`` with a title and a description, and
its numbers follow in a table (inside ``<details>``) for screen readers and
for copying. The strict CSP forbids inline styles, so colours are SVG
presentation attributes. Text is escaped (``markupsafe``).

Readable on a phone: the drawing is 400 units wide with 14-unit text, so on a
375 px screen (about 340 px of chart) text stays at 11 px or more, and the
console's CSS caps a chart's width so it does not grow huge on a desktop.
Series are told apart by more than colour: each line has its own dash pattern
and marker shape (also in the legend), so one company's line hidden under
another's still shows its markers.
"""

from __future__ import annotations

import itertools
import math

from markupsafe import Markup
from markupsafe import escape

# Distinguishable colours (Okabe–Ito), in order of use.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000",
           "#F0E442")
# Dash patterns and marker shapes, in order of use (with the colours above).
DASHES = ("", "7 4", "2 3", "10 3 2 3", "4 4", "1 2")
MARKERS = ("circle", "square", "triangle", "diamond", "cross", "triangle-down")
WIDTH, HEIGHT = 400, 240
LEFT, RIGHT, TOP, BOTTOM = 44, 10, 12, 34
FONT = 14
# Markers per line: about this many, so they stay apart on 90 days.
MARKS_PER_LINE = 8
_ids = itertools.count(1)


def _ticks(maximum: int) -> list[int]:
    """Up to five round y-axis values from 0 to at least ``maximum``."""
    if maximum <= 0:
        return [0, 1]
    raw = maximum / 4
    magnitude = 10 ** math.floor(math.log10(raw)) if raw >= 1 else 1
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    step = max(1, int(step))
    return list(range(0, maximum + step, step))[:6]


def _frame(chart_id: str, title: str, description: str, body: list[str]) -> str:
    return (f'<svg class="chart-svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
            f'aria-labelledby="{chart_id}-t {chart_id}-d" preserveAspectRatio="xMidYMid meet">'
            f'<title id="{chart_id}-t">{escape(title)}</title>'
            f'<desc id="{chart_id}-d">{escape(description)}</desc>' + "".join(body) + "</svg>")


def _axes(ticks: list[int], labels: list[str], every: int) -> list[str]:
    plot_h = HEIGHT - TOP - BOTTOM
    top = ticks[-1] or 1
    out = []
    for value in ticks:
        y = TOP + plot_h - plot_h * value / top
        out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" '
                   f'stroke="#d0d7de" stroke-width="1"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y + 5:.1f}" text-anchor="end" '
                   f'font-size="{FONT}" fill="#4f5964">{value}</text>')
    n = max(len(labels), 1)
    slot = (WIDTH - LEFT - RIGHT) / n
    for i, label in enumerate(labels):
        # Every ``every``-th label and the last; one too close to the last gives way.
        if i != n - 1 and (i % every or n - 1 - i < every):
            continue
        x = LEFT + slot * (i + 0.5)
        anchor = "middle"
        if x + len(label) * FONT * 0.3 > WIDTH:  # the last label would be cut off
            x, anchor = WIDTH - 1, "end"
        out.append(f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 20}" text-anchor="{anchor}" '
                   f'font-size="{FONT}" fill="#4f5964">{escape(label)}</text>')
    return out


def _table(caption: str, header: list[str], rows: list[list]) -> str:
    head = "".join(f'<th scope="col">{escape(h)}</th>' for h in header)
    body = "".join(
        "<tr>" + f'<th scope="row">{escape(r[0])}</th>'
        + "".join(f"<td>{escape(v)}</td>" for v in r[1:]) + "</tr>" for r in rows)
    return (f'<details class="chart-data"><summary>{escape(caption)}</summary>'
            f'<div class="table-wrap"><table class="data"><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table></div></details>")


def _marker(shape: str, x: float, y: float, colour: str, size: float = 4.5) -> str:
    """One marker: a filled shape (a cross is stroked) centred on (x, y)."""
    if shape == "circle":
        return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{size:.1f}" fill="{colour}"/>'
    if shape == "square":
        return (f'<rect x="{x - size:.1f}" y="{y - size:.1f}" width="{2 * size:.1f}" '
                f'height="{2 * size:.1f}" fill="{colour}"/>')
    if shape == "cross":
        return (f'<path d="M{x - size:.1f} {y - size:.1f}L{x + size:.1f} {y + size:.1f}'
                f'M{x - size:.1f} {y + size:.1f}L{x + size:.1f} {y - size:.1f}" '
                f'stroke="{colour}" stroke-width="2.5"/>')
    if shape == "diamond":
        points = [(x, y - size * 1.3), (x + size * 1.3, y), (x, y + size * 1.3),
                  (x - size * 1.3, y)]
    elif shape == "triangle":
        points = [(x, y - size * 1.3), (x + size * 1.2, y + size), (x - size * 1.2, y + size)]
    else:  # triangle-down
        points = [(x, y + size * 1.3), (x + size * 1.2, y - size), (x - size * 1.2, y - size)]
    return (f'<polygon points="{" ".join(f"{px:.1f},{py:.1f}" for px, py in points)}" '
            f'fill="{colour}"/>')


def _style(i: int) -> tuple[str, str, str]:
    """(colour, dash pattern, marker shape) of the i-th series."""
    return PALETTE[i % len(PALETTE)], DASHES[i % len(DASHES)], MARKERS[i % len(MARKERS)]


def _legend(names: list[str], lines: bool = False) -> str:
    """The series' names with their swatch: for lines, a short line in the series' dash
    pattern with its marker, so the legend matches the drawing without colour."""
    items = []
    for i, name in enumerate(names):
        colour, dash, shape = _style(i)
        if lines:
            dashed = f' stroke-dasharray="{dash}"' if dash else ""
            swatch = (f'<svg class="swatch swatch-line" viewBox="0 0 28 12" aria-hidden="true">'
                      f'<line x1="0" y1="6" x2="28" y2="6" stroke="{colour}" stroke-width="2.5"'
                      f'{dashed}/>{_marker(shape, 14, 6, colour, 3.5)}</svg>')
        else:
            swatch = (f'<svg class="swatch" viewBox="0 0 10 10" aria-hidden="true">'
                      f'<rect width="10" height="10" fill="{colour}"/></svg>')
        items.append(f"<li>{swatch}{escape(name)}</li>")
    return f'<ul class="chart-legend">{"".join(items)}</ul>'


def _figure(title: str, svg: str, extra: str) -> Markup:
    # Every text part was escaped where the SVG and the table were built.
    return Markup(f'<figure class="chart"><figcaption>{escape(title)}</figcaption>'  # noqa: S704
                  f"{svg}{extra}</figure>")


def lines(title: str, description: str, labels: list[str],
          series: list[tuple[str, list[int]]], data_caption: str) -> Markup:
    """One line per series over the x labels (e.g. days)."""
    chart_id = f"chart{next(_ids)}"
    peak = max([max(values) for _, values in series if values] + [0])
    ticks = _ticks(peak)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    n = max(len(labels), 1)
    slot = plot_w / n
    body = _axes(ticks, labels, every=max(1, n // 6))
    every = max(1, math.ceil(n / MARKS_PER_LINE))
    for i, (name, values) in enumerate(series):
        colour, dash, shape = _style(i)
        xy = [(LEFT + slot * (j + 0.5), TOP + plot_h - plot_h * v / ticks[-1])
              for j, v in enumerate(values)]
        points = " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)
        dashed = f' stroke-dasharray="{dash}"' if dash else ""
        # Each series puts its markers on other days, so equal lines still show all.
        marks = "".join(_marker(shape, x, y, colour) for j, (x, y) in enumerate(xy)
                        if (j + i) % every == 0 or j == len(xy) - 1)
        body.append(f'<g><title>{escape(name)}</title>'
                    f'<polyline points="{points}" fill="none" stroke="{colour}" '
                    f'stroke-width="2.5" stroke-linejoin="round"{dashed}/>{marks}</g>')
    table = _table(data_caption, ["", *[name for name, _ in series]],
                   [[label, *[values[j] for _, values in series]]
                    for j, label in enumerate(labels)])
    legend = _legend([name for name, _ in series], lines=True) if len(series) > 1 else ""
    return _figure(title, _frame(chart_id, title, description, body), legend + table)


def bars(title: str, description: str, labels: list[str],
         series: list[tuple[str, list[int]]], data_caption: str) -> Markup:
    """Stacked bars per x label, one colour per series."""
    chart_id = f"chart{next(_ids)}"
    totals = [sum(values[j] for _, values in series) for j in range(len(labels))]
    ticks = _ticks(max(totals + [0]))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    n = max(len(labels), 1)
    slot = plot_w / n
    width = max(2.0, slot * 0.7)
    body = _axes(ticks, labels, every=max(1, n // 6))
    for j, label in enumerate(labels):
        base = 0
        for i, (name, values) in enumerate(series):
            value = values[j]
            if not value:
                continue
            height = plot_h * value / ticks[-1]
            y = TOP + plot_h - plot_h * base / ticks[-1] - height
            x = LEFT + slot * j + (slot - width) / 2
            body.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" '
                        f'height="{height:.1f}" fill="{PALETTE[i % len(PALETTE)]}">'
                        f"<title>{escape(label)} {escape(name)}: {value}</title></rect>")
            base += value
    table = _table(data_caption, ["", *[name for name, _ in series]],
                   [[label, *[values[j] for _, values in series]]
                    for j, label in enumerate(labels)])
    legend = _legend([name for name, _ in series]) if len(series) > 1 else ""
    return _figure(title, _frame(chart_id, title, description, body), legend + table)


def heatmap(title: str, description: str, rows: list[tuple[str, list[int]]],
            data_caption: str, hour_label: str) -> Markup:
    """Rows (e.g. kiosks) × 24 hours, darker for more."""
    chart_id = f"chart{next(_ids)}"
    # Each row's name on its own line above its cells: long kiosk names stay whole.
    name_h, cell_h, top = 20, 22, 4
    row_h = name_h + cell_h + 4
    cell_w = (WIDTH - RIGHT) / 24
    height = top + row_h * max(len(rows), 1) + 24
    peak = max([max(v) for _, v in rows if v] + [0]) or 1
    body = []
    for r, (name, values) in enumerate(rows):
        y = top + r * row_h
        short = name if len(name) <= 26 else name[:25] + "…"
        body.append(f'<text x="0" y="{y + 15}" font-size="{FONT}" fill="#1b1f24">'
                    f'{escape(short)}</text>')
        for h, value in enumerate(values):
            shade = 0.08 + 0.92 * value / peak if value else 0
            fill = "#f4f6f8" if not value else "#0072B2"
            opacity = f' fill-opacity="{shade:.2f}"' if value else ""
            body.append(f'<rect x="{h * cell_w:.1f}" y="{y + name_h}" width="{cell_w - 1:.1f}" '
                        f'height="{cell_h}" fill="{fill}"{opacity}>'
                        f"<title>{escape(name)} {h:02d}:00 — {value}</title></rect>")
    for h in range(0, 24, 3):
        body.append(f'<text x="{h * cell_w + cell_w / 2:.1f}" '
                    f'y="{top + row_h * max(len(rows), 1) + 16}" text-anchor="middle" '
                    f'font-size="{FONT}" fill="#4f5964">{h:02d}</text>')
    svg = (f'<svg class="chart-svg" viewBox="0 0 {WIDTH} {height}" role="img" '
           f'aria-labelledby="{chart_id}-t {chart_id}-d">'
           f'<title id="{chart_id}-t">{escape(title)}</title>'
           f'<desc id="{chart_id}-d">{escape(description)}</desc>' + "".join(body) + "</svg>")
    table = _table(data_caption, [hour_label, *[f"{h:02d}" for h in range(24)]],
                   [[name, *values] for name, values in rows])
    return _figure(title, svg, table)
