"""The dashboard's charts: SVG drawn on the server, one element per data point carrying its value."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from services.dashboard import charts

SVG = "{http://www.w3.org/2000/svg}"
NASTY = '<script>alert("x")</script> & "Tom\'s" <b>'


def parse(markup: str) -> ET.Element:
    """The chart as XML: it must be well-formed for a browser's SVG parser too."""
    return ET.fromstring(str(markup))


def points(svg: ET.Element, kind: str) -> list[ET.Element]:
    return [element for element in svg.iter(f"{SVG}{kind}") if "data-value" in element.attrib]


@pytest.mark.parametrize(
    "draw",
    [
        lambda: charts.bar_chart([], name="c", title="t"),
        lambda: charts.heatmap([], name="c", title="t", rows=[], columns=[]),
        lambda: charts.scatter([], name="c", title="t", x_label="x", y_label="y"),
        lambda: charts.timeline([], name="c", title="t"),
        lambda: charts.timeline([charts.Lane("extract", ())], name="c", title="t"),
    ],
    ids=["bars", "heatmap", "scatter", "timeline", "timeline-without-spans"],
)
def test_a_chart_without_data_says_so_instead_of_drawing_an_empty_frame(draw):
    # WHEN
    markup = str(draw())
    # THEN
    assert "<svg" not in markup
    assert 'class="no-data"' in markup and "no data yet" in markup


def test_an_empty_chart_says_what_is_missing_in_its_own_words():
    markup = str(charts.bar_chart([], name="c", title="t", empty="no alerts raised"))
    assert "no alerts raised" in markup and 'data-chart="c"' in markup


def test_one_bar_carries_its_label_and_exact_value():
    # WHEN
    svg = parse(charts.bar_chart([charts.Bar("drama", 21_810)], name="movies-by-genre", title="Movies"))
    # THEN
    assert svg.get("data-chart") == "movies-by-genre"
    [bar] = points(svg, "rect")
    assert bar.get("data-label") == "drama" and bar.get("data-value") == "21810"
    assert float(bar.get("width")) > 0


def test_many_bars_keep_their_order_and_values_and_scale_to_the_maximum():
    # GIVEN
    bars = [charts.Bar(f"movie {n}", 10 - n / 4) for n in range(20)]
    # WHEN
    svg = parse(charts.bar_chart(bars, name="top", title="Top", maximum=10))
    # THEN
    drawn = points(svg, "rect")
    assert [b.get("data-label") for b in drawn] == [b.label for b in bars]
    assert [float(b.get("data-value")) for b in drawn] == [b.value for b in bars]
    widths = [float(b.get("width")) for b in drawn]
    assert widths == sorted(widths, reverse=True)
    assert widths[0] == pytest.approx((charts.WIDTH - charts.LABEL_WIDTH - 90) * 10 / 10)


def test_a_zero_bar_still_has_an_element_and_its_value():
    svg = parse(charts.bar_chart([charts.Bar("NOT_A_NUMBER", 0)], name="rejects", title="Rejects"))
    [bar] = points(svg, "rect")
    assert bar.get("data-value") == "0"


def test_values_are_written_exactly_not_as_drawn():
    assert charts.number(7) == "7"
    assert charts.number(7.0) == "7"
    assert charts.number(True) == "1"
    assert float(charts.number(6.912915129151291)) == 6.912915129151291
    assert float(charts.number(1 / 3)) == 1 / 3


def test_labels_are_escaped_in_text_attributes_and_tooltips():
    # GIVEN a title nobody here controls
    # WHEN it is drawn in each kind of chart
    markups = [
        charts.bar_chart([charts.Bar(NASTY, 1)], name="bars", title=NASTY),
        charts.heatmap(
            [charts.Cell(NASTY, NASTY, 5.0, detail=NASTY)], name="h", title="t", rows=[NASTY], columns=[NASTY]
        ),
        charts.scatter(
            [charts.Point(NASTY, 1e6, 5.0, key=NASTY)], name="s", title="t", x_label=NASTY, y_label=NASTY
        ),
        charts.timeline([charts.Lane(NASTY, (charts.Span(NASTY, 0, 1, NASTY),))], name="t", title="t"),
    ]
    for markup in markups:
        text = str(markup)
        # THEN no markup of its own gets through, and the label reads back unchanged
        assert "<script>" not in text and "<b>" not in text
        svg = parse(text)
        [point] = [e for e in svg.iter() if "data-value" in e.attrib]
        assert NASTY in point.get("data-label")


