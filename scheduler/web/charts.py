"""Small charts as inline SVG, rendered on the server (no JavaScript library).

Only numbers go into the drawing; every label is escaped.
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

from scheduler.web.history import RatePoint

__all__ = ["rate_chart", "sparkline"]


def _path(values: Sequence[float], width: float, height: float, top: float) -> str:
    """Polyline points of ``values`` scaled to ``top`` over a ``width`` x ``height`` box."""
    if len(values) == 1:
        values = [values[0], values[0]]
    step = width / (len(values) - 1)
    scale = height / top if top > 0 else 0.0
    return " ".join(f"{i * step:.1f},{height - v * scale:.1f}" for i, v in enumerate(values))


def sparkline(
    values: Sequence[float], *, width: int = 120, height: int = 24, title: str = ""
) -> Markup:
    """A filled line of ``values`` (oldest first, >= 0), scaled to their maximum."""
    if not values:
        return Markup("")
    top = max(values)
    line = _path(values, width, height - 1, top)
    return Markup(
        '<svg class="spark" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" '
        'aria-label="{t}"><title>{t}</title>'
        '<polygon class="area" points="0,{h} {line} {w},{h}"/>'
        '<polyline class="line" points="{line}"/></svg>'
    ).format(w=width, h=height, t=escape(title), line=Markup(line))


def rate_chart(points: Sequence[RatePoint], *, width: int = 560, height: int = 120) -> Markup:
    """Jobs/s (filled, left scale) and failure rate (red line, 0-100 %, right
    scale) over time; a note instead when there are fewer than two points."""
    if len(points) < 2:
        return Markup(
            '<p class="muted chart-empty">Collecting samples: the chart fills in while '
            "this page stays open (one sample per refresh).</p>"
        )
    pad_left, pad_right, pad_y = 44, 40, 14
    w, h = width - pad_left - pad_right, height - 2 * pad_y
    rates = [p.jobs_per_s for p in points]
    top = max(rates) or 1.0
    fails = [100.0 * (p.failure_rate or 0.0) for p in points]
    span_s = (points[-1].t_ms - points[0].t_ms) / 1000
    return Markup(
        '<svg class="chart" width="{W}" height="{H}" viewBox="0 0 {W} {H}" role="img" '
        'aria-label="jobs per second and failure rate">'
        '<g transform="translate({pl},{py})">'
        '<rect class="frame" x="0" y="0" width="{w}" height="{h}"/>'
        '<polygon class="area" points="0,{h} {rate} {w},{h}"/>'
        '<polyline class="line" points="{rate}"/>'
        '<polyline class="fail" points="{fail}"/>'
        '<text class="axis" x="-6" y="8" text-anchor="end">{top}/s</text>'
        '<text class="axis" x="-6" y="{h}" text-anchor="end">0</text>'
        '<text class="axis fail-label" x="{wr}" y="8">100%</text>'
        '<text class="axis fail-label" x="{wr}" y="{h}">0%</text>'
        '<text class="axis" x="0" y="{hb}">-{span}</text>'
        '<text class="axis" x="{w}" y="{hb}" text-anchor="end">now</text>'
        "</g></svg>"
    ).format(
        W=width,
        H=height,
        pl=pad_left,
        py=pad_y,
        w=w,
        h=h,
        wr=w + 4,
        hb=h + 12,
        rate=Markup(_path(rates, w, h, top)),
        fail=Markup(_path(fails, w, h, 100.0)),
        top=f"{top:.3g}",
        span=_span(span_s),
    )


def _span(seconds: float) -> str:
    return f"{seconds:.0f}s" if seconds < 120 else f"{seconds / 60:.0f}m"
