"""Charts as server-side SVG: pure functions from data points to markup, no JavaScript, nothing fetched.

Every data point is one element carrying ``data-label`` and ``data-value`` (the value as the warehouse
gave it, not as drawn), so a reader or a test can compare a chart with its source. A chart with no data
is a "no data yet" note, never an empty frame. Every label is escaped: titles of movies come from a
source nobody here controls.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

WIDTH = 720
"""Charts in a half-width panel are drawn this wide (SVG units = CSS pixels at most)."""
WIDE = 1360
"""Charts in a full-width panel."""
LABEL_WIDTH = 230
BAR_HEIGHT = 18
BAR_GAP = 6
STATUS_COLOURS = {
    "succeeded": "#2e7d32",
    "running": "#f9a825",
    "quarantined": "#7b1fa2",
    "failed": "#c62828",
    "skipped": "#9e9e9e",
}
"""A stage's colour by its status (``shared.progress``): the same on every chart and badge."""
BAR_COLOUR = "#1565c0"
NO_CELL = "#eeeeee"

Format = Callable[[float], str]


@dataclass(frozen=True)
class Bar:
    """One bar: what it stands for and its value."""

    label: str
    value: float


@dataclass(frozen=True)
class Cell:
    """One cell of a heatmap: its row, its column and its value; ``detail`` goes in its tooltip."""

    row: str
    column: str
    value: float
    detail: str = ""


@dataclass(frozen=True)
class Point:
    """One point of a scatter plot; ``key`` identifies what it stands for (a movie key)."""

    label: str
    x: float
    y: float
    key: str = ""


@dataclass(frozen=True)
class Span:
    """One stretch of a timeline lane: a stage, from ``start`` to ``end`` seconds, with its status."""

    label: str
    start: float
    end: float
    status: str = "succeeded"


@dataclass(frozen=True)
class Lane:
    """One row of a timeline: an extract and its stages."""

    label: str
    spans: tuple[Span, ...]


def number(value: float) -> str:
    """``value`` as a ``data-value``: an integer as digits, any other number exactly (round-trips)."""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    value = float(value)
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


def no_data(name: str, message: str = "no data yet") -> Markup:
    """What a chart shows when there is nothing to draw."""
    return Markup(f'<p class="no-data" data-chart="{escape(name)}">{escape(message)}</p>')


def _attribute(value: object) -> str:
    return escape(str(value), quote=True)


def _short(label: str, limit: int) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


def _svg(name: str, title: str, width: float, height: float, body: list[str]) -> Markup:
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" data-chart="{_attribute(name)}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" style="max-width: {width:.0f}px" role="img" '
        f'aria-label="{_attribute(title)}">'
        f"<title>{escape(title)}</title>" + "".join(body) + "</svg>"
    )


def _text(x: float, y: float, text: str, *, anchor: str = "start", css: str = "") -> str:
    klass = f' class="{css}"' if css else ""
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{klass}>{escape(text)}</text>'


def bar_chart(
    bars: Sequence[Bar],
    *,
    name: str,
    title: str,
    maximum: float | None = None,
    value_format: Format = "{:,.0f}".format,
    colours: dict[str, str] | None = None,
    empty: str = "no data yet",
    width: int = WIDTH,
) -> Markup:
    """Horizontal bars, one per item, in the order given; the axis runs from 0 to ``maximum``."""
    if not bars:
        return no_data(name, empty)
    top = maximum if maximum is not None else max(b.value for b in bars)
    top = top if top > 0 else 1
    plot = width - LABEL_WIDTH - 90
    body = []
    for n, bar in enumerate(bars):
        y = 8 + n * (BAR_HEIGHT + BAR_GAP)
        length = max(0.0, bar.value) / top * plot
        colour = (colours or {}).get(bar.label, BAR_COLOUR)
        shown = value_format(bar.value)
        body.append(_text(LABEL_WIDTH - 8, y + BAR_HEIGHT * 0.72, _short(bar.label, 34), anchor="end"))
        body.append(
            f'<rect class="bar" x="{LABEL_WIDTH}" y="{y}" width="{max(length, 1):.1f}" '
            f'height="{BAR_HEIGHT}" fill="{colour}" data-label="{_attribute(bar.label)}" '
            f'data-value="{number(bar.value)}"><title>{escape(bar.label)}: {escape(shown)}</title></rect>'
        )
        body.append(_text(LABEL_WIDTH + length + 6, y + BAR_HEIGHT * 0.72, shown, css="value"))
    return _svg(name, title, width, 16 + len(bars) * (BAR_HEIGHT + BAR_GAP), body)