def test_the_heatmap_has_one_cell_per_value_and_blanks_without_data():
    # GIVEN two genres over two decades, one pair without movies
    cells = [
        charts.Cell("drama", "1990s", 7.2, detail="100 movies"),
        charts.Cell("drama", "2000s", 7.0),
        charts.Cell("action", "2000s", 6.4),
    ]
    # WHEN
    svg = parse(
        charts.heatmap(
            cells, name="ratings", title="Ratings", rows=["drama", "action"], columns=["1990s", "2000s"]
        )
    )
    # THEN
    drawn = {
        (c.get("data-row"), c.get("data-column")): float(c.get("data-value")) for c in points(svg, "rect")
    }
    assert drawn == {("drama", "1990s"): 7.2, ("drama", "2000s"): 7.0, ("action", "2000s"): 6.4}
    blanks = [e for e in svg.iter(f"{SVG}rect") if e.get("class") == "blank"]
    assert len(blanks) == 1 and "data-value" not in blanks[0].attrib
    # AND the highest value is the darkest
    fills = {c.get("data-value"): c.get("fill") for c in points(svg, "rect")}
    assert fills["7.2"] == "#bf360c" and fills["6.4"] == "#fff3e0"


def test_a_heatmap_of_one_cell_draws_it():
    svg = parse(
        charts.heatmap(
            [charts.Cell("drama", "1990s", 7.5)], name="h", title="t", rows=["drama"], columns=["1990s"]
        )
    )
    [cell] = points(svg, "rect")
    assert cell.get("data-label") == "drama 1990s" and cell.get("data-value") == "7.5"


def test_the_scatter_plots_every_point_with_a_positive_x_on_a_log_axis():
    # GIVEN budgets from a thousand to a hundred million dollars, and one without a budget
    given = [
        charts.Point("cheap", 1_000, 4.0, key="a"),
        charts.Point("middle", 100_000, 6.0, key="b"),
        charts.Point("dear", 100_000_000, 8.0, key="c"),
        charts.Point("no budget", 0, 9.0, key="d"),
    ]
    # WHEN
    svg = parse(charts.scatter(given, name="budget", title="Budget", x_label="budget", y_label="rating"))
    # THEN
    drawn = points(svg, "circle")
    assert [(c.get("data-key"), float(c.get("data-x")), float(c.get("data-value"))) for c in drawn] == [
        ("a", 1_000, 4.0),
        ("b", 100_000, 6.0),
        ("c", 100_000_000, 8.0),
    ]
    xs = [float(c.get("cx")) for c in drawn]
    # log scale: 1k → 100k is as far as 100k → 10M, and 10M → 100M half of that
    assert xs[1] - xs[0] == pytest.approx((xs[2] - xs[1]) * 2 / 3, rel=1e-3)
    ys = [float(c.get("cy")) for c in drawn]
    assert ys == sorted(ys, reverse=True)  # a higher rating is drawn higher up


def test_a_scatter_of_one_point_draws_it():
    svg = parse(
        charts.scatter([charts.Point("one", 5e6, 7.1)], name="s", title="t", x_label="x", y_label="y")
    )
    [point] = points(svg, "circle")
    assert point.get("data-value") == "7.1" and point.get("data-x") == "5000000"


def test_the_timeline_draws_each_stage_as_long_as_it_took():
    # GIVEN two extracts, one of them quarantined at its second stage
    lanes = [
        charts.Lane("e1", (charts.Span("extractor", 0, 1.5), charts.Span("unzipper", 2.0, 2.25))),
        charts.Lane(
            "e2", (charts.Span("extractor", 0, 1.0), charts.Span("unzipper", 1.5, 1.6, "quarantined"))
        ),
    ]
    # WHEN
    svg = parse(charts.timeline(lanes, name="extract-timeline", title="Extracts"))
    # THEN
    drawn = points(svg, "rect")
    assert [(s.get("data-label"), float(s.get("data-value"))) for s in drawn] == [
        ("e1 extractor", 1.5),
        ("e1 unzipper", 0.25),
        ("e2 extractor", 1.0),
        ("e2 unzipper", 0.1),
    ]
    assert drawn[-1].get("data-status") == "quarantined"
    assert drawn[-1].get("fill") == charts.STATUS_COLOURS["quarantined"]
    # AND lanes share one axis: a stage half as long again is drawn half as wide again
    assert float(drawn[0].get("width")) == pytest.approx(1.5 * float(drawn[2].get("width")), abs=0.2)


def test_money_is_short():
    assert [charts.money(v) for v in (950, 12_000, 3_500_000, 2e9)] == ["$950", "$12k", "$3.5M", "$2B"]


@pytest.mark.parametrize("title", ["Heat", "x" * 70_000, NASTY * 10])
def test_a_title_in_a_table_is_cut_to_a_line_and_whole_on_hover(title):
    from services.dashboard.pages import templates

    # WHEN a title from the data goes into a table cell
    markup = str(templates.get_template("macros.html").module.clipped(title))
    # THEN a short one is as it is (escaped), a long one is cut to 80 characters with its beginning
    # kept in a hover text, never markup of its own
    if len(title) <= 80:
        assert markup == "Heat"
        return
    span = ET.fromstring(markup)
    assert span.tag == "span" and len(span.text) == 80 and span.text.endswith("…")
    assert title.startswith(span.text[:-1]) and "<script>" not in markup
    hover = span.get("title")
    assert hover == title if len(title) <= 2000 else (len(hover) == 2000 and title.startswith(hover[:-1]))
