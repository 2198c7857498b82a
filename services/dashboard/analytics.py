"""The analytics page: what the star schema's BI views say, read through the Snowflake connector."""

from __future__ import annotations

from typing import Any

from services.dashboard import charts
from services.dashboard.queries import analytics_queries, warehouse_reader
from services.dashboard.sections import PageData, Section, read_all
from services.dashboard.settings import DashboardSettings
from shared.warehouse import ConnectionPool

PAGE = "analytics"


def read_analytics(settings: DashboardSettings, pool: ConnectionPool | None = None) -> PageData:
    """Every section of the analytics page, read now."""
    queries = analytics_queries(
        settings.warehouse_database,
        top=settings.dashboard_top_movies,
        points=settings.dashboard_scatter_points,
        recent=settings.dashboard_recent,
    )
    readers = [warehouse_reader(settings, queries, pool)]
    return PageData(read_all(readers, timeout=settings.dashboard_section_timeout_seconds))


def _rows(section: Section) -> list[dict[str, Any]]:
    return [] if section.failed else section.value or []


def genre_decade_chart(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The heatmap of vote-weighted rating by genre and decade, and movies by genre."""
    movies_by_genre: dict[str, int] = {}
    decades: dict[int, str] = {}
    for row in rows:
        movies_by_genre[row["GENRE"]] = movies_by_genre.get(row["GENRE"], 0) + int(row["MOVIES"])
        decades[int(row["DECADE"])] = row["DECADE_LABEL"]
    genres = sorted(movies_by_genre, key=lambda genre: (-movies_by_genre[genre], genre))
    cells = [
        charts.Cell(
            row["GENRE"],
            row["DECADE_LABEL"],
            float(row["VOTE_WEIGHTED_RATING"]),
            detail=f"{int(row['MOVIES']):,} movies, {int(row['VOTES'] or 0):,} votes",
        )
        for row in rows
        if row["VOTE_WEIGHTED_RATING"] is not None
    ]
    heatmap = charts.heatmap(
        cells,
        name="ratings-by-genre-decade",
        title="Vote-weighted rating by genre and decade",
        rows=genres,
        columns=[decades[decade] for decade in sorted(decades)],
        empty="no data yet: no movie has been merged into the star schema",
        width=charts.WIDE,
    )
    by_genre = charts.bar_chart(
        [charts.Bar(genre, movies_by_genre[genre]) for genre in genres],
        name="movies-by-genre",
        title="Current movies by genre (a movie counts in each of its genres)",
        empty="no data yet",
    )
    return {"heatmap": heatmap, "by_genre": by_genre}


def top_movies_chart(rows: list[dict[str, Any]]) -> charts.Markup:
    return charts.bar_chart(
        [
            charts.Bar(f"{row['RANK']}. {row['TITLE']} ({row['YEAR']})", float(row["WEIGHTED_RATING"]))
            for row in rows
        ],
        name="top-movies",
        title="Top movies by weighted rating",
        maximum=10,
        value_format="{:.2f}".format,
        empty="no data yet: no rated movie has been merged",
    )


def budget_chart(rows: list[dict[str, Any]]) -> charts.Markup:
    return charts.scatter(
        [
            charts.Point(
                f"{row['TITLE']} ({row['YEAR']})",
                float(row["BUDGET"]),
                float(row["RATING"]),
                row["MOVIE_KEY"],
            )
            for row in rows
        ],
        name="budget-vs-rating",
        title="Budget against rating",
        x_label="budget (US dollars, log scale)",
        y_label="rating",
        y_range=(0, 10),
        empty="no data yet: no current movie has a known budget",
        width=charts.WIDE,
    )


def analytics_view(data: PageData) -> dict[str, Any]:
    """What the template shows: key numbers, charts and tables, and each section's failure if any."""
    counts_rows = _rows(data["counts"])
    counts = counts_rows[0] if counts_rows else {}
    genre_rows = _rows(data["genre_decade"])
    top_rows = _rows(data["top_movies"])
    budget_rows = _rows(data["budget_rating"])
    return {
        "page": PAGE,
        "data": data,
        "counts": counts,
        "metrics": [
            ("movies-current", "movies loaded (current versions)", counts.get("MOVIES_CURRENT")),
            ("movie-versions", "versions in DIM_MOVIE", counts.get("MOVIE_VERSIONS")),
            ("movies-with-versions", "movies with more than one version", counts.get("MOVIES_WITH_VERSIONS")),
            ("movies-with-budget", "current movies with a known budget", counts.get("MOVIES_WITH_BUDGET")),
        ],
        "genre_decade": genre_decade_chart(genre_rows),
        "top_movies": top_rows,
        "top_movies_chart": top_movies_chart(top_rows),
        "budget_chart": budget_chart(budget_rows),
        "budget_points": len(budget_rows),
        "history": _rows(data["history"]),
    }