def _mix(low: str, high: str, share: float) -> str:
    a = [int(low[i : i + 2], 16) for i in (1, 3, 5)]
    b = [int(high[i : i + 2], 16) for i in (1, 3, 5)]
    share = min(1.0, max(0.0, share))
    return "#" + "".join(f"{round(x + (y - x) * share):02x}" for x, y in zip(a, b, strict=True))


def heatmap(
    cells: Sequence[Cell],
    *,
    name: str,
    title: str,
    rows: Sequence[str],
    columns: Sequence[str],
    value_format: Format = "{:.1f}".format,
    low_colour: str = "#fff3e0",
    high_colour: str = "#bf360c",
    empty: str = "no data yet",
    width: int = WIDTH,
) -> Markup:
    """A grid of ``rows`` by ``columns``; a cell's colour runs from the lowest value to the highest.

    A row/column pair without a cell is drawn blank and carries no data.
    """
    if not cells:
        return no_data(name, empty)
    low = min(c.value for c in cells)
    high = max(c.value for c in cells)
    spread = high - low or 1.0
    left, top = 110, 26
    cell_width = (width - left - 8) / max(1, len(columns))
    cell_height = 20
    by_position = {(c.row, c.column): c for c in cells}
    body = []
    for j, column in enumerate(columns):
        body.append(_text(left + (j + 0.5) * cell_width, top - 8, column, anchor="middle", css="axis"))
    for i, row in enumerate(rows):
        y = top + i * cell_height
        body.append(_text(left - 6, y + cell_height * 0.7, _short(row, 16), anchor="end"))
        for j, column in enumerate(columns):
            x = left + j * cell_width
            cell = by_position.get((row, column))
            if cell is None:
                body.append(
                    f'<rect class="blank" x="{x:.1f}" y="{y}" width="{cell_width - 1:.1f}" '
                    f'height="{cell_height - 1}" fill="{NO_CELL}"/>'
                )
                continue
            share = (cell.value - low) / spread
            shown = value_format(cell.value)
            tip = f"{row}, {column}: {shown}" + (f" ({cell.detail})" if cell.detail else "")
            body.append(
                f'<rect class="cell" x="{x:.1f}" y="{y}" width="{cell_width - 1:.1f}" '
                f'height="{cell_height - 1}" fill="{_mix(low_colour, high_colour, share)}" '
                f'data-label="{_attribute(f"{row} {column}")}" data-row="{_attribute(row)}" '
                f'data-column="{_attribute(column)}" data-value="{number(cell.value)}">'
                f"<title>{escape(tip)}</title></rect>"
            )
            if cell_width >= 28:
                css = "cell-text light" if share > 0.55 else "cell-text"
                body.append(
                    _text(x + cell_width / 2, y + cell_height * 0.68, shown, anchor="middle", css=css)
                )
    legend_y = top + len(rows) * cell_height + 14
    body.append(
        f'<defs><linearGradient id="{_attribute(name)}-scale"><stop offset="0" stop-color="{low_colour}"/>'
        f'<stop offset="1" stop-color="{high_colour}"/></linearGradient></defs>'
        f'<rect x="{left}" y="{legend_y}" width="160" height="10" fill="url(#{_attribute(name)}-scale)"/>'
    )
    body.append(_text(left - 6, legend_y + 9, value_format(low), anchor="end", css="axis"))
    body.append(_text(left + 166, legend_y + 9, value_format(high), css="axis"))
    return _svg(name, title, width, legend_y + 20, body)


def _log_ticks(low: float, high: float) -> list[float]:
    return [10.0**k for k in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)]


def money(value: float) -> str:
    """A dollar amount, short: $950, $12k, $3.5M."""
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"${value / size:.3g}{suffix}"
    return f"${value:,.0f}"


