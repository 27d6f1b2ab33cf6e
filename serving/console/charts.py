"""Charts as inline SVG (no script, no outside file): a waterfall of a grade's contributions and a line of
scores over time. Each has a title and a description for screen readers."""
from __future__ import annotations

from markupsafe import Markup, escape

WIDTH, ROW, LABEL = 640, 22, 220


def waterfall(bias: float, rows: list[tuple[str, float]], unit: str, title: str, base: str, output: str,
              other: str, top: int = 10) -> Markup:
    """Bars from the base value through each (label, contribution) — the ``top`` largest, the rest as one
    "other" bar — to the model's output; red raises the risk, green lowers it."""
    rows = sorted(rows, key=lambda r: -abs(r[1]))
    shown = rows[:top] + ([(other, sum(v for _, v in rows[top:]))] if len(rows) > top else [])
    steps, level = [], bias
    for label, value in shown:
        steps.append((label, level, level + value, "up" if value > 0 else "down"))
        level += value
    levels = [bias, level, *(b for _, _, b, _ in steps)]
    lo, hi = min(levels), max(levels)
    lo -= (hi - lo) * 0.15 or 1.0   # the base and output bars start here, so small steps stay visible
    steps = [(base, lo, bias, "base"), *steps, (output, lo, level, "base")]
    span = hi - lo
    plot = WIDTH - LABEL - 110

    def x(v: float) -> float:
        return LABEL + (v - lo) / span * plot

    height = ROW * len(steps) + 10
    parts = [f'<svg class="chart" role="img" aria-labelledby="wf-title" viewBox="0 0 {WIDTH} {height}" '
             f'width="{WIDTH}" height="{height}" xmlns="http://www.w3.org/2000/svg">',
             f'<title id="wf-title">{escape(title)}</title>']
    if lo <= 0 <= hi:  # the zero line, where it falls within the chart (log-odds)
        parts.append(f'<line x1="{x(0):.1f}" y1="0" x2="{x(0):.1f}" y2="{height}" class="axis"/>')
    for i, (label, a, b, bar) in enumerate(steps):
        y = 5 + i * ROW
        left, right = sorted((x(a), x(b)))
        short = label if len(label) <= 18 else label[:17] + "…"
        note = f"{b:.3f} {escape(unit)}" if bar == "base" else f"{b - a:+.3f}"
        parts.append(f'<text x="{LABEL - 6}" y="{y + 15}" text-anchor="end">{escape(short)}</text>'
                     f'<rect x="{left:.1f}" y="{y + 3}" width="{max(right - left, 1):.1f}" height="{ROW - 6}" '
                     f'class="bar-{bar}"/><text x="{right + 4:.1f}" y="{y + 15}">{note}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def scores(points: list[tuple[str, float, str]], title: str, height: int = 160) -> Markup:
    """A line of (date label, score, grade) points in time order, each point labelled with its grade."""
    if not points:
        return Markup("")
    values = [s for _, s, _ in points]
    lo, hi = min(values), max(values)
    pad = (hi - lo) * 0.1 or 1.0
    lo, hi = lo - pad, hi + pad
    left, plot_w, plot_h = 50, WIDTH - 70, height - 40

    def xy(i: int, v: float) -> tuple[float, float]:
        x = left + (plot_w * i / (len(points) - 1) if len(points) > 1 else plot_w / 2)
        return x, 10 + (hi - v) / (hi - lo) * plot_h

    coords = [xy(i, s) for i, s in enumerate(values)]
    parts = [f'<svg class="chart" role="img" aria-labelledby="sc-title" viewBox="0 0 {WIDTH} {height}" '
             f'width="{WIDTH}" height="{height}" xmlns="http://www.w3.org/2000/svg">',
             f'<title id="sc-title">{escape(title)}</title>',
             f'<text x="4" y="16">{hi - pad:.0f}</text><text x="4" y="{10 + plot_h}">{lo + pad:.0f}</text>',
             '<polyline class="line" fill="none" points="' + " ".join(f"{x:.1f},{y:.1f}" for x, y in coords) + '"/>']
    for (x, y), (label, score, grade) in zip(coords, points):
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" class="dot"><title>{escape(label)}: {escape(grade)} '
                     f'({score:.0f})</title></circle><text x="{x:.1f}" y="{y - 6:.1f}" text-anchor="middle">'
                     f'{escape(grade)}</text>')
    parts.append(f'<text x="{left}" y="{height - 8}">{escape(points[0][0])}</text>'
                 f'<text x="{left + plot_w}" y="{height - 8}" text-anchor="end">{escape(points[-1][0])}</text></svg>')
    return Markup("".join(parts))