def scatter(
    points: Sequence[Point],
    *,
    name: str,
    title: str,
    x_label: str,
    y_label: str,
    y_range: tuple[float, float] = (0.0, 10.0),
    x_format: Format = money,
    y_format: Format = "{:.1f}".format,
    empty: str = "no data yet",
    width: int = WIDTH,
) -> Markup:
    """Points on a logarithmic x axis (only positive x is drawn) and a linear y axis over ``y_range``.

    ``data-value`` is the point's y, ``data-x`` its x.
    """
    drawn = [p for p in points if p.x > 0]
    if not drawn:
        return no_data(name, empty)
    ticks = _log_ticks(min(p.x for p in drawn), max(p.x for p in drawn))
    x_low, x_high = math.log10(ticks[0]), math.log10(ticks[-1])
    x_span = (x_high - x_low) or 1.0
    y_low, y_high = y_range
    left, right, top, bottom, height = 56, 16, 12, 44, 380
    plot_width, plot_height = width - left - right, height - top - bottom

    def at_x(value: float) -> float:
        return left + (math.log10(value) - x_low) / x_span * plot_width

    def at_y(value: float) -> float:
        return top + (1 - (value - y_low) / ((y_high - y_low) or 1.0)) * plot_height

    body = [
        f'<rect class="plot" x="{left}" y="{top}" width="{plot_width}" height="{plot_height}" fill="none"/>'
    ]
    for tick in ticks:
        x = at_x(tick)
        body.append(f'<line class="grid" x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + plot_height}"/>')
        body.append(_text(x, top + plot_height + 16, x_format(tick), anchor="middle", css="axis"))
    step = max(1, round((y_high - y_low) / 5))
    value = y_low
    while value <= y_high:
        y = at_y(value)
        body.append(f'<line class="grid" x1="{left}" y1="{y:.1f}" x2="{left + plot_width}" y2="{y:.1f}"/>')
        body.append(_text(left - 6, y + 4, y_format(value), anchor="end", css="axis"))
        value += step
    body.append(_text(left + plot_width / 2, height - 6, x_label, anchor="middle", css="axis-title"))
    body.append(
        f'<text class="axis-title" transform="translate(14 {top + plot_height / 2:.0f}) rotate(-90)" '
        f'text-anchor="middle">{escape(y_label)}</text>'
    )
    for point in drawn:
        tip = f"{point.label}: {x_format(point.x)}, {y_format(point.y)}"
        body.append(
            f'<circle class="point" cx="{at_x(point.x):.1f}" cy="{at_y(point.y):.1f}" r="3" '
            f'data-label="{_attribute(point.label)}" data-key="{_attribute(point.key)}" '
            f'data-x="{number(point.x)}" data-value="{number(point.y)}"><title>{escape(tip)}</title></circle>'
        )
    return _svg(name, title, width, height, body)


def timeline(
    lanes: Sequence[Lane],
    *,
    name: str,
    title: str,
    empty: str = "no data yet",
    width: int = WIDTH,
) -> Markup:
    """One lane per item, its spans placed on a shared axis of seconds from each lane's own start.

    ``data-value`` is a span's length in seconds.
    """
    if not any(lane.spans for lane in lanes):
        return no_data(name, empty)
    longest = max((s.end for lane in lanes for s in lane.spans), default=1.0) or 1.0
    plot = width - LABEL_WIDTH - 20
    top = 22
    bottom = top + len(lanes) * (BAR_HEIGHT + BAR_GAP)
    body = []
    for k in range(6):
        seconds = longest * k / 5
        x = LABEL_WIDTH + plot * k / 5
        body.append(f'<line class="grid" x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{bottom:.0f}"/>')
        body.append(_text(x, 12, f"{seconds:.1f} s", anchor="middle", css="axis"))
    for n, lane in enumerate(lanes):
        y = top + n * (BAR_HEIGHT + BAR_GAP)
        body.append(_text(LABEL_WIDTH - 8, y + BAR_HEIGHT * 0.72, _short(lane.label, 34), anchor="end"))
        for span in lane.spans:
            x = LABEL_WIDTH + max(0.0, span.start) / longest * plot
            length = max(2.0, (span.end - span.start) / longest * plot)
            seconds = max(0.0, span.end - span.start)
            colour = STATUS_COLOURS.get(span.status, BAR_COLOUR)
            label = f"{lane.label} {span.label}"
            body.append(
                f'<rect class="span" x="{x:.1f}" y="{y}" width="{length:.1f}" height="{BAR_HEIGHT}" '
                f'fill="{colour}" data-label="{_attribute(label)}" data-status="{_attribute(span.status)}" '
                f'data-value="{number(round(seconds, 3))}">'
                f"<title>{escape(span.label)}: {escape(span.status)}, {seconds:.2f} s</title></rect>"
            )
            if length >= 7 * len(span.label):
                body.append(_text(x + 4, y + BAR_HEIGHT * 0.72, span.label, css="span-text"))
    return _svg(name, title, width, bottom + 4, body)
